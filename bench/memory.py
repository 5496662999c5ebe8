"""Memory at many open cases: `python -m bench.memory [--db sqlite|postgres] [--cases 100000]`.

Makes a few real open cases through the product (refund-only awaiting review, a return
waiting for the buyer's tracking number, an escalation, an anomaly-free intercept), then
copies their rows — case, timers, card placement, sandbox card, audit — until `--cases`
cases are open, a sliver of their timers due within the run. Starts `refundops serve` on
that database and reads its resident memory (VmRSS, and the peak VmHWM) when idle, after
`todo all`, after the digest, after the dashboard over 30 days, and after the due
reminders fired; the same on an empty database for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import tomllib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from sqlalchemy import func, insert, select, text, update

from bench.server import BASE_CONFIG, SECRET, memory_mib, refund_requested, serve, signed
from bot.app import create_app
from bot.settings import Settings
from storage import migrate
from storage.base import Base
from storage.db import Database
from storage.enums import TimerState
from storage.models import AuditEntry, CardMessage, Case, Counter, SandboxMessage, Timer

GROUP = "aftersales"
DASHBOARD_TOKEN = "bench-dashboard-token-0123456789"
CONFIG = (
    BASE_CONFIG
    + """
[carrier]
mode = "none"
[bot]
admin_group = "ops"
[[groups]]
id = "aftersales"
channel = "sandbox"
kinds = ["refund", "intercept", "anomaly"]
[[groups]]
id = "ops"
channel = "sandbox"
[[staff]]
id = "agent1"
roles = ["agent"]
refund_limit = "50"
[[staff]]
id = "sup1"
roles = ["supervisor"]
refund_limit = "2000"
[[staff]]
id = "admin1"
roles = ["admin"]
"""
)
CHUNK = 5_000
TABLES: tuple[tuple[type[Base], str], ...] = (
    (Timer, "timers"),
    (SandboxMessage, "sandbox"),
    (CardMessage, "cards"),
    (AuditEntry, "audit"),
)
DUE_SHARE = 0.01  # of the copies' timers, due during the run (reminders fire)


def template_events() -> list[bytes]:
    """Refunds that stay open, one per kind of waiting."""
    in_transit = {"status": "in_transit", "carrier": "ZTO", "tracking_no": "ZT7788990011"}
    return [
        refund_requested(f"RFM{uuid.uuid4().hex[:10].upper()}", **data)
        for data in (
            {},
            {"kind": "return_refund", "amount": "259.00", "order_amount": "259.00"},
            {"amount": "3200.00", "order_amount": "3200.00", "reason": "与商品描述不符"},
            {"amount": "89.00", "order_amount": "89.00", "shipping": in_transit},
        )
    ]


async def make_templates(url: str) -> None:
    """The template cases, made by the product itself (in this process)."""
    db = Database(url)
    await migrate.upgrade(db)  # PostgreSQL is not migrated on start
    await db.dispose()
    settings = Settings(**tomllib.loads(CONFIG.format(port=0, db=url)), ingest={"secret": SECRET})
    server = TestServer(create_app(settings))
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            for body in template_events():
                async with session.post(
                    server.make_url("/api/v1/events"), data=body, headers=signed(body)
                ) as resp:
                    assert resp.status == 202, await resp.text()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                async with session.get(
                    server.make_url(f"/sandbox/api/groups/{GROUP}/messages")
                ) as resp:
                    cards = [m for m in await resp.json() if m["kind"] == "card" and m["case_id"]]
                if len(cards) >= len(template_events()):
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # let the last card updates land
    finally:
        await server.close()


def rows_of(model: Any, rows: Any, *, keep_id: bool = True) -> list[dict[str, Any]]:
    """Rows as column dicts; without `keep_id`, the copies get ids of their own."""
    columns = [c for c in model.__table__.columns if keep_id or c.name != "id"]
    return [{c.name: getattr(r, c.key) for c in columns} for r in rows]


async def copy_templates(db: Database, cases: int) -> float:
    """Copy the template cases' rows until `cases` cases are open; seconds taken."""
    started = time.perf_counter()
    async with db.begin() as s:
        templates = rows_of(Case, (await s.scalars(select(Case).order_by(Case.id))).all())
        pks = [t["id"] for t in templates]
        timers = rows_of(
            Timer,
            (
                await s.scalars(
                    select(Timer).where(Timer.case_pk.in_(pks), Timer.state == "pending")
                )
            ).all(),
        )
        placements = rows_of(
            CardMessage,
            (await s.scalars(select(CardMessage).where(CardMessage.case_pk.in_(pks)))).all(),
            keep_id=False,
        )
        sandbox = rows_of(
            SandboxMessage,
            (
                await s.scalars(
                    select(SandboxMessage).where(
                        SandboxMessage.case_pk.in_(pks), SandboxMessage.card.is_not(None)
                    )
                )
            ).all(),
        )
        audit = rows_of(
            AuditEntry,
            (await s.scalars(select(AuditEntry).where(AuditEntry.case_pk.in_(pks)))).all(),
            keep_id=False,
        )
        next_case = int(await s.scalar(select(func.max(Case.id))) or 0) + 1
        next_message = int(await s.scalar(select(func.max(SandboxMessage.id))) or 0) + 1
        next_handle = {
            k: int(v) for k, v in (await s.execute(select(Counter.name, Counter.value))).all()
        }
    now = datetime.now(UTC)
    made = len(templates)
    while made < cases:
        batch: dict[str, list[dict[str, Any]]] = {
            "cases": [],
            "timers": [],
            "cards": [],
            "sandbox": [],
            "audit": [],
        }
        for _ in range(min(CHUNK, cases - made)):
            template = templates[made % len(templates)]
            pk, old = next_case, template["id"]
            next_case += 1
            prefix = template["handle"].rstrip("0123456789")
            next_handle[prefix] = next_handle.get(prefix, 0) + 1
            batch["cases"].append(
                template
                | {
                    "id": pk,
                    "case_id": f"{template['case_id']}-{pk}",
                    "handle": f"{prefix}{next_handle[prefix]}",
                    "order_id": f"{template['order_id']}-{pk}",
                }
            )
            due_soon = (pk % round(1 / DUE_SHARE)) == 0
            for timer in (t for t in timers if t["case_pk"] == old):
                head, _, rest = timer["id"].partition(":")
                suffix = rest.partition(":")[2]
                due = (
                    now + timedelta(seconds=30) if due_soon else timer["due_at"] + timedelta(days=1)
                )
                batch["timers"].append(
                    timer
                    | {
                        "id": f"{head}:{pk}{':' + suffix if suffix else ''}",
                        "case_pk": pk,
                        "due_at": due,
                    }
                )
            for message in (m for m in sandbox if m["case_pk"] == old):
                ref = next_message
                next_message += 1
                batch["sandbox"].append(message | {"id": ref, "case_pk": pk})
                for placement in (
                    p
                    for p in placements
                    if p["case_pk"] == old and p["group_id"] == message["group_id"]
                ):
                    batch["cards"].append(placement | {"case_pk": pk, "ref": str(ref)})
            batch["audit"] += [a | {"case_pk": pk} for a in audit if a["case_pk"] == old]
            made += 1
        async with db.begin() as s:
            await s.execute(insert(Case), batch["cases"])
            for model, key in TABLES:
                if batch[key]:
                    await s.execute(insert(model), batch[key])
    async with db.begin() as s:
        for name, value in next_handle.items():
            await s.execute(update(Counter).where(Counter.name == name).values(value=value))
        if not db.is_sqlite:  # rows copied with their ids leave the sequences behind
            for table in ("cases", "sandbox_messages"):
                await s.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
        await s.execute(text("ANALYZE"))
    return time.perf_counter() - started


