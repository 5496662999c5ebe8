"""The typed shape of an anomaly case's `case.data`: read with `AnomalyData.of(case)`, changed by
attribute, written back with `dump()` as the same JSON keys and values the rows always held.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer

from handlers.logistics.machine import Anomaly
from storage.models import Case


def _iso(at: datetime) -> str:
    return at.isoformat()


# Stored as `datetime.isoformat()` (an offset such as +00:00, never "Z"), as the rows hold it.
IsoTime = Annotated[datetime, PlainSerializer(_iso, return_type=str)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Scan(_Part):
    """The parcel's newest scan when the anomaly was last seen."""

    at: IsoTime
    description: str = ""


class RefundLink(_Part):
    """The order's refund when the anomaly was raised."""

    pk: int
    handle: str


class InterceptLink(_Part):
    """How the intercept of the parcel shows on the anomaly's card (the intercept flow writes it)."""

    handle: str
    text: str


class Recovery(_Part):
    """The scan that showed the parcel moving again."""

    at: IsoTime
    status: str
    description: str = ""


class Note(_Part):
    """A note anyone wrote on the case (`备注 A3 …`)."""

    by: str
    at: IsoTime
    text: str


class AnomalyData(_Part):
    """One parcel and problem; the field order is the key order of a newly raised case."""

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
    intercept: InterceptLink | None = None
    notes: list[Note] = []

    @classmethod
    def of(cls, case: Case) -> AnomalyData:
        return cls.model_validate(case.data)

    def dump(self) -> dict[str, Any]:
        """The JSON to store: the keys read or set, none that were never there."""
        return self.model_dump(mode="json", exclude_unset=True, exclude_none=True)
