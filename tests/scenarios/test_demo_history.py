"""`refundops demo`'s past month: written through the product on a shifted clock, once per
database, the same for a seed, and enough for the dashboard to show a month of trends."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import distinct, func, select

from bot import history
from bot.app import create_app
from bot.cli import demo_base
from bot.keys import SERVICES
from bot.settings import Settings, load_settings
from handlers.clock import FakeClock
from integrations.signing import signed_headers
from storage import migrate
from storage.db import Database
from storage.models import AuditEntry, Case, Event, SandboxMessage
from storage.repositories.connector_state import ConnectorStateRepository
from tests.support.app import make_refund, make_settings

UNTIL = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
TZ = ZoneInfo("Asia/Shanghai")


def demo_settings(db: Path, *, days: int = 30, per_day: float = 1.0) -> Settings:
    """The embedded demo's settings on `db`, with a thinner month (the demo's has five a day)."""
    return load_settings(
        None,
        base=demo_base(),
        overrides={
            "database": {"url": f"sqlite+aiosqlite:///{db}"},
            "simulator": {"history_days": days, "history_per_day": per_day, "seed": 7},
        },
        demo=True,
    )


async def contents(db: Path) -> dict[str, Any]:
    database = Database(f"sqlite+aiosqlite:///{db}")
    try:
        async with database.begin() as s:
            cases = (
                await s.execute(
                    select(
                        Case.kind, Case.case_id, Case.handle, Case.state, Case.amount_fen
                    ).order_by(Case.id)
                )
            ).all()
            return {
                "cases": [tuple(c) for c in cases],
                "audit": await s.scalar(select(func.count()).select_from(AuditEntry)),
                "events": await s.scalar(select(func.count()).select_from(Event)),
                "messages": await s.scalar(select(func.count()).select_from(SandboxMessage)),
            }
    finally:
        await database.dispose()


async def test_the_month_is_written_once_and_is_the_same_for_a_seed(tmp_path: Path) -> None:
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    seeded = await history.seed(demo_settings(first, days=8), create_app, until=UNTIL)
    assert not seeded.skipped
    assert seeded.cases >= 10
    written = await contents(first)
    assert written["cases"]

    later = UNTIL + timedelta(days=1)
    again = await history.seed(demo_settings(first, days=8), create_app, until=later)
    assert again.skipped == "the month is already there"
    assert await contents(first) == written

    await history.seed(demo_settings(second, days=8), create_app, until=UNTIL)
    assert await contents(second) == written


async def test_an_interrupted_month_is_named_not_repeated(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    settings = demo_settings(db)
    database = Database(settings.database.url)
    await migrate.upgrade(database)
    async with database.begin() as s:
        await ConnectorStateRepository(s).put(
            history.MARKER, {"state": "writing"}, now=datetime.now(UTC)
        )
    await database.dispose()
    seeded = await history.seed(settings, create_app, until=UNTIL)
    assert "make demo-reset" in seeded.skipped
    assert (await contents(db))["cases"] == []


async def test_no_month_is_written_for_a_real_group(tmp_path: Path) -> None:
    settings = demo_settings(tmp_path / "demo.db").model_copy(
        update={
            "groups": [
                g.model_copy(update={"channel": "wecom_webhook", "webhook_url": "http://x/"})
                for g in demo_settings(tmp_path / "demo.db").groups
            ]
        }
    )
    seeded = await history.seed(settings, create_app, until=UNTIL)
    assert seeded.skipped == "groups aftersales are not sandbox groups"


async def test_the_month_fills_the_dashboard_with_real_cases(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    settings = demo_settings(db)
    await history.seed(settings, create_app, until=UNTIL)

    async with TestClient(
        TestServer(create_app(settings, clock=FakeClock(UNTIL), workers=False))
    ) as client:
        svc = client.app[SERVICES]
        async with svc.tx() as tx:
            s = tx.session
            local_day = func.date(AuditEntry.at, "+8 hours")
            days = await s.scalar(select(func.count(distinct(local_day))))
            created = await s.scalar(
                select(func.count(distinct(func.date(Case.created_at, "+8 hours"))))
            )
            states = {(k, st) for k, st in (await s.execute(select(Case.kind, Case.state))).all()}
            actors = set((await s.scalars(select(AuditEntry.actor).distinct())).all())
            cards = (
                await s.scalars(select(SandboxMessage.card).where(SandboxMessage.card.is_not(None)))
            ).all()
            first_at = await s.scalar(select(func.min(Case.created_at)))
            last_at = await s.scalar(select(func.max(Case.created_at)))
            refund_days = (
                await s.scalars(select(Case.created_at).where(Case.kind == "refund"))
            ).all()
        # Spread over the month, through each kind's real states, by the team and the rules.
        assert days is not None
        assert days >= 24, days
        assert created is not None
        assert created >= 22, created
        assert first_at is not None
        assert UNTIL - timedelta(days=30) <= first_at <= UNTIL - timedelta(days=28)
        assert last_at is not None
        assert UNTIL - timedelta(days=2) <= last_at <= UNTIL
        for done in [
            ("refund", "refunded"),
            ("intercept", "intercepted"),
            ("payout", "paid"),
        ]:
            assert done in states, (done, states)
        assert any(k == "anomaly" and st in ("reshipped", "ignored") for k, st in states), states
        assert {"agent1", "agent2", "sup1", "fin1"} <= actors, actors
        assert any(a.startswith("rule:") for a in actors), actors
        titles = [str(c.get("title", "")) for c in cards if isinstance(c, dict)]
        assert sum(t.startswith("售后日报") for t in titles) >= 28, titles[:5]
        assert any(t.startswith("⚡") for t in titles), (
            "the promotion's rush folds into a batch card"
        )

        first = (UNTIL.astimezone(TZ) - timedelta(days=29)).date()
        last = UNTIL.astimezone(TZ).date()
        resp = await client.get(f"/dashboard?from={first}&to={last}")
        assert resp.status == 200
        html = await resp.text()
        wide = html.split('class="chart-wide"')[1].split("</svg>")[0]
        # The chart has a bar on each day refunds arrived, and those days span the month.
        bar_days = set(re.findall(r"<title>(\d\d-\d\d) ", wide))
        assert bar_days == {
            f"{d.astimezone(TZ):%m-%d}" for d in refund_days if d.astimezone(TZ).date() >= first
        }
        assert len(bar_days) >= 18, sorted(bar_days)
        assert min(bar_days) <= f"{first + timedelta(days=2):%m-%d}", sorted(bar_days)
        assert max(bar_days) >= f"{last - timedelta(days=2):%m-%d}", sorted(bar_days)


async def test_the_demo_writes_its_month_before_the_loops_start(tmp_path: Path) -> None:
    """The running demo serves its pages at once, writes the month, then starts the live
    loops: a refund sent now gets its card after the month's cards."""
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'live.db'}",
        simulator={"history_days": 2, "history_per_day": 2.0, "seed": 3},
    )
    async with TestClient(TestServer(create_app(settings))) as client:

        async def marker() -> dict[str, Any] | None:
            async with client.app[SERVICES].tx() as tx:
                return await ConnectorStateRepository(tx.session).get(history.MARKER)

        for _ in range(600):
            if (await marker() or {}).get("state") == "done":
                break
            await asyncio.sleep(0.1)
        assert (await marker() or {}).get("state") == "done"
        resp = await client.get("/sandbox/api/groups/aftersales/messages?limit=2000")
        past = await resp.json()
        assert past, "the month's cards are in the group"
        assert (
            min(m["created_at"] for m in past) < (datetime.now(UTC) - timedelta(days=1)).isoformat()
        )

        event = make_refund(data_refund_id="RFLIVE0001")
        body = json.dumps(event, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        headers |= signed_headers(
            settings.ingest.secret.get_secret_value(), int(datetime.now(UTC).timestamp()), body
        )
        assert (await client.post("/api/v1/events", data=body, headers=headers)).status == 202
        for _ in range(100):
            resp = await client.get("/sandbox/api/groups/aftersales/messages?limit=5")
            if any(m["case_id"] == "RFLIVE0001" for m in await resp.json()):
                break
            await asyncio.sleep(0.1)
        live = [m for m in await resp.json() if m["case_id"] == "RFLIVE0001"]
        assert live, "the live loops run once the month is written"
        assert live[0]["id"] > max(m["id"] for m in past)
