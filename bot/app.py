"""`create_app(settings)`: the aiohttp application with every surface the settings switch on."""

from __future__ import annotations

from aiohttp import web

from bot import history, lifecycle
from bot.keys import FAKE_PLATFORM, METRICS, SETTINGS
from bot.metrics import Metrics
from bot.routes import (
    availability,
    connectors,
    dashboard,
    dingtalk,
    health,
    ingest,
    logistics,
    openapi,
    payout_notify,
    sandbox,
    verification,
    wecom,
)
from bot.settings import ConfigError, Settings
from handlers import masking
from handlers.clock import Clock, SystemClock
from handlers.ports import Commerce
from integrations.simulator import backoffice, platforms
from storage.coordination import Coordination


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    coord: Coordination | None = None,
    commerce: Commerce | None = None,
    workers: bool = True,
) -> web.Application:
    """Build the app; `workers=False` leaves draining to the caller (tests drive it by hand).

    What only the demo may run (the sandbox, the simulators) is refused outside it, whatever
    the caller checked before.
    """
    refused = settings.demo_only()
    if refused:
        raise ConfigError(refused)
    masking.install_log_masking()
    app = web.Application(
        client_max_size=settings.server.max_body_bytes,
        middlewares=[availability.unavailable, verification.verification],
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app.router.add_routes(health.routes)
    app.router.add_routes(ingest.routes)
    app.router.add_routes(openapi.routes)
    app.router.add_routes(dashboard.routes)
    if settings.carrier.kuaidi100_salt.get_secret_value():
        app.router.add_routes(logistics.routes)
    if (
        settings.carrier.kuaidi100.callback_salt.get_secret_value()
        or settings.carrier.sf.push_token.get_secret_value()
    ):
        app.router.add_routes(logistics.intercept_routes)
    if settings.sandbox_enabled:
        app.router.add_routes(sandbox.routes)
        app[sandbox.WATCHERS] = set()
        app.on_shutdown.append(sandbox.close_watchers)
    if "dingtalk_http" in settings.channels:
        app.router.add_routes(dingtalk.routes)
    if "wecom_app" in settings.channels:
        app.router.add_routes(wecom.app_routes)
    if "wecom_aibot_http" in settings.channels:
        app.router.add_routes(wecom.aibot_routes)
    if settings.payout.provider == "wechatpay":
        app.router.add_routes(payout_notify.routes)
    if any(shop.connector == "douyin" for shop in settings.shops):
        app.router.add_routes(connectors.routes)
    if settings.demo and settings.simulator.via == "jushuitan":
        jst, sf = backoffice.make_fakes((clock or SystemClock()).now)
        # The fake ERP takes the tokens the settings were given (the demo made both alike).
        jst.access_token = settings.warehouse.access_token.get_secret_value() or jst.access_token
        jst.refresh_token = settings.warehouse.refresh_token.get_secret_value() or jst.refresh_token
        app[FAKE_PLATFORM] = jst
        app.add_subapp(f"{platforms.FAKE_PATH}/jushuitan", jst.app())
        app.add_subapp(f"{platforms.FAKE_PATH}/sf", sf.app())
    elif settings.demo and settings.simulator.via != "api":
        via: platforms.Via = "douyin" if settings.simulator.via == "douyin" else "taobao"
        fake = platforms.make_fake(via, (clock or SystemClock()).now)
        app[FAKE_PLATFORM] = fake
        app.add_subapp(f"{platforms.FAKE_PATH}/{via}", fake.app())
    app.router.add_get("/", _index)
    first = history.first_month(create_app) if settings.simulator.history_days else None
    app.cleanup_ctx.extend(
        lifecycle.contexts(clock or SystemClock(), coord, commerce, workers=workers, first=first)
    )
    return app


async def _index(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    raise web.HTTPFound("/sandbox" if settings.sandbox_enabled else "/healthz")
