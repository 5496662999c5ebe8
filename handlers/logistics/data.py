"""The typed shape of an anomaly case's `case.data`: the parcel and its problem, what the parcel
last showed, the refund and intercept linked to it, and how it ended.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import PlainSerializer

from handlers.case_data import CaseData, InterceptShown, Stored
from handlers.logistics.machine import Anomaly


def _iso(at: datetime) -> str:
    return at.isoformat()


# Stored as `datetime.isoformat()` (an offset such as +00:00, never "Z"), as the rows hold it.
IsoTime = Annotated[datetime, PlainSerializer(_iso, return_type=str)]


class Scan(Stored):
    """The parcel's newest scan when the anomaly was last seen."""

    at: IsoTime
    description: str = ""


class RefundLink(Stored):
    """The order's refund when the anomaly was raised."""

    pk: int
    handle: str


class Recovery(Stored):
    """The scan that showed the parcel moving again."""

    at: IsoTime
    status: str
    description: str = ""


class AnomalyData(CaseData):
    """One parcel and problem."""

    anomaly: Anomaly
    carrier: str
    tracking_no: str
    count: int = 1
    status: str = ""
    detail: str | None = None
    scan: Scan | None = None
    seen_at: IsoTime | None = None
    refund: RefundLink | None = None
    recovered: Recovery | None = None
    ignore_reason: str | None = None
    intercept: InterceptShown | None = None
