"""Flood control: a burst into a limited group folds into batch cards, within the limit, losing nothing."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest

from handlers.clock import FakeClock
from storage.coordination import InProcessCoordination
from tests.support.app import Bot, BotFactory, make_refund, make_settings


async def limited_bot(
    make_bot: BotFactory, sqlite_url: str, clock: FakeClock, **dispatch: int
) -> Bot:
    settings = make_settings(
        sqlite_url,
        dispatch={"backoff_base_s": 1.0, "max_attempts": 4, **dispatch},
        groups=[
            {"id": "aftersales", "channel": "sandbox", "kinds": ["refund"], "max_per_minute": 20},
            {"id": "ops", "channel": "sandbox"},
        ],
    )
    coord = InProcessCoordination(monotonic=lambda: clock.now().timestamp())
    return await make_bot(settings, coord=coord)


@pytest.mark.parametrize("dispatch", [{}, {"fold_at": 3, "fold_max": 7}])
async def test_burst_folds_into_batch_cards_within_the_limit(
    make_bot: BotFactory, sqlite_url: str, clock: FakeClock, dispatch: dict[str, int]
) -> None:
    bot = await limited_bot(make_bot, sqlite_url, clock, **dispatch)
    for i in range(120):
        amount = "30.00" if i % 3 == 0 else "128.00"
        shipping = {"status": "unshipped"} if i % 3 == 0 else {"status": "delivered"}
        await bot.post_event(
            make_refund(data_amount=amount, data_order_amount=amount, data_shipping=shipping)
        )
    sent_at: list[datetime] = []
    seen: dict[int, str] = {}
    for _ in range(40):
        await bot.drain()
        for m in await bot.messages():
            if seen.get(m["id"]) != m["updated_at"]:
                seen[m["id"]] = m["updated_at"]
                sent_at.append(clock.now())
        clock.advance(seconds=3)
    messages = await bot.messages()
    folds = [m for m in messages if m["card"] and m["card"]["title"].startswith("⚡")]
    cards = [m for m in messages if m["card"] and m["case_id"]]
    assert folds, "a burst of 120 into a 20/min group must fold"
    listed = {
        line.split(" ")[0] for f in folds for line in " · ".join(f["card"]["lines"]).split(" · ")
    }
    shown = listed | {c["handle"] for c in cards}
    assert {f"R{i}" for i in range(1, 121)} <= shown
    minute = timedelta(minutes=1)
    assert max(sum(1 for t in sent_at if s <= t < s + minute) for s in sent_at) <= 20
    async with bot.svc.tx() as tx:
        assert await tx.outbox.depth() == {}


async def test_approve_all_eligible_from_the_batch_card(
    make_bot: BotFactory, sqlite_url: str, clock: FakeClock
) -> None:
    bot = await limited_bot(make_bot, sqlite_url, clock)
    for i in range(12):
        amount = "40.00" if i % 2 == 0 else "900.00"
        await bot.post_event(make_refund(data_amount=amount, data_order_amount=amount))
    await bot.drain()
    (fold,) = [m for m in await bot.messages() if m["card"] and m["card"]["title"].startswith("⚡")]
    assert fold["handle"] == "F1"
    assert fold["card"]["status"].startswith("合计 ¥5,640.00 · 待审核")
    assert [b["key"] for b in fold["card"]["buttons"]] == ["approve_all", "list"]
    status, answer = await bot.click("agent1", fold["id"], "approve_all")
    assert status == 200
    approved = answer["reply"]["text"]
    assert approved.startswith("@agent1 @sup1 @sup2 @admin1 ✅ 已通过")
    assert "超出 agent1 的权限，未处理" in approved
    assert approved.endswith("可以批准的是：sup1、sup2、admin1")
    listing = (await bot.say("fin1", "列表 F1"))["reply"]["text"]
    states = Counter(line.split(" ", 2)[2] for line in listing.splitlines()[1:])
    assert states["已通过"] + states["已通过 · 待手动退款"] >= 1
    assert (await bot.say("sup1", "全部通过 F1"))["ok"]
    refused = await bot.say("fin1", "全部通过 F1")
    assert not refused["ok"]
    assert (await bot.say("sup1", "全部通过 F99"))["reply"]["text"] == "找不到合并卡片 F99"
