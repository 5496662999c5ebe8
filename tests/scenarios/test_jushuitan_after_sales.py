"""`[warehouse] pull_after_sales = true`: 聚水潭's after-sale list, pulled by one instance at a
time from a durable cursor, becomes cards once each — across restarts, catch-ups after
downtime, and failures that wait and tell the admins once."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.backoffice import CURSOR, AfterSalePuller, after_sale_puller
from bot.keys import HTTP
from handlers.clock import FakeClock
from integrations.jushuitan.client import REFUNDS, parse_beijing
from integrations.jushuitan.fake import FakeJushuitan
from storage.models import Case, Event
from storage.repositories.connector_state import ConnectorStateRepository
from tests.support.app import Bot, BotFactory, make_refund, make_settings
from tests.support.fakes import serve
from tests.support.jushuitan import APP_KEY, APP_SECRET

JST_SHOP = 10001


@dataclass
class Erp:
    bot: Bot
    fake: FakeJushuitan
    clock: FakeClock

    def puller(self) -> AfterSalePuller:
        """What one instance runs (a new one: as after a restart, or on another instance)."""
        made = after_sale_puller(self.bot.svc, self.bot.app[HTTP])
        assert made is not None
        return made

    async def count(self, model: Any, *where: Any) -> int:
        async with self.bot.svc.tx() as tx:
            return int(
                await tx.session.scalar(select(func.count()).select_from(model).where(*where))
            )

    async def cursor(self) -> dict[str, Any]:
        async with self.bot.svc.tx() as tx:
            state = await ConnectorStateRepository(tx.session).get(CURSOR)
        assert state is not None
        saved: dict[str, Any] = json.loads(state["cursor"])
        return saved

    def after_sale(self, n: int, **values: Any) -> str:
        refund_id = f"KS{n:04d}"
        values.setdefault("modified", self.clock.now() - timedelta(minutes=1))
        self.fake.add_order(f"SO-{n}")
        self.fake.add_refund(outer_as_id=refund_id, so_id=f"SO-{n}", refund="36.00", **values)
        return refund_id

    def windows(self) -> list[tuple[datetime, datetime, int]]:
        return [
            (
                parse_beijing(c["modified_begin"]),
                parse_beijing(c["modified_end"]),
                int(c["page_index"]),
            )
            for c in self.fake.calls(REFUNDS)
        ]


@pytest.fixture
async def erp(make_bot: BotFactory, sqlite_url: str, clock: FakeClock) -> AsyncIterator[Erp]:
    # A merchant's own app that has never been used: the first pull obtains its tokens.
    fake = FakeJushuitan(
        app_key=APP_KEY, app_secret=APP_SECRET, now=clock.now, access_token="", refresh_token=""
    )
    async with serve(fake.app()) as base:
        settings = make_settings(
            sqlite_url,
            warehouse={
                "connector": "jushuitan",
                "api_base": base,
                "app_key": APP_KEY,
                "app_secret": SecretStr(APP_SECRET),
                "pull_after_sales": True,
                "pull_interval_s": 60,
                "shops": {str(JST_SHOP): "ks-shop"},
                "batch_window_s": 0,
                "timeout_s": 0.5,
            },
        )
        yield Erp(await make_bot(settings), fake, clock)


async def test_after_sales_in_the_erp_become_cards_once_and_a_restart_goes_on(
    erp: Erp,
) -> None:
    first = [erp.after_sale(n) for n in range(3)]
    erp.fake.add_refund(outer_as_id="EX1", so_id="SO-X", type="换货")
    assert await erp.puller().run_once() == 3
    await erp.bot.drain()
    assert erp.fake.grants == ["getInitToken"]
    cards = {c["case_id"]: c for c in await erp.bot.cards()}
    assert set(cards) == set(first)
    assert await erp.count(Case, Case.shop == "ks-shop") == 3
    # Unshipped: the rules' 截单 went to the same ERP, on the same tokens.
    assert len(erp.fake.question_log) == 3

    # A restart: once the dead process's lease has run out, a new puller on the same
    # database reads on from the stored cursor.
    saved = await erp.cursor()
    erp.clock.advance(timedelta(minutes=4))
    calls = len(erp.fake.calls(REFUNDS))
    again = erp.puller()
    assert await again.run_once() == 0
    begin, _, page = erp.windows()[calls]
    assert (begin, page) == (datetime.fromisoformat(saved["begin"]), saved["page"])
    events = await erp.count(Event)

    later = erp.after_sale(9, modified=erp.clock.now())
    erp.clock.advance(timedelta(minutes=1))
    assert await again.run_once() == 1
    await erp.bot.drain()
    assert await erp.count(Event) == events + 1
    assert await erp.count(Case, Case.case_id == later) == 1
    assert await erp.count(Case) == 4
    assert erp.fake.grants == ["getInitToken"]


async def test_two_instances_pull_once_and_the_other_takes_over_when_it_stops(
    erp: Erp,
) -> None:
    erp.after_sale(1)
    a, b = erp.puller(), erp.puller()
    stored = await asyncio.gather(a.run_once(), b.run_once())
    assert sorted(stored) == [0, 1]
    assert len(erp.fake.calls(REFUNDS)) == 1
    holder, other = (a, b) if stored[0] else (b, a)
    erp.clock.advance(timedelta(seconds=61))
    await asyncio.gather(holder.run_once(), other.run_once())
    assert len(erp.fake.calls(REFUNDS)) == 2
    # The holder stops (killed): after its lease runs out the other pulls.
    erp.clock.advance(timedelta(seconds=121))
    erp.after_sale(2, modified=erp.clock.now())
    erp.clock.advance(timedelta(seconds=60))
    assert await other.run_once() == 1
    assert len(erp.fake.calls(REFUNDS)) == 3
    await erp.bot.drain()
    assert await erp.count(Case) == 2


async def test_a_catch_up_after_downtime_walks_windows_of_at_most_seven_days(
    erp: Erp,
) -> None:
    puller = erp.puller()
    await puller.run_once()
    started = erp.clock.now()
    erp.clock.advance(timedelta(days=3, hours=5))
    made = [erp.after_sale(n, modified=started + timedelta(hours=7 * n + 1)) for n in range(1, 11)]
    assert await puller.run_once() == 10
    windows = erp.windows()[1:]
    assert len(windows) >= 4
    assert all(timedelta(0) <= end - begin <= timedelta(days=7) for begin, end, _ in windows)
    for (_, end, _), (begin, _, _) in itertools.pairwise(windows):
        assert begin <= end  # no gap between one window and the next
    assert windows[-1][1] == erp.clock.now()
    await erp.bot.drain()
    assert await erp.count(Case, Case.case_id.in_(made)) == 10


async def test_an_erp_the_app_cannot_reach_waits_and_tells_the_admins_once(erp: Erp) -> None:
    erp.fake.self_built = False  # a 服务商 app: no silent token
    erp.after_sale(1)
    puller = erp.puller()
    await puller.run_once()
    await erp.bot.drain()
    [told] = [t for t in await erp.bot.texts("ops") if "授权已失效" in t]
    assert "聚水潭" in told
    assert "--auth-url" in told
    erp.clock.advance(timedelta(minutes=1))
    await puller.run_once()
    assert puller.due is not None
    assert puller.due > erp.clock.now()
    erp.clock.advance(timedelta(minutes=10))
    await puller.run_once()
    await erp.bot.drain()
    assert len([t for t in await erp.bot.texts("ops") if "授权已失效" in t]) == 1
    assert await erp.count(Case) == 0

    # The merchant approves the app; the pull goes on, nothing lost.
    await puller.source.client.connect(erp.fake.authorize())
    erp.clock.advance(timedelta(minutes=10))
    assert await puller.run_once() == 1


async def test_a_refusing_or_failing_erp_is_told_once_and_retried(erp: Erp) -> None:
    erp.after_sale(1)
    puller = erp.puller()
    erp.fake.no_permission.add(REFUNDS)
    await puller.run_once()
    await erp.bot.drain()
    [told] = [t for t in await erp.bot.texts("ops") if "拉取被拒绝" in t]
    assert "API权限" in told
    erp.fake.no_permission.clear()
    erp.clock.advance(timedelta(minutes=11))
    assert await puller.run_once() == 1

    erp.clock.advance(timedelta(days=1))
    erp.after_sale(2, modified=erp.clock.now())
    erp.fake.fail_next(30, "5xx", path=REFUNDS)
    for _ in range(12):
        erp.clock.advance(timedelta(seconds=61))
        await puller.run_once()
    await erp.bot.drain()
    failing = [t for t in await erp.bot.texts("ops") if "连续" in t]
    assert len(failing) == 1
    erp.fake.failures.clear()
    erp.clock.advance(timedelta(seconds=61))
    assert await puller.run_once() == 1


async def test_an_after_sale_the_shop_also_sent_is_one_case(erp: Erp) -> None:
    refund_id = erp.after_sale(1)
    event = make_refund(shop="ks-shop", platform="kuaishou", data_refund_id=refund_id)
    assert (await erp.bot.post_event(event))[0] == 202
    await erp.bot.drain()
    await erp.puller().run_once()
    await erp.bot.drain()
    assert await erp.count(Case, Case.case_id == refund_id) == 1
    assert len([c for c in await erp.bot.cards() if c["case_id"] == refund_id]) == 1
