"""`refundops export payouts|refunds`: read the period from the database, write CSV or xlsx."""

from __future__ import annotations

import asyncio
import sys
from datetime import date
from pathlib import Path

from bot.settings import Settings
from handlers import export
from handlers.clock import SystemClock
from handlers.context import Services
from handlers.money import format_fen
from storage import migrate
from storage.coordination import InProcessCoordination
from storage.db import Database


def run(
    settings: Settings,
    what: str,
    since: date,
    until: date,
    *,
    by: export.By = "requested",
    out: Path | None = None,
    fmt: str = "csv",
) -> int:
    """Write the CSV (UTF-8 with BOM, so spreadsheets read it) or the xlsx workbook to `out`,
    or to standard output."""
    if until < since:
        print(f"✗ --until {until} is before --since {since}", file=sys.stderr)
        return 2
    result = asyncio.run(_read(settings, what, since, until, by))
    if fmt == "xlsx":
        if out is None:
            export.write_xlsx(result, sys.stdout.buffer)
        else:
            with out.open("wb") as fh:
                export.write_xlsx(result, fh)
    elif out is None:
        export.write_csv(result, sys.stdout)
    else:
        with out.open("w", encoding="utf-8-sig", newline="") as fh:
            export.write_csv(result, fh)
    print(
        f"✓ {result.count} {what} {since}..{until} (by {by}), total {format_fen(result.fen)}"
        + (f" → {out}" if out else ""),
        file=sys.stderr,
    )
    return 0


async def _read(
    settings: Settings, what: str, since: date, until: date, by: export.By
) -> export.Export:
    db = Database(settings.database.url)
    try:
        if db.is_sqlite:
            await migrate.upgrade(db)
        svc = Services(settings, db, SystemClock(), InProcessCoordination())
        start, end = export.period(since, until, svc.tz)
        async with svc.tx() as tx:
            if what == "payouts":
                return await export.payouts(tx, start, end, by)
            return await export.refunds(tx, start, end, by)
    finally:
        await db.dispose()
