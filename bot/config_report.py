"""`refundops check-config` on files: every problem in one run, each at its file, section and key.

The settings are put together as `load_settings` does it. Every validation error is named, the
value it is about set aside (a bad value falls back to its default, an entry missing what it
needs is left out), and the rest built again, so that what still loads goes through
`bot.config_check` too. A file that is not TOML is reported alone: nothing after its first
syntax error can be read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_settings import EnvSettingsSource
from pydantic_settings.exceptions import SettingsError

from bot.config_check import notes, problems
from bot.settings import (
    ConfigError,
    Settings,
    _EnvWithoutDemo,
    deep_merge,
    inline_secrets,
    merge_secrets,
    read_toml,
    rules_as_table,
    secret_paths,
    shop_secrets_from_env,
    validation_errors,
)
from handlers.config import ConfigProblem
from handlers.platforms import suggest

Path_ = tuple[str | int, ...]
# Lists of tables an entry can be left out of, by their keys.
LISTS: tuple[Path_, ...] = (("groups",), ("staff",), ("shops",), ("templates",), ("rules", "rows"))
MAX_ROUNDS = 30


@dataclass(frozen=True)
class Finding:
    where: str
    text: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.where}: {self.text}" + (f" → {self.fix}" if self.fix else "")


@dataclass
class Report:
    settings: Settings | None
    findings: list[Finding]
    notes: list[str] = field(default_factory=list)


@dataclass
class _Sources:
    config: Path | None
    config_data: dict[str, Any]
    secrets: Path | None
    secrets_data: dict[str, Any]
    env_data: dict[str, Any]


def check_files(
    config: Path | None,
    secrets: Path | None = None,
    *,
    base: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    demo: bool = False,
) -> Report:
    """Every problem of the configuration these make up, each located, in one run."""
    unreadable = []
    config_data: dict[str, Any] = {}
    secrets_data: dict[str, Any] = {}
    for path in (config, secrets):
        if path is None:
            continue
        try:
            data = read_toml(path)
        except ConfigError as exc:
            fix = "fix the TOML at that line; nothing after it can be read until then"
            unreadable += [
                Finding(str(path), p.removeprefix(f"{path}: "), fix) for p in exc.problems
            ]
            continue
        if path == config:
            config_data = data
        else:
            secrets_data = data
    if unreadable:
        return Report(None, unreadable)
    sources = _Sources(config, config_data, secrets, secrets_data, {})
    found: list[ConfigProblem] = []
    env_found: list[Finding] = []
    try:
        sources.env_data = _EnvWithoutDemo(EnvSettingsSource(Settings))()
    except ConfigError as exc:
        env_found += [Finding("environment", p) for p in exc.problems]
    except SettingsError as exc:
        env_found.append(Finding("environment", str(exc), "REFUNDOPS_* values of lists are JSON"))
    if "demo" in (base or {}):
        found.append(ConfigProblem("demo is not a setting: only `refundops demo` runs the demo"))
    if "demo" in (overrides or {}):
        found.append(ConfigProblem("demo is not an override: only `refundops demo` runs the demo"))
    if config is not None and "demo" in config_data:
        found.append(
            ConfigProblem(
                f"demo is written in {config.name}: no config file can switch the demo on",
                ("demo",),
                "remove it (run `refundops demo --config FILE` for a demo)",
            )
        )
    if secrets is not None and "demo" in secrets_data:
        found.append(ConfigProblem(f"demo is written in {secrets.name}", ("demo",), "remove it"))
    if config is not None:
        found += [
            ConfigProblem(
                f"secret {p} is written in {config.name}",
                _path_of(p),
                "move it to the secrets file (same shape)"
                + ("" if "[" in p else f" or REFUNDOPS_{p.upper().replace('.', '__')}"),
            )
            for p in inline_secrets(config_data)
        ]
    data = merge_secrets(deep_merge(base or {}, config_data), secrets_data)
    data = rules_as_table(shop_secrets_from_env(deep_merge(data, overrides or {}), os.environ))
    data = deep_merge(data, sources.env_data) | {"demo": demo}
    locator = _Locator(sources)
    settings, invalid = _build(data, locator)
    findings = env_found + [locator.finding(p) for p in found] + invalid
    if settings is None:
        return Report(None, findings)
    for problem in problems(settings):
        if not locator.set_aside(problem):
            findings.append(locator.finding(problem))
    return Report(settings, findings, notes(settings))


def _build(data: dict[str, Any], locator: _Locator) -> tuple[Settings | None, list[Finding]]:
    """Settings from `data`, setting aside what fails validation until the rest loads."""
    findings: list[Finding] = []
    named: set[Path_] = set()
    for _ in range(MAX_ROUNDS):
        try:
            return Settings.model_validate(data), findings
        except ValidationError as exc:
            errors = validation_errors(exc, locator.original)
            kinds = {tuple(e["loc"]): e["type"] for e in exc.errors()}
        for loc, text in errors:
            original = locator.original(loc)
            if any(original[: len(n)] == n for n in named):
                continue
            named.add(original)
            fix = _fix(kinds.get(loc, ""), loc)
            findings.append(locator.finding(ConfigProblem(text, loc, fix), mapped=original))
        if not _repair(data, [(loc, kinds.get(loc, "")) for loc, _ in errors], locator):
            break
    return None, findings


def _fix(kind: str, loc: Path_) -> str:
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        guess = suggest(str(loc[-1]), list(model.model_fields)) if model is not None else ""
        return f"did you mean {guess!r}? Otherwise remove it" if guess else "remove it"
    if kind == "missing":
        return "add it"
    return FIXES.get(kind, "" if kind in ("value_error", "enum") else "correct the value")


# How to write a value of each kind pydantic refuses.
FIXES = {
    "int_parsing": "write a whole number, without quotes",
    "int_type": "write a whole number, without quotes",
    "int_from_float": "write a whole number",
    "float_parsing": "write a number, without quotes",
    "float_type": "write a number, without quotes",
    "bool_parsing": "write true or false, without quotes",
    "bool_type": "write true or false, without quotes",
    "decimal_parsing": "write an amount such as 30 or 29.90",
    "decimal_type": "write an amount such as 30 or 29.90",
    "decimal_max_places": "write at most two decimals",
    "string_type": "write it in quotes",
    "list_type": 'write a list, e.g. ["a", "b"]',
    "dict_type": "write a table",
    "model_type": "write a table",
    "literal_error": "use one of the values named",
    "greater_than": "use a larger value",
    "greater_than_equal": "use a larger value",
    "less_than": "use a smaller value",
    "less_than_equal": "use a smaller value",
    "too_short": "write a longer value",
    "too_long": "write a shorter value",
    "string_too_short": "write a longer value",
    "string_too_long": "write a shorter value",
}


def _repair(data: dict[str, Any], errors: list[tuple[Path_, str]], locator: _Locator) -> bool:
    """Set aside what each error is about; False when nothing could be."""
    deletes: list[Path_] = []
    drops: list[tuple[Path_, int]] = []
    for loc, kind in errors:
        entry = _entry_of(loc)
        parent = _get(data, loc[:-1]) if loc else None
        if not loc:
            continue
        if kind == "missing" and entry is not None:
            drops.append(entry)
        elif isinstance(loc[-1], int) and isinstance(parent, list):
            drops.append((loc[:-1], loc[-1]))
        elif isinstance(parent, dict) and loc[-1] in parent:
            deletes.append(loc)
        elif isinstance(_get(data, loc), list) and loc in LISTS:
            drops += [(loc, i) for i in _duplicates(_get(data, loc))]
        elif entry is not None:
            drops.append(entry)
    for loc in deletes:
        parent = _get(data, loc[:-1])
        if isinstance(parent, dict):
            parent.pop(loc[-1], None)
    for where, i in sorted(set(drops), key=lambda d: d[1], reverse=True):
        items = _get(data, where)
        if isinstance(items, list) and i < len(items):
            if where in LISTS:
                locator.drop(where, i, items[i])
            del items[i]
    return bool(deletes or drops)


def _entry_of(loc: Path_) -> tuple[Path_, int] | None:
    """The `[[list]]` entry `loc` is inside, if any."""
    for keys in LISTS:
        n = len(keys)
        index = loc[n] if len(loc) > n else None
        if loc[:n] == keys and isinstance(index, int):
            return keys, index
    return None


def _duplicates(items: list[Any]) -> list[int]:
    seen: set[Any] = set()
    dupes = []
    for i, item in enumerate(items):
        key = item.get("id", item.get("name")) if isinstance(item, dict) else None
        if key is not None and key in seen:
            dupes.append(i)
        seen.add(key)
    return dupes


def _get(data: Any, path: Path_) -> Any:
    for part in path:
        if isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
            continue
        if not (isinstance(data, dict) and part in data):
            return None
        data = data[part]
    return data


def _path_of(dotted: str) -> Path_:
    """`groups[0].webhook_secret` → ("groups", 0, "webhook_secret")."""
    path: list[str | int] = []
    for part in dotted.split("."):
        name, _, index = part.partition("[")
        path.append(name)
        if index:
            path.append(int(index.rstrip("]")))
    return tuple(path)


def _model_at(path: Path_) -> type[BaseModel] | None:
    """The settings model at `path` (list and dict entries included)."""
    model: type[BaseModel] | None = Settings
    for part in path:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        model = _model_in(info.annotation) if info is not None else None
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds: itself, a list's or a dict's entries."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = get_origin(annotation)
    if origin in (list, Sequence, dict, Union, UnionType) or (
        isinstance(origin, type) and issubclass(origin, Sequence)
    ):
        for arg in reversed(get_args(annotation)):
            if (found := _model_in(arg)) is not None:
                return found
    return None


def _is_list(annotation: Any) -> bool:
    origin = get_origin(annotation)
    return origin is list or (isinstance(origin, type) and issubclass(origin, Sequence))


class _Locator:
    """Where a path is: in which file (or environment variable), section, entry and key."""

    def __init__(self, sources: _Sources) -> None:
        self.sources = sources
        self.removed: dict[Path_, list[int]] = {}
        self.removed_ids: dict[Path_, set[str]] = {}
        self.secrets = set(secret_paths(Settings))

    def drop(self, keys: Path_, index: int, item: Any) -> None:
        original = self._original_index(keys, index)
        self.removed.setdefault(keys, []).append(original)
        self.removed[keys].sort()
        if isinstance(item, dict) and isinstance(name := item.get("id", item.get("name")), str):
            self.removed_ids.setdefault(keys, set()).add(name)

    def _original_index(self, keys: Path_, index: int) -> int:
        for gone in self.removed.get(keys, []):
            if gone <= index:
                index += 1
        return index

    def original(self, path: Path_) -> Path_:
        """`path` with each entry numbered as the file numbers it (before any was left out)."""
        entry = _entry_of(path)
        if entry is None:
            return path
        keys, index = entry
        n = len(keys)
        return (*keys, self._original_index(keys, index), *path[n + 1 :])

    def set_aside(self, problem: ConfigProblem) -> bool:
        """A finding about an entry that was left out, or about a list one was left out of:
        already named, and not true of the file."""
        if problem.path in self.removed:
            return True
        names = {n for ids in self.removed_ids.values() for n in ids}
        return any(f"'{n}'" in problem for n in names)

    def finding(self, problem: ConfigProblem, *, mapped: Path_ | None = None) -> Finding:
        path = mapped if mapped is not None else self.original(problem.path)
        return Finding(self.where(path), str(problem), problem.fix)

    def where(self, path: Path_) -> str:
        place = self._place(path)
        env = self._env_name(path)
        if env and env in os.environ:
            return f"{env} (environment) {place}".rstrip()
        return f"{self._file(path)} {place}".rstrip()

    def _env_name(self, path: Path_) -> str:
        if not path or any(isinstance(p, int) for p in path):
            return ""
        return "REFUNDOPS_" + "__".join(str(p).upper() for p in path)

    def _file(self, path: Path_) -> str:
        s = self.sources
        config = str(s.config) if s.config is not None else "config"
        secrets = str(s.secrets) if s.secrets is not None else "secrets file"
        if s.secrets is not None and self._in_secrets(path):
            return secrets
        if _get(s.config_data, self._raw(path)) is not None:
            return config
        dotted = ".".join("[]" if isinstance(p, int) else str(p) for p in path)
        if dotted.replace(".[]", "[]") in self.secrets:
            return secrets
        return config

    def _raw(self, path: Path_) -> Path_:
        """`path` as the config file spells it (`[[rules]]` alone: no `rows`)."""
        if path[:2] == ("rules", "rows") and isinstance(
            self.sources.config_data.get("rules"), list
        ):
            return ("rules", *path[2:])
        return path

    def _in_secrets(self, path: Path_) -> bool:
        entry = _entry_of(path)
        if entry is None:
            return _get(self.sources.secrets_data, path) is not None
        keys, index = entry
        item = _get(self.sources.config_data, self._raw((*keys, index)))
        ident = item.get("id") if isinstance(item, dict) else None
        for other in _get(self.sources.secrets_data, keys) or []:
            if isinstance(other, dict) and other.get("id") == ident and ident is not None:
                return _get(other, path[len(keys) + 1 :]) is not None
        return False

    def _place(self, path: Path_) -> str:
        """`[[groups]] #2 .chat_id`, `[carrier.sf] .partner_id`, `[rules]`."""
        model: type[BaseModel] | None = Settings
        parts: list[str] = []
        header = ""
        key = ""
        raw: Any = self.sources.config_data
        i = 0
        while i < len(path):
            part = path[i]
            if isinstance(part, int):
                i += 1
                continue
            info = model.model_fields.get(part) if model is not None else None
            inner = _model_in(info.annotation) if info is not None else None
            following = path[i + 1] if i + 1 < len(path) else None
            raw = raw.get(part) if isinstance(raw, dict) else None
            if info is not None and inner is not None and _is_list(info.annotation):
                if not (parts == ["rules"] and part == "rows" and self._rules_alone()):
                    parts.append(part)
                header = f"[[{'.'.join(parts)}]]"
                if isinstance(following, int):
                    keys = tuple(str(p) for p in path[: i + 1])
                    header += f" #{following + 1}" if keys in LISTS else ""
                    raw = None
                model = inner
            elif info is not None and inner is not None and get_origin(info.annotation) is dict:
                parts.append(part)
                if isinstance(following, str):
                    parts.append(following)
                    i += 1
                header = f"[{'.'.join(parts)}]"
                model = inner
            elif info is not None and inner is not None:
                parts.append(part)
                header = f"[{'.'.join(parts)}]"
                model = inner
            elif info is None and isinstance(raw, dict):
                parts.append(part)
                header = f"[{'.'.join(parts)}]"
                model = None
            else:
                key = f".{part}"
                break
            i += 1
        return f"{header} {key}".strip()

    def _rules_alone(self) -> bool:
        return isinstance(self.sources.config_data.get("rules"), list) or "rules" not in (
            self.sources.config_data
        )
