"""The shop's own connector first: commerce calls and intercepts go to the platform a shop's
`[[shops]]` entry connects, and to the shared `[commerce]` / `[carrier]` otherwise."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handlers.ports import Carrier, CarrierAnswer, Commerce, CommerceResult
from integrations.shop.connector import ShopConnector


class ShopCommerce:
    """`Commerce` by shop: the connector's answer when it has one, else `fallback[shop]`
    (a shop with `connector = "none"` has its own), else `default`."""

    def __init__(
        self,
        default: Commerce,
        connectors: Mapping[str, ShopConnector],
        fallback: Mapping[str, Commerce] | None = None,
    ) -> None:
        self.default = default
        self.connectors = connectors
        self.fallback = fallback or {}

    async def call(self, action: str, key: str, data: dict[str, Any]) -> CommerceResult:
        shop = str(data.get("shop", ""))
        connector = self.connectors.get(shop)
        if connector is not None:
            result = await connector.call(action, key, data)
            if result is not None:
                return result
        return await self.fallback.get(shop, self.default).call(action, key, data)


class ShopCarrier:
    """`Carrier` by shop: the platform's own intercept where it has one for the parcel."""

    def __init__(self, default: Carrier, connectors: Mapping[str, ShopConnector]) -> None:
        self.default = default
        self.connectors = connectors

    async def intercept(self, key: str, data: dict[str, Any]) -> CarrierAnswer:
        connector = self.connectors.get(str(data.get("shop", "")))
        if connector is not None:
            answer = await connector.intercept(key, data)
            if answer is not None:
                return answer
        return await self.default.intercept(key, data)
