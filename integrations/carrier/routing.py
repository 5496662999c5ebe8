"""Which route a parcel's intercept takes, by its carrier (SF → 顺丰 丰桥 direct, the rest →
快递100, …), and the card's word on the route used ("经顺丰丰桥申请拦截")."""

from __future__ import annotations

from typing import Any

import aiohttp

from handlers.clock import Clock
from handlers.ports import Carrier, CarrierAnswer
from integrations.carrier.client import NoCarrier, WebhookCarrier
from integrations.carrier.ledger import Ledger
from integrations.carrier.names import carrier_code, kuaidi100_code
from integrations.carrier.settings import CarrierSettings, Route
from integrations.carrier.simulator import SimulatedCarrier
from integrations.kuaidi100 import client as kuaidi100
from integrations.sf import client as sf

LABELS: dict[Route, str] = {
    "kuaidi100": "经快递100申请拦截",
    "sf": "经顺丰丰桥申请拦截",
    "webhook": "经商家快递接口申请拦截",
    "simulator": "经模拟快递申请拦截",
    "none": "",
}
MONTHLY = frozenset({"3", "4"})


class CarrierRouter:
    """The `Carrier` for all parcels: each to the first route naming its carrier, else `default`."""

    def __init__(
        self,
        routes: list[tuple[set[str], Carrier, str]],
        default: Carrier,
        *,
        default_label: str = "",
    ) -> None:
        self.routes = [({carrier_code(c) for c in names}, to, label) for names, to, label in routes]
        self.default = default
        self.default_label = default_label

    def route(self, carrier: str) -> tuple[Carrier, str]:
        code = carrier_code(carrier)
        for names, to, label in self.routes:
            if code in names:
                return to, label
        return self.default, self.default_label

    async def intercept(self, key: str, data: dict[str, Any]) -> CarrierAnswer:
        to, label = self.route(str(data.get("carrier", "")))
        answer = await to.intercept(key, data)
        if not label or answer.status == "manual":
            return answer
        return CarrierAnswer(answer.status, f"{label}：{answer.detail}" if answer.detail else label)


def default_route(settings: CarrierSettings) -> Route:
    return settings.routes.get("*", settings.mode)


def from_settings(
    settings: CarrierSettings,
    session: aiohttp.ClientSession,
    clock: Clock,
    *,
    ledger: Ledger | None = None,
    seed: int | None = None,
) -> CarrierRouter:
    """The router `[carrier]` describes; each route's carrier is made once and shared."""
    made: dict[Route, Carrier] = {}

    def carrier_for(route: Route) -> Carrier:
        if route not in made:
            made[route] = _make(route, settings, session, clock, ledger, seed)
        return made[route]

    by_route: dict[Route, set[str]] = {}
    for name, route in settings.routes.items():
        if name != "*":
            by_route.setdefault(route, set()).add(name)
    fallback = default_route(settings)
    return CarrierRouter(
        [(names, carrier_for(route), LABELS[route]) for route, names in by_route.items()],
        carrier_for(fallback),
        default_label=LABELS[fallback],
    )


def _make(
    route: Route,
    settings: CarrierSettings,
    session: aiohttp.ClientSession,
    clock: Clock,
    ledger: Ledger | None,
    seed: int | None,
) -> Carrier:
    if route == "kuaidi100":
        return kuaidi100.from_settings(settings.kuaidi100, session, clock, ledger)
    if route == "sf":
        return sf.from_settings(settings.sf, session, clock, ledger)
    if route == "webhook":
        secret = settings.secret.get_secret_value()
        return WebhookCarrier(session, settings.url, secret, clock, settings.timeout_s)
    if route == "simulator":
        return SimulatedCarrier(clock, seed)
    return NoCarrier()


def config_problems(settings: CarrierSettings) -> list[str]:
    """What `[carrier]` still needs for the routes it uses, named as the config spells them."""
    used = {default_route(settings), *settings.routes.values()}
    found: list[str] = []
    unknown = [n for n in settings.routes if n != "*" and not kuaidi100_code(n)]
    found += [f"carrier.routes: unknown carrier {n!r}" for n in unknown]
    if "webhook" in used and not settings.url:
        found.append("carrier.url is empty but a carrier route is 'webhook'")
    if "kuaidi100" in used:
        k = settings.kuaidi100
        if not k.key:
            found.append("carrier.kuaidi100.key is empty")
        if not k.secret.get_secret_value():
            found.append(
                "missing secret carrier.kuaidi100.secret (set REFUNDOPS_CARRIER__KUAIDI100__SECRET)"
            )
        if not k.couriers:
            found.append(
                "carrier.kuaidi100.couriers is empty: interceptOrder acts with the merchant's "
                "own courier account ([carrier.kuaidi100.couriers.ZTO] partner_id …)"
            )
        found += [
            f"carrier.kuaidi100.couriers.{name}.partner_id is empty"
            for name, account in k.couriers.items()
            if not account.partner_id
        ]
        if k.callback_url and not k.callback_salt.get_secret_value():
            found.append("carrier.kuaidi100.callback_url is set but callback_salt is empty")
    if "sf" in used:
        s = settings.sf
        if not s.partner_id:
            found.append("carrier.sf.partner_id (顾客编码) is empty")
        if not s.checkword.get_secret_value():
            found.append(
                "missing secret carrier.sf.checkword (set REFUNDOPS_CARRIER__SF__CHECKWORD)"
            )
        if s.pay_mode in MONTHLY and not s.monthly_card:
            found.append(f"carrier.sf.pay_mode {s.pay_mode} is monthly but monthly_card is empty")
        a = s.return_address
        if s.service_code in sf.NEEDS_ADDRESS and not all(
            (a.province, a.city, a.county, a.address)
        ):
            found.append(
                "carrier.sf.return_address needs province, city, county and address "
                "(退回 must say where to)"
            )
    return found
