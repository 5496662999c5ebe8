"""The logistics watch: one record per parcel from its tracking scans, and the anomaly scan.

Exception / returned / rejected scans are raised as they arrive. Stalls (no pickup, no
update after pickup, stuck in transit, no movement = lost) are raised by the anomaly scan.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from handlers.config import LogisticsSettings
from handlers.context import Tx
from handlers.intercept.data import InterceptData
from handlers.logistics.carriers import parcel_key
from handlers.logistics.flow import raise_anomaly, recover
from handlers.logistics.machine import ORDER, RECOVER_ON_MOVEMENT, STALLS, Anomaly
from handlers.schema import Envelope, ShipmentTracking
from storage.enums import CaseKind
from storage.models import Parcel, Timer

log = logging.getLogger(__name__)

# The anomaly scan is a durable timer on a fixed grid, armed for the first grid point after
# some parcel's next check, so it survives restarts and fires once across instances.


@dataclass(frozen=True)
class Thresholds:
    no_pickup: timedelta
    no_update: timedelta
    stuck: timedelta
    lost: timedelta

    @classmethod
    def from_settings(cls, settings: LogisticsSettings) -> Thresholds:
        return cls(
            no_pickup=timedelta(hours=settings.no_pickup_h),
            no_update=timedelta(hours=settings.no_update_after_pickup_h),
            stuck=timedelta(hours=settings.stuck_in_transit_h),
            lost=timedelta(days=settings.lost_days),
        )


def deadlines(
    status: str, shipped_at: datetime | None, last_event_at: datetime, th: Thresholds
) -> dict[Anomaly, datetime]:
    """When each stall anomaly falls due for a parcel whose newest scan is (`status`, `last_event_at`)."""
    if status == "delivered":
        return {}
    if status == "created":
        return {Anomaly.NO_PICKUP: (shipped_at or last_event_at) + th.no_pickup}
    due = {Anomaly.LOST: last_event_at + th.lost}
    if status == "picked_up":
        due[Anomaly.NO_UPDATE] = last_event_at + th.no_update
    elif status in ("in_transit", "delivering"):
        due[Anomaly.STUCK] = last_event_at + th.stuck
    return due


def overdue(
    due: dict[Anomaly, datetime], flagged: set[Anomaly], now: datetime
) -> tuple[list[Anomaly], set[Anomaly]]:
    """(kinds to raise now, kinds settled for this stall); a lost parcel is not also 'stuck'."""
    late = {kind for kind, at in due.items() if at <= now and kind not in flagged}
    if Anomaly.LOST in late:
        return [Anomaly.LOST], late
    return sorted(late, key=ORDER.index), late


def next_check(due: dict[Anomaly, datetime], flagged: set[Anomaly]) -> datetime | None:
    return min((at for kind, at in due.items() if kind not in flagged), default=None)


def next_slot(at: datetime, interval_s: float) -> datetime:
    """The first point of the scan grid strictly after `at` (the same on every instance)."""
    step = timedelta(seconds=interval_s)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((at - epoch) // step + 1) * step


def _scan_key(scan: dict[str, Any]) -> tuple[str, str]:
    return str(scan.get("at", "")), str(scan.get("status", ""))


def _history(parcel: Parcel, scans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged = {_scan_key(s): s for s in [*parcel.scans, *scans]}
    return sorted(merged.values(), key=lambda s: str(s.get("at", "")), reverse=True)[:20]


async def on_tracking(tx: Tx, envelope: Envelope, data: ShipmentTracking) -> Parcel:
    """One tracking scan: update the parcel, raise alert statuses at once, re-arm the watch."""
    settings = tx.svc.settings.logistics
    at = data.at or envelope.occurred_at
    parcel, created = await tx.parcels.ensure(
        data.carrier, data.tracking_no, status=data.status, at=at, now=tx.now
    )
    scan = {"at": at.isoformat(), "status": data.status, "description": data.description[:200]}
    seen = _scan_key(scan) in {_scan_key(s) for s in parcel.scans}
    moved = not created and at > parcel.last_event_at
    latest = created or at >= parcel.last_event_at
    extra = data.model_extra or {}
    raw = extra.get("scans")
    history = [s for s in raw if isinstance(s, dict)] if isinstance(raw, list) else []
    parcel.scans = _history(parcel, [*history, scan])
    parcel.order_id = parcel.order_id or data.order_id
    parcel.shop = parcel.shop or envelope.shop
    parcel.platform = parcel.platform or envelope.platform
    parcel.source = str(extra.get("source", parcel.source or "event"))[:16]
    parcel.updated_at = tx.now
    if data.status == "created" or parcel.shipped_at is None:
        parcel.shipped_at = min(at, parcel.shipped_at or at)
    if data.status == "picked_up":
        parcel.picked_up_at = min(at, parcel.picked_up_at or at)
    if latest and not seen:
        parcel.status = data.status
        parcel.last_event_at = at
        parcel.description = data.description[:500]
    if moved:
        ended = RECOVER_ON_MOVEMENT if data.status != "exception" else STALLS
        await recover(tx, parcel, ended)
    if latest and not seen and data.status in settings.alert_statuses:
        kind = Anomaly(data.status)
        expected = kind in (Anomaly.RETURNED, Anomaly.EXCEPTION)
        if not (expected and await _being_intercepted(tx, parcel)):
            await raise_anomaly(tx, parcel, kind)
    await watch(tx, parcel, Thresholds.from_settings(settings), raise_due=False)
    return parcel


async def _being_intercepted(tx: Tx, parcel: Parcel) -> bool:
    """An intercepted parcel is expected to be held and sent back: those scans are no problem."""
    case = await tx.cases.by_case_id(
        CaseKind.INTERCEPT, parcel_key(parcel.carrier, parcel.tracking_no)
    )
    return case is not None and InterceptData.of(case).outcome != "failed"


async def watch(tx: Tx, parcel: Parcel, th: Thresholds, *, raise_due: bool) -> None:
    """Raise what is overdue (on a scan), then set the parcel's next check and arm the scan."""
    due = deadlines(parcel.status, parcel.shipped_at, parcel.last_event_at, th)
    episode = parcel.last_event_at.isoformat()
    flagged = {Anomaly(k) for k, seen in parcel.flags.items() if seen == episode}
    if raise_due:
        now_due, settled = overdue(due, flagged, tx.now)
        for kind in now_due:
            await raise_anomaly(tx, parcel, kind)
        if settled:
            parcel.flags = {**parcel.flags, **{k.value: episode for k in settled}}
            flagged |= settled
    parcel.next_check_at = next_check(due, flagged)
    if parcel.next_check_at is not None:
        await arm_scan(tx, parcel.next_check_at)


