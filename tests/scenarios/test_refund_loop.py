"""The walking skeleton end to end: signed event → one card → chat decisions → card updated."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from bot.keys import DISPATCHER, PROCESSOR
from integrations.commerce.fake import FakeCommerce
from storage.models import AuditEntry, Case, Event, OutboxItem
from tests.support.app import Bot, BotFactory, make_refund, make_settings
from tests.support.fakes import Served


async def count(bot: Bot, model: Any) -> int:
    async with bot.svc.tx() as tx:
        return int(await tx.session.scalar(select(func.count()).select_from(model)))


async def test_refund_event_yields_one_card_in_the_routed_group(bot: Bot) -> None:
    card = await bot.refund()
    assert card["handle"] == "R1"
    assert card["state"] == "awaiting_review"
    assert card["card"]["status"] == "待审核"
    assert [b["key"] for b in card["card"]["buttons"]] == [
        "approve",
        "reject",
        "claim",
        "templates",
    ]
    assert {"label": "金额", "value": "¥128.00"} in card["card"]["fields"]
    assert await bot.cards("ops") == []
    assert len(await bot.cards()) == 1


async def test_click_approve_updates_the_same_card_in_place_and_audits(bot: Bot) -> None:
    card = await bot.refund()
    bot.clock.advance(minutes=3)
    status, answer = await bot.click("sup1", card["id"], "approve")
    assert status == 200
    assert answer["ok"], answer
    assert "已通过 R1" in answer["reply"]["text"]
    await bot.drain()
    (updated,) = await bot.cards()
    assert updated["id"] == card["id"]
    assert updated["updated_at"] > card["updated_at"]
    assert updated["state"] == "manual_refund", "no shop system: nothing was sent"
    assert updated["card"]["footer"].startswith("系统 转手动退款")
    assert "请在店铺后台手动退款 ¥128.00" in "".join(updated["card"]["lines"])
    async with bot.svc.tx() as tx:
        rows = (await tx.session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    assert [(r.actor, r.action, r.from_state, r.to_state) for r in rows][-2:] == [
        ("sup1", "approve", "awaiting_review", "approved"),
        ("system", "manual", "approved", "manual_refund"),
    ]
    assert rows[-2].channel == "sandbox"


async def test_click_answer_already_carries_the_updated_card(bot: Bot) -> None:
    card = await bot.refund()
    _, answer = await bot.click("sup1", card["id"], "claim")
    assert answer["message"]["id"] == card["id"]
    assert answer["message"]["card"]["footer"].startswith("sup1 认领")
    assert {"label": "处理人", "value": "sup1"} in answer["message"]["card"]["fields"]


async def test_agent_above_limit_escalates_and_supervisor_finishes(bot: Bot) -> None:
    card = await bot.refund()
    reply = await bot.say("agent1", "通过 R1")
    assert "超出你的权限（¥50.00）" in reply["reply"]["text"]
    assert "@sup1" in reply["reply"]["text"]
    await bot.drain()
    (escalated,) = await bot.cards()
    assert escalated["state"] == "escalated"
    assert escalated["card"]["mentions"] == ["sup1", "sup2", "admin1"]
    reply = await bot.say("agent2", "approve r1")
    assert not reply["ok"]
    assert (
        "可以批准的是：sup1（¥2,000.00）、sup2（¥2,000.00）、admin1（不限）"
        in reply["reply"]["text"]
    )
    reply = await bot.say("sup2", "通过 R1")
    assert reply["ok"]
    await bot.drain()
    assert (await bot.cards())[0]["id"] == card["id"]
    assert (await bot.cards())[0]["state"] == "manual_refund"


async def test_reject_needs_a_reason_and_is_shown_on_the_card(bot: Bot) -> None:
    card = await bot.refund()
    _, answer = await bot.click("agent1", card["id"], "reject")
    assert not answer["ok"]
    assert "拒绝 R1 <原因>" in answer["reply"]["text"]
    reply = await bot.say("agent1", "拒绝 R1 买家已确认收到货，无质量问题")
    assert reply["ok"], reply
    await bot.drain()
    (rejected,) = await bot.cards()
    assert rejected["state"] == "rejected"
    assert "拒绝原因：买家已确认收到货，无质量问题" in rejected["card"]["lines"]
    assert rejected["card"]["buttons"] == []


async def test_note_claim_show_and_todo_in_both_languages(bot: Bot) -> None:
    await bot.refund(data_amount="30.00", data_order_amount="128.00")
    await bot.refund(data_amount="500.00", data_order_amount="800.00")
    assert "R1" in (await bot.say("agent1", "待办"))["reply"]["text"]
    todo = (await bot.say("agent1", "todo"))["reply"]["text"]
    assert "R1" in todo
    assert "R2" not in todo
    assert (await bot.say("agent2", "认领 R1"))["ok"]
    assert "R1" not in (await bot.say("agent1", "todo mine"))["reply"]["text"]
    refused = await bot.say("agent1", "claim R1")
    assert "已由 agent2 认领" in refused["reply"]["text"]
    assert (await bot.say("agent2", "note R1 买家说明天再联系"))["ok"]
    assert (await bot.say("agent1", "备注 R1 已电话沟通"))["ok"]
    shown = (await bot.say("fin1", "查 R1"))["reply"]["text"]
    assert "处理人：agent2" in shown
    assert "认领" in shown
    assert "已电话沟通" in shown
    everyone = (await bot.say("sup1", "待办 all"))["reply"]["text"]
    assert "【agent2】1 件" in everyone
    assert "【未认领】1 件" in everyone
    refused = (await bot.say("agent1", "todo all"))["reply"]["text"]
    assert "没有查看全部待办的权限" in refused
    assert "sup1" in refused


async def test_cases_are_addressed_by_full_id_too(bot: Bot) -> None:
    card = await bot.refund(data_refund_id="RF20261123001")
    reply = await bot.say("sup1", f"通过 {card['case_id']}")
    assert reply["ok"]
    assert "R1" in reply["reply"]["text"]


async def test_unknown_people_and_commands_get_a_clear_answer(bot: Bot) -> None:
    card = await bot.refund()
    _, answer = await bot.click("stranger", card["id"], "approve")
    assert not answer["ok"]
    assert "你不在售后名单中" in answer["reply"]["text"]
    assert "admin1" in answer["reply"]["text"]
    reply = await bot.say("agent1", "退款全部通过吧")
    assert "没有「退款全部通过吧」这个命令" in reply["reply"]["text"]
    assert "帮助" in reply["reply"]["text"]
    reply = await bot.say("fin1", "通过 R1")
    assert "fin1 没有通过退款的权限" in reply["reply"]["text"]
    reply = await bot.say("agent1", "查 R999")
    assert "找不到 R999" in reply["reply"]["text"]
    reply = await bot.say("agent1", "通过")
    assert reply["reply"]["text"] == "用法：通过 <单号> [更多单号 备注]"
    (unchanged,) = await bot.cards()
    assert unchanged["state"] == "awaiting_review"


async def test_forty_concurrent_approvals_give_exactly_one(
    make_bot: BotFactory, db_url: str
) -> None:
    bot = await make_bot(make_settings(db_url))
    card = await bot.refund()
    users = ["sup1", "sup2"] * 20
    results = await asyncio.gather(*(bot.click(u, card["id"], "approve") for u in users))
    assert all(status == 200 for status, _ in results), [r for r in results if r[0] != 200]
    answers = [answer for _, answer in results]
    winners = [(u, a) for u, a in zip(users, answers, strict=True) if a["ok"]]
    assert len(winners) == 1, [a["reply"]["text"] for a in answers]
    winner = winners[0][0]
    losers = [a for a in answers if not a["ok"]]
    assert all(f"{winner} 通过" in a["reply"]["text"] for a in losers), losers[0]
    async with bot.svc.tx() as tx:
        approvals = await tx.session.scalar(
            select(func.count()).where(AuditEntry.action == "approve")
        )
        effects = await tx.session.scalar(
            select(func.count()).where(OutboxItem.kind == "commerce.approve_refund")
        )
    assert approvals == 1
    assert effects == 1


async def test_duplicate_event_gives_one_case(bot: Bot) -> None:
    event = make_refund()
    assert await bot.post_event(event) == (202, {"id": event["id"], "status": "accepted"})
    assert await bot.post_event(event) == (202, {"id": event["id"], "status": "duplicate"})
    again = {**event, "id": "evt_other_id_same_refund"}
    assert (await bot.post_event(again))[1]["status"] == "accepted"
    await bot.drain()
    assert await count(bot, Case) == 1
    assert len(await bot.cards()) == 1


async def test_approve_goes_through_the_commerce_webhook_once(
    make_bot: BotFactory, sqlite_url: str, fake_commerce: Served[FakeCommerce]
) -> None:
    fake, url = fake_commerce
    settings = make_settings(
        sqlite_url, commerce={"mode": "webhook", "url": url, "secret": fake.secret}
    )
    bot = await make_bot(settings)
    card = await bot.refund()
    await bot.click("sup1", card["id"], "approve")
    await bot.drain()
    (approved,) = fake.performed("approve_refund")
    assert approved["data"]["refund_id"] == card["case_id"]
    assert approved["data"]["amount"] == "128.00"
    assert approved["idempotency_key"] == f"commerce.approve_refund:refund:{card['case_id']}:1"
    assert fake.bad_signatures == 0
    (done,) = await bot.cards()
    assert done["state"] == "refunded"
    assert done["card"]["status"] == "已退款"


async def test_commerce_failures_retry_then_dead_letter_to_the_admin_group(
    make_bot: BotFactory, sqlite_url: str, fake_commerce: Served[FakeCommerce]
) -> None:
    fake, url = fake_commerce
    settings = make_settings(
        sqlite_url, commerce={"mode": "webhook", "url": url, "secret": fake.secret}
    )
    bot = await make_bot(settings)
    card = await bot.refund()
    fake.fail_next = 2
    await bot.click("sup1", card["id"], "approve")
    await bot.drain()
    assert fake.performed("approve_refund") == []
    bot.clock.advance(seconds=5)
    await bot.drain()
    assert fake.performed("approve_refund") == []
    bot.clock.advance(seconds=5)
    await bot.drain()
    assert len(fake.performed("approve_refund")) == 1
    assert len(fake.requests) == 3
    assert (await bot.cards())[0]["state"] == "refunded"

    second = await bot.refund()
    fake.fail_next = 10
    await bot.click("sup1", second["id"], "approve")
    for _ in range(6):
        await bot.drain()
        bot.clock.advance(minutes=10)
    await bot.drain()
    failed = next(c for c in await bot.cards() if c["id"] == second["id"])
    assert failed["state"] == "failed"
    assert any("injected failure" in line for line in failed["card"]["lines"])
    assert next(b["key"] for b in failed["card"]["buttons"]) == "retry"
    (notice,) = await bot.texts("ops")
    assert "R2 的退款提交多次失败，已放弃" in notice
    assert "@admin1" in notice
    async with bot.svc.tx() as tx:
        dead = await tx.outbox.depth()
    assert dead == {"dead": 1}
    fake.fail_next = 0
    _, answer = await bot.click("sup1", second["id"], "retry")
    assert answer["ok"], answer
    await bot.drain()
    assert next(c for c in await bot.cards() if c["id"] == second["id"])["state"] == "refunded"
    assert len(fake.performed("approve_refund")) == 2


async def test_restart_with_pending_outbox_delivers_once(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    first = await make_bot(make_settings(sqlite_url))
    await first.post_event(make_refund())
    await first.app[PROCESSOR].run_once()
    assert await first.cards() == []
    await first.client.close()

    second = await make_bot(make_settings(sqlite_url))
    await second.drain()
    await second.drain()
    assert len(await second.cards()) == 1
    async with second.svc.tx() as tx:
        assert await tx.outbox.depth() == {}


async def test_unhandled_event_types_are_stored_for_replay(bot: Bot) -> None:
    event = {
        "id": "evt_message_1",
        "type": "buyer.message",
        "occurred_at": "2026-11-23T10:00:00+08:00",
        "shop": "flagship",
        "platform": "taobao",
        "data": {
            "refund_id": "RF1",
            "text": "什么时候退款？",
            "vendor_note": {"kept": True},
        },
    }
    assert (await bot.post_event(event))[0] == 202
    await bot.drain()
    async with bot.svc.tx() as tx:
        stored = await tx.events.get("evt_message_1")
    assert stored is not None
    assert stored.body["data"]["vendor_note"] == {"kept": True}
    assert await count(bot, Event) == 1


async def test_messages_page_forward_with_after(bot: Bot) -> None:
    for _ in range(5):
        await bot.say("agent1", "帮助")
    latest = await bot.client.get("/sandbox/api/groups/aftersales/messages?limit=4")
    assert [m["id"] for m in await latest.json()] == [7, 8, 9, 10]
    first = await bot.client.get("/sandbox/api/groups/aftersales/messages?after=0&limit=4")
    assert [m["id"] for m in await first.json()] == [1, 2, 3, 4]
    nxt = await bot.client.get("/sandbox/api/groups/aftersales/messages?after=4&limit=4")
    assert [m["id"] for m in await nxt.json()] == [5, 6, 7, 8]


async def test_click_answer_waits_for_a_card_update_another_worker_holds(
    bot: Bot, monkeypatch: Any
) -> None:
    """The dispatcher loop may claim the card update first; the answer still shows it."""
    card = await bot.refund()
    dispatcher = bot.app[DISPATCHER]
    held: list[asyncio.Task[None]] = []
    real_flush = dispatcher.flush_case

    async def loop_got_there_first(case_pk: int) -> None:
        async with bot.svc.tx() as tx:
            items = await tx.outbox.claim(now=tx.now, limit=10, lease_s=30)
        assert items, "the click queued no card update"

        async def later() -> None:
            await asyncio.sleep(0.2)
            for item in items:
                await dispatcher.perform(item)

        held.append(asyncio.create_task(later()))
        await real_flush(case_pk)

    monkeypatch.setattr(dispatcher, "flush_case", loop_got_there_first)
    _, answer = await bot.click("sup1", card["id"], "claim")
    await asyncio.gather(*held)
    assert answer["message"]["card"]["footer"].startswith("sup1 认领")


async def test_a_tap_on_a_button_the_card_no_longer_shows_is_answered_not_refused(bot: Bot) -> None:
    """Like a platform, the sandbox takes a tap on a card someone else just changed."""
    card = await bot.refund()
    assert (await bot.click("sup1", card["id"], "approve"))[1]["ok"]
    status, late = await bot.click("sup2", card["id"], "approve")
    assert status == 200
    assert not late["ok"]
    assert "sup1 通过" in late["reply"]["text"]
    status, wrong = await bot.click("sup2", card["id"], "launch")
    assert status == 400
    assert wrong["error"] == "the card has no button 'launch'"
