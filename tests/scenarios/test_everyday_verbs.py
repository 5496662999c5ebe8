"""Everyday verbs: 转交 to someone (told once), approve and reject with a note or for several
cases in one command, 撤销 one's own decision while nothing was sent, and 全部审批 of payouts
under a limit within the supervisor's authority."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.registry import commands
from commands import ChatInput
from integrations.commerce.fake import FakeCommerce
from storage.enums import TimerState
from storage.models import AuditEntry, Case, OutboxItem, Payout, Timer
from tests.support.app import Bot, BotFactory, make_settings
from tests.support.fakes import Served
from tests.support.payout import make_payout

ROUTER = commands()


@pytest.fixture
async def shop(
    make_bot: BotFactory, sqlite_url: str, fake_commerce: Served[FakeCommerce]
) -> tuple[Bot, FakeCommerce]:
    fake, url = fake_commerce
    settings = make_settings(
        sqlite_url, commerce={"mode": "webhook", "url": url, "secret": fake.secret}
    )
    return await make_bot(settings), fake


async def case(bot: Bot, handle: str) -> Case:
    async with bot.svc.tx() as tx:
        found: Case | None = await tx.cases.by_handle(handle)
        assert found is not None
        return found


async def audit(bot: Bot, handle: str) -> list[AuditEntry]:
    pk = (await case(bot, handle)).id
    async with bot.svc.tx() as tx:
        entries: list[AuditEntry] = await tx.audit_log.history(pk)
        return entries


async def card(bot: Bot, handle: str, group: str = "aftersales") -> dict[str, Any]:
    return next(c for c in await bot.cards(group) if c["handle"] == handle)


# -- 转交 -----------------------------------------------------------------------------------


async def test_handover_names_the_new_assignee_and_tells_them_once(bot: Bot) -> None:
    await bot.refund(data_amount="30.00", data_order_amount="30.00")
    assert (await bot.say("agent2", "认领 R1"))["ok"]
    answer = await bot.say("sup1", "转交 R1 agent1")
    assert answer["ok"], answer
    assert answer["reply"]["text"] == "@agent1 📌 R1 由 sup1 转交给 agent1（原处理人 agent2）"
    await bot.drain()
    moved = await card(bot, "R1")
    assert {"label": "处理人", "value": "agent1"} in moved["card"]["fields"]
    assert moved["card"]["footer"].startswith("sup1 转交")
    (entry,) = [e for e in await audit(bot, "R1") if e.action == "handover"]
    assert (entry.actor, entry.detail) == ("sup1", {"to": "agent1", "before": "agent2"})
    again = await bot.say("sup1", "转交 R1 agent1")
    assert again["reply"]["text"] == "R1 已经由 agent1 处理"
    assert [t for t in await bot.texts() if "@agent1" in t] == [answer["reply"]["text"]]


async def test_handover_from_a_direct_message_tells_the_group(bot: Bot) -> None:
    await bot.refund()
    reply = await ROUTER.handle(
        bot.svc,
        ChatInput(
            channel="sandbox", platform="sandbox", user="admin1", text="转交 R1 sup2", direct=True
        ),
    )
    assert reply.ok
    assert reply.mentions == ()
    await bot.drain()
    told = [t for t in await bot.texts() if "转交" in t]
    assert told == ["@sup2 📌 R1 由 admin1 转交给 sup2"]


async def test_handover_says_when_the_amount_is_beyond_the_new_assignee(bot: Bot) -> None:
    await bot.refund(data_amount="500.00", data_order_amount="500.00")
    answer = await bot.say("sup1", "转交 R1 agent1")
    assert "；¥500.00 超出 agent1 的权限（¥50.00），通过时会升级给主管" in answer["reply"]["text"]


async def test_handover_refusals(bot: Bot) -> None:
    await bot.refund()
    finance = await bot.say("sup1", "转交 R1 fin1")
    assert not finance["ok"]
    assert "fin1 不能处理单据（需要客服/主管/管理员），不能转交给 TA" in finance["reply"]["text"]
    nobody = await bot.say("sup1", "转交 R1 agent9")
    assert not nobody["ok"]
    assert (
        "没有「agent9」这个人：可以转交给 agent1、agent2、sup1、sup2、admin1"
        in (nobody["reply"]["text"])
    )
    usage = await bot.say("sup1", "转交 R1")
    assert usage["reply"]["text"] == "用法：转交 <单号> <接手的人>"
    assert (await bot.say("sup1", "拒绝 R1 不符合"))["ok"]
    closed = await bot.say("sup1", "转交 R1 agent1")
    assert "R1 已经办结，无需转交" in closed["reply"]["text"]


# -- a note, several cases -------------------------------------------------------------------


async def test_approve_with_a_note_puts_it_on_the_card_and_in_the_audit(bot: Bot) -> None:
    await bot.refund()
    answer = await bot.say("sup1", "通过 R1 已核实照片")
    assert answer["ok"]
    assert answer["reply"]["text"] == "✅ 已通过 R1（¥128.00），正在提交退款；备注：已核实照片"
    async with bot.svc.tx() as tx:
        found = await tx.cases.by_handle("R1")
        assert found is not None
        await tx.sync_card(found, refresh="test")
    await bot.drain()
    shown = await card(bot, "R1")
    assert "📝 sup1：（通过）已核实照片" in shown["card"]["lines"]
    entries = [(e.actor, e.action, e.detail) for e in await audit(bot, "R1")]
    assert ("sup1", "approve", {}) in entries
    assert ("sup1", "note", {"text": "已核实照片", "on": "approve"}) in entries
    assert "（通过）已核实照片" in (await bot.say("agent1", "查 R1"))["reply"]["text"]


async def test_several_cases_in_one_command_each_answered_in_one_reply(bot: Bot) -> None:
    await bot.refund(data_amount="30.00", data_order_amount="30.00")
    await bot.refund(data_amount="500.00", data_order_amount="500.00")
    await bot.refund(data_amount="20.00", data_order_amount="20.00")
    answer = await bot.say("agent1", "通过 R1 R2 R9 r3 已电话核实")
    lines = answer["reply"]["text"].split("\n")
    assert not answer["ok"], "R9 does not exist"
    assert lines[0].startswith("@sup1 @sup2 @admin1 • ✅ 已通过 R1（¥30.00）")
    assert lines[0].endswith("；备注：已电话核实")
    assert lines[1].startswith("• R2 ¥500.00 超出你的权限（¥50.00），已升级给主管")
    assert lines[2].startswith("• ✗ 找不到 R9")
    assert lines[3].startswith("• ✅ 已通过 R3（¥20.00）")
    assert len(lines) == 4
    states = [(await case(bot, h)).state for h in ("R1", "R2", "R3")]
    assert states == ["approved", "escalated", "approved"]
    rejected = await bot.say("sup1", "拒绝 R2 #R1 重复申请")
    assert rejected["reply"]["text"].split("\n") == [
        "• 已拒绝 R2：重复申请",
        "• ✗ R1 现在是「已通过 · 退款提交中」（agent1 通过 · 11-23 10:00），不能再拒绝",
    ]
    assert (await case(bot, "R2")).state == "rejected"
    no_reason = await bot.say("sup1", "拒绝 R2 R3")
    assert no_reason["reply"]["text"] == "请写明拒绝原因：拒绝 R2 R3 <原因>"


# -- 撤销 -------------------------------------------------------------------------------------


async def test_undo_an_approval_before_the_shop_was_called(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = shop
    await bot.refund(data_refund_id="RF1")
    assert (await bot.say("sup1", "通过 R1"))["ok"]
    bot.clock.advance(minutes=4)
    answer = await bot.say("sup1", "撤销 R1")
    assert answer["ok"], answer
    assert answer["reply"]["text"] == "↩ 已撤销 R1 的通过，回到「待审核」"
    await bot.drain()
    assert fake.performed("approve_refund") == []
    undone = await case(bot, "R1")
    assert undone.state == "awaiting_review"
    assert (undone.decided_at, undone.decided_by, undone.assignee) == (None, "", "")
    assert "approved" not in undone.data
    assert "decision" not in undone.data
    shown = await card(bot, "R1")
    assert shown["card"]["footer"].startswith("sup1 撤销决定")
    assert [b["key"] for b in shown["card"]["buttons"]][:2] == ["approve", "reject"]
    # Decided again, it goes out once.
    assert (await bot.say("sup2", "通过 R1"))["ok"]
    await bot.drain()
    assert len(fake.performed("approve_refund")) == 1
    assert (await case(bot, "R1")).state == "refunded"


async def test_undo_a_rejection_brings_back_its_reminders(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = shop
    await bot.refund(data_refund_id="RF1")
    assert (await bot.say("agent1", "拒绝 R1 买家已确认收货"))["ok"]
    async with bot.svc.tx() as tx:
        r1 = await tx.cases.by_handle("R1")
        assert r1 is not None
        assert r1.closed_at is not None
    answer = await bot.say("agent1", "撤销")
    assert answer["reply"]["text"] == "↩ 已撤销 R1 的拒绝，回到「待审核」"
    undone = await case(bot, "R1")
    assert (undone.state, undone.closed_at) == ("awaiting_review", None)
    assert "reject_reason" not in undone.data
    async with bot.svc.tx() as tx:
        timers = await tx.session.scalars(
            select(Timer).where(Timer.case_pk == undone.id, Timer.kind == "deadline_warn")
        )
        assert {t.state for t in timers} == {TimerState.PENDING.value}
    await bot.drain()
    assert fake.performed("reject_refund") == []
    # The deadline warnings fire again as if nothing happened.
    assert undone.deadline_at is not None
    bot.clock.set(undone.deadline_at - timedelta(hours=6))
    await bot.drain()
    assert any("距平台自动同意还剩" in t for t in await bot.texts())


async def test_undo_a_payout_approval_before_finance_paid(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await make_bot(make_settings(sqlite_url))
    assert (await bot.post_event(make_payout(data_amount="20.00")))[0] == 202
    await bot.drain()
    assert (await bot.say("sup1", "通过 P1 已核对订单", group="ops"))["ok"]
    answer = await bot.say("sup1", "撤销 P1", group="ops")
    assert answer["reply"]["text"] == "↩ 已撤销 P1 的通过，回到「待审批」"
    p1 = await case(bot, "P1")
    assert p1.state == "requested"
    assert "approval" not in p1.data
    async with bot.svc.tx() as tx:
        row = await tx.session.get(Payout, p1.id)
        assert row is not None
        assert (row.approved_by, row.approved_at) == ("", None)
    refused = await bot.say("fin1", "打款确认 P1 REF1", group="ops")
    assert "P1 还没有审批" in refused["reply"]["text"]


async def test_undo_is_refused_after_the_window(bot: Bot) -> None:
    await bot.refund()
    assert (await bot.say("sup1", "通过 R1"))["ok"]
    bot.clock.advance(minutes=5, seconds=1)
    answer = await bot.say("sup1", "撤销 R1")
    assert not answer["ok"]
    assert "R1 的通过已超过 5 分钟" in answer["reply"]["text"]
    assert "最近 5 分钟里你没有通过或拒绝过单据" in (await bot.say("sup1", "撤销"))["reply"]["text"]
    assert (await case(bot, "R1")).state == "approved"


async def test_undo_window_is_a_setting(make_bot: BotFactory, sqlite_url: str) -> None:
    bot = await make_bot(make_settings(sqlite_url, commands={"undo_window_min": 30}))
    await bot.refund()
    assert (await bot.say("sup1", "通过 R1"))["ok"]
    bot.clock.advance(minutes=20)
    assert (await bot.say("sup1", "撤销 R1"))["ok"]


async def test_undo_twice_is_refused(bot: Bot) -> None:
    await bot.refund()
    assert (await bot.say("sup1", "通过 R1"))["ok"]
    assert (await bot.say("sup1", "撤销 R1"))["ok"]
    again = await bot.say("sup1", "撤销 R1")
    assert again["reply"]["text"] == "R1 没有可以撤销的通过或拒绝"


# -- 全部审批 ----------------------------------------------------------------------------------


async def test_approve_payouts_under_a_limit_within_authority(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await make_bot(make_settings(sqlite_url))
    for amount, by in (("20.00", "agent1"), ("150.00", "sup1"), ("300.00", "agent2")):
        event = make_payout(data_amount=amount, data_requested_by=by)
        assert (await bot.post_event(event))[0] == 202
    assert (await bot.post_event(make_payout(data_amount="2500.00")))[0] == 202
    await bot.drain()
    answer = await bot.say("sup1", "全部审批 打款 ≤200", group="ops")
    text = answer["reply"]["text"]
    assert answer["ok"]
    assert "✅ 已审批 1 笔 ≤¥200.00 的打款，合计 ¥20.00：P1 ¥20.00" in text
    assert "跳过 1 笔：P2 ¥150.00（sup1 是 P2 的申请人，按双人复核不能自己审批）" in text
    assert "@fin1" in text, "finance is told to pay"
    assert [(await case(bot, h)).state for h in ("P1", "P2", "P3", "P4")] == [
        "approved",
        "requested",
        "requested",
        "requested",
    ]
    wide = await bot.say("sup1", "approve-payouts <=3000", group="ops")
    assert "✅ 已审批 1 笔 ≤¥3,000.00 的打款，合计 ¥300.00：P3 ¥300.00" in wide["reply"]["text"]
    assert "P4 ¥2,500.00（¥2,500.00 超出 sup1 的审批权限（¥2,000.00））" in wide["reply"]["text"]
    assert "@admin1" in wide["reply"]["text"]
    strict = await bot.say("sup2", "全部审批 打款 <150", group="ops")
    assert strict["reply"]["text"] == "没有 <¥150.00 的待审批打款"
    assert (await bot.say("sup2", "全部审批 打款 ≤150", group="ops"))["ok"]
    assert (await case(bot, "P2")).state == "approved"


async def test_approve_payouts_needs_a_limit(bot: Bot) -> None:
    assert (await bot.say("sup1", "全部审批", group="ops"))["reply"]["text"] == (
        "用法：全部审批 <打款 ≤金额>"
    )
    for typed in ("全部审批 打款", "全部审批 打款 ≤abc", "全部审批 打款 ≤0", "全部审批 ≥200"):
        answer = await bot.say("sup1", typed, group="ops")
        assert not answer["ok"], typed
        assert "请写明金额上限：全部审批 打款 ≤200" in answer["reply"]["text"], typed


async def test_outbox_holds_no_withdrawn_decision(bot: Bot) -> None:
    """What an undo takes back is gone from the outbox, not parked in it."""
    await bot.refund()
    assert (await bot.say("sup1", "拒绝 R1 不符合"))["ok"]
    assert (await bot.say("sup1", "撤销 R1"))["ok"]
    async with bot.svc.tx() as tx:
        kinds = (await tx.session.scalars(select(OutboxItem.kind))).all()
    assert "commerce.reject_refund" not in kinds
