"""Settings: one TOML file, an optional secrets file, and `REFUNDOPS_<SECTION>__<KEY>` overrides.

Environment wins over the secrets file, which wins over the config file. Secrets
(`SecretStr` fields) belong in the environment or the secrets file, never in the config.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeGuard

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

CHANNELS = (
    "wecom_aibot",
    "wecom_aibot_http",
    "wecom_app",
    "wecom_webhook",
    "dingtalk_stream",
    "dingtalk_http",
    "dingtalk_webhook",
    "sandbox",
)
NOTIFY_ONLY_CHANNELS = frozenset({"wecom_webhook", "dingtalk_webhook"})
ROLES = ("agent", "supervisor", "finance", "admin")
CASE_KINDS = ("refund", "intercept", "payout", "anomaly")
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "demo-secret", "xxx"})


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_base_url: str = ""
    max_body_bytes: int = 1024 * 1024
    access_log: bool = False


class DatabaseSettings(Section):
    url: str = "sqlite+aiosqlite:///refundops.db"
    pool_size: int = Field(default=10, ge=1)
    echo: bool = False


class RedisSettings(Section):
    url: str = ""


class IngestSettings(Section):
    secret: SecretStr = SecretStr("")
    max_skew_s: int = Field(default=300, ge=1)
    batch_max: int = Field(default=500, ge=1)
    wait_for_case_h: float = Field(default=24.0, gt=0)


class BotSettings(Section):
    name: str = "refundops"
    admin_group: str = ""
    timezone: str = "Asia/Shanghai"
    instance_id: str = ""


class WecomAibotSettings(Section):
    bot_id: str = ""
    secret: SecretStr = SecretStr("")
    token: SecretStr = SecretStr("")
    encoding_aes_key: SecretStr = SecretStr("")
    ws_url: str = "wss://openws.work.weixin.qq.com"
    heartbeat_s: float = Field(default=30.0, gt=0)
    reconnect_base_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    lease_s: float = Field(default=10.0, gt=0)


class WecomSettings(Section):
    corp_id: str = ""
    agent_id: int = 0
    secret: SecretStr = SecretStr("")
    token: SecretStr = SecretStr("")
    encoding_aes_key: SecretStr = SecretStr("")
    callback_max_skew_s: int = Field(default=0, ge=0)
    api_base: str = "https://qyapi.weixin.qq.com"
    passive_wait_s: float = Field(default=3.0, ge=0, lt=5)
    throttle_wait_s: float = Field(default=60.0, gt=0)
    aibot: WecomAibotSettings = WecomAibotSettings()


class DingtalkSettings(Section):
    app_key: str = ""
    app_secret: SecretStr = SecretStr("")
    corp_id: str = ""
    robot_code: str = ""
    card_template_id: str = ""
    api_base: str = "https://api.dingtalk.com"
    oapi_base: str = "https://oapi.dingtalk.com"
    card_callback_route_key: str = "refundops"
    callback_max_skew_s: int = Field(default=300, ge=1, le=3600)
    stream_backoff_base_s: float = Field(default=1.0, gt=0)
    stream_backoff_max_s: float = Field(default=60.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)
    robot_mute_s: float = Field(default=600.0, gt=0)


class GroupSettings(Section):
    id: str
    name: str = ""
    # No default: where cards go and who may act is never guessed (the sandbox is demo-only).
    channel: str
    chat_id: str = ""
    webhook_url: str = ""
    webhook_secret: SecretStr = SecretStr("")
    shops: list[str] = []
    platforms: list[str] = []
    kinds: list[str] = []
    max_per_minute: int = Field(default=0, ge=0)

    def routes(self, *, shop: str, platform: str, kind: str) -> bool:
        return all(
            not allowed or value in allowed
            for allowed, value in (
                (self.shops, shop),
                (self.platforms, platform),
                (self.kinds, kind),
            )
        )


class StaffSettings(Section):
    id: str
    name: str = ""
    roles: list[str] = ["agent"]
    refund_limit: Decimal | None = Field(default=None, ge=0)
    wecom_userid: str = ""
    dingtalk_staff_id: str = ""
    dingtalk_mobile: str = ""
    sandbox_user: str = ""
    # Groups whose cases this person may act on from a DM (besides wecom_app groups naming them).
    groups: list[str] = []

    @property
    def display(self) -> str:
        return self.name or self.id


class RuleSettings(Section):
    """One row of the decision table; empty conditions match anything."""

    name: str
    platforms: list[str] = []
    shops: list[str] = []
    kinds: list[str] = []
    shipping: list[str] = []
    scope: Literal["any", "full", "partial"] = "any"
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    reasons: list[str] = []
    actions: list[str] = []
    review_role: str = "agent"


class TimerSettings(Section):
    first_response_min: int = Field(default=30, ge=1)
    deadline_warn_h: list[float] = [6.0, 1.0]
    approval_h: float = 4.0
    intercept_feedback_h: float = 2.0
    return_tracking_h: float = 12.0
    qc_h: float = 12.0
    poll_s: float = Field(default=1.0, gt=0)


class DigestSettings(Section):
    enabled: bool = True
    time: str = "09:00"
    timezone: str = "Asia/Shanghai"


class DashboardSettings(Section):
    token: SecretStr = SecretStr("")


class DispatchSettings(Section):
    max_attempts: int = Field(default=8, ge=1)
    backoff_base_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=600.0, gt=0)
    lease_s: float = Field(default=60.0, gt=0)
    poll_s: float = Field(default=1.0, gt=0)
    coordination_retry_s: float = Field(default=5.0, gt=0)
    fold_at: int = Field(default=5, ge=2)
    fold_max: int = Field(default=60, ge=2)


class CommerceSettings(Section):
    mode: Literal["simulator", "webhook", "none"] = "none"
    url: str = ""
    secret: SecretStr = SecretStr("")
    timeout_s: float = Field(default=10.0, gt=0)


class CarrierSettings(Section):
    mode: Literal["simulator", "webhook", "none"] = "none"
    url: str = ""
    secret: SecretStr = SecretStr("")
    timeout_s: float = Field(default=10.0, gt=0)
    kuaidi100_salt: SecretStr = SecretStr("")


class LogisticsSettings(Section):
    """When a parcel counts as a problem (DESIGN §4), and how often parcels are checked."""

    no_pickup_h: float = Field(default=24.0, gt=0)
    no_update_after_pickup_h: float = Field(default=48.0, gt=0)
    stuck_in_transit_h: float = Field(default=48.0, gt=0)
    lost_days: float = Field(default=5.0, gt=0)
    alert_statuses: list[Literal["exception", "returned", "rejected"]] = [
        "exception",
        "returned",
        "rejected",
    ]
    scan_interval_s: float = Field(default=300.0, ge=1)
    scan_batch: int = Field(default=500, ge=1)


class PayoutSettings(Section):
    provider: Literal["manual", "alipay"] = "manual"
    two_person_rule: bool = True
    alipay_app_id: str = ""
    alipay_private_key: SecretStr = SecretStr("")
    alipay_public_key: str = ""
    alipay_gateway: str = "https://openapi.alipay.com/gateway.do"
    alipay_app_cert_sn: str = ""
    alipay_root_cert_sn: str = ""
    alipay_timeout_s: float = Field(default=10.0, gt=0)
    batch_max: int = Field(default=200, ge=1, le=1000)


class SimulatorSettings(Section):
    enabled: bool = False
    interval_s: float = Field(default=6.0, gt=0)
    seed: int | None = None


class ReplySettings(Section):
    """Answers to buyers from the group (回复 R12 …)."""

    # Keep the built-in reply templates (the four refund paths) beside the configured ones.
    builtin_templates: bool = True
    # Free text carrying a phone/card/ID number or account: refuse it, or mask and send.
    sensitive_free_text: Literal["refuse", "mask"] = "refuse"
    max_chars: int = Field(default=500, ge=1, le=2000)


class TemplateSettings(Section):
    """One reply template (话术); empty filters suit any case."""

    name: str
    text: str
    paths: list[int] = []
    kinds: list[str] = []
    states: list[str] = []
    reasons: list[str] = []
    reveal: bool = False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="REFUNDOPS_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    ingest: IngestSettings = IngestSettings()
    bot: BotSettings = BotSettings()
    wecom: WecomSettings = WecomSettings()
    dingtalk: DingtalkSettings = DingtalkSettings()
    groups: list[GroupSettings] = []
    staff: list[StaffSettings] = []
    rules: list[RuleSettings] | None = None
    timers: TimerSettings = TimerSettings()
    digest: DigestSettings = DigestSettings()
    dashboard: DashboardSettings = DashboardSettings()
    dispatch: DispatchSettings = DispatchSettings()
    commerce: CommerceSettings = CommerceSettings()
    carrier: CarrierSettings = CarrierSettings()
    logistics: LogisticsSettings = LogisticsSettings()
    payout: PayoutSettings = PayoutSettings()
    simulator: SimulatorSettings = SimulatorSettings()
    replies: ReplySettings = ReplySettings()
    templates: list[TemplateSettings] = []
    # Set only by `refundops demo` (load_settings(demo=True)); a config file, a secrets file
    # or the environment that names it is refused, so production cannot switch it on.
    demo: bool = False

    @field_validator("groups")
    @classmethod
    def _unique_group_ids(cls, groups: list[GroupSettings]) -> list[GroupSettings]:
        _require_unique("group", [g.id for g in groups])
        return groups

    @field_validator("staff")
    @classmethod
    def _unique_staff_ids(cls, staff: list[StaffSettings]) -> list[StaffSettings]:
        _require_unique("staff", [s.id for s in staff])
        return staff

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (_EnvWithoutDemo(env_settings), init_settings)

    @property
    def channels(self) -> set[str]:
        return {g.channel for g in self.groups}

    @property
    def sandbox_enabled(self) -> bool:
        return self.demo and "sandbox" in self.channels

    def demo_only(self) -> list[str]:
        """What only `refundops demo` may run, each named where it is set; empty in the demo."""
        if self.demo:
            return []
        found = [
            f"group {g.id!r}: channel sandbox exists only under `refundops demo` (its page and "
            "API let anyone who reaches the port act as any staff member); give the group a "
            "WeCom or DingTalk channel"
            for g in self.groups
            if g.channel == "sandbox"
        ]
        found += [
            f"{name}.mode = 'simulator' runs only under `refundops demo` (it answers as if "
            f"{what} while nothing leaves the process); use 'webhook', or 'none' to do it by hand"
            for name, mode, what in (
                ("commerce", self.commerce.mode, "the shop had refunded"),
                ("carrier", self.carrier.mode, "the carrier had intercepted"),
            )
            if mode == "simulator"
        ]
        if self.simulator.enabled:
            found.append(
                "simulator.enabled feeds made-up events and runs only under `refundops demo`"
            )
        return found

    @property
    def is_sqlite(self) -> bool:
        return self.database.url.startswith("sqlite")

    def group(self, group_id: str) -> GroupSettings | None:
        return next((g for g in self.groups if g.id == group_id), None)


def _require_unique(what: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise ValueError(f"{what} id {item!r} is used twice")
        seen.add(item)


class _EnvWithoutDemo(PydanticBaseSettingsSource):
    """The environment, which may set anything but the demo switch."""

    def __init__(self, env: PydanticBaseSettingsSource) -> None:
        super().__init__(env.settings_cls)
        self.env = env

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.env.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        data = self.env()
        if "demo" in data:
            raise ConfigError(
                ["REFUNDOPS_DEMO is set: only `refundops demo` runs the demo; unset it"]
            )
        return data


class ConfigError(Exception):
    """The configuration cannot be loaded; `problems` names each one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError([f"{path}: no such file"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML ({exc})"]) from exc


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def merge_secrets(base: Mapping[str, Any], secrets: Mapping[str, Any]) -> dict[str, Any]:
    """Like `deep_merge`, but a secrets file's `[[groups]]` entries fill in the config's by id."""
    merged = dict(base)
    for key, value in secrets.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = merge_secrets(current, value)
        elif _tables_with_ids(value) and _tables_with_ids(current):
            tables = {t["id"]: dict(t) for t in current}
            for table in value:
                tables[table["id"]] = {**tables.get(table["id"], {}), **table}
            merged[key] = list(tables.values())
        else:
            merged[key] = value
    return merged


def _tables_with_ids(value: Any) -> TypeGuard[list[Mapping[str, Any]]]:
    return isinstance(value, list) and all(isinstance(t, Mapping) and "id" in t for t in value)


def secret_paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Dotted paths of every `SecretStr` field below `model` (list sections as `groups[]`)."""
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        annotation = field.annotation
        if annotation is SecretStr:
            yield path
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from secret_paths(annotation, f"{path}.")
        elif getattr(annotation, "__origin__", None) is list:
            (item,) = annotation.__args__  # type: ignore[union-attr]
            if isinstance(item, type) and issubclass(item, BaseModel):
                yield from secret_paths(item, f"{path}[].")


def inline_secrets(data: Mapping[str, Any]) -> list[str]:
    """Secret keys that carry a value inside a config file's data."""
    found: list[str] = []
    for path in secret_paths(Settings):
        found.extend(_lookup(data, path.split("."), ""))
    return found


def _lookup(data: Any, parts: list[str], shown: str) -> list[str]:
    if not parts:
        return [shown] if data not in (None, "") else []
    head, rest = parts[0], parts[1:]
    if head.endswith("[]"):
        items = data.get(head[:-2]) if isinstance(data, Mapping) else None
        if not isinstance(items, list):
            return []
        return [
            hit
            for i, item in enumerate(items)
            for hit in _lookup(item, rest, f"{shown}{head[:-2]}[{i}].")
        ]
    if not isinstance(data, Mapping) or head not in data:
        return []
    return _lookup(data[head], rest, f"{shown}{head}" + ("." if rest else ""))


def describe_validation_error(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key {where}")
        elif err["type"] == "missing" and err["loc"][0] == "groups" and where.endswith(".channel"):
            live = ", ".join(c for c in CHANNELS if c != "sandbox")
            problems.append(f"missing key {where}: a group has no default channel (one of {live})")
        elif err["type"] == "missing":
            problems.append(f"missing key {where}")
        else:
            problems.append(f"{where or 'config'}: {err['msg']}")
    return problems


def load_settings(
    config: Path | None = None,
    *,
    secrets: Path | None = None,
    base: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    allow_inline_secrets: bool = False,
    demo: bool = False,
) -> Settings:
    """Build `Settings` from `base` < config file < secrets file < overrides < environment.

    `demo` is how `refundops demo` says so; no file, base or override may set it.
    """
    data: dict[str, Any] = dict(base or {})
    problems: list[str] = []
    if "demo" in data:
        problems.append("demo is not a setting: only `refundops demo` runs the demo")
    if config is not None:
        file_data = read_toml(config)
        if "demo" in file_data:
            problems.append(
                f"demo is written in {config.name}: no config file can switch the demo on; "
                "remove it (run `refundops demo --config FILE` for a demo)"
            )
        if not allow_inline_secrets:
            problems += [
                f"secret {path} is written in {config.name}: set it in the environment "
                f"(REFUNDOPS_{path.upper().replace('.', '__')}) or the secrets file"
                for path in inline_secrets(file_data)
                if "[" not in path
            ] + [
                f"secret {path} is written in {config.name}: move it to the secrets file"
                for path in inline_secrets(file_data)
                if "[" in path
            ]
        data = deep_merge(data, file_data)
    if secrets is not None:
        secret_data = read_toml(secrets)
        if "demo" in secret_data:
            problems.append(f"demo is written in {secrets.name}: remove it")
        data = merge_secrets(data, secret_data)
    data = deep_merge(data, overrides or {})
    if "demo" in (overrides or {}):
        problems.append("demo is not an override: only `refundops demo` runs the demo")
    data["demo"] = demo
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(problems + describe_validation_error(exc)) from exc
    if problems:
        raise ConfigError(problems)
    return settings
