"""Resources as cleanup contexts: set up, yield, tear down — in this order, reversed on exit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from functools import partial
from typing import Any

import aiohttp
from aiohttp import web

from bot import backoffice, registry, shops
from bot.dispatch import Dispatcher
from bot.group_commit import GroupCommit
from bot.keys import (
    DISPATCHER,
    FAKE_PLATFORM,
    HTTP,
    METRICS,
    PROCESSOR,
    SCHEDULER,
    SERVICES,
    SETTINGS,
    WRITER,
)
from bot.processor import EventProcessor
from bot.scheduler import Scheduler
from bot.services import BotServices
from bot.settings import Settings
from bot.worker import supervise
from handlers import digest
from handlers.clock import Clock
from handlers.ports import Carrier, Commerce, Payouts
from integrations.carrier.client import NoCarrier, WebhookCarrier
from integrations.carrier.routing import CarrierRouter
from integrations.carrier.simulator import SimulatedCarrier
from integrations.commerce.client import NoCommerce, SimulatedCommerce, WebhookCommerce
from integrations.douyin.fake import FakeDouyin
from integrations.jushuitan.fake import FakeJushuitan
from integrations.payout import client as payout_client
from integrations.shop.connector import ShopConnector
from integrations.shop.routing import ShopCarrier, ShopCommerce
from integrations.simulator import backoffice as sim_backoffice
from integrations.simulator import feed, platforms
from integrations.taobao.fake import FakeTaobao
from integrations.wechatpay.client import WechatPayTransfers
from storage import migrate
from storage.coordination import Coordination, InProcessCoordination
from storage.db import Database

log = logging.getLogger(__name__)

Context = Callable[[web.Application], AsyncIterator[None]]


def contexts(
    clock: Clock,
    coord: Coordination | None,
    commerce: Commerce | None,
    *,
    workers: bool,
    first: Callable[[web.Application], Awaitable[None]] | None = None,
) -> list[Context]:
    """`first` runs before the background loops start (the demo writes its past month)."""

    async def services(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        shared = coord or await make_coordination(settings)
        db = Database(
            settings.database.url,
            pool_size=settings.database.pool_size,
            echo=settings.database.echo,
        )
        db.notify = shared.notify
        if db.is_sqlite:
            await migrate.upgrade(db)
        app[SERVICES] = BotServices(settings, db, clock, shared, registry.commands())
        yield
        await db.dispose()
        if coord is None:
            await shared.close()

    async def http(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(headers={"User-Agent": "refundops"}) as session:
            app[HTTP] = session
            yield

    async def engine(app: web.Application) -> AsyncIterator[None]:
        svc, metrics = app[SERVICES], app[METRICS]
        connectors = shops.build(svc, app[HTTP], svc.settings.shops)
        app[DISPATCHER] = Dispatcher(
            svc,
            registry.channels(app),
            by_shop(
                app,
                commerce or backoffice.with_warehouse(svc, app[HTTP], make_commerce(app)),
                connectors,
            ),
            metrics,
            registry.performers(),
            payouts=make_payouts(app),
            carrier=ShopCarrier(make_carrier(app), connectors) if connectors else make_carrier(app),
            shops=connectors,
        )
        svc.capabilities.update(
            {name: channel.capabilities for name, channel in app[DISPATCHER].channels.items()}
        )
        app[PROCESSOR] = EventProcessor(svc, metrics)
        app[SCHEDULER] = Scheduler(svc, metrics)
        app[WRITER] = GroupCommit(svc)
        async with svc.tx() as tx:
            await digest.arm(tx)
        yield

    async def background(app: web.Application) -> AsyncIterator[None]:
        loops: list[Callable[[], Coroutine[Any, Any, None]]] = [
            app[PROCESSOR].run,
            app[DISPATCHER].run,
            app[SCHEDULER].run,
        ]
        loops.append(app[SERVICES].coord.listen)
        loops += [
            channel.run
            for channel in app[DISPATCHER].channels.values()
            if channel.capabilities.keeps_connection
        ]
        if app[DISPATCHER].shops:
            loops.append(shops.Puller(app[SERVICES], app[DISPATCHER].shops).run)
        loops += [
            runner.run
            for runner in shops.tmc_runners(app[SERVICES], app[HTTP], app[DISPATCHER].shops)
        ]
        if (after_sales := backoffice.after_sale_puller(app[SERVICES], app[HTTP])) is not None:
            loops.append(after_sales.run)
        if app[SETTINGS].simulator.enabled:
            loops.append(partial(simulate, app))
        tasks: list[asyncio.Task[None]] = []

        def start() -> None:
            tasks.extend(
                asyncio.create_task(supervise(_name(loop), loop), name=_name(loop))
                for loop in loops
            )

        async def first_then_start(run: Callable[[web.Application], Awaitable[None]]) -> None:
            try:
                await run(app)
            except Exception:
                log.exception("%s failed; the loops start without it", run.__qualname__)
            start()

        if first is not None:
            # The pages are served meanwhile; nothing else may work on the database.
            tasks.append(asyncio.create_task(first_then_start(first), name=first.__qualname__))
        else:
            start()
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return [services, http, engine, *([background] if workers else [])]


def _name(loop: Callable[[], Coroutine[Any, Any, None]]) -> str:
    target = loop.func if isinstance(loop, partial) else loop
    return str(getattr(target, "__qualname__", repr(target)))


async def make_coordination(settings: Settings) -> Coordination:
    if settings.redis.url:
        from storage.redis_coordination import RedisCoordination

        return await RedisCoordination.connect(settings.redis.url)
    return InProcessCoordination()


async def simulate(app: web.Application) -> None:
    settings, svc = app[SETTINGS], app[SERVICES]
    host = "127.0.0.1" if settings.server.host in ("0.0.0.0", "::", "") else settings.server.host
    base = f"http://{host}:{settings.server.port}"
    send: feed.Send = feed.SignedSender(
        app[HTTP], base, settings.ingest.secret.get_secret_value(), svc.clock
    )
    via = settings.simulator.via
    if via == "jushuitan":
        jst = app[FAKE_PLATFORM]
        assert isinstance(jst, FakeJushuitan)
        send = sim_backoffice.WarehouseBridge(jst, send)
    elif via != "api":
        fake = app[FAKE_PLATFORM]
        assert isinstance(fake, FakeDouyin | FakeTaobao)
        shop = platforms.DEMO_SHOP[via]
        send = platforms.PlatformBridge(
            via, fake, send, app[HTTP], push_url=f"{base}/connectors/douyin/{shop}"
        )
    carrier = app[DISPATCHER].carrier
    if isinstance(carrier, ShopCarrier | CarrierRouter):
        carrier = carrier.default
    sim = feed.ShopSimulator(
        svc.clock,
        settings.simulator.seed,
        carrier=carrier if isinstance(carrier, SimulatedCarrier) else None,
    )
    await feed.run(sim, send, settings.simulator.interval_s)


def by_shop(
    app: web.Application, default: Commerce, connectors: dict[str, ShopConnector]
) -> Commerce:
    """Commerce as each shop's `[[shops]]` entry says: its platform connector, nothing at all
    (`connector = "none"`), or the shared `[commerce]`."""
    manual = {s.id: NoCommerce() for s in app[SETTINGS].shops if s.connector == "none"}
    if not connectors and not manual:
        return default
    return ShopCommerce(default, connectors, manual)


def make_payouts(app: web.Application) -> Payouts | None:
    """The provider that moves payout money itself, or None when finance pays by hand."""
    svc = app[SERVICES]
    settings = svc.settings.payout
    if settings.provider == "wechatpay":
        return WechatPayTransfers(settings.wechatpay, app[HTTP], svc.clock)
    return payout_client.from_settings(settings, app[HTTP], svc.clock)


def make_commerce(app: web.Application) -> Commerce:
    settings = app[SETTINGS].commerce
    if settings.mode == "webhook":
        return WebhookCommerce(
            app[HTTP],
            settings.url,
            settings.secret.get_secret_value(),
            app[SERVICES].clock,
            settings.timeout_s,
        )
    if settings.mode == "simulator":
        return SimulatedCommerce()
    return NoCommerce()


def make_carrier(app: web.Application) -> Carrier:
    settings = app[SETTINGS].carrier
    if (routed := backoffice.routed_carrier(app[SERVICES], app[HTTP])) is not None:
        return routed
    if settings.mode == "webhook":
        return WebhookCarrier(
            app[HTTP],
            settings.url,
            settings.secret.get_secret_value(),
            app[SERVICES].clock,
            settings.timeout_s,
        )
    if settings.mode == "simulator":
        return SimulatedCarrier(app[SERVICES].clock, app[SETTINGS].simulator.seed)
    return NoCarrier()
