"""待办 and 查 over many open cases: `python -m bench.queue --db sqlite|postgres --cases 100000`.

Fills a fresh database with open cases of every kind in one group — refunds to review (a
spread of amounts and deadlines), returns under way (one in fifty with a buyer waiting for an
answer), intercepts waiting on the carrier, payouts to approve, logistics anomalies — with the
keys 查 finds them by, then times the chat commands as a person types them (median of five).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from bench.digest import fresh_database
from bot.registry import commands
from bot.settings import Settings
from commands import ChatInput
from handlers.case_keys import search_keys
from handlers.clock import FakeClock
from handlers.context import Services
from storage import migrate
from storage.coordination import InProcessCoordination
from storage.db import Database
from storage.models import Case, CaseKey

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
GROUP = "aftersales"
STAFF = [
    {"id": "agent1", "roles": ["agent"], "refund_limit": "50"},
    {"id": "sup1", "roles": ["supervisor"], "refund_limit": "2000"},
    {"id": "fin1", "roles": ["finance"]},
    {"id": "admin1", "roles": ["admin"]},
]
NICKS = 5_000


def case_row(i: int, rnd: random.Random) -> dict[str, Any]:
    """One open case; its kind by `i`: 40% refunds to review, 20% returns, 20% intercepts,
    10% payouts, 10% anomalies."""
    slot = i % 10
    tracking = f"SF{i:010d}"
    refund: dict[str, Any] = {
        "kind": "refund_only",
        "shipping": {"status": "delivered", "carrier": "SF", "tracking_no": tracking},
        "buyer": {"nick": f"buyer{i % NICKS}"},
    }
    kind, state = "refund", "awaiting_review"
    data: dict[str, Any] = {"refund": refund}
    if slot in (4, 5):
        state = "waiting_return"
        if rnd.random() < 0.02:
            data["awaiting_reply"] = {"n": 1, "since": (NOW - timedelta(hours=1)).isoformat()}
    elif slot in (6, 7):
        kind, state, data = "intercept", "manual", {"carrier": "SF", "tracking_no": tracking}
    elif slot == 8:
        kind, state = "payout", "requested"
        data = {"payout": {"kind": "cashback", "payee": "138****8000", "requested_by": "agent1"}}
    elif slot == 9:
        kind, state = "anomaly", "open"
        data = {"anomaly": "stuck", "carrier": "SF", "tracking_no": tracking}
    prefix = {"refund": "R", "intercept": "X", "payout": "P", "anomaly": "A"}[kind]
    return {
        "id": i,
        "kind": kind,
        "case_id": f"{prefix}C{i:09d}",
        "handle": f"{prefix}{i}",
        "state": state,
        "version": 2,
        "shop": "flagship",
        "platform": "taobao",
        "order_id": f"T{i}",
        "amount_fen": rnd.randrange(500, 300_000),
        "group_id": GROUP,
        "assignee": "",
        "path": 3,
        "reason": "尺码不合适",
        "deadline_at": NOW + timedelta(minutes=rnd.randrange(-600, 2880))
        if kind == "refund"
        else None,
        "data": data,
        "created_at": NOW - timedelta(hours=rnd.randrange(1, 72)),
        "updated_at": NOW,
        "last_actor": "platform",
        "last_action": "created",
        "decided_by": "",
    }


async def fill(db: Database, n: int) -> float:
    started = time.perf_counter()
    rnd = random.Random(7)
    chunk = 20_000
    for start in range(1, n + 1, chunk):
        cases = [case_row(i, rnd) for i in range(start, min(start + chunk, n + 1))]
        keys = [
            {"case_pk": c["id"], "kind": kind, "value": value}
            for c in cases
            for kind, value in sorted(search_keys(c["data"]))
        ]
        async with db.begin() as s:
            await s.execute(insert(Case), cases)
            await s.execute(insert(CaseKey), keys)
    async with db.begin() as s:
        await s.execute(text("ANALYZE"))
    return time.perf_counter() - started


async def timed(svc: Services, user: str, typed: str, repeat: int = 5) -> tuple[float, str]:
    router = commands()
    chat = ChatInput(channel="sandbox", platform="sandbox", user=user, text=typed, group_id=GROUP)
    times, first = [], ""
    for _ in range(repeat):
        started = time.perf_counter()
        reply = await router.handle(svc, chat)
        times.append(time.perf_counter() - started)
        first = reply.text.splitlines()[0]
    return statistics.median(times), first


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--cases", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        url = await fresh_database(args.db, Path(workdir))
        db = Database(url)
        await migrate.upgrade(db)
        filled = await fill(db, args.cases)
        settings = Settings(
            database={"url": url},
            groups=[{"id": GROUP, "channel": "sandbox"}],
            staff=STAFF,
            demo=True,
        )
        svc = Services(settings, db, FakeClock(NOW), InProcessCoordination())
        print(f"{args.db}: {args.cases:,} open cases (filled in {filled:.0f} s)")
        for user, typed in (
            ("sup1", "待办 all"),
            ("sup1", "待办"),
            ("agent1", "待办"),
            ("sup1", "待办 超时"),
            ("sup1", "待办 买家"),
            ("sup1", "查 buyer42"),
            ("sup1", f"查 SF{args.cases // 2:010d}"),
            ("sup1", f"查 T{args.cases // 3}"),
            ("sup1", "查 nobody"),
        ):
            took, first = await timed(svc, user, typed)
            print(f"| {typed} ({user}) | {took * 1000:.0f} ms | {first[:48]} |")
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
