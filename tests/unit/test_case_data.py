"""Typed case data writes back the JSON it read: same keys, same order, absent stays absent."""

from __future__ import annotations

from typing import Any

from handlers.case_data import CaseData
from handlers.intercept.data import InterceptData
from handlers.payout.data import PayoutData, Stamp
from handlers.refund.data import AmountRefused, Decision, RefundData

REFUND: dict[str, Any] = {
    "refund": {
        "refund_id": "RF1",
        "kind": "return_refund",
        "shipping": {"status": "shipped", "carrier": "SF", "tracking_no": "SF1", "x": 1},
        "buyer": {"nick": "t**1"},
        "item": {"title": "T恤"},
        "deadline_at": None,
    },
    "order_amount_fen": None,
    "unknown": [1, {"kept": True}],
    "commerce": {"sent": "k", "attempt": 2},
    "amount_change": {
        "from": 100,
        "to": 90,
        "order_from": None,
        "order_to": None,
        "approved": None,
        "outcome": "changed",
        "at": "2026-11-23T10:00:00+08:00",
    },
}


def test_case_data_round_trip_keeps_keys_values_and_order() -> None:
    dumped = RefundData.load(REFUND).dump()
    assert dumped == REFUND
    assert list(dumped) == list(REFUND)
    assert list(dumped["commerce"]) == ["sent", "attempt"]
    assert RefundData.load({}).dump() == {}


def test_case_data_defaults_read_but_are_not_written() -> None:
    data = RefundData.load({})
    assert (data.kind, data.commerce.attempt, data.stop_shipment, data.notes) == (
        "refund_only",
        1,
        "",
        [],
    )
    assert data.dump() == {}


def test_case_data_a_default_changed_in_place_is_written() -> None:
    data = RefundData.load({"rule": "r"})
    data.commerce.error = "超时"
    assert data.dump() == {"rule": "r", "commerce": {"error": "超时"}}


def test_case_data_set_fields_are_appended_and_dropped_ones_removed() -> None:
    data = RefundData.load(REFUND)
    data.decision = Decision(by="agent1", action="approve", at="t")
    data.commerce.drop("sent")
    data.drop("amount_change", "order_amount_fen")
    dumped = data.dump()
    assert list(dumped) == ["refund", "unknown", "commerce", "decision"]
    assert dumped["commerce"] == {"attempt": 2}
    assert dumped["decision"] == {"by": "agent1", "action": "approve", "at": "t"}


def test_intercept_data_round_trip() -> None:
    stored = {
        "carrier": "SF",
        "tracking_no": "SF1",
        "refunds": [{"pk": 1, "handle": "R1", "case_id": "RF1", "amount_fen": 100}],
        "result": {"result": "intercepted", "detail": "", "by": "carrier", "at": "t"},
    }
    data = InterceptData.load(stored)
    assert data.dump() == stored
    assert (data.attempt, data.refunds[0].handle, data.anomalies) == (1, "R1", [])


def test_case_data_set_to_none_is_left_out_unless_nullable() -> None:
    payout = PayoutData.load({"channel": "alipay", "error": "超时", "batch": None})
    payout.error = None
    payout.reference = None
    assert payout.dump() == {"channel": "alipay", "batch": None}
    refund = RefundData.load({"rule": "r"})
    refund.order_amount_fen = None
    assert refund.dump() == {"rule": "r", "order_amount_fen": None}
    assert AmountRefused(amount_fen=None, why="w").dump() == {"amount_fen": None, "why": "w"}
    assert Stamp(by="a", at="t").dump() == {"by": "a", "at": "t"}


def test_case_data_of_any_kind_reads_notes_and_material_version_and_keeps_the_rest() -> None:
    stored = {
        "payout": {"kind": "cashback", "x": 1},
        "material_version": 4,
        "notes": [{"by": "agent1", "at": "t", "text": "已催", "via": "wecom"}],
        "transfer": {"attempt": 1},
    }
    data = CaseData.load(stored)
    assert (data.material_version, data.notes[0].text) == (4, "已催")
    assert list(data.dump()) == list(stored)
    assert data.dump() == stored
    assert PayoutData.load(stored).dump() == stored
