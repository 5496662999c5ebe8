"""Payouts end to end: event or chat command → card → approval by someone else → finance
confirms (not the approver) → paid once, buyer told once; rejections, Alipay, batches."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bot.registry import commands
from bot.settings import Settings
from commands import ChatInput
from integrations.commerce.fake import FakeCommerce
from integrations.payout.fake import FakeAlipay
from integrations.payout.models import QUERY, TRANSFER
from storage.models import AuditEntry, Case, OutboxItem, Payout
from tests.support.app import Bot, BotFactory, make_settings
from tests.support.fakes import Served
from tests.support.payout import GROUPS, alipay_settings, make_payout

ROUTER = commands()

ACCOUNT = "13800138000"


def settings(db_url: str, **overrides: Any) -> Settings:
    return make_settings(db_url, groups=GROUPS, **overrides)


@pytest.fixture
async def pbot(make_bot: BotFactory, sqlite_url: str) -> Bot:
    return await make_bot(settings(sqlite_url))


async def post(bot: Bot, **overrides: Any) -> dict[str, Any]:
    """Post a payout request, drain, and return its card message."""
    event = make_payout(**overrides)
    status, _ = await bot.post_event(event)
    assert status == 202
    await bot.drain()
    return await card_of(bot, event["data"]["payout_id"])


async def card_of(bot: Bot, case_id: str, group: str = "finance") -> dict[str, Any]:
    return next(c for c in await bot.cards(group) if c["case_id"] == case_id)


def field(card: dict[str, Any], label: str) -> str:
    return str(next(f["value"] for f in card["card"]["fields"] if f["label"] == label))


def keys(card: dict[str, Any]) -> list[str]:
    return [b["key"] for b in card["card"]["buttons"]]


async def say(bot: Bot, user: str, text: str) -> dict[str, Any]:
    answer = await bot.say(user, text, group="finance")
    return {"ok": answer["ok"], "text": answer["reply"]["text"]}


async def click(bot: Bot, user: str, card: dict[str, Any], key: str) -> dict[str, Any]:
    status, answer = await bot.click(user, card["id"], key, group="finance")
    assert status == 200, answer
    return {"ok": answer["ok"], "text": answer["reply"]["text"]}


async def rows(bot: Bot, model: Any, *where: Any) -> list[Any]:
    async with bot.svc.tx() as tx:
        return list((await tx.session.scalars(select(model).where(*where))).all())


async def test_event_to_paid_under_the_two_person_rule(
    make_bot: BotFactory, sqlite_url: str, fake_commerce: Served[FakeCommerce]
) -> None:
    commerce, url = fake_commerce
    bot = await make_bot(
        settings(sqlite_url, commerce={"mode": "webhook", "url": url, "secret": commerce.secret})
    )
    card = await post(bot, data_payout_id="PO20261123001")
    assert (card["handle"], card["state"]) == ("P1", "requested")
    assert card["card"]["title"] == "活动返现 P1 · ¥128.00"
    assert card["card"]["status"] == "待审批"
    assert field(card, "收款") == "王** · 138****8000"
    assert field(card, "申请") == "agent1 · 11-23 10:00"
    assert card["card"]["mentions"] == ["sup1", "sup2", "admin1"]
    assert keys(card) == ["approve", "reject"]
    assert await bot.cards("aftersales") == []

    refused = await click(bot, "agent1", card, "approve")
    assert not refused["ok"]
    assert "agent1 是 P1 的申请人，按双人复核不能自己审批" in refused["text"]
    assert "可以审批的是：sup1（¥2,000.00）、sup2（¥2,000.00）、admin1（不限）" in refused["text"]
    assert refused["text"].startswith("@agent1 ")
    assert "@sup1" not in refused["text"]
    over = await say(bot, "agent2", "通过 P1")
    assert "¥128.00 超出 agent2 的审批权限（¥50.00）" in over["text"]

    bot.clock.advance(minutes=5)
    approved = await click(bot, "sup1", card, "approve")
    assert approved["ok"], approved
    assert "请财务打款：fin1、admin1" in approved["text"]
    await bot.drain()
    card = await card_of(bot, "PO20261123001")
    assert card["state"] == "approved"
    assert field(card, "审批") == "sup1 · 11-23 10:05"
    assert keys(card) == ["paid", "reject"]
    assert card["card"]["mentions"] == ["fin1", "admin1"]

    not_finance = await say(bot, "sup1", "打款确认 P1 2026112322001")
    assert "sup1 没有确认打款的权限" in not_finance["text"]
    assert "可以确认打款的是：fin1、admin1" in not_finance["text"]
    asked = await click(bot, "fin1", card, "paid")
    assert not asked["ok"]
    assert "请输入打款流水号：打款确认 P1 <流水号>" in asked["text"]

    paid = await say(bot, "fin1", "打款确认 P1 2026112322001")
    assert paid["ok"], paid
    assert paid["text"] == "💰 P1 已登记打款 ¥128.00（流水号 2026112322001）"
    await bot.drain()
    card = await card_of(bot, "PO20261123001")
    assert (card["state"], card["card"]["status"]) == ("paid", "已打款")
    assert field(card, "流水号") == "2026112322001"
    assert "已通知买家" in card["card"]["lines"]
    assert keys(card) == []
    (notified,) = commerce.performed("notify_payout")
    assert notified["idempotency_key"] == "commerce.notify_payout:payout:PO20261123001:1"
    assert notified["data"] == {
        "payout_id": "PO20261123001",
        "order_id": "T88001",
        "shop": "flagship",
        "platform": "taobao",
        "kind": "cashback",
        "amount": "128.00",
        "payee": "138****8000",
        "reference": "2026112322001",
    }

    again = await say(bot, "fin1", "打款确认 P1 2026112322001")
    assert "P1 现在是「已打款」（fin1 打款确认 · 11-23 10:05），不能再确认打款" in again["text"]
    await bot.drain()
    assert len(commerce.requests) == 1
    status, api = await bot.get_case("P1")
    assert status == 200
    assert [(h["actor"], h["action"], h["to_state"]) for h in api["history"]] == [
        ("agent1", "created", "requested"),
        ("sup1", "approve", "approved"),
        ("fin1", "paid", "paid"),
    ]
    assert ACCOUNT not in json.dumps(api)
    (row,) = await rows(bot, Payout)
    assert (row.payee_account, row.approved_by, row.paid_by) == (ACCOUNT, "sup1", "fin1")
    assert (row.reference, row.provider, row.provider_status) == (
        "2026112322001",
        "manual",
        "MANUAL",
    )


async def test_a_buyer_notice_the_shop_refuses_is_shown_not_retried(
    make_bot: BotFactory, sqlite_url: str, fake_commerce: Served[FakeCommerce]
) -> None:
    commerce, url = fake_commerce
    commerce.refuse["notify_payout"] = "买家账号已注销"
    bot = await make_bot(
        settings(sqlite_url, commerce={"mode": "webhook", "url": url, "secret": commerce.secret})
    )
    await post(bot)
    assert (await say(bot, "sup1", "通过 P1"))["ok"]
    assert (await say(bot, "fin1", "打款确认 P1 REF1"))["ok"]
    await bot.drain()
    (card,) = await bot.cards("finance")
    assert card["state"] == "paid"
    assert "⚠ 未能通知买家：买家账号已注销" in card["card"]["lines"]
    assert len(commerce.requests) == 1
    (notice,) = await bot.texts("ops")
    assert "P1 的打款通知买家失败（不会再试）：买家账号已注销" in notice


async def test_the_approver_cannot_confirm_even_as_admin(pbot: Bot) -> None:
    card = await post(pbot)
    assert (await click(pbot, "admin1", card, "approve"))["ok"]
    await pbot.drain()
    refused = await say(pbot, "admin1", "打款确认 P1 REF1")
    assert not refused["ok"]
    assert "admin1 审批了 P1，按双人复核不能再确认打款。可以确认的是：fin1" in refused["text"]
    assert refused["text"].startswith("@admin1 ")
    assert "@fin1" not in refused["text"]
    assert (await say(pbot, "fin1", "paid p1 REF1"))["ok"]


async def test_two_person_rule_can_be_turned_off(make_bot: BotFactory, sqlite_url: str) -> None:
    bot = await make_bot(settings(sqlite_url, payout={"two_person_rule": False}))
    await post(bot, data_requested_by="admin1")
    assert (await say(bot, "admin1", "通过 P1"))["ok"]
    assert (await say(bot, "admin1", "打款确认 P1 REF9"))["ok"]
    await bot.drain()
    (card,) = await bot.cards("finance")
    assert card["state"] == "paid"


async def test_reject_at_either_step_with_a_reason(pbot: Bot) -> None:
    first = await post(pbot)
    asked = await click(pbot, "sup1", first, "reject")
    assert "拒绝 P1 <原因>" in asked["text"]
    assert (await say(pbot, "sup1", "拒绝 P1 订单已退款，不再返现"))["ok"]
    second = await post(pbot)
    assert (await say(pbot, "sup1", "通过 P2"))["ok"]
    assert (await say(pbot, "fin1", "拒绝 P2 收款账号与买家不符"))["ok"]
    third = await post(pbot)
    outsider = await say(pbot, "agent2", "拒绝 P3 不想给")
    assert "agent2 不能拒绝 P3（¥128.00）。可以拒绝的是：sup1、sup2、admin1" in outsider["text"]
    assert (await say(pbot, "agent1", "拒绝 P3 买家说不用了"))["ok"]
    await pbot.drain()
    done = {c["handle"]: c for c in await pbot.cards("finance")}
    assert {h: c["state"] for h, c in done.items()} == {
        "P1": "rejected",
        "P2": "rejected",
        "P3": "rejected",
    }
    assert "拒绝原因：收款账号与买家不符（fin1）" in done["P2"]["card"]["lines"]
    assert all(keys(c) == [] for c in done.values())
    late = await say(pbot, "fin1", "打款确认 P2 REF")
    assert "P2 现在是「已拒绝」" in late["text"]
    assert [first["id"], second["id"], third["id"]] == [c["id"] for c in done.values()]
    rows_ = await rows(pbot, Payout)
    assert [r.rejected_by for r in rows_] == ["sup1", "fin1", "agent1"]
    refund = await pbot.refund()
    assert refund["handle"] == "R1"
    refused = await pbot.say("fin1", "拒绝 R1 不退")
    assert "fin1 没有拒绝退款的权限" in refused["reply"]["text"]


async def test_cash_for_a_good_review_is_refused(pbot: Bot) -> None:
    answer = await pbot.say("agent1", "打款 好评返现 T88001 5 13800138000 王小明 五星好评")
    assert not answer["ok"]
    assert "违反平台规则" in answer["reply"]["text"]
    await pbot.drain()
    assert await pbot.cards("finance") == []


async def test_agents_ask_for_payouts_in_chat(pbot: Bot) -> None:
    answer = await pbot.say("agent1", "打款 返现 T88001 5 13800138000 王小明 活动返现")
    assert answer["ok"], answer
    text = answer["reply"]["text"]
    assert "已提交打款申请 P1：活动返现 ¥5.00 → 王** 138****8000，卡片在「财务群」" in text
    assert "等待审批：agent2、sup1、sup2、admin1" in text
    assert ACCOUNT not in text
    await pbot.drain()
    (card,) = await pbot.cards("finance")
    assert card["card"]["title"] == "活动返现 P1 · ¥5.00"
    assert field(card, "申请").startswith("agent1")
    english = await pbot.say(
        "agent2", "payout price_diff - ¥12.5 zhang.san@example.com 张三 双十一价保"
    )
    assert english["ok"], english
    await pbot.drain()
    second = next(c for c in await pbot.cards("finance") if c["handle"] == "P2")
    assert (field(second, "订单"), field(second, "收款")) == ("—", "张* · zha****@example.com")
    assert second["card"]["title"] == "补差价 P2 · ¥12.50"

    bad_kind = await pbot.say("agent1", "打款 红包 T1 5 13800138000 王小明 节日")
    assert "类型「红包」不认识" in bad_kind["reply"]["text"]
    bad_amount = await pbot.say("agent1", "打款 补偿 T1 五块 13800138000 王小明 延迟发货")
    assert "金额「五块」不对" in bad_amount["reply"]["text"]
    short = await pbot.say("agent1", "打款 补偿 T1")
    assert short["reply"]["text"] == (
        "用法：打款 <类型:活动返现|补差价|补偿> <订单号(无则写-)> <金额> <收款账号> <收款人> <原因>"
    )
    finance = await pbot.say("fin1", "打款 返现 T1 5 13800138000 王小明 返现")
    assert "fin1 没有申请打款的权限" in finance["reply"]["text"]

    chat = ChatInput(
        channel="wecom_aibot",
        platform="sandbox",
        user="agent1",
        text="打款 补偿 T9 8 13900139000 李四 延迟发货",
        group_id="finance",
        input_id="wecom-msg-42",
    )
    first, again = await ROUTER.handle(pbot.svc, chat), await ROUTER.handle(pbot.svc, chat)
    assert first.ok
    assert again.ok
    assert "已经提交过打款申请 P3" in again.text
    assert len(await rows(pbot, Payout)) == 3


async def test_concurrent_confirmations_pay_once(make_bot: BotFactory, db_url: str) -> None:
    bot = await make_bot(settings(db_url))
    await post(bot)
    assert (await say(bot, "sup1", "通过 P1"))["ok"]
    users = ["fin1", "admin1"] * 10
    answers = await asyncio.gather(
        *(say(bot, u, f"打款确认 P1 REF{i}") for i, u in enumerate(users))
    )
    winners = [a for a in answers if a["ok"]]
    assert len(winners) == 1, [a["text"] for a in answers]
    assert all("不能再确认打款" in a["text"] for a in answers if not a["ok"])
    async with bot.svc.tx() as tx:
        paid = await tx.session.scalar(select(func.count()).where(AuditEntry.action == "paid"))
        notes = await tx.session.scalar(
            select(func.count()).where(OutboxItem.kind == "commerce.notify_payout")
        )
    assert (paid, notes) == (1, 1)
    (row,) = await rows(bot, Payout)
    assert winners[0]["text"].endswith(f"（流水号 {row.reference}）")


# -- Alipay ------------------------------------------------------------------------------------


async def alipay_bot(make_bot: BotFactory, sqlite_url: str, url: str, **extra: Any) -> Bot:
    return await make_bot(settings(sqlite_url, payout=alipay_settings(url), **extra))


async def approved(bot: Bot, **overrides: Any) -> dict[str, Any]:
    card = await post(bot, **overrides)
    assert (await say(bot, "sup1", f"通过 {card['handle']}"))["ok"]
    await bot.drain()
    return await card_of(bot, card["case_id"])


async def test_alipay_transfer_once_then_buyer_notified(
    make_bot: BotFactory,
    sqlite_url: str,
    fake_alipay: Served[FakeAlipay],
    fake_commerce: Served[FakeCommerce],
) -> None:
    fake, url = fake_alipay
    commerce, commerce_url = fake_commerce
    hook = {"mode": "webhook", "url": commerce_url, "secret": commerce.secret}
    bot = await alipay_bot(make_bot, sqlite_url, url, commerce=hook)
    card = await approved(bot, data_payout_id="PO20261123007")
    assert field(card, "渠道") == "支付宝转账"
    assert [b["text"] for b in card["card"]["buttons"]] == ["确认打款", "拒绝"]
    answer = await click(bot, "fin1", card, "paid")
    assert answer["text"] == "@fin1 💸 P1 已确认，正在通过支付宝转账 ¥128.00 到 138****8000"
    await bot.drain()
    card = await card_of(bot, "PO20261123007")
    (order,) = fake.paid()
    assert (card["state"], field(card, "流水号")) == ("paid", order.order_id)
    assert order.out_biz_no == "PO20261123007"
    assert order.biz["payee_info"] == {
        "identity": ACCOUNT,
        "identity_type": "ALIPAY_LOGON_ID",
        "name": "王小明",
    }
    assert [r["method"] for r in fake.requests] == [TRANSFER]
    assert card["card"]["footer"].startswith("支付宝 打款确认")
    assert len(commerce.performed("notify_payout")) == 1
    (row,) = await rows(bot, Payout)
    assert (row.provider, row.provider_status, row.sends, row.paid_by) == (
        "alipay",
        "SUCCESS",
        1,
        "fin1",
    )


async def test_a_lost_answer_is_queried_and_never_sent_twice(
    make_bot: BotFactory, sqlite_url: str, fake_alipay: Served[FakeAlipay]
) -> None:
    fake, url = fake_alipay
    bot = await alipay_bot(make_bot, sqlite_url, url)
    card = await approved(bot)
    fake.lose_next = 1
    assert (await click(bot, "fin1", card, "paid"))["ok"]
    await bot.drain()
    assert (await card_of(bot, card["case_id"]))["state"] == "paying"
    assert len(fake.paid()) == 1
    bot.clock.advance(minutes=2)
    await bot.drain()
    assert (await card_of(bot, card["case_id"]))["state"] == "paid"
    assert [r["method"] for r in fake.requests] == [TRANSFER, QUERY]
    assert len(fake.paid()) == 1


async def test_a_request_that_may_have_left_is_asked_about_first(
    make_bot: BotFactory, sqlite_url: str, fake_alipay: Served[FakeAlipay]
) -> None:
    fake, url = fake_alipay
    bot = await alipay_bot(make_bot, sqlite_url, url)
    card = await approved(bot)
    assert (await click(bot, "fin1", card, "paid"))["ok"]
    async with bot.svc.tx() as tx:
        # As if the process died after counting the send and before the request left.
        await tx.session.execute(update(Payout).values(sends=1))
    await bot.drain()
    assert [r["method"] for r in fake.requests] == [QUERY, TRANSFER]
    assert (await card_of(bot, card["case_id"]))["state"] == "paid"
    (row,) = await rows(bot, Payout)
    assert row.sends == 2


async def test_unknown_outcome_goes_to_finance_and_recheck_never_resends(
    make_bot: BotFactory, sqlite_url: str, fake_alipay: Served[FakeAlipay]
) -> None:
    fake, url = fake_alipay
    bot = await alipay_bot(make_bot, sqlite_url, url)
    card = await approved(bot)
    fake.lose_next, fake.lose_how = 10, "gateway"
    assert (await click(bot, "fin1", card, "paid"))["ok"]
    for _ in range(6):
        await bot.drain()
        bot.clock.advance(minutes=15)
    stuck = await card_of(bot, card["case_id"])
    assert stuck["state"] == "paying"
    assert keys(stuck) == ["recheck"]
    assert any("支付宝转账结果未知" in line for line in stuck["card"]["lines"])
    (warning,) = [t for t in await bot.texts("finance") if "结果未知" in t]
    assert warning.startswith("@fin1 @admin1 ⚠ P1（¥128.00）的支付宝转账结果未知")
    (dead,) = await bot.texts("ops")
    assert "P1 的支付宝转账多次失败，已放弃" in dead
    assert [r["method"] for r in fake.requests] == [TRANSFER, QUERY, QUERY, QUERY]
    fake.lose_next = 0
    assert (await click(bot, "fin1", stuck, "recheck"))["ok"]
    await bot.drain()
    assert (await card_of(bot, card["case_id"]))["state"] == "paid"
    assert len(fake.calls(TRANSFER)) == 1
    assert len(fake.paid()) == 1


async def test_final_failure_then_repay_under_a_new_out_biz_no(
    make_bot: BotFactory, sqlite_url: str, fake_alipay: Served[FakeAlipay]
) -> None:
    fake, url = fake_alipay
    bot = await alipay_bot(make_bot, sqlite_url, url)
    card = await approved(bot, data_payout_id="PO77")
    fake.refuse[ACCOUNT] = ("PAYEE_NOT_EXIST", "收款账号不存在")
    assert (await click(bot, "fin1", card, "paid"))["ok"]
    await bot.drain()
    failed = await card_of(bot, "PO77")
    assert failed["state"] == "failed"
    assert "⚠ 失败原因：收款账号不存在" in failed["card"]["lines"]
    assert keys(failed) == ["repay", "reject"]
    del fake.refuse[ACCOUNT]
    assert (await click(bot, "sup1", failed, "repay"))["ok"] is False
    assert (await click(bot, "fin1", failed, "repay"))["ok"]
    await bot.drain()
    assert (await card_of(bot, "PO77"))["state"] == "paid"
    assert [o.out_biz_no for o in fake.paid()] == ["PO77_2"]

    other = await approved(
        bot, data_payout_id="PO78", data_payee={"name": "李*", "account": "x@y.cn"}
    )
    fake.refuse["x@y.cn"] = ("PAYEE_ACCOUNT_STATUS_ERROR", "收款方账户状态异常")
    assert (await click(bot, "fin1", other, "paid"))["ok"]
    await bot.drain()
    asked = await say(bot, "fin1", "打款确认 P2")
    assert "重新打款 P2，或线下已打款时 打款确认 P2 <流水号>" in asked["text"]
    assert (await say(bot, "fin1", "打款确认 P2 BANK20261123"))["ok"]
    await bot.drain()
    by_hand = await card_of(bot, "PO78")
    assert (by_hand["state"], field(by_hand, "渠道")) == ("paid", "财务线下打款")
    assert len(fake.paid()) == 1


# -- batches ---------------------------------------------------------------------------------


async def test_batch_confirms_in_one_tap_and_reports_each_failure(
    make_bot: BotFactory, db_url: str, fake_alipay: Served[FakeAlipay]
) -> None:
    # On PostgreSQL the four transfer results land concurrently on the one batch card.
    fake, url = fake_alipay
    bot = await alipay_bot(make_bot, db_url, url)
    amounts = ["5.00", "10.00", "20.00", "35.00"]
    for i, amount in enumerate(amounts, start=1):
        await approved(
            bot,
            data_amount=amount,
            data_payee={"name": "王*", "account": f"1390000000{i}"},
        )
    fake.refuse["13900000003"] = ("PAYEE_NOT_EXIST", "收款账号不存在")
    made = await say(bot, "fin1", "批量打款")
    assert "已生成批量打款 B1：4 笔，合计 ¥70.00" in made["text"]
    await bot.drain()
    batch = next(c for c in await bot.cards("finance") if c["handle"] == "B1")
    assert batch["card"]["title"] == "批量打款 B1 · 4 笔 · ¥70.00"
    assert batch["card"]["buttons"][0] == {
        "key": "paid",
        "text": "全部确认打款（4 笔 ¥70.00）",
        "style": "primary",
    }
    assert all(
        field(c, "批次") == "B1" for c in await bot.cards("finance") if c["handle"][0] == "P"
    )
    tapped = await click(bot, "fin1", batch, "paid")
    assert tapped["text"] == "@fin1 ✅ B1 已确认，正在转账 4 笔，合计 ¥70.00"
    await bot.drain()
    batch = await card_of(bot, batch["case_id"])
    assert batch["state"] == "settled"
    assert field(batch, "结果") == "已打款 3 笔 ¥50.00 · 失败 1 笔 ¥20.00"
    assert "P3 ¥20.00 王* 139****0003 · ✗ 失败：收款账号不存在" in batch["card"]["lines"]
    assert "P1 ¥5.00 王* 139****0001 · ✓ 已打款" in batch["card"]["lines"]
    (summary,) = [t for t in await bot.texts("finance") if "B1 完成" in t]
    assert "B1 完成：已打款 3 笔 ¥50.00 · 失败 1 笔 ¥20.00。失败：P3（收款账号不存在）" in summary
    assert "@fin1" in summary
    states = {c["handle"]: c["state"] for c in await bot.cards("finance")}
    assert states == {"P1": "paid", "P2": "paid", "P3": "failed", "P4": "paid", "B1": "settled"}
    assert len(fake.paid()) == 3
    transfers = await rows(bot, OutboxItem, OutboxItem.kind == "payout.transfer")
    assert [(t.state, t.attempts) for t in transfers] == [("done", 0)] * 4


async def test_manual_batch_needs_one_reference_and_skips_what_changed(pbot: Bot) -> None:
    for _ in range(3):
        await post(pbot)
    for handle in ("P1", "P2", "P3"):
        assert (await say(pbot, "sup1", f"通过 {handle}"))["ok"]
    refused = await say(pbot, "fin1", "批量打款 P1 P2 P9")
    assert refused["text"] == "不能放入批次：P9 不是打款单"
    assert (await say(pbot, "fin1", "批量打款 P1 P2"))["ok"]
    await pbot.drain()
    batch = await card_of(pbot, (await rows(pbot, Case, Case.handle == "B1"))[0].case_id)
    asked = await click(pbot, "fin1", batch, "paid")
    assert "请输入这批打款的流水号：打款确认 B1 <流水号>" in asked["text"]
    assert (await say(pbot, "sup1", "拒绝 P2 重复申请"))["ok"]
    await pbot.drain()
    batch = await card_of(pbot, batch["case_id"])
    assert batch["card"]["title"] == "批量打款 B1 · 1 笔 · ¥128.00"
    assert "P2 ¥128.00 王** 138****8000 · 已拒绝：重复申请" in batch["card"]["lines"]
    done = await say(pbot, "fin1", "打款确认 B1 ALI20261123BATCH1")
    assert done["text"] == "✅ B1 已登记打款 1 笔，合计 ¥128.00；跳过 1 笔：P2（已拒绝）"
    await pbot.drain()
    states = {c["handle"]: c["state"] for c in await pbot.cards("finance")}
    assert states == {"P1": "paid", "P2": "rejected", "P3": "approved", "B1": "settled"}
    (p1,) = await rows(pbot, Payout, Payout.reference != "")
    assert p1.reference == "ALI20261123BATCH1"
    again = await say(pbot, "fin1", "批量打款")
    assert "已生成批量打款 B2：1 笔" in again["text"]
    assert (await say(pbot, "fin1", "取消批次 B2"))["ok"]
    await pbot.drain()
    p3 = next(c for c in await pbot.cards("finance") if c["handle"] == "P3")
    assert "批次" not in [f["label"] for f in p3["card"]["fields"]]
    assert (await say(pbot, "fin1", "打款确认 P3 REF3"))["ok"]


async def test_pending_payouts_per_person(pbot: Bot) -> None:
    await post(pbot)
    await post(pbot, data_amount="20.00", data_requested_by="sup1")
    assert (await say(pbot, "sup2", "通过 P2"))["ok"]
    assert (await say(pbot, "agent2", "待打款"))["text"] == "🎉 没有等你处理的打款"
    sup1 = (await say(pbot, "sup1", "payouts"))["text"]
    assert "P1 ¥128.00 待审批" in sup1
    assert "P2" not in sup1
    fin = (await say(pbot, "fin1", "待打款"))["text"]
    assert "P2 ¥20.00 已审批 · 待财务打款 · 活动返现 138****8000" in fin


async def test_the_account_never_reaches_logs_cards_or_texts(
    make_bot: BotFactory,
    sqlite_url: str,
    fake_alipay: Served[FakeAlipay],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    for ours in ("bot", "commands", "handlers", "integrations", "storage", "aiohttp"):
        caplog.set_level(logging.DEBUG, logger=ours)
    fake, url = fake_alipay
    bot = await alipay_bot(make_bot, sqlite_url, url)
    card = await approved(bot)
    fake.lose_next = 1
    await click(bot, "fin1", card, "paid")
    await bot.drain()
    bot.clock.advance(minutes=2)
    await bot.drain()
    assert (await card_of(bot, card["case_id"]))["state"] == "paid"
    assert "failed: transfer " in caplog.text
    everything = json.dumps(await bot.messages("finance"), ensure_ascii=False)
    everything += json.dumps(await bot.messages("ops"), ensure_ascii=False)
    everything += json.dumps((await bot.get_case("P1"))[1], ensure_ascii=False)
    async with bot.svc.tx() as tx:
        items = (await tx.session.scalars(select(OutboxItem))).all()
        everything += json.dumps([i.payload for i in items], ensure_ascii=False)
        audit = (await tx.session.scalars(select(AuditEntry))).all()
        everything += json.dumps([a.detail for a in audit], ensure_ascii=False)
    assert "138****8000" in everything
    assert ACCOUNT not in everything
    assert ACCOUNT not in caplog.text
