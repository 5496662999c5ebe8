"""`[warehouse]`: which ERP stops a parcel before it leaves, and its app's keys.

Secrets (`app_secret`, and `access_token` / `refresh_token` when given at all) come from the
secrets file or the environment (`REFUNDOPS_WAREHOUSE__APP_SECRET`, …), never the config
file. Without tokens, the first ones are obtained and kept in the database (client.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from handlers.config import Section

PRODUCTION_BASE = "https://openapi.jushuitan.com"
SANDBOX_BASE = "https://dev-api.jushuitan.com"
AUTH_PAGE = "https://openweb.jushuitan.com/auth"


class WarehouseSettings(Section):
    connector: Literal["none", "jushuitan"] = "none"
    api_base: str = PRODUCTION_BASE
    # Where a 服务商 app sends the merchant to approve it (`refundops connect jushuitan`).
    auth_page: str = AUTH_PAGE
    app_key: str = ""
    app_secret: SecretStr = SecretStr("")
    access_token: SecretStr = SecretStr("")
    refresh_token: SecretStr = SecretStr("")
    # "question": 订单转异常 (the order waits in 异常; a person releases or cancels it);
    # "cancel": /open/jushuitan/orderbyoid/cancel (the order is void in the ERP).
    stop_by: Literal["question", "cancel"] = "question"
    # 异常类型: docType=4&docId=263 lists the built-in types and says "也支持自定义" — a custom
    # text is taken as is, so the warehouse sees why the order stopped.
    question_type: str = Field(default="售后拦截", min_length=1, max_length=50)
    question_desc: str = Field(default="买家申请退款，请勿发货", max_length=200)
    # 取消类型 of orderbyoid/cancel (free text in the docs; shown in the order log).
    cancel_type: str = Field(default="售后拦截", min_length=1, max_length=50)
    # 操作人 recorded on the order log (`channel`; JST writes "open" when empty).
    operator: str = Field(default="refundops", max_length=50)
    # Stop requests arriving within this long go to JST in one call (≤50 orders).
    batch_window_s: float = Field(default=0.5, ge=0, le=30)
    timeout_s: float = Field(default=10.0, gt=0)
    # After-sale source (optional): pulled every `pull_interval_s` by one instance at a time;
    # JST shop_id → our shop id (`[[shops]]` or what [[groups]] shops name), how far back to
    # start, and how much of the last window to read again (late writes).
    pull_after_sales: bool = False
    pull_interval_s: float = Field(default=60.0, ge=1, le=3600)
    shops: dict[str, str] = Field(default_factory=dict)
    pull_start_h: float = Field(default=24.0, gt=0, le=24 * 30)
    pull_overlap_s: float = Field(default=300.0, ge=0, le=24 * 3600)


def config_problems(settings: WarehouseSettings) -> list[str]:
    """What `[warehouse]` still needs for its connector, named as the config and env spell it."""
    if settings.connector != "jushuitan":
        if settings.pull_after_sales:
            return ['warehouse.pull_after_sales needs warehouse.connector = "jushuitan"']
        return []
    found: list[str] = []
    if not settings.app_key:
        found.append("warehouse.app_key is empty (the 聚水潭 app's AppKey, openweb 控制台 → 应用)")
    if not settings.api_base.startswith(("http://", "https://")):
        found.append(
            f"warehouse.api_base {settings.api_base!r} does not start with http:// or https:// "
            f"(production {PRODUCTION_BASE}, sandbox {SANDBOX_BASE})"
        )
    if not settings.app_secret.get_secret_value():
        found.append(
            "missing secret warehouse.app_secret (in the secrets file under [warehouse], "
            "or REFUNDOPS_WAREHOUSE__APP_SECRET)"
        )
    if settings.access_token.get_secret_value() and not settings.refresh_token.get_secret_value():
        found.append(
            "missing secret warehouse.refresh_token (without it an expired access_token "
            "cannot be renewed; REFUNDOPS_WAREHOUSE__REFRESH_TOKEN, or leave both out and "
            "run refundops connect jushuitan)"
        )
    return found
