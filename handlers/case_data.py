"""The typed shape of `case.data`, one base for every kind: a model read from a row writes back
the same JSON — its keys in their order, keys it does not know untouched — plus what changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from storage.models import Case

# The validation context of a stored row (an object, so no caller passes it by chance).
_STORED: dict[str, bool] = {"stored": True}


class _KeepsNull:
    """The mark of a `Nullable` field."""


T = TypeVar("T")
# A field whose None is written as null rather than left out: a fact such as "the platform
# sent no order amount", which the rows have always held as null.
Nullable = Annotated[T | None, _KeepsNull()]


@dataclass(frozen=True)
class _Layout:
    keys: dict[str, str]  # a field's name or alias -> its JSON key
    nullable: frozenset[str]  # the JSON keys of `Nullable` fields


@cache
def _layout(model: type[Stored]) -> _Layout:
    keys: dict[str, str] = {}
    nullable: set[str] = set()
    for name, field in model.model_fields.items():
        key = field.alias or name
        keys[name] = keys[key] = key
        if any(isinstance(mark, _KeepsNull) for mark in field.metadata):
            nullable.add(key)
    return _Layout(keys, frozenset(nullable))


class Stored(BaseModel):
    """A JSON object kept in `case.data` (or inside it), written back as a dict would have been.

    Read from a row (`load`, `CaseData.of`), it keeps the row's keys in their order and the keys
    it does not know as they were. An attribute set keeps its key's place, or goes after the
    others when new (`d[k] = v`); set or given as None it is left out, as `drop()` leaves it out
    (`d.pop(k)`), but a `Nullable` field writes None as null. An attribute never read nor set is
    not written: absent stays absent. Outside a row extra keys are refused, and the type checker
    sees only the declared fields: a misspelt attribute or keyword is a type error.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    _keys: tuple[str, ...] = PrivateAttr(default=())
    _other: dict[str, Any] = PrivateAttr(default_factory=dict)

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> Self:
        """The model of a JSON object as stored (or as the platform sent it): every key kept."""
        return cls.model_validate(data, context=_STORED)

    @model_validator(mode="wrap")
    @classmethod
    def _remember_keys(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Self:
        if not isinstance(value, Mapping):
            kept: Self = handler(value)
            return kept
        layout = _layout(cls)
        if info.context is _STORED:
            made: Self = handler({k: v for k, v in value.items() if k in layout.keys})
            made._other = {k: v for k, v in value.items() if k not in layout.keys}
            made._keys = tuple(layout.keys.get(str(k), str(k)) for k in value)
            return made
        made = handler(value)
        made._keys = tuple(
            layout.keys[k]
            for k, v in value.items()
            if v is not None or layout.keys[k] in layout.nullable
        )
        return made

    if not TYPE_CHECKING:
        # Hidden from the type checker, so that a misspelt attribute stays a type error.
        def __setattr__(self, name: str, value: Any) -> None:
            super().__setattr__(name, value)
            layout = _layout(type(self))
            key = layout.keys.get(name)
            if key is None:
                return
            if value is None and key not in layout.nullable:
                self._forget(key)
            elif key not in self._keys:
                self._keys = (*self._keys, key)

    def drop(self, *names: str) -> None:
        """Leave `names` out, as `dict.pop(name, None)` would; they read as their defaults."""
        fields = type(self).model_fields
        for name in names:
            self.__dict__[name] = fields[name].get_default(call_default_factory=True)
            self._forget(_layout(type(self)).keys[name])

    def _forget(self, key: str) -> None:
        self._keys = tuple(k for k in self._keys if k != key)

    @model_serializer(mode="wrap")
    def _as_stored(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        every: dict[str, Any] = handler(self)
        out = {k: self._other[k] if k in self._other else every[k] for k in self._keys}
        # A default changed in place (`data.commerce.error = …` on a case without `commerce`)
        # is written after the rest, as `{**data, "commerce": {…}}` would have added it.
        out |= {k: v for k, v in every.items() if k not in out and isinstance(v, dict | list) and v}
        return out

    def dump(self) -> dict[str, Any]:
        """The JSON object to store."""
        return self.model_dump(mode="json", by_alias=True)


class Note(Stored):
    """A note someone wrote on a case (`备注 R3 …`): refunds, payouts, anomalies alike."""

    by: str
    at: str
    text: str


class InterceptShown(Stored):
    """How a parcel's intercept shows on the cards of the refunds and anomalies it serves."""

    handle: str
    text: str


class CaseData(Stored):
    """The whole of one kind's `case.data`; any kind may carry notes and a material version."""

    notes: list[Note] = Field(default_factory=list)
    # The case's version right after its last material change (see handlers.material).
    material_version: int = 0
    # Who each escalation of the case has @-mentioned, by its kind (handlers.escalation).
    mentioned: dict[str, list[str]] = Field(default_factory=dict)

    @classmethod
    def of(cls, case: Case) -> Self:
        return cls.load(case.data)
