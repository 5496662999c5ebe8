"""The refund workflow on each path, with an injected clock: rules, reminders, deadlines."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.commerce.fake import FakeCommerce
from storage.models import Timer
from tests.support.app import Bot, BotFactory, make_settings
from tests.support.fakes import Served

DEADLINE_IN_8H = "2026-11-23T18:00:00+08:00"  # the fake clock starts at 10:00 +08:00


@pytest.fixture
async def shop(
    make_bot: BotFactory, sqlite_url: str, fake_commerce: Served[FakeCommerce]
) -> tuple[Bot, FakeCommerce]:
    fake, url = fake_commerce
    settings = make_settings(
        sqlite_url, commerce={"mode": "webhook", "url": url, "secret": fake.secret}
    )
    return await make_bot(settings), fake


async def card_of(bot: Bot, handle: str) -> dict[str, Any]:
    return next(c for c in await bot.cards() if c["handle"] == handle)


def field(card: dict[str, Any], label: str) -> str:
    return next((f["value"] for f in card["card"]["fields"] if f["label"] == label), "")


async def event(bot: Bot, type_: str, **data: Any) -> None:
    envelope = {
        "id": f"evt_{type_}_{data.get('refund_id')}_{bot.clock.now().timestamp()}_{len(data)}",
        "type": type_,
        "occurred_at": bot.clock.now().isoformat(),
        "data": data,
    }
    assert (await bot.post_event(envelope))[0] == 202
    await bot.drain()


async def test_path1_unshipped_is_refunded_and_stopped_without_anyone(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = shop
    card = await bot.refund(data_shipping={"status": "unshipped"}, data_amount="128.00")
    assert card["state"] == "refunded"
    assert field(card, "规则") == "unshipped-auto"
    assert field(card, "截单") == "✅ 已截单"
    assert field(card, "决定").startswith("规则 unshipped-auto 自动通过")
    assert len(fake.performed("approve_refund")) == 1
    assert len(fake.performed("stop_shipment")) == 1
    assert await bot.later(hours=2) == []


async def test_path1_above_the_cap_stops_shipment_and_waits_for_a_supervisor(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = shop
    card = await bot.refund(
        data_shipping={"status": "unshipped"}, data_amount="800.00", data_order_amount="800.00"
    )
    assert card["state"] == "awaiting_review"
    assert field(card, "规则") == "unshipped-review"
    assert len(fake.performed("stop_shipment")) == 1
    assert fake.performed("approve_refund") == []
    reply = await bot.say("agent1", "通过 R1")
    assert "已升级给主管" in reply["reply"]["text"]
    await bot.drain()
    assert (await card_of(bot, "R1"))["state"] == "escalated"
    reply = await bot.say("sup1", "通过 R1")
    await bot.drain()
    assert (await card_of(bot, "R1"))["state"] == "refunded"
    assert len(fake.performed("approve_refund")) == 1


async def test_stop_shipment_refused_by_the_warehouse_shows_on_the_card(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = shop
    fake.refuse["stop_shipment"] = "仓库已出库，无法截单"
    card = await bot.refund(
        data_shipping={"status": "unshipped"}, data_amount="30.00", data_order_amount="30.00"
    )
    assert field(card, "截单") == "❌ 截单失败：仓库已出库，无法截单"
    (notice,) = await bot.texts("ops")
    assert "R1 的截单失败（不会再试）：仓库已出库" in notice


async def test_goods_that_already_left_turn_the_refund_into_an_intercept(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    """The warehouse answers that the order already shipped: never a silent refund of goods on
    their way — the card says so, the refund is one of a shipped parcel (path 2) with the
    intercept offered, and the group is told at once."""
    bot, fake = shop
    fake.shipped["T88001"] = "已于 09:40 出库，顺丰 SF1234567890"
    card = await bot.refund(
        data_shipping={"status": "unshipped"}, data_amount="800.00", data_order_amount="800.00"
    )
    assert field(card, "截单") == "❌ 仓库已发货：已于 09:40 出库，顺丰 SF1234567890，需要拦截包裹"
    assert field(card, "物流").startswith("已发货")
    assert "intercept" in [b["key"] for b in card["card"]["buttons"]]
    (told,) = [t for t in await bot.texts() if "截单失败：仓库已发货" in t]
    assert "请拦截包裹" in told
    assert "退款已按未发货批准发出" not in told
    assert len(fake.performed("stop_shipment")) == 1
    assert fake.performed("approve_refund") == []


async def test_by_default_an_auto_refund_whose_goods_left_sends_no_money(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    """`[rules] refund_before_stop_max` is 0 unless set: every automatic refund of an unshipped
    order waits for 截单, so goods that already left never cost the money as well."""
    bot, fake = shop
    fake.shipped["T88001"] = "已出库"
    card = await bot.refund(data_shipping={"status": "unshipped"}, data_amount="128.00")
    assert card["state"] == "waiting_intercept"
    (told,) = [t for t in await bot.texts() if "截单失败：仓库已发货" in t]
    assert "退款没有发出" in told
    assert "退款已按未发货批准发出" not in told
    assert [r for r in fake.requests if r["action"] == "approve_refund"] == []


async def test_path3_review_reminds_then_escalates_then_is_approved(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, _fake = shop
    card = await bot.refund(data_amount="40.00", data_order_amount="128.00")
    assert card["state"] == "awaiting_review"
    assert field(card, "金额") == "¥40.00（订单 ¥128.00，部分退款）"
    assert await bot.later(minutes=29) == []
    (reminder,) = await bot.later(minutes=2)
    assert "R1（¥40.00）30 分钟无人响应" in reminder
    assert reminder.startswith("@agent1 @agent2 @sup1 @sup2 @admin1")
    (escalation,) = await bot.later(minutes=30)
    assert "R1 已 1 小时无人响应，升级主管跟进" in escalation
    assert escalation.startswith("@sup1 @sup2 @admin1")
    assert (await bot.say("agent2", "通过 R1"))["ok"]
    await bot.drain()
    assert (await card_of(bot, "R1"))["state"] == "refunded"
    assert await bot.later(hours=3) == []


async def test_claim_is_no_first_response_a_decision_is(shop: tuple[Bot, FakeCommerce]) -> None:
    bot, _ = shop
    await bot.refund()
    bot.clock.advance(minutes=10)
    await bot.say("agent1", "认领 R1")
    (reminder,) = await bot.later(minutes=21)
    assert reminder == "@agent1 ⏰ R1（¥128.00）30 分钟无人响应，请尽快处理"
    async with bot.svc.tx() as tx:
        case = await tx.cases.find("R1")
        assert case is not None
        assert case.first_response_at is None
    assert (await bot.say("sup1", "通过 R1"))["ok"]
    async with bot.svc.tx() as tx:
        case = await tx.cases.find("R1")
        assert case is not None
        assert case.first_response_at == bot.clock.now()
    assert await bot.later(hours=1) == []


async def test_escalated_approval_reminds_supervisors_then_admins(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, _ = shop
    await bot.refund(data_amount="128.00", data_deadline_at=None)
    await bot.say("agent1", "通过 R1")
    assert await bot.later(hours=3.9) == []
    (first,) = await bot.later(hours=0.2)
    assert "等待主管审批已超过 4 小时" in first
    assert first.startswith("@sup1 @sup2 @admin1 ")
    (second,) = await bot.later(hours=4)
    assert second.startswith("@admin1 ")
    assert "请管理员介入" in second


async def test_path4_return_tracking_receipt_qc_refund(shop: tuple[Bot, FakeCommerce]) -> None:
    bot, fake = shop
    card = await bot.refund(data_kind="return_refund", data_refund_id="RF4", data_deadline_at=None)
    assert card["state"] == "waiting_return"
    (reminder,) = await bot.later(hours=12.1)
    assert "R1 买家 12 小时未填写退货单号" in reminder
    await event(
        bot,
        "refund.updated",
        refund_id="RF4",
        return_status="shipped",
        return_tracking={"carrier": "YTO", "tracking_no": "YT123"},
    )
    assert (await card_of(bot, "R1"))["state"] == "returning"
    assert await bot.later(hours=13) == []
    await event(bot, "refund.updated", refund_id="RF4", return_status="received")
    card = await card_of(bot, "R1")
    assert card["state"] == "inspecting"
    assert next(b["text"] for b in card["card"]["buttons"]) == "质检通过 · 退款"
    (qc,) = await bot.later(hours=12.1)
    assert "R1 退货已签收 12 小时，请尽快质检并退款" in qc
    _, answer = await bot.click("agent1", card["id"], "approve")
    assert answer["ok"]
    assert "超出你的权限（¥50.00），已升级给主管" in answer["reply"]["text"]
    await bot.drain()
    assert (await card_of(bot, "R1"))["state"] == "escalated"
    await bot.say("sup1", "通过 R1")
    await bot.drain()
    assert (await card_of(bot, "R1"))["state"] == "refunded"
    assert len(fake.performed("approve_refund")) == 1


async def test_path4_warehouse_qc_events_decide(shop: tuple[Bot, FakeCommerce]) -> None:
    bot, fake = shop
    await bot.refund(
        data_kind="return_refund",
        data_refund_id="RFQ1",
        data_amount="30.00",
        data_order_amount="30.00",
    )
    await event(bot, "refund.updated", refund_id="RFQ1", return_status="received")
    await event(
        bot,
        "refund.updated",
        refund_id="RFQ1",
        return_status="qc_failed",
        qc_detail="吊牌已剪，有穿着痕迹",
    )
    card = await card_of(bot, "R1")
    assert card["state"] == "inspecting"
    assert "⚠ 仓库质检不通过 吊牌已剪，有穿着痕迹" in card["card"]["lines"]
    assert any("R1 仓库质检不通过：吊牌已剪" in t for t in await bot.texts())
    await bot.refund(
        data_kind="return_refund",
        data_refund_id="RFQ2",
        data_amount="30.00",
        data_order_amount="30.00",
    )
    await event(bot, "refund.updated", refund_id="RFQ2", return_status="qc_passed")
    assert (await card_of(bot, "R2"))["state"] == "refunded"
    assert field(await card_of(bot, "R2"), "决定").startswith("仓库 自动通过")
    assert len(fake.performed("approve_refund")) == 1


async def test_deadline_passes_unhandled(shop: tuple[Bot, FakeCommerce]) -> None:
    bot, _ = shop
    await bot.refund(data_refund_id="RFD", data_deadline_at=DEADLINE_IN_8H)
    await bot.say("agent2", "认领 R1")
    (six,) = [t for t in await bot.later(hours=2) if "⏳" in t]
    assert six.startswith("@agent2 ⏳ R1（¥128.00）距平台自动同意还剩 6 小时（11-23 18:00）")
    (one,) = [t for t in await bot.later(hours=5) if "⏳" in t]
    assert one.startswith("@agent2 @sup1 @sup2 @admin1 ⏳ R1")
    assert "还剩 1 小时" in one
    before = await card_of(bot, "R1")
    assert "剩 1 小时" in field(before, "平台时限")
    assert (before["card"]["alert"], before["card"]["pills"]) == (False, [])
    (passed,) = await bot.later(hours=1)
    # The supervisors were called on at T−1 h: the deadline passing calls on the assignee only.
    assert passed.startswith("@agent2 ⛔ R1（¥128.00）已过平台处理时限，平台可能已自动同意退款")
    late = await card_of(bot, "R1")
    assert field(late, "平台时限").endswith("（已超时）")
    assert late["card"]["alert"] is True
    assert late["card"]["tone"] == "danger"
    assert late["card"]["pills"] == [{"text": "已超时", "tone": "danger"}]
    await event(bot, "refund.closed", refund_id="RFD", status="refunded", detail="超时平台自动退款")
    closed = await card_of(bot, "R1")
    assert closed["state"] == "closed_by_platform"
    assert "平台：超时平台自动退款" in closed["card"]["lines"]
    assert (closed["card"]["alert"], closed["card"]["pills"]) == (False, [])
    async with bot.svc.tx() as tx:
        assert await tx.timers.pending_for_case(1) == []
    assert await bot.later(days=2) == []


async def test_case_arriving_inside_the_windows_warns_once_at_once(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, _ = shop
    await bot.refund(data_deadline_at="2026-11-23T10:40:00+08:00")
    (warning,) = await bot.texts()
    assert "距平台自动同意还剩 40 分钟" in warning
    assert await bot.later(minutes=20) == []
    texts = await bot.later(minutes=20)
    assert [t for t in texts if "⛔ R1" in t] == [texts[-1]]


async def test_cancelled_request_cancels_its_timers(shop: tuple[Bot, FakeCommerce]) -> None:
    bot, _ = shop
    await bot.refund(data_refund_id="RFC", data_deadline_at=DEADLINE_IN_8H)
    await event(bot, "refund.cancelled", refund_id="RFC", detail="买家撤销")
    card = await card_of(bot, "R1")
    assert card["state"] == "cancelled"
    assert card["card"]["buttons"] == []
    assert await bot.later(days=1) == []


async def test_timers_survive_a_restart_and_fire_once(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    first = await make_bot(make_settings(sqlite_url))
    await first.refund()
    await first.client.close()
    first.clock.advance(minutes=45)
    second = await make_bot(make_settings(sqlite_url))
    await second.drain()
    await second.drain()
    reminders = [t for t in await second.texts() if "30 分钟无人响应" in t]
    assert len(reminders) == 1
    third = await make_bot(make_settings(sqlite_url))
    await third.drain()
    assert len([t for t in await third.texts() if "30 分钟无人响应" in t]) == 1
    async with third.svc.tx() as tx:
        pending = await tx.timers.pending_for_case(1)
    assert [(t.kind, t.payload.get("stage")) for t in pending if isinstance(t, Timer)][:1] == [
        ("first_response", 2)
    ]


async def test_updated_deadline_moves_the_warnings(shop: tuple[Bot, FakeCommerce]) -> None:
    bot, _ = shop
    await bot.refund(data_refund_id="RFU", data_deadline_at=DEADLINE_IN_8H)
    await bot.say("agent1", "claim R1")
    await event(bot, "refund.updated", refund_id="RFU", deadline_at="2026-11-24T18:00:00+08:00")
    assert [t for t in await bot.later(hours=8.5) if "⏳" in t] == []
    warnings = [t for t in await bot.later(hours=17.5) if "⏳" in t]
    assert len(warnings) == 1
    assert "还剩 6 小时（11-24 18:00）" in warnings[0]
