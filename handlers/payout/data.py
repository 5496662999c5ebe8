"""The typed shape of `case.data` for payouts (`PayoutData`) and payout batches (`BatchData`).

Read with `PayoutData.of(case)`, change attributes, write back `data.dump()`: the stored JSON
keeps the keys, values and key order a dict would have had. A field set to None is absent;
keys this module does not know are carried through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    model_validator,
)
from pydantic_core.core_schema import ValidatorFunctionWrapHandler

from handlers.payout.machine import PayoutState
from storage.models import Case

# The validation context of a stored row (an object, so no caller passes it by chance).
STORED: dict[str, bool] = {"stored": True}


class Shape(BaseModel):
    """A JSON object with typed keys that remembers the order its keys arrived in."""

    model_config = ConfigDict(extra="forbid")

    _keys: list[str] = PrivateAttr(default_factory=list)
    _other: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _remember_keys(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Self:
        if not isinstance(value, Mapping):
            shape: Self = handler(value)
            return shape
        fields = cls.model_fields
        if info.context is STORED:
            # A stored row may carry keys written elsewhere: keep them, untouched.
            shape = handler({k: v for k, v in value.items() if k in fields})
            shape._other = {k: v for k, v in value.items() if k not in fields}
        else:
            shape = handler(value)
        shape._keys = [k for k, v in value.items() if k not in fields or v is not None]
        return shape

    @classmethod
    def stored(cls, data: Mapping[str, Any]) -> Self:
        """The shape of a JSON object read from a row."""
        return cls.model_validate(data, context=STORED)

    if not TYPE_CHECKING:
        # Hidden from the type checker, so that an unknown attribute stays a type error.
        def __setattr__(self, name: str, value: Any) -> None:
            super().__setattr__(name, value)
            if name in type(self).model_fields:
                if value is None:
                    if name in self._keys:
                        self._keys.remove(name)
                elif name not in self._keys:
                    self._keys.append(name)

    def dump(self) -> dict[str, Any]:
        """The JSON object to store: the keys it was read with, then the keys set since."""
        out: dict[str, Any] = {}
        for key in self._keys:
            if key in self._other:
                out[key] = self._other[key]
            elif (value := getattr(self, key)) is not None:
                out[key] = _plain(value)
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, Shape):
        return value.dump()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    return value


class Stamp(Shape):
    """Who did something, and when (ISO 8601)."""

    by: str
    at: str


# -- a payout -------------------------------------------------------------------------------


class PayoutInfo(Shape):
    """What was asked for; the payee only masked (the full account lives in the payout row)."""

    kind: str | None = None
    payee_name: str = ""
    payee: str = ""
    requested_by: str = ""
    requested_at: str = ""


class Rejection(Shape):
    by: str
    at: str
    reason: str


class Transfer(Shape):
    """The Alipay transfer of the current attempt, and what Alipay (or the dispatcher) said."""

    attempt: int = 0
    out_biz_no: str = ""
    status: str = ""
    detail: str = ""
    unknown: bool = False
    checks: int = 0


class BatchLink(Shape):
    """The batch a payout waits in."""

    pk: int
    handle: str


class Note(Shape):
    by: str
    at: str = ""
    text: str


class PayoutData(Shape):
    payout: PayoutInfo = Field(default_factory=PayoutInfo)
    approval: Stamp | None = None
    confirm: Stamp | None = None
    reject: Rejection | None = None
    reference: str | None = None
    # How the money moved: `manual` or `alipay` (absent: the configured provider).
    channel: str | None = None
    transfer: Transfer = Field(default_factory=Transfer)
    error: str | None = None
    batch: BatchLink | None = None
    notes: list[Note] = Field(default_factory=list)
    buyer_notified: str | None = None
    buyer_notify_error: str | None = None
    buyer_notify_manual: str | None = None

    @classmethod
    def of(cls, case: Case) -> PayoutData:
        return cls.stored(case.data)


# -- a batch --------------------------------------------------------------------------------


class BatchItem(Shape):
    """One payout of a batch as its card shows it."""

    pk: int
    handle: str
    amount_fen: int
    payee: str = ""
    state: PayoutState
    note: str = ""
    # Why the confirmation passed this payout by ("" once confirmed; absent before).
    skipped: str | None = None


class BatchConfirm(Shape):
    by: str
    at: str
    ref: str


class BatchData(Shape):
    created_by: str = ""
    items: list[BatchItem] = Field(default_factory=list)
    confirm: BatchConfirm | None = None
    cancel_reason: str | None = None

    @classmethod
    def of(cls, case: Case) -> BatchData:
        return cls.stored(case.data)
