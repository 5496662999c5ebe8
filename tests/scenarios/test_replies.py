"""Agents answer buyers from the group: replies through the commerce webhook, templates,
buyer messages with their reminder, masking, delivery failures."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from handlers import digest
from handlers.refund import commerce as refund
from integrations.commerce.fake import FakeCommerce
from integrations.simulator.feed import ShopSimulator
from storage.models import AuditEntry, Case, OutboxItem
from tests.support.app import Bot, BotFactory, make_settings
from tests.support.fakes import Served

SEND = "send_buyer_message"


@pytest.fixture
async def shop(
    make_bot: BotFactory, sqlite_url: str, fake_commerce: Served[FakeCommerce]
) -> tuple[Bot, FakeCommerce]:
    fake, url = fake_commerce
    settings = make_settings(
        sqlite_url, commerce={"mode": "webhook", "url": url, "secret": fake.secret}
    )
    return await make_bot(settings), fake


def sent(fake: FakeCommerce) -> list[dict[str, Any]]:
    """Buyer messages the shop received, each request (repeats included)."""
    return [r for r in fake.requests if r["action"] == SEND]


async def card_of(bot: Bot, handle: str = "R1") -> dict[str, Any]:
    return next(c for c in await bot.cards() if c["handle"] == handle)


async def buyer_says(bot: Bot, refund_id: str, text: str) -> None:
    event = {
        "id": f"evt_msg_{refund_id}_{bot.clock.now().timestamp()}",
        "type": "buyer.message",
        "occurred_at": bot.clock.now().isoformat(),
        "data": {"refund_id": refund_id, "text": text, "at": bot.clock.now().isoformat()},
    }
    assert (await bot.post_event(event))[0] == 202
    await bot.drain()


async def test_reply_reaches_the_buyer_once_and_shows_on_the_card(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = shop
    card = await bot.refund(data_refund_id="RF1")
    bot.clock.advance(minutes=5)
    answer = await bot.say("agent1", "回复 R1 亲，您好，已经在为您核实，今天内给您答复")
    assert answer["ok"], answer
    assert answer["reply"]["text"] == "✉ 已发给 R1 的买家：亲，您好，已经在为您核实，今天内给您答复"
    await bot.drain()
    (call,) = sent(fake)
    assert call["idempotency_key"] == "commerce.send_buyer_message:refund:RF1:1"
    assert call["data"]["text"] == "亲，您好，已经在为您核实，今天内给您答复"
    assert call["data"]["refund_id"] == "RF1"
    assert call["data"]["sent_by"] == "agent1"
    assert fake.bad_signatures == 0
    updated = await card_of(bot)
    assert updated["id"] == card["id"]
    assert updated["state"] == "awaiting_review"
    assert (
        "💬 agent1 11-23 10:05 回复买家：亲，您好，已经在为您核实，今天内给您答复 · 已送达"
        in (updated["card"]["lines"])
    )
    assert updated["card"]["footer"] == "agent1 回复买家 · 11-23 10:05"
    assert [t for t in await bot.later(hours=2) if "无人响应" in t] == []
    async with bot.svc.tx() as tx:
        case = await tx.cases.find("R1")
        assert case is not None
        assert case.first_response_at == bot.clock.now() - timedelta(hours=2)

    assert (await bot.say("agent2", "reply R1 Thanks for waiting"))["ok"]
    await bot.drain()
    assert [c["idempotency_key"] for c in sent(fake)] == [
        "commerce.send_buyer_message:refund:RF1:1",
        "commerce.send_buyer_message:refund:RF1:2",
    ]
    assert len(fake.performed(SEND)) == 2
    assert any(
        "agent2" in line and "Thanks" in line for line in (await card_of(bot))["card"]["lines"]
    )
    shown = (await bot.say("sup1", "查 R1"))["reply"]["text"]
    assert "agent2 回复买家" in shown


async def test_without_a_reply_the_first_response_reminder_still_fires(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, _ = shop
    await bot.refund()
    assert [t for t in await bot.later(minutes=31) if "30 分钟无人响应" in t]


async def test_a_template_is_filled_for_the_case_and_sent(shop: tuple[Bot, FakeCommerce]) -> None:
    bot, fake = shop
    await bot.refund(data_refund_id="RF2", data_order_id="4012345678901234567")
    answer = await bot.say("agent1", "回复 R1 #仅退款核实")
    assert answer["ok"], answer
    await bot.drain()
    (call,) = sent(fake)
    text = call["data"]["text"]
    assert call["data"]["template"] == "仅退款核实"
    assert text.startswith("亲，非常抱歉")
    assert "¥128.00" in text
    assert "11月24日 22:00 前" in text
    assert any(
        "回复买家（#仅退款核实）：亲，非常抱歉" in line
        for line in (await card_of(bot))["card"]["lines"]
    )
    assert (await bot.say("agent1", "回复 R1 ＃收到申请"))["ok"]
    await bot.drain()
    assert "订单 4012345678901234567" in sent(fake)[-1]["data"]["text"]


async def test_unknown_or_unfillable_template_lists_the_suitable_ones(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = shop
    await bot.refund()
    refused = await bot.say("agent1", "回复 R1 #不存在")
    assert not refused["ok"]
    text = refused["reply"]["text"]
    assert "没有叫「不存在」的常用回复" in text
    assert "#仅退款核实" in text
    assert "#建议退货退款" in text
    assert "#已发货拦截" not in text
    assert "用法：回复 R1 #名称" in text
    unfillable = await bot.say("agent1", "回复 R1 #退货在途")
    assert not unfillable["ok"]
    assert "#退货在途 需要退货快递公司、退货运单号，R1 没有这些信息" in unfillable["reply"]["text"]
    await bot.drain()
    assert sent(fake) == []
    assert (await bot.say("agent1", "回复 R1"))["reply"]["text"] == "用法：回复 <单号> <内容|#模板>"


async def test_templates_button_offers_filled_templates_for_the_path(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = shop
    card = await bot.refund(
        data_shipping={"status": "shipped", "carrier": "SF", "tracking_no": "SF1234567890"}
    )
    assert card["state"] == "waiting_intercept"
    assert [b["text"] for b in card["card"]["buttons"]][-1] == "常用回复"
    status, answer = await bot.click("agent1", card["id"], "templates")
    assert status == 200
    assert answer["ok"], answer
    text = answer["reply"]["text"]
    assert "R1 的常用回复（发送：回复 R1 #名称）" in text
    assert "#已发货拦截" in text
    assert "已经由顺丰速运发出（运单号 SF1234567890）" in text
    assert "#收到申请" in text
    assert "#仅退款核实" not in text
    assert sent(fake) == []
    assert (await bot.say("agent2", "话术 R1"))["reply"]["text"] == text.removeprefix("@agent1 ")


async def test_an_unanswered_buyer_message_is_overdue_once(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, _ = shop
    await bot.refund(data_refund_id="RFB")
    assert (await bot.say("agent1", "认领 R1"))["ok"]
    assert (await bot.say("agent1", "回复 R1 #仅退款核实"))["ok"]
    bot.clock.advance(minutes=3)
    await buyer_says(bot, "RFB", "亲，什么时候处理呀？")
    assert (await bot.texts())[-1] == "@agent1 🗨 R1 买家 t**1：亲，什么时候处理呀？"
    card = await card_of(bot)
    assert "🗨 买家 11-23 10:03：亲，什么时候处理呀？（待回复）" in card["card"]["lines"]
    assert card["card"]["pills"] == []
    assert await bot.later(minutes=20) == []
    await buyer_says(bot, "RFB", "客服怎么不回消息？")
    reminders = await bot.later(minutes=11)
    assert reminders == [
        "@agent1 ⏰ R1（¥128.00）买家留言 30 分钟未回复，请尽快回复"
        "（回复 R1 内容，或点卡片上的「常用回复」）"
    ]
    card = await card_of(bot)
    assert card["card"]["pills"] == [{"text": "买家待回复", "tone": "warning"}]
    assert card["card"]["lines"][-1].endswith("（超时未回复）")
    async with bot.svc.tx() as tx:
        (overdue,) = await tx.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "buyer_overdue")
        )
        assert (overdue.actor, overdue.detail["assignee"]) == ("system", "agent1")
    # Reminded once: no second reminder, no escalation.
    assert await bot.later(hours=2) == []

    assert (await bot.say("agent1", "回复 R1 #仅退款核实"))["ok"]
    await bot.drain()
    card = await card_of(bot)
    assert not any("待回复" in line for line in card["card"]["lines"])
    assert card["card"]["pills"] == []
    assert await bot.later(hours=3) == []

    await buyer_says(bot, "RFB", "好的，那我等着")
    assert (await card_of(bot))["card"]["lines"][-1].endswith("（待回复）")
    assert [t for t in await bot.later(minutes=31) if "买家留言 30 分钟未回复" in t]


async def test_an_overdue_buyer_on_nobodys_case_calls_the_supervisors_once(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, _ = shop
    await bot.refund(data_refund_id="RFS", data_kind="return_refund", data_deadline_at=None)
    await buyer_says(bot, "RFS", "退货地址发我一下")
    assert (await bot.texts())[-1] == "🗨 R1 买家 t**1：退货地址发我一下"
    (first,) = await bot.later(minutes=31)
    assert first.startswith("@sup1 @sup2 @admin1 ⏰ R1（¥128.00）买家留言 30 分钟未回复")
    assert (await bot.say("agent2", "回复 R1 亲，地址稍后发您"))["ok"]
    await buyer_says(bot, "RFS", "还没收到地址")
    (second,) = await bot.later(minutes=31)
    assert second.startswith("⏰ R1（¥128.00）买家留言 30 分钟未回复")
    async with bot.svc.tx() as tx:
        fig = await digest.figures(tx, "aftersales", digest.span_for(bot.svc, "", tx.now))
    assert fig.buyer_overdue == 2
    assert fig.people[""].overdue == 2
    assert fig.people["agent2"].handled == {1}


async def test_unanswered_case_keeps_its_first_response_clock(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, _ = shop
    await bot.refund(data_refund_id="RFN")
    await buyer_says(bot, "RFN", "在吗")
    texts = await bot.later(minutes=31)
    assert any("30 分钟无人响应" in t for t in texts)
    assert any("买家留言 30 分钟未回复" in t for t in texts)


async def test_phone_numbers_in_free_text_are_refused(shop: tuple[Bot, FakeCommerce]) -> None:
    bot, fake = shop
    await bot.refund(data_order_id="4012345678901234567")
    refused = await bot.say(
        "agent1", "回复 R1 有问题请打我手机 13812345678 或卡号 6222021234567890"
    )
    assert not refused["ok"]
    text = refused["reply"]["text"]
    assert "没有发送：回复里有手机号 138****5678、银行卡号 6222****7890。" in text
    assert "13812345678" not in text
    allowed = await bot.say("agent1", "回复 R1 您的订单 4012345678901234567 已在处理")
    assert allowed["ok"], allowed
    await bot.drain()
    assert [c["data"]["text"] for c in sent(fake)] == ["您的订单 4012345678901234567 已在处理"]
    async with bot.svc.tx() as tx:
        kinds = (await tx.session.scalars(select(OutboxItem.kind))).all()
    assert kinds.count("commerce.send_buyer_message") == 1


async def test_masking_policy_sends_masked_free_text_with_a_notice(
    make_bot: BotFactory, sqlite_url: str, fake_commerce: Served[FakeCommerce]
) -> None:
    fake, url = fake_commerce
    settings = make_settings(
        sqlite_url,
        commerce={"mode": "webhook", "url": url, "secret": fake.secret},
        replies={"sensitive_free_text": "mask"},
    )
    bot = await make_bot(settings)
    await bot.refund()
    answer = await bot.say("agent1", "回复 R1 您留的号码 13812345678 我们已记下")
    assert answer["ok"]
    assert "（已隐去 手机号 138****5678）" in answer["reply"]["text"]
    await bot.drain()
    assert [c["data"]["text"] for c in sent(fake)] == ["您留的号码 138****5678 我们已记下"]


async def test_templates_reveal_only_what_they_mark(
    make_bot: BotFactory, sqlite_url: str, fake_commerce: Served[FakeCommerce]
) -> None:
    fake, url = fake_commerce
    settings = make_settings(
        sqlite_url,
        commerce={"mode": "webhook", "url": url, "secret": fake.secret},
        templates=[
            {
                "name": "退货地址",
                "text": "请寄到杭州xx路1号 0571-88886666，{amount}",
                "reveal": True,
            },
            {"name": "联系我们", "text": "有问题打 13912345678，您说的「{reason}」已记录"},
        ],
    )
    bot = await make_bot(settings)
    await bot.refund(data_reason="质量问题，电话13812345678")
    assert (await bot.say("agent1", "回复 R1 #退货地址"))["ok"]
    masked = await bot.say("agent1", "回复 R1 #联系我们")
    assert "（已隐去 手机号 139****5678、手机号 138****5678）" in masked["reply"]["text"]
    await bot.drain()
    assert [c["data"]["text"] for c in sent(fake)] == [
        "请寄到杭州xx路1号 0571-88886666，¥128.00",
        "有问题打 139****5678，您说的「质量问题，电话138****5678」已记录",
    ]


async def test_buyer_personal_data_is_masked_in_the_group(shop: tuple[Bot, FakeCommerce]) -> None:
    bot, _ = shop
    await bot.refund(data_refund_id="RFM")
    await buyer_says(bot, "RFM", "退到支付宝 13812345678 就行")
    line = (await bot.texts())[-1]
    assert line == "🗨 R1 买家 t**1：退到支付宝 138****5678 就行"
    assert not any("13812345678" in x for x in (await card_of(bot))["card"]["lines"])


async def test_undeliverable_reply_shows_on_the_card_and_is_dead_lettered(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = shop
    await bot.refund()
    fake.refuse[SEND] = "买家会话已关闭"
    assert (await bot.say("agent2", "回复 R1 亲，马上为您处理"))["ok"]
    await bot.drain()
    card = await card_of(bot)
    assert card["state"] == "awaiting_review"
    assert any(
        line.endswith("回复买家：亲，马上为您处理 · 未送达") for line in card["card"]["lines"]
    )
    assert "⚠ 11-23 10:00 给买家的回复未送达：买家会话已关闭" in card["card"]["lines"]
    assert any(
        t.startswith("@agent2 ⚠ R1 给买家的回复没有送达：买家会话已关闭") for t in await bot.texts()
    )
    (notice,) = await bot.texts("ops")
    assert "R1 的买家回复发送失败（不会再试）：买家会话已关闭" in notice
    async with bot.svc.tx() as tx:
        assert await tx.outbox.depth() == {"dead": 1}

    fake.refuse.clear()
    assert (await bot.say("agent2", "回复 R1 亲，马上为您处理"))["ok"]
    await bot.drain()
    lines = (await card_of(bot))["card"]["lines"]
    assert not any("未送达" in line for line in lines)


async def test_retried_reply_keeps_its_key_and_reaches_the_buyer_once(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = shop
    await bot.refund(data_refund_id="RFR")
    fake.fail_next = 1
    assert (await bot.say("agent1", "回复 R1 亲，在的"))["ok"]
    await bot.drain()
    assert fake.performed(SEND) == []
    assert any(line.endswith("· 发送中") for line in (await card_of(bot))["card"]["lines"])
    bot.clock.advance(seconds=5)
    await bot.drain()
    assert {c["idempotency_key"] for c in sent(fake)} == {
        "commerce.send_buyer_message:refund:RFR:1"
    }
    assert len(sent(fake)) == 2
    assert len(fake.performed(SEND)) == 1
    assert any(line.endswith("· 已送达") for line in (await card_of(bot))["card"]["lines"])


async def test_a_reply_result_never_moves_the_refund(shop: tuple[Bot, FakeCommerce]) -> None:
    bot, fake = shop
    fake.status = "pending"
    await bot.refund()
    assert (await bot.say("sup1", "通过 R1"))["ok"]
    await bot.drain()
    assert (await card_of(bot))["state"] == "submitted"
    fake.status = "done"
    assert (await bot.say("sup1", "回复 R1 亲，退款已提交"))["ok"]
    await bot.drain()
    assert (await card_of(bot))["state"] == "submitted"
    async with bot.svc.tx() as tx:
        case = await tx.cases.find("R1")
        assert case is not None
        await refund.on_commerce_result(
            tx, case, "commerce.send_buyer_message", ok=True, status="done"
        )
        assert case.state == "submitted"
        actions = (await tx.session.scalars(select(AuditEntry.action))).all()
    assert "refunded" not in actions


async def test_without_a_shop_connection_the_agent_is_told_to_send_by_hand(bot: Bot) -> None:
    await bot.refund()
    answer = await bot.say("agent1", "回复 R1 亲，在的")
    assert "未接店铺系统" in answer["reply"]["text"]
    await bot.drain()
    lines = (await card_of(bot))["card"]["lines"]
    assert any(line.endswith("· 未发送") for line in lines)
    assert "⚠ 未接店铺系统，回复没有发出：请在平台后台回复买家" in lines


async def test_who_may_reply(shop: tuple[Bot, FakeCommerce]) -> None:
    bot, fake = shop
    await bot.refund()
    refused = await bot.say("fin1", "回复 R1 你好")
    assert not refused["ok"]
    assert "fin1 没有回复买家的权限" in refused["reply"]["text"]
    assert not (await bot.say("stranger", "回复 R1 你好"))["ok"]
    await bot.drain()
    assert sent(fake) == []


async def test_concurrent_replies_each_get_their_own_key(
    make_bot: BotFactory, db_url: str, fake_commerce: Served[FakeCommerce]
) -> None:
    fake, url = fake_commerce
    bot = await make_bot(
        make_settings(db_url, commerce={"mode": "webhook", "url": url, "secret": fake.secret})
    )
    await bot.refund(data_refund_id="RFX")
    users = ["agent1", "agent2", "sup1"] * 2
    answers = await asyncio.gather(*(bot.say(u, f"回复 R1 第{i}条") for i, u in enumerate(users)))
    assert all(a["ok"] for a in answers), [a["reply"]["text"] for a in answers]
    await bot.drain()
    keys = sorted(c["idempotency_key"] for c in sent(fake))
    assert keys == [f"commerce.send_buyer_message:refund:RFX:{n}" for n in range(1, 7)]
    assert sorted(c["data"]["text"] for c in sent(fake)) == [f"第{i}条" for i in range(6)]
    async with bot.svc.tx() as tx:
        case = await tx.session.scalar(select(Case).where(Case.case_id == "RFX"))
        assert case is not None
        assert [r["status"] for r in case.data["replies"]] == ["sent"] * 5


async def test_simulated_buyers_hold_a_conversation(bot: Bot) -> None:
    sim = ShopSimulator(bot.clock, seed=2)
    events = sim.opening()
    for _ in range(12):
        events += sim.tick()
    bot.clock.advance(minutes=10)
    events += sim.due()
    messages = [e for e in events if e["type"] == "buyer.message"]
    by_refund: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        by_refund.setdefault(message["data"]["refund_id"], []).append(message["data"])
    assert any(len(m) >= 2 for m in by_refund.values())
    for conversation in by_refund.values():
        times = [m["at"] for m in conversation]
        assert times == sorted(times)
    for event in events:
        assert (await bot.post_event(event))[0] == 202
    await bot.drain()
    lines = [t for t in await bot.texts() if t.startswith(("🗨", "@")) and "🗨 R" in t]
    assert len(lines) == len(messages)
    cards = [
        c for c in await bot.cards() if any(x.startswith("🗨 买家") for x in c["card"]["lines"])
    ]
    assert len(cards) == len(by_refund)
