"""The warehouse and carrier connectors `[warehouse]` and `[carrier]` name, with what they
keep between runs: the ERP's tokens, each intercept key's fate (so a retried outbox item
never intercepts twice, across restarts and instances), and the ERP's after-sale pull — one
instance at a time under a database lease, from a durable cursor, its events stored like a
shop platform's."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from bot.dispatch import AUTH_WAIT_S, authorization_lost
from bot.lease import DatabaseLease
from bot.services import BotServices
from bot.shops import CONNECTORS, DatabaseTokenStore, store_events
from handlers.errors import AuthorizationError, PermanentError, RetryableError
from handlers.ports import Carrier, Commerce, CommerceResult
from integrations.carrier import routing
from integrations.jushuitan.source import JushuitanRefunds
from integrations.jushuitan.warehouse import JushuitanWarehouse
from storage.repositories.connector_state import ConnectorStateRepository

log = logging.getLogger(__name__)

STOP_SHIPMENT = "stop_shipment"
# The ERP's names in `connector_state` (tokens under `tokens:warehouse`) and `leases`.
TOKENS = "warehouse"
PULL_LEASE = "jushuitan:after-sales"
CURSOR = "jushuitan:after-sales"
# A lease outlives a few rounds, so the holder keeps it while it pulls and another instance
# takes over within this long once it stops.
MIN_LEASE_S = 30.0
# Failures that only delay the pull are told once they have lasted this long.
TELL_AFTER = timedelta(minutes=10)


def warehouse_tokens(svc: BotServices) -> DatabaseTokenStore:
    return DatabaseTokenStore(svc, TOKENS)


class DatabaseLedger:
    """Each intercept key's entry in `connector_state` (`intercept:<key>`)."""

    def __init__(self, svc: BotServices) -> None:
        self.svc = svc

    async def get(self, key: str) -> dict[str, Any] | None:
        async with self.svc.tx() as tx:
            return await ConnectorStateRepository(tx.session).get(f"intercept:{key}")

    async def put(self, key: str, entry: dict[str, Any]) -> None:
        async with self.svc.tx() as tx:
            await ConnectorStateRepository(tx.session).put(f"intercept:{key}", entry, now=tx.now)

    async def forget(self, key: str) -> None:
        async with self.svc.tx() as tx:
            await ConnectorStateRepository(tx.session).delete(f"intercept:{key}")


class WarehouseCommerce:
    """Stop-shipment goes to the warehouse's ERP; every other action to the shop's system."""

    def __init__(self, shop: Commerce, warehouse: JushuitanWarehouse) -> None:
        self.shop = shop
        self.warehouse = warehouse

    async def call(self, action: str, key: str, data: dict[str, Any]) -> CommerceResult:
        if action == STOP_SHIPMENT:
            return await self.warehouse.stop(key, data)
        return await self.shop.call(action, key, data)


def with_warehouse(svc: BotServices, session: aiohttp.ClientSession, shop: Commerce) -> Commerce:
    """`shop`, with stop-shipment sent to the warehouse when `[warehouse]` names one."""
    settings = svc.settings.warehouse
    if settings.connector != "jushuitan":
        return shop
    warehouse = JushuitanWarehouse(settings, session, warehouse_tokens(svc), svc.clock)
    return WarehouseCommerce(shop, warehouse)


def routed_carrier(svc: BotServices, session: aiohttp.ClientSession) -> Carrier | None:
    """The carrier router when `[carrier]` uses 快递100, 顺丰 or routes; None otherwise."""
    settings = svc.settings.carrier
    if settings.mode not in ("kuaidi100", "sf") and not settings.routes:
        return None
    ledger = DatabaseLedger(svc)
    return routing.from_settings(
        settings, session, svc.clock, ledger=ledger, seed=svc.settings.simulator.seed
    )


