"""`refundops digest --group ID [--date D] [--send]`: the digest from the command line."""

from __future__ import annotations

import sys
from datetime import date, timedelta

from aiohttp import web

from bot.app import create_app
from bot.keys import DISPATCHER, SERVICES
from bot.settings import Settings
from handlers import digest
from storage.enums import OutboxState


async def run_digest(settings: Settings, group_id: str, day: str, *, send: bool) -> int:
    if settings.group(group_id) is None:
        known = ", ".join(g.id for g in settings.groups) or "none configured"
        hint = (
            ""
            if settings.groups
            else "; give the config with --config FILE, or --demo for the demo's database"
        )
        print(f"✗ no group {group_id!r} (groups: {known}){hint}", file=sys.stderr)
        return 2
    app = create_app(settings, workers=False)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        svc = app[SERVICES]
        tz = digest.digest_tz(svc)
        try:
            wanted = (
                date.fromisoformat(day)
                if day
                else svc.clock.now().astimezone(tz).date() - timedelta(days=1)
            )
        except ValueError:
            print(f"✗ --date must look like 2026-11-23, got {day!r}", file=sys.stderr)
            return 2
        async with svc.tx() as tx:
            notice = await digest.build(tx, group_id, digest.Span.day(wanted, tz))
            if send:
                await tx.notice(group_id, notice)
        print(notice.markdown())
        if send:
            return await _deliver(app, f"notice:{group_id}:{notice.key}")
        return 0
    finally:
        await runner.cleanup()


async def _deliver(app: web.Application, item_id: str) -> int:
    """Try to deliver now; if the platform is down, the running service retries it."""
    await app[DISPATCHER].run_once()
    async with app[SERVICES].tx() as tx:
        item = await tx.outbox.get(item_id)
    if item is not None and item.state == OutboxState.DONE:
        print("✓ sent", file=sys.stderr)
        return 0
    reason = item.last_error if item is not None else "not queued"
    print(
        f"… queued, not yet delivered ({reason or 'waiting'}); the running service will retry",
        file=sys.stderr,
    )
    return 0 if item is not None and item.state == OutboxState.PENDING else 1
