"""`refundops export payouts|refunds|alipay-batch`: read the period from the database, write
CSV or xlsx."""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import date
from pathlib import Path
from typing import IO, Any, Literal

from bot.settings import Settings
from handlers import export
from handlers.clock import SystemClock
from handlers.context import Services
from handlers.money import format_fen
from handlers.payout import alipay_file
from storage import migrate
from storage.coordination import InProcessCoordination
from storage.db import Database

WHAT = ("payouts", "refunds", "alipay-batch")
FULL_ACCOUNTS = (
    "⚠ 这个文件含完整的收款账号和姓名：只给财务，上传支付宝后删除。"
    "(This file holds full payee accounts: finance only; delete it once uploaded.)"
)


def run(
    settings: Settings,
    what: str,
    since: date | None,
    until: date | None,
    *,
    by: export.By = "requested",
    out: Path | None = None,
    fmt: str = "csv",
    lang: export.Lang = "zh",
) -> int:
    """Write the CSV (UTF-8 with BOM, so spreadsheets read it) or the xlsx workbook to `out`,
    or to standard output."""
    if what not in WHAT:
        print(f"✗ nothing called {what!r} to export: {' | '.join(WHAT)}", file=sys.stderr)
        return 2
    if what != "alipay-batch" and (since is None or until is None):
        print(f"✗ export {what} needs --since and --until", file=sys.stderr)
        return 2
    if since is not None and until is not None and until < since:
        print(f"✗ --until {until} is before --since {since}", file=sys.stderr)
        return 2
    if what == "alipay-batch":
        return _alipay(settings, since, until, out, fmt)
    assert since is not None
    assert until is not None
    result = asyncio.run(_read(settings, what, since, until, by))
    if fmt == "xlsx":
        with _opened(out, "b") as fh:
            export.write_xlsx(result, fh, lang)
    else:
        with _opened(out, "t") as fh:
            export.write_csv(result, fh, lang)
    print(
        f"✓ {result.count} {what} {since}..{until} (by {by}), total {format_fen(result.fen)}"
        + (f" → {out}" if out else ""),
        file=sys.stderr,
    )
    return 0


def _alipay(
    settings: Settings, since: date | None, until: date | None, out: Path | None, fmt: str
) -> int:
    """The 支付宝批量付款 file of approved manual payouts; it holds full accounts, so it is
    written owner-only and every payout in it is audited as exported by this OS user."""
    print(FULL_ACCOUNTS, file=sys.stderr)
    batch = asyncio.run(_read_batch(settings, since, until))
    if fmt == "xlsx":
        with _opened(out, "b", private=True) as fh:
            alipay_file.write_alipay_xlsx(batch, fh)
    else:
        with _opened(out, "t", private=True) as fh:
            alipay_file.write_alipay_csv(batch, fh)
    for line in batch.left_out:
        print(f"✗ not in the file: {line}", file=sys.stderr)
    print(
        f"✓ {batch.count} approved manual payouts, total {format_fen(batch.fen)}"
        + (f": {' '.join(batch.handles)}" if batch.handles else "")
        + (f" → {out}" if out else ""),
        file=sys.stderr,
    )
    return 0


@contextmanager
def _opened(out: Path | None, mode: Literal["t", "b"], *, private: bool = False) -> Iterator[Any]:
    """`out` (owner-only when `private`) or standard output, as text (UTF-8 with BOM) or bytes."""
    if out is None:
        yield sys.stdout.buffer if mode == "b" else sys.stdout
        return
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(out, flags, 0o600 if private else 0o666)
    if private:
        os.chmod(out, 0o600)
    fh: IO[Any]
    if mode == "b":
        fh = os.fdopen(fd, "wb")
    else:
        fh = os.fdopen(fd, "w", encoding="utf-8-sig", newline="")
    with fh:
        yield fh


async def _read(
    settings: Settings, what: str, since: date, until: date, by: export.By
) -> export.Export:
    async with _services(settings) as svc:
        start, end = export.period(since, until, svc.tz)
        async with svc.tx() as tx:
            if what == "payouts":
                return await export.payouts(tx, start, end, by)
            return await export.refunds(tx, start, end, by)


async def _read_batch(
    settings: Settings, since: date | None, until: date | None
) -> alipay_file.AlipayBatch:
    async with _services(settings) as svc:
        start = end = None
        if since is not None and until is not None:
            start, end = export.period(since, until, svc.tz)
        elif since is not None:
            start, _ = export.period(since, since, svc.tz)
        elif until is not None:
            _, end = export.period(until, until, svc.tz)
        async with svc.tx() as tx:
            return await alipay_file.alipay_batch(
                tx, actor=f"cli:{getpass.getuser()}", since=start, until=end
            )


@asynccontextmanager
async def _services(settings: Settings) -> AsyncIterator[Services]:
    """Services on the configured database for one export (SQLite migrated on the way in)."""
    db = Database(settings.database.url)
    try:
        if db.is_sqlite:
            await migrate.upgrade(db)
        yield Services(settings, db, SystemClock(), InProcessCoordination())
    finally:
        await db.dispose()
