"""202 means it will be applied: what the columns cannot hold is refused at the door (400
naming the field), an event that arrives before its refund waits for it (hours, keyed on
the refund id), and an event that finally fails is reported to the admin group."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from handlers import events
from handlers.context import Tx
from handlers.schema import Envelope, Inbound
from tests.support.app import Bot, BotFactory, make_refund, make_settings
from tests.support.payout import make_payout

ADMIN = "ops"


def tracking(**data: Any) -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": "shipment.tracking",
        "occurred_at": "2026-11-23T10:00:00+08:00",
        "data": {"carrier": "SF", "tracking_no": "SF1", "status": "in_transit", **data},
    }


def intercept_result(**data: Any) -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": "intercept.result",
        "occurred_at": "2026-11-23T10:00:00+08:00",
        "data": {"carrier": "SF", "tracking_no": "SF1", "result": "failed", **data},
    }


def about(refund_id: str, event_type: str, **data: Any) -> dict[str, Any]:
    return {
        "id": f"evt_{event_type}_{refund_id}",
        "type": event_type,
        "occurred_at": "2026-11-23T10:00:00+08:00",
        "shop": "flagship",
        "platform": "taobao",
        "data": {"refund_id": refund_id, **data},
    }


async def state_of(bot: Bot, event_id: str) -> str:
    async with bot.svc.tx() as tx:
        event = await tx.events.get(event_id)
        assert event is not None
        return str(event.state)


@pytest.fixture
async def db_bot(make_bot: BotFactory, db_url: str) -> Bot:
    return await make_bot(make_settings(db_url))


# Each event as (at the column's limit, one past it): the first is stored and applied on
# SQLite and PostgreSQL alike, the second refused at the door, naming the field.
AT_AND_PAST: list[tuple[str, Callable[[int], dict[str, Any]], int]] = [
    ("data.carrier", lambda n: tracking(carrier="C" * n), 32),
    ("data.tracking_no", lambda n: tracking(tracking_no="T" * n), 64),
    ("data.order_id", lambda n: tracking(order_id="O" * n), 128),
    ("data.carrier", lambda n: intercept_result(carrier="C" * n), 32),
    ("data.tracking_no", lambda n: intercept_result(tracking_no="T" * n), 64),
    ("data.requested_by", lambda n: make_payout(data_requested_by="r" * n), 64),
    (
        "data.payee.name",
        lambda n: make_payout(data_payee={"name": "名" * n, "account": "13800138000"}),
        128,
    ),
    ("data.order_id", lambda n: make_payout(data_order_id="O" * n), 128),
    ("data.payout_id", lambda n: make_payout(data_payout_id="P" * n), 128),
    (
        "data.shipping.carrier",
        lambda n: make_refund(data_shipping={"status": "shipped", "carrier": "C" * n}),
        32,
    ),
    (
        "data.shipping.tracking_no",
        lambda n: make_refund(
            data_shipping={"status": "shipped", "carrier": "SF", "tracking_no": "T" * n}
        ),
        64,
    ),
    ("shop", lambda n: make_refund(shop="s" * n), 128),
    ("platform", lambda n: make_refund(platform="p" * n), 32),
]


@pytest.mark.parametrize(("field", "build", "limit"), AT_AND_PAST)
async def test_strings_are_as_long_as_their_columns(
    db_bot: Bot, field: str, build: Callable[[int], dict[str, Any]], limit: int
) -> None:
    too_long = build(limit + 1)
    status, answer = await db_bot.post_event(too_long)
    assert status == 400, answer
    assert field in [f["field"] for f in answer["fields"]], answer
    at_limit = build(limit)
    status, answer = await db_bot.post_event(at_limit)
    assert (status, answer["status"]) == (202, "accepted"), answer
    await db_bot.drain()
    assert await state_of(db_bot, at_limit["id"]) == "processed"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (make_refund(data_amount="1e18", data_order_amount=None), "data.amount"),
        (make_refund(data_order_amount="100000000.01"), "data.order_amount"),
        (make_refund(data_amount="9223372036854775808"), "data.amount"),
        (make_payout(data_amount="1e18"), "data.amount"),
        (make_payout(data_amount="0.00"), "data.amount"),
        (make_refund(data_amount=" 12.00"), "data.amount"),
        (make_refund(data_deadline_at="9999-12-31T23:59:59-12:00"), "data.deadline_at"),
        (make_refund(occurred_at="1999-12-31T23:59:59+08:00"), "occurred_at"),
        (make_refund(occurred_at="2100-01-01T00:00:00Z"), "occurred_at"),
        (tracking(at="0001-01-01T00:00:00+08:00"), "data.at"),
        (about("RF1", "buyer.message", text="在吗", at="9999-01-01T00:00:00Z"), "data.at"),
        (make_refund(data_reason="尺码\x00不合适"), "data.reason"),
        (about("RF1", "refund.updated", return_tracking={"no": "\x00"}), "data.return_tracking.no"),
    ],
)
async def test_amounts_dates_and_nul_are_refused_at_the_door(
    db_bot: Bot, event: dict[str, Any], field: str
) -> None:
    status, answer = await db_bot.post_event(event)
    assert status == 400, answer
    assert field in [f["field"] for f in answer["fields"]], answer


async def test_the_largest_amount_is_stored_and_applied(db_bot: Bot) -> None:
    event = make_refund(data_amount="100000000.00", data_order_amount="100000000")
    status, answer = await db_bot.post_event(event)
    assert (status, answer["status"]) == (202, "accepted"), answer
    await db_bot.drain()
    assert await state_of(db_bot, event["id"]) == "processed"
    assert (await db_bot.get_case("R1"))[1]["amount"] == "100000000.00"


@pytest.mark.parametrize("gap", [{"seconds": 20}, {"hours": 3}])
async def test_a_cancellation_before_its_refund_leaves_it_cancelled(
    bot: Bot, gap: dict[str, float]
) -> None:
    refund = make_refund(data_shipping={"status": "unshipped"}, data_amount="40.00")
    refund_id = refund["data"]["refund_id"]
    cancel = about(refund_id, "refund.cancelled", detail="买家撤销")
    assert (await bot.post_event(cancel))[0] == 202
    await bot.drain()
    for _ in range(int(gap.get("hours", 0) * 6) or 4):
        await bot.later(seconds=gap.get("seconds", 0) / 4 + gap.get("hours", 0) * 600)
    assert (await bot.post_event(refund))[0] == 202
    await bot.drain()
    status, case = await bot.get_case(refund_id)
    assert status == 200
    assert case["state"] == "cancelled"
    assert [(h["actor"], h["action"]) for h in case["history"]] == [
        ("platform", "created"),
        ("platform", "cancel"),
    ]
    assert await state_of(bot, cancel["id"]) == "processed"
    await bot.later(minutes=30)
    assert (await bot.get_case(refund_id))[1]["state"] == "cancelled"


async def test_an_event_before_its_refund_is_applied_as_soon_as_the_refund_arrives(
    bot: Bot,
) -> None:
    refund = make_refund()
    refund_id = refund["data"]["refund_id"]
    message = about(refund_id, "buyer.message", text="什么时候退款？")
    update = about(refund_id, "refund.updated", reason="不想要了")
    for event in (message, update):
        assert (await bot.post_event(event))[0] == 202
    await bot.drain()
    await bot.later(seconds=40)
    assert await state_of(bot, message["id"]) == "pending"
    assert (await bot.post_event(refund))[0] == 202
    await bot.drain()  # no time passes: the refund's arrival makes them due
    assert await state_of(bot, message["id"]) == "processed"
    assert await state_of(bot, update["id"]) == "processed"
    assert any("什么时候退款" in line for line in await bot.texts())
    assert (await bot.get_case(refund_id))[1]["reason"] == "不想要了"


async def test_an_event_whose_refund_never_comes_is_reported_to_the_admin_group(
    bot: Bot,
) -> None:
    update = about("RF_NEVER", "refund.updated", reason="电话 13800138000")
    assert (await bot.post_event(update))[0] == 202
    await bot.drain()
    for _ in range(23):
        await bot.later(hours=1)
    assert await state_of(bot, update["id"]) == "pending"
    assert await bot.texts(ADMIN) == []
    await bot.later(hours=1, minutes=1)
    assert await state_of(bot, update["id"]) == "failed"
    (notice,) = await bot.texts(ADMIN)
    assert update["id"] in notice
    assert "refund.updated" in notice
    assert "24 小时" in notice
    assert "RF_NEVER" in notice
    assert "13800138000" not in notice


async def test_an_event_that_no_longer_parses_is_reported_at_once(bot: Bot) -> None:
    async with bot.svc.tx() as tx:
        await tx.events.add(
            event_id="evt_stored_before",
            type="payout.requested",
            shop="",
            platform="",
            occurred_at=tx.now,
            body=make_payout(id="evt_stored_before", data_amount="1e18"),
            now=tx.now,
        )
    await bot.drain()
    assert await state_of(bot, "evt_stored_before") == "failed"
    (notice,) = await bot.texts(ADMIN)
    assert "evt_stored_before" in notice
    assert "payout.requested" in notice
    assert "data.amount" in notice
    assert "13800138000" not in notice


async def test_an_event_that_keeps_failing_is_reported_after_its_last_try(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(_tx: Tx, _envelope: Envelope, _data: Inbound) -> None:
        raise RuntimeError("payee 13800138000 refused")

    monkeypatch.setitem(events.HANDLERS, "shipment.tracking", broken)
    event = tracking()
    assert (await bot.post_event(event))[0] == 202
    await bot.drain()
    for _ in range(5):
        await bot.later(minutes=1)
    assert await state_of(bot, event["id"]) == "failed"
    (notice,) = await bot.texts(ADMIN)
    assert event["id"] in notice
    assert "RuntimeError" in notice
    assert "13800138000" not in notice


async def test_the_same_refund_requested_twice_keeps_its_amount(bot: Bot) -> None:
    first = make_refund(data_amount="40.00", data_order_amount="128.00")
    again = make_refund(
        data_refund_id=first["data"]["refund_id"], data_amount="40.00", data_order_amount="128.00"
    )
    for event in (first, again):
        assert (await bot.post_event(event))[0] == 202
        await bot.drain()
    assert await state_of(bot, again["id"]) == "processed"
    assert (await bot.get_case("R1"))[1]["amount"] == "40.00"


@pytest.mark.parametrize(("literal", "field"), [("1e999", "vendor.n"), ("NaN", "body")])
async def test_numbers_json_columns_cannot_hold_are_refused(
    db_bot: Bot, literal: str, field: str
) -> None:
    event = json.dumps(make_refund(vendor={"n": 0})).replace('"n": 0', f'"n": {literal}')
    body = event.encode()
    resp = await db_bot.client.post("/api/v1/events", data=body, headers=db_bot.headers(body))
    assert resp.status == 400
    assert field in [f["field"] for f in (await resp.json())["fields"]]