async def arm_scan(tx: Tx, due: datetime, *, round_: int = 0) -> None:
    """Make sure an anomaly scan runs on the first grid point after `due` (idempotent)."""
    interval = tx.svc.settings.logistics.scan_interval_s
    slot = tx.now if round_ else next_slot(max(due, tx.now), interval)
    name = f"{slot:%Y%m%dT%H%M%S}"
    await tx.timers.schedule(
        f"logistics_scan:{name}:{round_}" if round_ else f"logistics_scan:{name}",
        "logistics_scan",
        due_at=slot,
        now=tx.now,
        payload={"round": round_},
    )


async def run_scan(tx: Tx, timer: Timer) -> None:
    """The anomaly scan: raise what came due on the parcels whose check has come."""
    settings = tx.svc.settings.logistics
    th = Thresholds.from_settings(settings)
    parcels = await tx.parcels.due(tx.now, settings.scan_batch)
    for parcel in parcels:
        await watch(tx, parcel, th, raise_due=True)
        parcel.updated_at = tx.now
    if len(parcels) >= settings.scan_batch:
        await arm_scan(tx, tx.now, round_=int(timer.payload.get("round", 0)) + 1)
    earliest = await tx.parcels.earliest_check()
    if earliest is not None:
        await arm_scan(tx, earliest)
    log.info("anomaly scan %s checked %d parcels", timer.id, len(parcels))
