"""The ingest API's contract: signatures, the window, field errors, sizes, batch, cases, spec."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from integrations.signing import sign
from storage.models import Event
from tests.support.app import SECRET, Bot, make_refund


async def stored(bot: Bot) -> int:
    async with bot.svc.tx() as tx:
        return int(await tx.session.scalar(select(func.count()).select_from(Event)))


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing X-Refundops-Timestamp"),
        ({"X-Refundops-Timestamp": "T", "X-Refundops-Signature": "v1=00"}, "unix seconds"),
        ({"X-Refundops-Signature": "v1=00"}, "missing"),
    ],
)
async def test_missing_or_malformed_signature_is_401(
    bot: Bot, headers: dict[str, str], message: str
) -> None:
    resp = await bot.client.post("/api/v1/events", data=b"{}", headers=headers)
    assert resp.status == 401
    assert message in (await resp.json())["error"]
    assert await stored(bot) == 0


async def test_wrong_secret_stale_timestamp_and_tampered_body_are_401(bot: Bot) -> None:
    body = json.dumps(make_refund()).encode()
    for headers in (
        bot.headers(body, secret="not-the-secret"),
        bot.headers(body, skew=-301),
        bot.headers(body, skew=301),
        bot.headers(body + b" "),
    ):
        resp = await bot.client.post("/api/v1/events", data=body, headers=headers)
        assert resp.status == 401, headers
    ok = await bot.client.post("/api/v1/events", data=body, headers=bot.headers(body, skew=299))
    assert ok.status == 202
    assert await stored(bot) == 1


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (lambda e: e["data"].update(amount=12.5), "data.amount", "decimal string"),
        (lambda e: e["data"].update(amount="12.345"), "data.amount", "more than two decimals"),
        (lambda e: e["data"].pop("refund_id"), "data.refund_id", "Field required"),
        (lambda e: e["data"].update(kind="refund_everything"), "data.kind", "Input should be"),
        (
            lambda e: e["data"]["shipping"].update(status="lost"),
            "data.shipping.status",
            "Input should be",
        ),
        (lambda e: e.update(type="refund.exploded"), "type", "Input should be"),
        (lambda e: e.update(occurred_at="yesterday"), "occurred_at", "datetime"),
        (lambda e: e.update(occurred_at="2026-11-23T10:00:00"), "occurred_at", "timezone"),
        (lambda e: e.pop("id"), "id", "Field required"),
        (
            lambda e: e["data"].update(amount="200.00"),
            "data.order_amount",
            "smaller than the refund",
        ),
    ],
)
async def test_bad_bodies_are_400_naming_the_field(
    bot: Bot, mutate: Callable[[dict[str, Any]], object], field: str, message: str
) -> None:
    event = make_refund()
    mutate(event)
    status, answer = await bot.post_event(event)
    assert status == 400
    fields = {f["field"]: f["message"] for f in answer["fields"]}
    assert field in fields, answer
    assert message in fields[field], answer
    assert await stored(bot) == 0


async def test_non_json_and_non_object_bodies_are_400(bot: Bot) -> None:
    for body in (b"not json", b"[1,2]", '{"id": "\u00e9"'.encode(), b"\xff\xfe"):
        resp = await bot.client.post("/api/v1/events", data=body, headers=bot.headers(body))
        assert resp.status == 400, body
        assert (await resp.json())["fields"]
    assert await stored(bot) == 0


async def test_over_one_mebibyte_is_413(bot: Bot) -> None:
    event = make_refund(data_blob="x" * (1024 * 1024))
    body = json.dumps(event).encode()
    resp = await bot.client.post("/api/v1/events", data=io.BytesIO(body), headers=bot.headers(body))
    assert resp.status == 413
    assert "1048576 bytes" in (await resp.json())["error"]
    assert await stored(bot) == 0


async def test_all_event_types_are_accepted_and_unknown_fields_kept(bot: Bot) -> None:
    events = [
        make_refund(vendor={"trace": "abc"}, data_extra_flag=True),
        {
            "id": "u1",
            "type": "refund.updated",
            "occurred_at": "2026-11-23T11:00:00+08:00",
            "data": {"refund_id": "RF9"},
        },
        {
            "id": "c1",
            "type": "refund.cancelled",
            "occurred_at": "2026-11-23T11:00:00+08:00",
            "data": {"refund_id": "RF9"},
        },
        {
            "id": "x1",
            "type": "refund.closed",
            "occurred_at": "2026-11-23T11:00:00+08:00",
            "data": {"refund_id": "RF9", "status": "refunded"},
        },
        {
            "id": "s1",
            "type": "shipment.tracking",
            "occurred_at": "2026-11-23T11:00:00+08:00",
            "data": {
                "carrier": "SF",
                "tracking_no": "SF1",
                "order_id": "T1",
                "status": "in_transit",
                "at": "2026-11-23T11:00:00+08:00",
                "description": "快件到达【杭州转运中心】",
            },
        },
        {
            "id": "i1",
            "type": "intercept.result",
            "occurred_at": "2026-11-23T11:00:00+08:00",
            "data": {"carrier": "SF", "tracking_no": "SF1", "result": "intercepted"},
        },
        {
            "id": "p1",
            "type": "payout.requested",
            "occurred_at": "2026-11-23T11:00:00+08:00",
            "data": {
                "payout_id": "P1",
                "kind": "cashback",
                "order_id": "T1",
                "amount": "5.00",
                "payee": {"name": "王*", "account": "13800138000"},
                "reason": "活动返现",
                "requested_by": "agent1",
            },
        },
        {
            "id": "b1",
            "type": "buyer.message",
            "occurred_at": "2026-11-23T11:00:00+08:00",
            "data": {
                "refund_id": "RF9",
                "text": "什么时候退款？",
                "at": "2026-11-23T11:00:00+08:00",
            },
        },
    ]
    for event in events:
        status, answer = await bot.post_event(event)
        assert (status, answer["status"]) == (202, "accepted"), answer
    async with bot.svc.tx() as tx:
        first = await tx.events.get(events[0]["id"])
    assert first is not None
    assert first.body["vendor"] == {"trace": "abc"}
    assert first.body["data"]["extra_flag"] is True


async def test_batch_stores_all_or_names_every_bad_event(bot: Bot) -> None:
    good = [make_refund() for _ in range(3)]
    bad = make_refund(data_amount="x")
    status, answer = await bot.post_event({"events": [*good, bad, good[0]]}, "/api/v1/events/batch")
    assert status == 400
    assert [f["field"] for f in answer["fields"]] == ["events[3].data.amount"]
    assert await stored(bot) == 0
    status, answer = await bot.post_event({"events": [*good, good[0]]}, "/api/v1/events/batch")
    assert status == 202
    assert [r["status"] for r in answer["results"]] == ["accepted"] * 3 + ["duplicate"]
    status, answer = await bot.post_event(
        {"events": [make_refund() for _ in range(501)]}, "/api/v1/events/batch"
    )
    assert status == 400
    assert "at most 500" in answer["fields"][0]["message"]
    status, answer = await bot.post_event({"events": []}, "/api/v1/events/batch")
    assert status == 400
    assert answer["fields"][0]["field"] == "events"


async def test_case_api_by_handle_or_id_with_history(bot: Bot) -> None:
    card = await bot.refund(data_refund_id="RF20261123001")
    await bot.say("sup1", "通过 R1")
    status, case = await bot.get_case("R1")
    assert status == 200
    assert case["case_id"] == "RF20261123001"
    assert case["handle"] == "R1"
    assert case["kind"] == "refund"
    assert case["state"] == "approved"
    assert case["amount"] == "128.00"
    assert [(h["actor"], h["action"], h["to_state"]) for h in case["history"]] == [
        ("platform", "created", "new"),
        ("rule:received-review", "review", "awaiting_review"),
        ("sup1", "approve", "approved"),
    ]
    assert case["history"][2]["channel"] == "sandbox"
    assert (await bot.get_case(card["case_id"]))[1]["handle"] == "R1"
    assert (await bot.get_case("R404"))[0] == 404
    resp = await bot.client.get("/api/v1/cases/R1")
    assert resp.status == 401


async def test_openapi_document_describes_the_endpoints(bot: Bot) -> None:
    resp = await bot.client.get("/api/v1/openapi.json")
    spec = await resp.json()
    assert spec["openapi"].startswith("3.")
    assert set(spec["paths"]) == {
        "/api/v1/events",
        "/api/v1/events/batch",
        "/api/v1/cases/{case_id}",
        "/api/v1/cases",
    }
    schemas = spec["components"]["schemas"]
    assert "RefundRequested" in schemas
    union = schemas["Envelope"]["discriminator"]
    assert union["propertyName"] == "type"
    assert union["mapping"]["buyer.message"] == "#/components/schemas/BuyerMessageEvent"
    message = schemas["BuyerMessageEvent"]["properties"]["data"]["$ref"].rsplit("/", 1)[1]
    assert set(schemas[message]["required"]) == {"refund_id", "text"}


async def test_health_ready_and_metrics(bot: Bot) -> None:
    assert (await bot.client.get("/healthz")).status == 200
    ready = await bot.client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["database"] == "ok"
    event = make_refund()
    await bot.post_event(event)
    await bot.post_event(event)
    await bot.post_event({"bad": True})
    text = await (await bot.client.get("/metrics")).text()
    assert 'refundops_events_total{status="accepted"} 1.0' in text
    assert 'refundops_events_total{status="duplicate"} 1.0' in text
    assert 'refundops_events_total{status="rejected"} 1.0' in text
    assert "refundops_events_pending 1.0" in text
    assert 'refundops_outbox_depth{state="pending"} 0.0' in text
    assert sign(SECRET, 1, b"") not in text
