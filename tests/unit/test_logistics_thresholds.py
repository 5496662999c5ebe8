"""When a parcel becomes an anomaly: deadlines per status, what is overdue, the next check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from handlers.config import LogisticsSettings
from handlers.logistics.machine import Anomaly
from handlers.logistics.watch import Thresholds, deadlines, next_check, next_slot, overdue

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
TH = Thresholds.from_settings(LogisticsSettings())
H = timedelta(hours=1)


def test_thresholds_come_from_settings() -> None:
    th = Thresholds.from_settings(
        LogisticsSettings(
            no_pickup_h=12, no_update_after_pickup_h=36, stuck_in_transit_h=24, lost_days=3
        )
    )
    assert (th.no_pickup, th.no_update, th.stuck, th.lost) == (12 * H, 36 * H, 24 * H, 72 * H)
    assert Thresholds(24 * H, 48 * H, 48 * H, 120 * H) == TH


def test_deadlines_follow_the_newest_scan() -> None:
    assert deadlines("created", T0 - 2 * H, T0, TH) == {Anomaly.NO_PICKUP: T0 + 22 * H}
    assert deadlines("picked_up", T0, T0, TH) == {
        Anomaly.NO_UPDATE: T0 + 48 * H,
        Anomaly.LOST: T0 + 120 * H,
    }
    for status in ("in_transit", "delivering"):
        assert deadlines(status, T0, T0, TH) == {
            Anomaly.STUCK: T0 + 48 * H,
            Anomaly.LOST: T0 + 120 * H,
        }
    for status in ("exception", "returned", "rejected"):
        assert deadlines(status, T0, T0, TH) == {Anomaly.LOST: T0 + 120 * H}
    assert deadlines("delivered", T0, T0, TH) == {}


def test_nothing_is_overdue_one_second_early() -> None:
    due = deadlines("picked_up", T0, T0, TH)
    assert overdue(due, set(), T0 + 48 * H - timedelta(seconds=1)) == ([], set())
    assert overdue(due, set(), T0 + 48 * H) == ([Anomaly.NO_UPDATE], {Anomaly.NO_UPDATE})


def test_a_lost_parcel_is_not_also_reported_stuck() -> None:
    due = deadlines("in_transit", T0, T0, TH)
    raised, settled = overdue(due, set(), T0 + 6 * 24 * H)
    assert raised == [Anomaly.LOST]
    assert settled == {Anomaly.LOST, Anomaly.STUCK}


def test_flagged_kinds_are_not_raised_again() -> None:
    due = deadlines("in_transit", T0, T0, TH)
    assert overdue(due, {Anomaly.STUCK}, T0 + 50 * H) == ([], set())
    assert overdue(due, {Anomaly.STUCK}, T0 + 121 * H) == ([Anomaly.LOST], {Anomaly.LOST})


def test_next_check_is_the_earliest_unflagged_deadline() -> None:
    due = deadlines("in_transit", T0, T0, TH)
    assert next_check(due, set()) == T0 + 48 * H
    assert next_check(due, {Anomaly.STUCK}) == T0 + 120 * H
    assert next_check(due, {Anomaly.STUCK, Anomaly.LOST}) is None
    assert next_check(deadlines("delivered", T0, T0, TH), set()) is None


def test_scan_slots_are_a_shared_grid_strictly_ahead() -> None:
    assert next_slot(T0, 300) == T0 + timedelta(minutes=5)
    assert next_slot(T0 + timedelta(seconds=1), 300) == T0 + timedelta(minutes=5)
    assert next_slot(T0 + timedelta(minutes=4, seconds=59), 300) == T0 + timedelta(minutes=5)
    assert next_slot(T0 + timedelta(minutes=5), 300) == T0 + timedelta(minutes=10)
    assert next_slot(T0, 3600) == T0 + H
