"""An anomaly case's data read into `AnomalyData` and written back as the very same JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from handlers.logistics.data import AnomalyData, Recovery, RefundLink, Scan
from handlers.logistics.machine import Anomaly
from storage.models import Case

STORED: dict[str, Any] = {
    "anomaly": "stuck",
    "carrier": "SF",
    "tracking_no": "SF100",
    "count": 2,
    "status": "in_transit",
    "detail": "运输中 50 小时没有物流更新（时限 48 小时）",
    "scan": {"at": "2026-11-18T17:30:00.250000+08:00", "description": "【杭州】已发出"},
    "seen_at": "2026-11-20T08:00:00+00:00",
    "refund": {"pk": 12, "handle": "R12"},
    "intercept": {"handle": "X3", "text": "拦截失败"},
    "ignore_reason": "买家已自提",
    "recovered": {"at": "2026-11-20T09:00:00+00:00", "status": "delivering", "description": ""},
    "notes": [{"by": "agent1", "at": "2026-11-20T08:05:00.000001+00:00", "text": "已催"}],
}


def case(data: dict[str, Any]) -> Case:
    return Case(id=7, kind="anomaly", handle="A7", state="open", data=data)


def test_anomaly_data_round_trips_every_key_unchanged() -> None:
    data = AnomalyData.of(case(STORED))
    assert data.anomaly is Anomaly.STUCK
    assert data.scan is not None
    assert data.scan.at == datetime(2026, 11, 18, 9, 30, 0, 250000, tzinfo=UTC)
    assert data.dump() == STORED
    assert list(data.dump()) == list(STORED)


def test_anomaly_data_writes_back_only_the_keys_it_had_or_was_given() -> None:
    raised = {"anomaly": "lost", "carrier": "ZTO", "tracking_no": "Z1", "count": 1}
    data = AnomalyData.of(case(raised))
    assert data.dump() == raised
    data.count += 1
    data.recovered = Recovery(
        at=datetime(2026, 11, 20, 17, 0, tzinfo=timezone(timedelta(hours=8))),
        status="in_transit",
        description="",
    )
    assert data.dump() == raised | {
        "count": 2,
        "recovered": {
            "at": "2026-11-20T17:00:00+08:00",
            "status": "in_transit",
            "description": "",
        },
    }


def test_anomaly_data_built_new_stores_what_a_raised_case_holds() -> None:
    at = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    data = AnomalyData(anomaly=Anomaly.RETURNED, carrier="SF", tracking_no="SF9", count=1)
    data.scan = Scan(at=at, description="")
    data.refund = RefundLink(pk=3, handle="R3")
    assert list(data.dump()) == ["anomaly", "carrier", "tracking_no", "count", "scan", "refund"]
    assert data.dump()["scan"] == {"at": "2026-11-20T08:00:00+00:00", "description": ""}


@pytest.mark.parametrize(
    "stored",
    [
        STORED | {"tracking": "SF100"},
        STORED | {"scan": {"at": "2026-11-18T17:30:00+08:00", "desc": "x"}},
    ],
)
def test_anomaly_data_keeps_keys_it_does_not_know(stored: dict[str, Any]) -> None:
    data = AnomalyData.of(case(stored))
    data.count += 1
    assert data.dump() == stored | {"count": 3}
    assert list(data.dump()) == list(stored)


@pytest.mark.parametrize(
    "stored",
    [
        STORED | {"anomaly": "late"},
        STORED | {"seen_at": "yesterday"},
        {k: v for k, v in STORED.items() if k != "carrier"},
    ],
)
def test_anomaly_data_refuses_wrong_values_and_missing_keys(stored: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AnomalyData.of(case(stored))