def after_sale_source(svc: BotServices, session: aiohttp.ClientSession) -> JushuitanRefunds | None:
    """The ERP's after-sale list as an event source, when `[warehouse]` asks for it."""
    settings = svc.settings.warehouse
    if settings.connector != "jushuitan" or not settings.pull_after_sales:
        return None
    return JushuitanRefunds(
        settings,
        session,
        warehouse_tokens(svc),
        svc.clock,
        platforms={shop.id: shop.platform for shop in svc.settings.shops},
        skip_shops=frozenset(s.id for s in svc.settings.shops if s.connector in CONNECTORS),
    )


def after_sale_puller(svc: BotServices, session: aiohttp.ClientSession) -> AfterSalePuller | None:
    source = after_sale_source(svc, session)
    return AfterSalePuller(svc, source) if source is not None else None


@dataclass
class AfterSalePuller:
    """Pulls the ERP's after-sales every `pull_interval_s`, page after page until caught up,
    by whichever instance holds the lease. Each page's events and the cursor after it are
    stored in one transaction, so a restart goes on where the last stored page ended and the
    window overlap gives only duplicates, which are no-ops. A failure waits for the next
    round; one the admins must fix is told to them once a day."""

    svc: BotServices
    source: JushuitanRefunds
    due: datetime | None = None
    failing_since: datetime | None = None
    lease: DatabaseLease = field(init=False)

    def __post_init__(self) -> None:
        ttl = max(MIN_LEASE_S, 3 * self.source.settings.pull_interval_s)
        self.lease = DatabaseLease(self.svc, PULL_LEASE, ttl)

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self.source.settings.pull_interval_s)

    async def run(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(1.0)

    async def run_once(self) -> int:
        """One round when due: the number of new events stored."""
        now = self.svc.clock.now()
        if self.due is not None and self.due > now:
            return 0
        if not await self.lease.take():
            self.due = now + self.interval
            return 0
        stored, wait = 0, self.interval
        try:
            more = True
            while more:
                async with self.svc.tx() as tx:
                    state = await ConnectorStateRepository(tx.session).get(CURSOR)
                cursor = (state or {}).get("cursor")
                page = await self.source.pull(cursor, self.svc.clock.now())
                async with self.svc.tx() as tx:
                    stored += await store_events(tx, page.events, source="pull:jushuitan")
                    await ConnectorStateRepository(tx.session).put(
                        CURSOR, {"cursor": page.cursor, "fetched": page.fetched}, now=tx.now
                    )
                    for note in page.notes:
                        digest = hashlib.sha256(note.encode()).hexdigest()[:16]
                        await tx.post(tx.svc.admin_group, f"⚠ {note}", key=f"jst-note:{digest}")
                more = page.more and await self.lease.take()
            self.failing_since = None
        except AuthorizationError as exc:
            async with self.svc.tx() as tx:
                await authorization_lost(tx, exc)
            wait = max(wait, timedelta(seconds=AUTH_WAIT_S))
        except PermanentError as exc:
            await self._tell(f"聚水潭售后单拉取被拒绝，暂停后自动重试：{exc}")
            wait = max(wait, timedelta(seconds=AUTH_WAIT_S))
        except RetryableError as exc:
            await self._failing(str(exc))
            wait = max(wait, timedelta(seconds=exc.defer or 0))
        except Exception as exc:
            log.exception("聚水潭 after-sale pull failed; trying again in %s", wait)
            await self._failing(f"{type(exc).__name__}: {exc}")
        self.due = self.svc.clock.now() + wait
        return stored

    async def _failing(self, why: str) -> None:
        now = self.svc.clock.now()
        log.warning("聚水潭 after-sale pull failed (%s); trying again next round", why)
        self.failing_since = self.failing_since or now
        if now - self.failing_since >= TELL_AFTER:
            minutes = int((now - self.failing_since).total_seconds() // 60)
            await self._tell(f"聚水潭售后单已连续 {minutes} 分钟拉取失败，仍在重试：{why}")

    async def _tell(self, text: str) -> None:
        async with self.svc.tx() as tx:
            await tx.post(
                tx.svc.admin_group,
                f"⚠ {text[:300]}",
                key=f"jst-pull:{tx.now.date().isoformat()}",
                mentions=tx.svc.staff.to_mention(roles=["admin"]),
            )
