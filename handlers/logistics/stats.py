"""Digest inputs for parcels over a date range: intercepts tried / succeeded / failed, money
saved, anomalies by kind and carrier (tried by request time, outcomes by settle time).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from handlers.context import Tx
from handlers.intercept.machine import InterceptState
from handlers.logistics.carriers import carrier_name
from handlers.logistics.machine import KIND_TEXT
from handlers.money import format_fen
from storage.enums import CaseKind
from storage.models import Case

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class LogisticsStats:
    intercepts_tried: int = 0
    intercepts_succeeded: int = 0
    intercepts_failed: int = 0
    money_saved_fen: int = 0
    anomalies: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def anomalies_by_kind(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for (kind, _), n in self.anomalies.items():
            counts[kind] += n
        return dict(counts)

    @property
    def anomalies_by_carrier(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for (_, carrier), n in self.anomalies.items():
            counts[carrier] += n
        return dict(counts)

    def lines(self) -> list[str]:
        """The digest's parcel section, in the team's words."""
        lines = [
            f"拦截 {self.intercepts_tried} 单，成功 {self.intercepts_succeeded}，"
            f"失败 {self.intercepts_failed}，挽回 {format_fen(self.money_saved_fen)}"
        ]
        total = sum(self.anomalies.values())
        if not total:
            return [*lines, "物流异常 0 起"]
        kinds = "、".join(
            f"{KIND_TEXT.get(k, k)} {n}"
            for k, n in sorted(self.anomalies_by_kind.items(), key=lambda kv: -kv[1])
        )
        carriers = "、".join(
            f"{carrier_name(c)} {n}"
            for c, n in sorted(self.anomalies_by_carrier.items(), key=lambda kv: -kv[1])
        )
        return [*lines, f"物流异常 {total} 起：{kinds}（{carriers}）"]


async def logistics_stats(
    tx: Tx, since: datetime, until: datetime, *, group_id: str | None = None
) -> LogisticsStats:
    """Counts for [since, until)."""

    def scoped(kind: CaseKind, column: InstrumentedAttribute[Any]) -> list[ColumnElement[bool]]:
        where = [Case.kind == kind.value, column >= since, column < until]
        if group_id is not None:
            where.append(Case.group_id == group_id)
        return where

    session = tx.session
    tried = await session.scalar(
        select(func.count()).where(*scoped(CaseKind.INTERCEPT, Case.created_at))
    )
    settled = await session.execute(
        select(Case.state, func.count(), func.coalesce(func.sum(Case.amount_fen), 0))
        .where(*scoped(CaseKind.INTERCEPT, Case.closed_at))
        .group_by(Case.state)
    )
    by_state = {str(state): (int(n), int(total)) for state, n, total in settled.all()}
    raised = await session.execute(
        select(Case.reason, func.count())
        .where(*scoped(CaseKind.ANOMALY, Case.created_at))
        .group_by(Case.reason)
    )
    anomalies: Counter[tuple[str, str]] = Counter()
    for reason, n in raised.all():
        kind, _, carrier = str(reason).partition("@")
        anomalies[(kind, carrier)] += int(n)
    succeeded, saved = by_state.get(InterceptState.INTERCEPTED.value, (0, 0))
    failed, _ = by_state.get(InterceptState.FAILED.value, (0, 0))
    return LogisticsStats(
        intercepts_tried=int(tried or 0),
        intercepts_succeeded=succeeded,
        intercepts_failed=failed,
        money_saved_fen=saved,
        anomalies=dict(anomalies),
    )
