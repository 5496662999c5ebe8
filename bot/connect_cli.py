"""`refundops connect jushuitan`: the first 聚水潭 tokens, kept where every instance reads them.

A merchant's own app (自研应用) needs nothing but its keys: getInitToken. A 服务商 app prints
the authorisation page (`--auth-url`); the merchant approves it there and the `code` it hands
back is exchanged with `--code` (15 minutes, once). The tokens go into the database under the
same lock the running instances renew them with."""

from __future__ import annotations

import sys

import aiohttp

from bot import registry
from bot.backoffice import warehouse_tokens
from bot.lifecycle import make_coordination
from bot.services import BotServices
from bot.settings import Settings
from handlers.clock import SystemClock
from handlers.errors import ExternalError
from integrations.jushuitan.client import JushuitanClient, authorization_page
from integrations.jushuitan.settings import config_problems
from integrations.shop.connector import Tokens
from storage import migrate
from storage.db import Database


def _fail(text: str) -> int:
    print(f"✗ {text}", file=sys.stderr)
    return 2


async def run_connect(settings: Settings, *, code: str, auth_url: bool, state: str) -> int:
    warehouse = settings.warehouse
    if warehouse.connector != "jushuitan":
        return _fail('[warehouse] connector is not "jushuitan": nothing to connect')
    for problem in config_problems(warehouse):
        if "access_token" not in problem and "refresh_token" not in problem:
            return _fail(problem)
    clock = SystemClock()
    if auth_url and code:
        return _fail(
            "--auth-url prints the page that gives a code; --code exchanges it: one of them"
        )
    if auth_url:
        print(authorization_page(warehouse, clock.now(), state))
        print(
            "open it as the merchant's 聚水潭 admin and approve; then run "
            "refundops connect jushuitan --code <the code it hands back> within 15 minutes"
        )
        return 0
    db = Database(settings.database.url)
    coord = await make_coordination(settings)
    try:
        if db.is_sqlite:
            await migrate.upgrade(db)
        svc = BotServices(settings, db, clock, coord, registry.commands())
        async with aiohttp.ClientSession(headers={"User-Agent": "refundops"}) as session:
            client = JushuitanClient.of(warehouse, session, warehouse_tokens(svc), clock)
            before = await client.tokens.load()
            tokens = await client.connect(code)
    except ExternalError as exc:
        return _fail(str(exc))
    finally:
        await coord.close()
        await db.dispose()
    print(f"✓ 聚水潭 connected ({'accessToken' if code else 'getInitToken'}): {_said(tokens)}")
    if before is not None:
        print("  the tokens stored before are replaced; running instances pick these up")
    return 0


def _said(tokens: Tokens) -> str:
    until = f"valid until {tokens.expires_at:%Y-%m-%d %H:%M} UTC" if tokens.expires_at else ""
    renew = "with a refresh token" if tokens.refresh_token else "without a refresh token"
    return ", ".join(part for part in ("tokens kept in the database", until, renew) if part)
