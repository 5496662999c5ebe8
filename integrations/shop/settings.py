"""`[[shops]]`: one entry per shop — its platform, which connector reaches it, and its ids.

Secrets (`app_secret`, `access_token`, `refresh_token`) come from the secrets file (filled in
by shop id, like `[[groups]]`) or the environment (`REFUNDOPS_SHOP_<ID>__APP_SECRET`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ModelWrapValidatorHandler, PrivateAttr, SecretStr, model_validator

from handlers.config import ShopRouting
from handlers.platforms import platform_id

Connector = Literal["douyin", "taobao", "webhook", "none"]
# Which platforms each connector speaks to.
CONNECTOR_PLATFORMS: dict[str, tuple[str, ...]] = {
    "douyin": ("douyin",),
    "taobao": ("taobao", "tmall"),
}


# The platforms' production hosts; tests and the demo point `api_base` / `tmc_url` at fakes.
DEFAULT_BASES: dict[str, dict[str, str]] = {
    "douyin": {"api_base": "https://openapi-fxg.jinritemai.com"},
    "taobao": {
        "api_base": "https://eco.taobao.com/router/rest",
        "tmc_url": "ws://mc.api.taobao.com/",
    },
}


class ShopSettings(ShopRouting):
    connector: Connector = "webhook"
    name: str = ""
    app_key: str = ""
    app_secret: SecretStr = SecretStr("")
    access_token: SecretStr = SecretStr("")
    refresh_token: SecretStr = SecretStr("")
    # 抖店: the shop's numeric id (自用型 token/create); 淘宝: the seller's nick (TMC user_nick).
    shop_id: str = ""
    seller_nick: str = ""
    api_base: str = ""
    tmc_url: str = ""
    tmc_group: str = "default"
    # How often the TMC consumer asks for messages (tmc.js pulls every 5 s).
    tmc_pull_s: float = Field(default=5.0, gt=0)
    # 抖店: the merchant's return address (/address/list id) a return is agreed with.
    return_address_id: int = Field(default=0, ge=0)
    # 淘宝 write calls are made as this authorised sub-account (rp.refund.review `operator`).
    operator: str = ""
    sign_method: Literal["hmac-sha256", "md5", "hmac"] = "hmac-sha256"
    # Incremental pull: how often, how far back on the first run, how much to overlap.
    pull_interval_s: float = Field(default=300.0, gt=0)
    pull_start_h: float = Field(default=24.0, gt=0)
    pull_overlap_s: float = Field(default=300.0, ge=0)
    timeout_s: float = Field(default=10.0, gt=0)

    # What the config wrote for `platform` when it was a name rather than the id (淘宝 → taobao),
    # so that check-config can say which id it took it for.
    _written: str = PrivateAttr(default="")

    @model_validator(mode="wrap")
    @classmethod
    def _platform(cls, data: Any, handler: ModelWrapValidatorHandler[ShopSettings]) -> ShopSettings:
        written = ""
        if isinstance(data, dict) and isinstance(data.get("platform"), str):
            written = data["platform"]
            data = dict(data, platform=platform_id(written))
        made = handler(data)
        if written and written != made.platform:
            made._written = written
        return made

    @property
    def platform_written(self) -> str:
        return self._written

    @model_validator(mode="after")
    def _defaults(self) -> ShopSettings:
        for key, value in DEFAULT_BASES.get(self.connector, {}).items():
            if not getattr(self, key):
                object.__setattr__(self, key, value)
        return self

    @property
    def speaks_to_platform(self) -> bool:
        return self.connector in CONNECTOR_PLATFORMS


def shop_problems(
    shops: list[ShopSettings], *, demo: bool, placeholders: frozenset[str]
) -> list[str]:
    """Every problem with the `[[shops]]` entries, each named by its place and how to fix it."""
    found: list[str] = []
    seen: dict[str, int] = {}
    for i, shop in enumerate(shops):
        where = f"shops[{i}] ({shop.id})"
        if shop.id in seen:
            found.append(
                f"{where}: id {shop.id!r} is also shops[{seen[shop.id]}]'s; ids are unique"
            )
        seen.setdefault(shop.id, i)
        if not shop.speaks_to_platform:
            continue
        speaks = CONNECTOR_PLATFORMS[shop.connector]
        if shop.platform not in speaks:
            found.append(
                f"{where}: connector {shop.connector!r} reaches {' / '.join(speaks)} shops, "
                f"not {shop.platform!r}; use connector 'webhook' or 'none' for this shop"
            )
        env = env_name(shop.id)
        if not shop.app_key:
            found.append(f"{where}: app_key is empty (the app's AppKey from the open platform)")
        secret = shop.app_secret.get_secret_value()
        if not secret:
            found.append(
                f"{where}: missing secret app_secret (in the secrets file under [[shops]] "
                f"id = {shop.id!r}, or {env}__APP_SECRET)"
            )
        elif secret in placeholders and not demo:
            found.append(f"{where}: app_secret is a placeholder; use the app's real AppSecret")
        for key in ("api_base", "tmc_url"):
            value = getattr(shop, key)
            if value and not value.startswith(URL_SCHEMES[key]):
                found.append(
                    f"{where}: {key} {value!r} does not start with {' or '.join(URL_SCHEMES[key])}"
                )
        if shop.connector == "douyin":
            if not shop.shop_id and not shop.access_token.get_secret_value():
                found.append(
                    f"{where}: set shop_id (自用型 app: the token is created from it) or the "
                    f"access_token secret ({env}__ACCESS_TOKEN)"
                )
        elif shop.connector == "taobao":
            if not shop.seller_nick:
                found.append(f"{where}: seller_nick is empty (TMC messages name the shop by it)")
            if not shop.access_token.get_secret_value():
                found.append(
                    f"{where}: missing secret access_token (the seller's session, "
                    f"{env}__ACCESS_TOKEN)"
                )
            if shop.platform == "tmall" and not shop.operator:
                found.append(
                    f"{where}: operator is empty (天猫 refunds are reviewed as an authorised "
                    "sub-account before they are agreed)"
                )
    return found


URL_SCHEMES = {"api_base": ("http://", "https://"), "tmc_url": ("ws://", "wss://")}


def env_name(shop_id: str) -> str:
    """The environment prefix of a shop's secrets: `REFUNDOPS_SHOP_<ID>`."""
    return "REFUNDOPS_SHOP_" + "".join(c if c.isalnum() else "_" for c in shop_id).upper()


# The keys of a shop that are secrets: never in the config file.
SHOP_SECRETS = ("app_secret", "access_token", "refresh_token")
