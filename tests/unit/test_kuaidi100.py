"""快递100 pushes: the signature, the state mapping, and the push as our tracking event."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from handlers.schema import ShipmentTracking, parse_event
from integrations.kuaidi100.fake import FakeKuaidi100
from integrations.kuaidi100.models import Push, carrier_code, tracking_status
from integrations.kuaidi100.signing import sign, verify


def test_sign_is_upper_case_md5_of_param_then_salt() -> None:
    # RFC 1321's well-known vector, split between param and salt to pin the order.
    assert sign("The quick brown fox jumps over the ", "lazy dog") == (
        "9E107D9D372BB6826BD81D3542A419D6"
    )
    assert sign("", "") == "D41D8CD98F00B204E9800998ECF8427E"


def test_verify_accepts_the_right_sign_only() -> None:
    param = '{"status":"polling"}'
    good = sign(param, "salt")
    assert verify(param, "salt", good)
    assert verify(param, "salt", good.lower())
    assert not verify(param, "other", good)
    assert not verify(param + " ", "salt", good)
    assert not verify(param, "", sign(param, ""))


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("0", "in_transit"),
        ("1", "picked_up"),
        ("2", "exception"),
        ("3", "delivered"),
        ("4", "returned"),
        ("5", "delivering"),
        ("14", "rejected"),
        ("6", "returned"),
        ("101", "created"),
        ("102", "created"),
        ("103", "picked_up"),
        ("1002", "in_transit"),
        ("501", "delivering"),
        ("301", "delivered"),
        ("201", "exception"),
        ("203", "rejected"),
        ("401", "returned"),
    ],
)
def test_states_map_to_tracking_statuses(state: str, status: str) -> None:
    assert tracking_status(state) == status


def test_company_codes_map_to_carrier_codes() -> None:
    assert carrier_code("shunfeng") == "SF"
    assert carrier_code("zhongtong") == "ZTO"
    assert carrier_code("yuantong") == "YTO"
    assert carrier_code("somethingnew") == "SOMETHINGNEW"


def test_push_becomes_one_tracking_event_for_the_newest_scan() -> None:
    fake = FakeKuaidi100()
    scans = [
        (datetime(2026, 11, 21, 2, 0, tzinfo=UTC), "1", "【杭州】快件已揽收"),
        (datetime(2026, 11, 21, 14, 30, tzinfo=UTC), "0", "快件到达【义乌转运中心】"),
    ]
    push = Push.model_validate_json(fake.param("shunfeng", "SF1234567890", "0", scans))
    raw = push.tracking(order_id="T88001", shop="flagship", platform="taobao")
    assert raw is not None
    envelope, data = parse_event(raw)
    assert isinstance(data, ShipmentTracking)
    assert (data.carrier, data.tracking_no, data.status) == ("SF", "SF1234567890", "in_transit")
    assert data.at == datetime(2026, 11, 21, 14, 30, tzinfo=UTC)
    assert data.description == "快件到达【义乌转运中心】"
    assert envelope.id == "kuaidi100:SF:SF1234567890:0:20261121223000"
    assert envelope.shop == "flagship"
    assert [s["status"] for s in raw["data"]["scans"]] == ["in_transit", "picked_up"]


def test_push_without_scans_records_nothing() -> None:
    param = json.dumps(
        {
            "status": "abort",
            "message": "3天查询无记录",
            "lastResult": {"com": "yunda", "nu": "4300", "state": 0, "data": []},
        }
    )
    assert Push.model_validate_json(param).tracking() is None