async def readings(url: str, pid: int, due_wait_s: float) -> dict[str, float]:
    """RSS after each step of a working day's heavier reads."""
    seen = {"start": memory_mib(pid)}
    async with aiohttp.ClientSession() as session:
        await asyncio.sleep(5)
        seen["idle 5 s"] = memory_mib(pid)

        async def say(text_: str) -> None:
            async with session.post(
                f"{url}/sandbox/api/groups/{GROUP}/say", json={"user": "sup1", "text": text_}
            ) as resp:
                assert resp.status == 200, await resp.text()

        await say("待办 全部")
        seen["todo all"] = memory_mib(pid)
        await say("日报")
        seen["digest"] = memory_mib(pid)
        today = datetime.now(UTC).date()
        query = f"token={DASHBOARD_TOKEN}&from={today - timedelta(days=30)}&to={today}"
        async with session.get(f"{url}/dashboard?{query}") as resp:
            assert resp.status == 200, await resp.text()
            await resp.read()
        seen["dashboard 30 days"] = memory_mib(pid)
        await asyncio.sleep(due_wait_s)
        seen["reminders fired"] = memory_mib(pid)
    seen["peak"] = memory_mib(pid, "VmHWM")
    return seen


async def measure(
    db_url: str | None, cases: int, workdir: Path
) -> tuple[int, dict[str, float], float, int]:
    """(open cases, readings, seconds to fill, timers fired during the run)."""
    url = db_url or f"sqlite+aiosqlite:///{workdir / 'memory.db'}"
    filled = 0.0
    if cases:
        await make_templates(url)
        db = Database(url)
        filled = await copy_templates(db, cases)
        await db.dispose()
    started = datetime.now(UTC)
    secrets = {"REFUNDOPS_DASHBOARD__TOKEN": DASHBOARD_TOKEN}
    async with serve(CONFIG, db_url=url, secrets=secrets) as served:
        seen = await readings(served.url, served.pid, due_wait_s=45 if cases else 5)
    db = Database(url)
    async with db.begin() as s:
        found = int(
            await s.scalar(select(func.count()).select_from(Case).where(Case.closed_at.is_(None)))
            or 0
        )
        fired = int(
            await s.scalar(
                select(func.count())
                .select_from(Timer)
                .where(Timer.state == TimerState.FIRED.value, Timer.fired_at >= started)
            )
            or 0
        )
    await db.dispose()
    return found, seen, filled, fired


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--cases", type=int, default=100_000)
    args = parser.parse_args()
    results = []
    for cases in (0, args.cases):
        with tempfile.TemporaryDirectory() as tmp:
            db_url = None
            if args.db == "postgres":
                from bench.digest import fresh_database

                db_url = await fresh_database("postgres", Path(tmp))
            results.append(await measure(db_url, cases, Path(tmp)))
    steps = list(results[0][1])
    print(f"refundops serve ({args.db}): resident memory, MiB")
    print("| open cases | " + " | ".join(steps) + " |")
    print("| --- " * (len(steps) + 1) + "|")
    for found, seen, _, _ in results:
        print(f"| {found:,} | " + " | ".join(f"{seen[s]:.0f}" for s in steps) + " |")
    _, _, filled, fired = results[1]
    print(f"copying rows for {args.cases:,} cases took {filled:.0f} s; {fired:,} reminders fired")


if __name__ == "__main__":
    asyncio.run(main())
