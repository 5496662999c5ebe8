"""`refundops outbox requeue [--kind K] [--since T]`: dead-lettered deliveries sent again.

Only the database is touched, so this works while Redis is still away; the running instances
find the items on their next poll."""

from __future__ import annotations

import sys

from bot.settings import Settings
from handlers import dead_letter
from handlers.clock import SystemClock
from handlers.context import Services
from handlers.errors import UsageError
from storage.coordination import InProcessCoordination
from storage.db import Database


async def run_requeue(settings: Settings, kind: str, since: str) -> int:
    db = Database(settings.database.url)
    try:
        svc = Services(settings, db, SystemClock(), InProcessCoordination())
        async with svc.tx() as tx:
            since_at = dead_letter.parse_since(since, tx.now, svc.tz) if since else None
            done = await dead_letter.requeue(tx, kind, since_at)
    except UsageError as exc:
        print(f"✗ {exc.message}", file=sys.stderr)
        return 2
    finally:
        await db.dispose()
    print(f"✓ requeued {done.count} dead item(s)")
    for other, n in sorted(done.left.items()):
        print(f"  left dead: {n} × {other} (redo it on its case)")
    return 0
