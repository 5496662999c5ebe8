"""Every registry the bot runs with, built here and nowhere else: the chat commands, what
performs each outbox kind (and what it is called when it fails), and which channel serves each
channel name."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from bot import dingtalk, direct, dispatch, shops, transfer, wecom
from bot.dispatch import Performers
from bot.keys import DINGTALK_HTTP, SANDBOX, SERVICES
from commands import case, dead_letter, digest, fold, general, logistics, payout, reply, rule
from commands.router import Router
from handlers.channel import Channel
from integrations.sandbox.channel import SandboxChannel


def commands() -> Router:
    """Every chat command, in the order `help` lists them."""
    return Router.of(
        case.router,
        dead_letter.router,
        digest.router,
        fold.router,
        general.router,
        logistics.router,
        payout.router,
        reply.router,
        rule.router,
    )


def performers() -> Performers:
    return Performers(
        perform={
            **dispatch.PERFORMERS,
            "payout": transfer.perform,
            shops.SHOP_MESSAGE: shops.perform,
            **wecom.PERFORMERS,
            **direct.PERFORMERS,
        },
        on_dead={**dispatch.ON_DEAD, "payout": transfer.gave_up},
        what={**dispatch.KIND_TEXT, **wecom.KIND_TEXT, **direct.KIND_TEXT},
    )


def channels(app: web.Application) -> dict[str, Channel]:
    """The channels the configured groups use, one instance each."""
    names = app[SERVICES].settings.channels
    return {name: CHANNELS[name](app) for name in sorted(names) if name in CHANNELS}


def _sandbox(app: web.Application) -> Channel:
    svc = app[SERVICES]
    app[SANDBOX] = SandboxChannel(svc.db, svc.clock, svc.coord)
    return app[SANDBOX]


def _dingtalk_http(app: web.Application) -> Channel:
    # The HTTP callbacks answer through this very channel.
    channel = dingtalk.http_channel(app)
    app[DINGTALK_HTTP] = channel
    return channel


# Channel name (DESIGN §5) → how to build it for this app; built when a group uses it.
CHANNELS: dict[str, Callable[[web.Application], Channel]] = {
    "sandbox": _sandbox,
    "dingtalk_stream": dingtalk.stream_channel,
    "dingtalk_http": _dingtalk_http,
    "dingtalk_webhook": dingtalk.webhook_channel,
    "wecom_aibot": wecom.aibot_channel,
    "wecom_aibot_http": wecom.aibot_http_channel,
    "wecom_app": wecom.app_channel,
    "wecom_webhook": wecom.webhook_channel,
}
