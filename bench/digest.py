"""Digest over a large history: `python -m bench.digest --db sqlite|postgres --cases 1000000`.

Fills a fresh database with a year of refunds spread over four groups (most closed, some
open; in the audit log the rule's review and the first answer of every received-goods
refund, and escalations), then times the digest figures for one group's day
and for all groups, and the dashboard's 30-day range.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.settings import Settings
from handlers import digest
from handlers.clock import FakeClock
from handlers.context import Services
from storage import migrate
from storage.coordination import InProcessCoordination
from storage.db import Database
from storage.models import AuditEntry, Case

GROUPS = ["g1", "g2", "g3", "g4"]
REASONS = [
    "质量问题",
    "尺码不合适",
    "不想要了",
    "拍错了/多拍了",
    "少件/漏发",
    "发错货",
    "与商品描述不符",
]
END = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
PG_URL = os.environ.get(
    "REFUNDOPS_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/refundops_bench"
)


async def fresh_database(kind: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    admin = create_async_engine(
        PG_URL.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT"
    )
    name = PG_URL.rsplit("/", 1)[1]
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return PG_URL


def rows(n: int, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rnd = random.Random(seed)
    cases, audit = [], []
    span_s = 365 * 86400
    for i in range(1, n + 1):
        created = END - timedelta(seconds=rnd.randrange(span_s))
        open_case = created > END - timedelta(days=3) and rnd.random() < 0.5
        decided = created + timedelta(minutes=rnd.expovariate(1 / 25))
        path = rnd.choice([1, 1, 2, 3, 3, 3, 4])
        state = (
            "awaiting_review"
            if open_case
            else rnd.choice(["refunded"] * 8 + ["rejected", "cancelled"])
        )
        cases.append(
            {
                "id": i,
                "kind": "refund",
                "case_id": f"RF{i:09d}",
                "handle": f"R{i}",
                "state": state,
                "version": 3,
                "shop": "flagship",
                "platform": "taobao",
                "order_id": f"T{i}",
                "amount_fen": rnd.randrange(500, 50000),
                "group_id": GROUPS[i % len(GROUPS)],
                "assignee": "",
                "path": path,
                "reason": rnd.choice(REASONS),
                "deadline_at": created + timedelta(hours=48),
                "data": {},
                "created_at": created,
                "updated_at": decided,
                "first_response_at": created + timedelta(minutes=rnd.expovariate(1 / 12)),
                "closed_at": None if open_case else decided + timedelta(minutes=5),
                "last_actor": "sup1",
                "last_action": "approve",
                "decided_at": None if open_case else decided,
                "decided_by": rnd.choice(["rule:unshipped-auto", "agent1", "sup1"]),
            }
        )
        if path == 3:
            # The rule sent it to a person, who answered first (the first-response figure
            # and the per-person rows read these).
            audit.append(
                {
                    "case_pk": i,
                    "at": created,
                    "actor": "rule:received-review",
                    "action": "review",
                    "from_state": "new",
                    "to_state": "awaiting_review",
                    "channel": "",
                    "detail": {},
                }
            )
            audit.append(
                {
                    "case_pk": i,
                    "at": cases[-1]["first_response_at"],
                    "actor": rnd.choice(["agent1", "agent2", "sup1"]),
                    "action": rnd.choice(["reply", "approve", "approve", "reject"]),
                    "from_state": "awaiting_review",
                    "to_state": "approved",
                    "channel": "wecom",
                    "detail": {},
                }
            )
        if rnd.random() < 0.03:
            audit.append(
                {
                    "case_pk": i,
                    "at": created + timedelta(minutes=10),
                    "actor": "agent1",
                    "action": "escalate",
                    "from_state": "awaiting_review",
                    "to_state": "escalated",
                    "channel": "wecom",
                    "detail": {},
                }
            )
    return cases, audit


async def fill(db: Database, n: int) -> float:
    started = time.perf_counter()
    chunk = 20_000
    for start in range(0, n, chunk):
        cases, audit = rows(min(chunk, n - start), seed=start)
        for c in cases:
            c["id"] += start
            c["case_id"], c["handle"], c["order_id"] = (
                f"RF{c['id']:09d}",
                f"R{c['id']}",
                f"T{c['id']}",
            )
        for a in audit:
            a["case_pk"] += start
        async with db.begin() as s:
            await s.execute(insert(Case), cases)
            if audit:
                await s.execute(insert(AuditEntry), audit)
    async with db.begin() as s:
        await s.execute(text("ANALYZE"))
    return time.perf_counter() - started


async def timed(
    svc: Services, group: str | None, span: digest.Span, repeat: int = 5
) -> tuple[float, digest.Figures]:
    times, fig = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        async with svc.tx() as tx:
            fig = await digest.figures(tx, group, span)
        times.append(time.perf_counter() - started)
    assert fig is not None
    return statistics.median(times), fig


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--cases", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        url = await fresh_database(args.db, Path(workdir))
        db = Database(url)
        await migrate.upgrade(db)
        filled = await fill(db, args.cases)
        settings = Settings(
            database={"url": url}, groups=[{"id": g, "channel": "sandbox"} for g in GROUPS]
        )
        svc = Services(settings, db, FakeClock(END), InProcessCoordination())
        tz = digest.digest_tz(svc)
        yesterday = digest.Span.day(date(2026, 11, 23), tz)
        month = digest.Span.days(date(2026, 10, 25), date(2026, 11, 23), tz)
        one, fig = await timed(svc, "g1", yesterday)
        every, _ = await timed(svc, None, yesterday)
        ranged, _ = await timed(svc, None, month, repeat=3)
        await db.dispose()
    print(
        f"| {args.db} | {args.cases:,} cases (filled in {filled:.0f} s) | one group's day {one * 1000:.0f} ms "
        f"| all groups' day {every * 1000:.0f} ms | all groups, 30 days {ranged * 1000:.0f} ms |"
    )
    print(
        f"  (g1 on 11-23: {fig.new} new, {fig.closed} closed, {fig.pending} pending, "
        f"{fig.escalations} escalations, {fig.awaited} sent to a person, "
        f"{len(fig.people)} people's rows)"
    )


if __name__ == "__main__":
    asyncio.run(main())
