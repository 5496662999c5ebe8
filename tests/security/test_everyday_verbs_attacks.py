"""Attacks on the everyday verbs: 转交 by an agent, 查 by a nick or order number reaching
another group's case, several handles smuggling in another group's case, 撤销 of someone
else's decision, 撤销 racing the dispatcher for an effect already claimed or sent, 全部审批
by an agent or beyond the groups of the place it is typed in."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from bot.keys import DISPATCHER
from bot.registry import commands
from commands import ChatInput
from integrations.commerce.fake import FakeCommerce
from storage.models import AuditEntry, Case, OutboxItem
from tests.support.app import Bot, BotFactory, make_event, make_refund, make_settings
from tests.support.fakes import Served
from tests.support.payout import make_payout

ROUTER = commands()
GROUPS: list[dict[str, Any]] = [
    {"id": "aftersales", "name": "售后一组", "channel": "sandbox", "shops": ["flagship"]},
    {"id": "outlet", "name": "奥莱群", "channel": "sandbox", "shops": ["outlet"]},
    {"id": "ops", "name": "管理群", "channel": "sandbox", "shops": ["-"]},
]


async def two_groups(make_bot: BotFactory, url: str, **overrides: Any) -> Bot:
    """R1 of 售后一组 and R2 of 奥莱群, both bought by 小明 (order T1 / T2, parcel SF1 / SF2)."""
    bot = await make_bot(make_settings(url, groups=GROUPS, **overrides))
    for n, shop in ((1, "flagship"), (2, "outlet")):
        event = make_refund(
            data_refund_id=f"RF{n}",
            data_order_id=f"T{n}",
            data_buyer={"nick": "小明"},
            data_shipping={"status": "delivered", "carrier": "SF", "tracking_no": f"SF{n}"},
            shop=shop,
        )
        assert (await bot.post_event(event))[0] == 202
    await bot.drain()
    return bot


async def state(bot: Bot, handle: str) -> Case:
    async with bot.svc.tx() as tx:
        case: Case | None = await tx.cases.by_handle(handle)
        assert case is not None
        return case


async def actions(bot: Bot, action: str) -> list[AuditEntry]:
    async with bot.svc.tx() as tx:
        rows = await tx.session.scalars(select(AuditEntry).where(AuditEntry.action == action))
        return list(rows.all())


async def test_handover_by_an_agent_is_refused(make_bot: BotFactory, sqlite_url: str) -> None:
    bot = await two_groups(make_bot, sqlite_url)
    assert (await bot.say("agent2", "认领 R1"))["ok"]
    answer = await bot.say("agent1", "转交 R1 agent1")
    assert not answer["ok"]
    assert "agent1 没有转交单据的权限（需要管理员/主管）" in answer["reply"]["text"]
    assert (await state(bot, "R1")).assignee == "agent2"
    assert await actions(bot, "handover") == []


async def test_find_by_nick_order_or_tracking_never_shows_another_groups_case(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await two_groups(make_bot, sqlite_url)
    mine = (await bot.say("agent1", "查 小明"))["reply"]["text"]
    assert mine.startswith("【仅退款 R1 · ¥128.00】")
    assert "R2" not in mine
    assert "T2" not in mine
    assert "RF2" not in mine
    theirs = (await bot.say("agent1", "查 小明", group="outlet"))["reply"]["text"]
    assert theirs.startswith("【仅退款 R2 · ¥128.00】")
    assert "R1" not in theirs
    for other in ("T2", "SF2"):
        answer = await bot.say("agent1", f"查 {other}")
        assert not answer["ok"]
        assert answer["reply"]["text"].startswith(f"找不到 {other}："), other
        assert "R2" not in answer["reply"]["text"]
    # A parcel scan naming the other group's order does not open a way to it.
    scan = make_event(
        "shipment.tracking",
        {
            "carrier": "YTO",
            "tracking_no": "YT9",
            "order_id": "T2",
            "status": "in_transit",
            "at": "2026-11-23T09:00:00+08:00",
        },
        shop="outlet",
    )
    assert (await bot.post_event(scan))[0] == 202
    await bot.drain()
    assert (await bot.say("agent1", "查 YT9"))["reply"]["text"].startswith("找不到 YT9：")
    # A DM from someone with no groups reads nothing; an admin's DM reads every group.
    direct = await ROUTER.handle(
        bot.svc,
        ChatInput(
            channel="sandbox", platform="sandbox", user="agent1", text="查 小明", direct=True
        ),
    )
    assert direct.text.startswith("找不到 小明：")
    admin = await ROUTER.handle(
        bot.svc,
        ChatInput(
            channel="sandbox", platform="sandbox", user="admin1", text="查 小明", direct=True
        ),
    )
    assert admin.text.startswith("「小明」找到 2 件：")


async def test_several_handles_cannot_carry_another_groups_case(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await two_groups(make_bot, sqlite_url)
    answer = await bot.say("sup1", "通过 R1 R2")
    assert not answer["ok"]
    lines = answer["reply"]["text"].split("\n")
    assert lines[0].startswith("• ✅ 已通过 R1")
    assert lines[1] == "• ✗ R2 属于「奥莱群」，不能在「售后一组」处理：请到「奥莱群」操作"
    assert (await state(bot, "R2")).state == "awaiting_review"
    undo = await bot.say("sup1", "撤销 R1 R2")
    assert "R2 属于「奥莱群」" in undo["reply"]["text"]


async def test_undo_of_someone_elses_decision_is_refused(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await two_groups(make_bot, sqlite_url)
    assert (await bot.say("sup1", "通过 R1"))["ok"]
    for user in ("sup2", "admin1"):
        answer = await bot.say(user, "撤销 R1")
        assert not answer["ok"], user
        assert "R1 是 sup1 通过的：只能撤销自己的决定" in answer["reply"]["text"]
    # 撤销 without a handle takes back only one's own, and only of this place.
    assert "你没有通过或拒绝过单据" in (await bot.say("sup2", "撤销"))["reply"]["text"]
    elsewhere = await bot.say("sup1", "撤销", group="outlet")
    assert "你没有通过或拒绝过单据" in elsewhere["reply"]["text"]
    assert (await state(bot, "R1")).state == "approved"
    assert await actions(bot, "undo") == []


@pytest.fixture
async def wired(
    make_bot: BotFactory, db_url: str, fake_commerce: Served[FakeCommerce]
) -> tuple[Bot, FakeCommerce]:
    fake, url = fake_commerce
    commerce = {"mode": "webhook", "url": url, "secret": fake.secret}
    return await two_groups(make_bot, db_url, commerce=commerce), fake


async def test_undo_after_the_effect_was_sent_is_refused(wired: tuple[Bot, FakeCommerce]) -> None:
    bot, fake = wired
    assert (await bot.say("sup1", "通过 R1"))["ok"]
    await bot.drain()
    answer = await bot.say("sup1", "撤销 R1")
    assert not answer["ok"]
    assert "R1 现在是「已退款」：通过之后已有进展，不能撤销" in answer["reply"]["text"]
    assert len(fake.performed("approve_refund")) == 1


async def test_undo_of_an_effect_the_dispatcher_holds_is_refused(
    wired: tuple[Bot, FakeCommerce],
) -> None:
    """Claimed, not yet performed (the call is about to leave): the undo must not win."""
    bot, fake = wired
    assert (await bot.say("sup1", "拒绝 R1 不符合"))["ok"]
    async with bot.svc.tx() as tx:
        claimed = await tx.outbox.claim(now=tx.now, limit=50, lease_s=60)
    effect = next(i for i in claimed if i.kind == "commerce.reject_refund")
    answer = await bot.say("sup1", "撤销 R1")
    assert not answer["ok"]
    assert "R1 的拒绝已经发给店铺系统（或正在发送），不能撤销" in answer["reply"]["text"]
    await bot.app[DISPATCHER].perform(effect)
    assert len(fake.performed("reject_refund")) == 1
    assert (await state(bot, "R1")).state == "rejected"


async def test_undo_waits_for_a_claim_in_flight_and_then_sees_it(
    wired: tuple[Bot, FakeCommerce],
) -> None:
    """The claim's transaction is still open when the undo arrives: the undo waits for it
    (PostgreSQL's row lock, SQLite's write lock) and then finds the item leased."""
    bot, fake = wired
    assert (await bot.say("sup1", "通过 R1"))["ok"]
    async with bot.svc.tx() as tx:
        claimed = await tx.outbox.claim(now=tx.now, limit=50, lease_s=60)
        undo = asyncio.create_task(bot.say("sup1", "撤销 R1"))
        await asyncio.sleep(0.3)
        assert not undo.done(), "the undo went past an open claim"
    answer = await undo
    assert not answer["ok"]
    assert "已经发给店铺系统" in answer["reply"]["text"]
    effect = next(i for i in claimed if i.kind == "commerce.approve_refund")
    await bot.app[DISPATCHER].perform(effect)
    assert len(fake.performed("approve_refund")) == 1


async def test_undo_racing_the_dispatcher_gives_exactly_one_outcome(
    wired: tuple[Bot, FakeCommerce],
) -> None:
    """Undo and dispatcher at once, again and again, each given the head start in turn and
    none: either the undo wins and nothing reaches the shop, or the call goes out once and the
    undo is refused."""
    bot, fake = wired
    dispatcher = bot.app[DISPATCHER]
    outcomes = set()

    async def after(delay: float, work: Any) -> Any:
        await asyncio.sleep(delay)
        return await work

    starts = [(0.0, 0.2), (0.2, 0.0), (0.0, 0.0), (0.0, 0.001), (0.001, 0.0)] * 2
    for n, (undo_at, dispatch_at) in enumerate(starts, start=3):
        event = make_refund(data_refund_id=f"RF{n}", data_order_id=f"T{n}")
        assert (await bot.post_event(event))[0] == 202
        await bot.drain()
        assert (await bot.say("sup1", f"通过 R{n}"))["ok"]
        undo, _ = await asyncio.gather(
            after(undo_at, bot.say("sup1", f"撤销 R{n}")),
            after(dispatch_at, dispatcher.run_once()),
        )
        await bot.drain()
        sent = [e for e in fake.performed("approve_refund") if e["data"]["refund_id"] == f"RF{n}"]
        case = await state(bot, f"R{n}")
        if undo["ok"]:
            assert (sent, case.state) == ([], "awaiting_review"), n
        else:
            assert (len(sent), case.state) == (1, "refunded"), (n, undo["reply"]["text"])
        outcomes.add(undo["ok"])
    async with bot.svc.tx() as tx:
        left = (
            await tx.session.scalars(select(OutboxItem).where(OutboxItem.state == "pending"))
        ).all()
    assert left == []
    assert outcomes == {True, False}, "each side won at least once"


async def test_approve_payouts_by_an_agent_or_beyond_the_place_is_refused(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await two_groups(make_bot, sqlite_url)
    for shop in ("flagship", "outlet"):
        assert (await bot.post_event(make_payout(data_amount="20.00", shop=shop)))[0] == 202
    await bot.drain()
    refused = await bot.say("agent1", "全部审批 打款 ≤200")
    assert not refused["ok"]
    assert "agent1 没有批量审批打款的权限（需要管理员/主管）" in refused["reply"]["text"]
    answer = await bot.say("sup1", "全部审批 打款 ≤200")
    assert "✅ 已审批 1 笔" in answer["reply"]["text"]
    assert (await state(bot, "P1")).state == "approved"
    assert (await state(bot, "P2")).state == "requested", "奥莱群's payout is not this group's"
