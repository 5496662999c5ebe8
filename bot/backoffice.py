"""The warehouse and carrier connectors `[warehouse]` and `[carrier]` name, with what they
keep between runs: the ERP's tokens, and each intercept key's fate (so a retried outbox item
never intercepts twice, across restarts and instances)."""

from __future__ import annotations

from typing import Any

import aiohttp

from bot.services import BotServices
from bot.shops import DatabaseTokenStore
from handlers.ports import Carrier, Commerce, CommerceResult
from integrations.carrier import routing
from integrations.jushuitan.warehouse import JushuitanWarehouse
from storage.repositories.connector_state import ConnectorStateRepository

STOP_SHIPMENT = "stop_shipment"


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
    tokens = DatabaseTokenStore(svc, "warehouse")
    return WarehouseCommerce(shop, JushuitanWarehouse(settings, session, tokens, svc.clock))


def routed_carrier(svc: BotServices, session: aiohttp.ClientSession) -> Carrier | None:
    """The carrier router when `[carrier]` uses 快递100, 顺丰 or routes; None otherwise."""
    settings = svc.settings.carrier
    if settings.mode not in ("kuaidi100", "sf") and not settings.routes:
        return None
    ledger = DatabaseLedger(svc)
    return routing.from_settings(
        settings, session, svc.clock, ledger=ledger, seed=svc.settings.simulator.seed
    )
