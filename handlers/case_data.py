"""The typed shape of `case.data`: each kind reads its model from a case and writes back the
same JSON it would have written as a dict — the keys it was read with and those set since, in
their order; keys the model does not know pass through untouched.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from storage.models import Case


class Stored(BaseModel):
    """A JSON object kept in `case.data` (or inside it). An attribute that was never read nor
    set is not written: absent stays absent, as `dict.get(key, default)` read it."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    _keys: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _remember_order(cls, value: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        made = handler(value)
        if isinstance(value, dict):
            fields = cls.model_fields
            made._keys = tuple((fields[k].alias or k) if k in fields else str(k) for k in value)
        return made

    @model_serializer(mode="wrap")
    def _in_order(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        return {k: out[k] for k in self._keys if k in out} | out

    def drop(self, *names: str) -> None:
        """Forget `names`, as `dict.pop(name, None)` would: they are not written back."""
        for name in names:
            self.__pydantic_fields_set__.discard(name)
            default = type(self).model_fields[name].get_default(call_default_factory=True)
            self.__dict__[name] = default

    def has(self, name: str) -> bool:
        """Whether `name` is stored (read with the object or set since)."""
        return name in self.model_fields_set

    def dump(self) -> dict[str, Any]:
        """The JSON object as stored."""
        self._settle()
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    def _settle(self) -> None:
        """Count a default changed in place (`data.commerce.error = …` on a case without
        `commerce`) as set, as `{**data.get("commerce", {}), "error": …}` stored it."""
        for name, field in type(self).model_fields.items():
            value = self.__dict__.get(name)
            inner = value if isinstance(value, list) else [value]
            for item in inner:
                if isinstance(item, Stored):
                    item._settle()
            if name not in self.model_fields_set and value != field.get_default(
                call_default_factory=True
            ):
                self.__pydantic_fields_set__.add(name)


class CaseData(Stored):
    """The whole of one kind's `case.data`."""

    @classmethod
    def of(cls, case: Case) -> Self:
        return cls.model_validate(case.data)


class Note(Stored):
    by: str
    at: str
    text: str


class Noted(CaseData):
    """The notes of a case of any kind: people note refunds, payouts, intercepts alike."""

    notes: list[Note] = Field(default_factory=list)
