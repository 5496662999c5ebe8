"""Settings: one TOML file, an optional secrets file, and `REFUNDOPS_<SECTION>__<KEY>` overrides.

Environment wins over the secrets file, which wins over the config file. Secrets
(`SecretStr` fields) belong in the environment or the secrets file, never in the config.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, TypeGuard

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from handlers.config import BotSettings, ChannelName, PublicServerSettings, Role, Section
from integrations.carrier.settings import CarrierSettings
from integrations.commerce.settings import CommerceSettings
from integrations.dingtalk.settings import DingtalkConfig
from integrations.jushuitan.settings import WarehouseSettings
from integrations.payout.settings import PayoutSettings
from integrations.shop.settings import SHOP_SECRETS, ShopSettings, env_name
from integrations.wecom.settings import WecomConfig

CHANNELS = tuple(ChannelName)
ROLES = tuple(Role)
NOTIFY_ONLY_CHANNELS = frozenset({ChannelName.WECOM_WEBHOOK, ChannelName.DINGTALK_WEBHOOK})
CASE_KINDS = ("refund", "intercept", "payout", "anomaly")
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "demo-secret", "xxx"})
# An enumerated key, by name: what one of its values is called, and the values it takes.
ENUM_KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "channel": ("channel", CHANNELS),
    "roles": ("role", ROLES),
    "review_role": ("role", ROLES),
}


class ServerSettings(PublicServerSettings):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
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


class BotInstanceSettings(BotSettings):
    """`[bot]` as this process reads it: the domain's part and the name of this instance."""

    instance_id: str = ""


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


class SimulatorSettings(Section):
    enabled: bool = False
    interval_s: float = Field(default=6.0, gt=0)
    seed: int | None = None
    # `refundops demo` first fills an empty database with this many days of the simulated
    # shop's history (through the real ingest API and commands, on a shifted clock).
    history_days: int = Field(default=0, ge=0, le=92)
    # About this many refunds a weekday in that history (payouts and parcels in proportion).
    history_per_day: float = Field(default=5.0, gt=0, le=200)
    # `refundops demo --via`: refunds reach refundops through a platform connector and its
    # in-process fake (douyin, taobao) instead of the signed ingest API.
    via: Literal["api", "douyin", "taobao", "jushuitan"] = "api"


class Settings(DingtalkConfig, WecomConfig, BaseSettings):
    """The whole configuration: the domain's sections, each integration's, and the wiring's."""

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
    bot: BotInstanceSettings = BotInstanceSettings()
    dashboard: DashboardSettings = DashboardSettings()
    dispatch: DispatchSettings = DispatchSettings()
    commerce: CommerceSettings = CommerceSettings()
    carrier: CarrierSettings = CarrierSettings()
    payout: PayoutSettings = PayoutSettings()
    simulator: SimulatorSettings = SimulatorSettings()
    shops: list[ShopSettings] = []
    warehouse: WarehouseSettings = WarehouseSettings()
    # Set only by `refundops demo` (load_settings(demo=True)); a config file, a secrets file
    # or the environment that names it is refused, so production cannot switch it on.
    demo: bool = False

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
        if self.simulator.history_days:
            found.append(
                "simulator.history_days writes a made-up month into the database and runs only "
                "under `refundops demo`"
            )
        if self.simulator.via != "api":
            found.append(
                "simulator.via runs a made-up platform in the process and only under "
                "`refundops demo`"
            )
        return found

    @property
    def is_sqlite(self) -> bool:
        return self.database.url.startswith("sqlite")


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


def shop_secrets_from_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Fill each `[[shops]]` entry's secrets from `REFUNDOPS_SHOP_<ID>__<KEY>` when set."""
    shops = data.get("shops")
    if not _tables_with_ids(shops):
        return data
    filled = []
    for shop in shops:
        prefix = env_name(str(shop["id"]))
        found = {
            key: environ[f"{prefix}__{key.upper()}"]
            for key in SHOP_SECRETS
            if f"{prefix}__{key.upper()}" in environ
        }
        filled.append({**shop, **found})
    return data | {"shops": filled}


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
    return [text for _, text in validation_errors(exc)]


Loc = tuple[int | str, ...]


def validation_errors(
    exc: ValidationError, numbered: Callable[[Loc], Loc] | None = None
) -> list[tuple[Loc, str]]:
    """Each error of a failed load: where it is (the keys down to it) and what is wrong;
    `numbered` gives the entries the numbers the text shows."""
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        shown = numbered(loc) if numbered is not None else loc
        shown = shown[:1] + shown[2:] if shown[:2] == ("rules", "rows") else shown
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in shown).lstrip(".")
        if err["type"] == "extra_forbidden":
            text = f"unknown key {where}"
        elif err["type"] == "missing" and loc[0] == "groups" and where.endswith(".channel"):
            live = ", ".join(c for c in CHANNELS if c != "sandbox")
            text = f"missing key {where}: a group has no default channel (one of {live})"
        elif err["type"] == "missing":
            text = f"missing key {where}"
        elif err["type"] == "enum" and (key := _enum_key(loc)) in ENUM_KEYS:
            noun, values = ENUM_KEYS[key]
            text = f"{where}: unknown {noun} {err['input']!r} (one of {', '.join(values)})"
        else:
            text = f"{where or 'config'}: {err['msg'].removeprefix('Value error, ')}"
        problems.append((loc, text))
    return problems


def rules_as_table(data: dict[str, Any]) -> dict[str, Any]:
    """`[[rules]]` tables alone are `[rules]`'s rows: one shape, which env overrides can join."""
    if isinstance(data.get("rules"), list):
        return data | {"rules": {"rows": data["rules"]}}
    return data


def _enum_key(loc: tuple[int | str, ...]) -> str:
    """The name of the key an error is under (`roles` for `staff[0].roles[1]`)."""
    return next((str(p) for p in reversed(loc) if isinstance(p, str)), "")


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
    data = rules_as_table(shop_secrets_from_env(data, os.environ))
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
