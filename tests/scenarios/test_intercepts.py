"""Intercepts end to end: a shipped refund is intercepted at once, the carrier's word moves it on."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.keys import PROCESSOR
from handlers import digest
from integrations.carrier.fake import FakeCarrier
from integrations.commerce.fake import FakeCommerce
from storage.enums import CaseKind
from storage.models import AuditEntry
from tests.support.app import Bot, BotFactory, make_refund, make_settings
from tests.support.fakes import Served

SHIPPED = {"status": "shipped", "carrier": "SF", "tracking_no": "SF1234567890"}
KEY = "carrier.intercept:intercept:SF:SF1234567890:1"


def result(outcome: str, detail: str = "", tracking_no: str = "SF1234567890") -> dict[str, Any]:
    return {
        "id": f"evt_result_{tracking_no}_{outcome}",
        "type": "intercept.result",
        "occurred_at": "2026-11-23T10:30:00+08:00",
        "shop": "flagship",
        "platform": "taobao",
        "data": {"carrier": "SF", "tracking_no": tracking_no, "result": outcome, "detail": detail},
    }


@pytest.fixture
async def wired(
    make_bot: BotFactory,
    sqlite_url: str,
    fake_carrier: Served[FakeCarrier],
    fake_commerce: Served[FakeCommerce],
) -> tuple[Bot, FakeCarrier, FakeCommerce]:
    carrier, carrier_url = fake_carrier
    commerce, commerce_url = fake_commerce
    settings = make_settings(
        sqlite_url,
        carrier={"mode": "webhook", "url": carrier_url, "secret": carrier.secret},
        commerce={"mode": "webhook", "url": commerce_url, "secret": commerce.secret},
    )
    return await make_bot(settings), carrier, commerce


async def card(bot: Bot, handle: str) -> dict[str, Any]:
    for group in ("aftersales", "ops"):
        for message in await bot.cards(group):
            if message["handle"] == handle:
                return message
    raise AssertionError(f"no card {handle}")


def field(message: dict[str, Any], label: str) -> str:
    return str(next(f["value"] for f in message["card"]["fields"] if f["label"] == label))


async def test_shipped_refund_is_intercepted_then_refunded_without_a_click(
    wired: tuple[Bot, FakeCarrier, FakeCommerce],
) -> None:
    bot, carrier, commerce = wired
    event = make_refund(data_shipping=SHIPPED)
    assert (await bot.post_event(event))[0] == 202
    await bot.app[PROCESSOR].run_once()
    # Requested inside the processing of the refund event itself, before any dispatching.
    async with bot.svc.tx() as tx:
        refund = await tx.cases.by_case_id(CaseKind.REFUND, event["data"]["refund_id"])
        intercept = await tx.cases.by_case_id(CaseKind.INTERCEPT, "SF:SF1234567890")
        assert refund is not None
        assert intercept is not None
        assert (refund.state, intercept.state) == ("waiting_intercept", "requested")
        queued = await tx.outbox.pending_for_case(intercept.id, "carrier.intercept")
    assert [item.id for item in queued] == [KEY]
    await bot.drain()
    (request,) = carrier.requests
    assert request["idempotency_key"] == KEY
    assert request["data"]["refund_ids"] == [event["data"]["refund_id"]]
    assert request["data"]["order_id"] == "T88001"
    assert carrier.bad_signatures == 0
    x1 = await card(bot, "X1")
    assert x1["state"] == "sent"
    assert [b["key"] for b in x1["card"]["buttons"]] == ["intercepted", "intercept_failed"]
    assert field(x1, "申请").startswith("规则 shipped-intercept · ")
    assert field(await card(bot, "R1"), "拦截") == "X1 · 拦截中 · 等快递结果"

    assert (await bot.post_event(result("intercepted", "拦截成功，快件退回中")))[0] == 202
    await bot.drain()
    r1 = await card(bot, "R1")
    assert r1["state"] == "refunded"
    assert field(r1, "拦截") == "X1 · 拦截成功"
    (approved,) = commerce.performed("approve_refund")
    assert approved["data"]["refund_id"] == event["data"]["refund_id"]
    x1 = await card(bot, "X1")
    assert x1["state"] == "intercepted"
    assert x1["card"]["buttons"] == []
    assert "✅ 快件退回中，挽回 ¥128.00，退款自动继续" in x1["card"]["lines"]
    assert len(carrier.requests) == 1
    async with bot.svc.tx() as tx:
        actors = set((await tx.session.scalars(select(AuditEntry.actor))).all())
    assert actors <= {"platform", "rule:shipped-intercept", "carrier", "commerce"}
    # Decided when the carrier's answer released it: the digest counts its deadline as met.
    async with bot.svc.tx() as tx:
        refund = await tx.cases.by_case_id(CaseKind.REFUND, event["data"]["refund_id"])
        assert refund is not None
        assert (refund.decided_at, refund.decided_by) == (tx.now, "carrier")


async def test_failed_intercept_sends_the_refund_to_the_return_flow(
    wired: tuple[Bot, FakeCarrier, FakeCommerce],
) -> None:
    bot, _, commerce = wired
    await bot.refund(data_shipping=SHIPPED)
    await bot.post_event(result("failed", "快件已派送，拦截失败"))
    await bot.drain()
    r1 = await card(bot, "R1")
    assert r1["state"] == "waiting_return"
    assert field(r1, "拦截") == "X1 · 拦截失败"
    x1 = await card(bot, "X1")
    assert x1["state"] == "intercept_failed"
    assert "快件已派送，拦截失败" in field(x1, "结果")
    assert "退款已转入退货流程：等买家寄回" in x1["card"]["lines"]
    assert commerce.performed("approve_refund") == []


async def test_no_carrier_answer_reminds_then_escalates(
    wired: tuple[Bot, FakeCarrier, FakeCommerce],
) -> None:
    bot, _, _ = wired
    await bot.refund(data_shipping=SHIPPED)
    bot.clock.advance(hours=1, minutes=59)
    await bot.drain()
    assert await bot.texts("ops") == []
    bot.clock.advance(minutes=1)
    await bot.drain()
    (reminder,) = await bot.texts("ops")
    assert "⏰ 拦截 X1（顺丰 SF1234567890）已 2 小时没有快递反馈" in reminder
    assert "95338" in reminder
    assert reminder.startswith("@agent1 @agent2 ")
    assert (await card(bot, "X1"))["state"] == "sent"
    bot.clock.advance(hours=2)
    await bot.drain()
    reminder, escalation = await bot.texts("ops")
    assert "🔺 拦截 X1（顺丰 SF1234567890）已 4 小时没有快递反馈，已升级主管跟进" in escalation
    assert escalation.startswith("@sup1 @sup2 @admin1 ")
    x1 = await card(bot, "X1")
    assert x1["state"] == "overdue"
    assert x1["card"]["mentions"] == ["sup1", "sup2", "admin1"]
    bot.clock.advance(hours=10)
    await bot.drain()
    assert len(await bot.texts("ops")) == 2
    # A late answer still settles it, and the refund goes on.
    await bot.post_event(result("returned", "快件已退回发件人"))
    await bot.drain()
    assert (await card(bot, "X1"))["state"] == "intercepted"
    assert (await card(bot, "R1"))["state"] == "refunded"


async def test_an_answer_in_time_cancels_the_reminder(
    wired: tuple[Bot, FakeCarrier, FakeCommerce],
) -> None:
    bot, _, _ = wired
    await bot.refund(data_shipping=SHIPPED)
    bot.clock.advance(hours=1)
    await bot.post_event(result("intercepted"))
    await bot.drain()
    bot.clock.advance(hours=5)
    await bot.drain()
    assert await bot.texts("ops") == []


async def test_the_carriers_immediate_answer_settles_it(
    wired: tuple[Bot, FakeCarrier, FakeCommerce],
) -> None:
    bot, carrier, _ = wired
    carrier.status = "intercepted"
    await bot.refund(data_shipping=SHIPPED)
    assert (await card(bot, "R1"))["state"] == "refunded"
    carrier.refuse["SF999"] = "快件已签收"
    await bot.refund(data_shipping={**SHIPPED, "tracking_no": "SF999"})
    assert (await card(bot, "R2"))["state"] == "waiting_return"
    assert "快件已签收" in field(await card(bot, "X2"), "结果")


async def test_carrier_outage_retries_then_shows_resubmit_and_a_person_resubmits(
    wired: tuple[Bot, FakeCarrier, FakeCommerce],
) -> None:
    bot, carrier, _ = wired
    carrier.fail_next = 100
    await bot.refund(data_shipping=SHIPPED)
    for _ in range(6):
        bot.clock.advance(minutes=2)
        await bot.drain()
    assert carrier.effects == {}
    assert len(carrier.requests) == 4
    x1 = await card(bot, "X1")
    assert x1["state"] == "submit_error"
    assert any("未能提交给快递" in line for line in x1["card"]["lines"])
    assert next(b["key"] for b in x1["card"]["buttons"]) == "intercept"
    assert (await card(bot, "R1"))["state"] == "waiting_intercept"
    assert any("X1 的快递拦截申请多次失败" in t for t in await bot.texts("ops"))
    carrier.fail_next = 0
    _, answer = await bot.click("agent1", x1["id"], "intercept", group="ops")
    assert answer["ok"], answer
    assert "已重新提交拦截 X1（第 2 次）" in answer["reply"]["text"]
    await bot.drain()
    assert list(carrier.effects) == [KEY.replace(":1", ":2")]
    assert (await card(bot, "X1"))["state"] == "sent"


async def test_a_person_records_the_carriers_answer_from_the_card(
    wired: tuple[Bot, FakeCarrier, FakeCommerce],
) -> None:
    bot, _, _ = wired
    # Within agent2's refund limit (¥50): the refund goes on at once.
    await bot.refund(data_shipping=SHIPPED, data_amount="30.00", data_order_amount="30.00")
    x1 = await card(bot, "X1")
    _, answer = await bot.click("agent2", x1["id"], "intercepted", group="ops")
    assert answer["ok"], answer
    await bot.drain()
    assert (await card(bot, "R1"))["state"] == "refunded"
    assert "人工确认拦截成功（agent2" in field(await card(bot, "X1"), "结果")
    # The carrier's later push agrees: nothing more happens.
    await bot.post_event(result("intercepted"))
    await bot.drain()
    assert not [t for t in await bot.texts("ops") if "快递反馈" in t]
    reply = await bot.say("agent1", "拦截失败 X1 快递说已派送", group="ops")
    assert not reply["ok"]
    assert "X1 已经是「拦截成功」" in reply["reply"]["text"]


async def test_a_contradicting_late_result_is_flagged(
    wired: tuple[Bot, FakeCarrier, FakeCommerce],
) -> None:
    bot, _, _ = wired
    await bot.refund(data_shipping=SHIPPED)
    assert (await bot.say("sup1", "拦截成功 X1 电话确认", group="ops"))["ok"]
    await bot.post_event(result("failed", "已派送"))
    await bot.drain()
    (warning,) = [t for t in await bot.texts("ops") if t.startswith("@") and "快递反馈" in t]
    assert "X1：快递反馈「拦截失败」，与已登记的「拦截成功」不一致" in warning
    assert (await card(bot, "X1"))["state"] == "intercepted"


async def test_intercept_command_on_a_reviewed_shipped_refund(
    wired: tuple[Bot, FakeCarrier, FakeCommerce],
) -> None:
    bot, carrier, _ = wired
    # Partial refund of a shipped order: the rules send it to review, not to the carrier.
    r1 = await bot.refund(data_shipping=SHIPPED, data_amount="30.00")
    assert r1["state"] == "awaiting_review"
    assert [b["key"] for b in r1["card"]["buttons"]] == [
        "approve",
        "reject",
        "claim",
        "intercept",
        "templates",
    ]
    assert carrier.requests == []
    _, answer = await bot.click("agent1", r1["id"], "intercept")
    assert answer["ok"], answer
    assert "已向顺丰申请拦截 SF1234567890（X1）" in answer["reply"]["text"]
    assert "intercept" not in [b["key"] for b in answer["message"]["card"]["buttons"]]
    again = await bot.say("agent2", "intercept r1")
    assert "R1 的包裹已在拦截（X1）" in again["reply"]["text"]
    await bot.drain()
    assert len(carrier.requests) == 1
    assert (await card(bot, "R1"))["state"] == "awaiting_review"
    assert field(await card(bot, "X1"), "申请").startswith("agent1（命令）")
    shown = (await bot.say("fin1", "查 X1", group="ops"))["reply"]["text"]
    assert "【拦截 X1 · 顺丰 SF1234567890】快递已受理 · 等待拦截结果" in shown
    assert "关联退款：R1 · ¥30.00" in shown


async def test_intercepting_an_unshipped_order_stops_the_shipment(
    make_bot: BotFactory,
    sqlite_url: str,
    fake_carrier: Served[FakeCarrier],
    fake_commerce: Served[FakeCommerce],
) -> None:
    carrier, carrier_url = fake_carrier
    commerce, commerce_url = fake_commerce
    settings = make_settings(
        sqlite_url,
        carrier={"mode": "webhook", "url": carrier_url, "secret": carrier.secret},
        commerce={"mode": "webhook", "url": commerce_url, "secret": commerce.secret},
        rules=[{"name": "all-review", "actions": ["require_review"]}],
    )
    bot = await make_bot(settings)
    await bot.refund(data_shipping={"status": "unshipped"})
    reply = await bot.say("agent1", "拦截 R1")
    assert reply["ok"], reply
    assert "R1 还没有发货，不用快递拦截：已通知仓库截单" in reply["reply"]["text"]
    await bot.drain()
    (stopped,) = commerce.performed("stop_shipment")
    assert stopped["idempotency_key"].startswith("commerce.stop_shipment:refund:")
    assert carrier.requests == []
    assert field(await card(bot, "R1"), "截单") == "✅ 已截单"
    again = await bot.say("agent2", "拦截 R1")
    assert "R1 已经在截单：✅ 已截单" in again["reply"]["text"]
    await bot.drain()
    assert len(commerce.performed("stop_shipment")) == 1


async def test_the_rules_stop_shipment_result_shows_on_the_card(
    wired: tuple[Bot, FakeCarrier, FakeCommerce],
) -> None:
    bot, _, commerce = wired
    commerce.refuse["stop_shipment"] = "仓库已出库，无法截单"
    r1 = await bot.refund(data_shipping={"status": "unshipped"})
    await bot.drain()
    r1 = await card(bot, "R1")
    assert field(r1, "截单") == "❌ 截单失败：仓库已出库，无法截单"
    # The automatic refund waited for the stop: it failed, so nothing was sent; a person decides.
    assert r1["state"] == "awaiting_review"
    assert commerce.performed("approve_refund") == []


async def test_intercepting_a_delivered_parcel_is_explained(
    wired: tuple[Bot, FakeCarrier, FakeCommerce],
) -> None:
    bot, carrier, _ = wired
    await bot.refund()
    reply = await bot.say("agent1", "拦截 R1")
    assert not reply["ok"]
    assert "R1 的包裹已签收（顺丰 SF1234567890），快递无法拦截" in reply["reply"]["text"]
    assert "仅退款按已收货审核" in reply["reply"]["text"]
    await bot.drain()
    assert carrier.requests == []
    assert not [c for c in await bot.cards("ops") if c["handle"].startswith("X")]


async def test_intercept_flow_on_both_databases(
    make_bot: BotFactory,
    db_url: str,
    fake_carrier: Served[FakeCarrier],
) -> None:
    carrier, url = fake_carrier
    settings = make_settings(
        db_url, carrier={"mode": "webhook", "url": url, "secret": carrier.secret}
    )
    bot = await make_bot(settings)
    await bot.refund(data_shipping=SHIPPED)
    await bot.refund(data_shipping=SHIPPED, data_order_id="T88002")
    assert len(carrier.requests) == 1
    x1 = await card(bot, "X1")
    assert field(x1, "关联退款") == "R1、R2 · ¥256.00"
    await bot.post_event(result("intercepted"))
    await bot.drain()
    # commerce mode "none": the approved refunds wait for a person to refund by hand.
    assert {(await card(bot, h))["state"] for h in ("R1", "R2")} == {"manual_refund"}


async def test_a_shipped_refund_without_tracking_number_is_called_out(
    wired: tuple[Bot, FakeCarrier, FakeCommerce],
) -> None:
    bot, carrier, _ = wired
    r1 = await bot.refund(data_shipping={"status": "shipped"})
    assert r1["state"] == "waiting_intercept"
    assert "intercept" in [b["key"] for b in r1["card"]["buttons"]]
    (notice,) = [t for t in await bot.texts() if t.startswith("⚠")]
    assert "R1 显示已发货但没有运单号，无法自动拦截：补充运单号后输入「拦截 R1」" in notice
    reply = await bot.say("agent1", "拦截 R1")
    assert not reply["ok"]
    assert "没有运单号，无法拦截" in reply["reply"]["text"]
    assert carrier.requests == []


async def test_tracking_we_hold_decides_where_the_goods_are(
    wired: tuple[Bot, FakeCarrier, FakeCommerce],
) -> None:
    bot, carrier, _ = wired
    at = bot.clock.now().isoformat()
    await bot.post_event(
        {
            "id": "evt_delivered_scan",
            "type": "shipment.tracking",
            "occurred_at": at,
            "data": {
                "carrier": "SF",
                "tracking_no": "SF1234567890",
                "order_id": "T88001",
                "status": "delivered",
                "at": at,
            },
        }
    )
    await bot.refund(data_shipping=SHIPPED)
    (notice,) = [t for t in await bot.texts() if t.startswith("⚠")]
    assert "R1 的包裹轨迹显示已签收（顺丰 SF1234567890），无法拦截" in notice
    assert carrier.requests == []
    reply = await bot.say("agent1", "拦截 R1")
    assert "已签收（顺丰 SF1234567890 · 11-23 10:00 签收）" in reply["reply"]["text"]


async def test_intercept_on_an_intercept_case_reports_its_state(
    wired: tuple[Bot, FakeCarrier, FakeCommerce],
) -> None:
    bot, _, _ = wired
    await bot.refund(data_shipping=SHIPPED)
    reply = await bot.say("agent1", "拦截 X1", group="ops")
    assert reply["reply"]["text"].startswith("X1：快递已受理 · 等待拦截结果（快递 快递受理")
    await bot.post_event(result("failed", "已派送"))
    await bot.drain()
    reply = await bot.say("agent1", "拦截 X1", group="ops")
    assert not reply["ok"]
    assert "X1 已拦截失败（已派送）：退款按退货流程处理" in reply["reply"]["text"]


async def test_intercepts_and_money_saved_in_the_digest(
    wired: tuple[Bot, FakeCarrier, FakeCommerce],
) -> None:
    bot, _, _ = wired
    assert (await bot.post_event(make_refund(data_shipping=SHIPPED)))[0] == 202
    await bot.drain()
    assert (await bot.post_event(result("intercepted", "拦截成功")))[0] == 202
    await bot.drain()
    async with bot.svc.tx() as tx:
        # Intercept cases go to the group that takes kind "intercept": here the ops group.
        notice = await digest.build(tx, "ops", digest.span_for(bot.svc, "", tx.now))
    fields = {f.label: f.value for f in notice.fields}
    assert fields["拦截"] == "1 单，成功 1，失败 0，挽回 ¥128.00"
    assert "物流：物流异常 0 起" in notice.lines
