"""What a shop platform connector does, whatever the platform.

In: a platform message (pushed, or from the TMC channel) is stored raw first, then
`translate`d into ordinary events of the envelope (`handlers.schema`), fetching what the
message lacks; `pull` pages through the platform's incremental list from a durable cursor so
that nothing pushed and lost is missed. Event ids are deterministic (platform, shop,
after-sale, its update time), so the same after-sale arriving by push and by pull is one
event, and always one case.

Out: `call` answers the `Commerce` port for the shop's refunds (None: not the platform's to
do; the shop's fallback commerce does it); `intercept` the `Carrier` port (None: the platform
has no intercept for this parcel).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from handlers.errors import AuthorizationError
from handlers.ports import VERIFY, CarrierAnswer, CommerceResult
from integrations.shop.settings import ShopSettings

__all__ = [
    "VERIFY",
    "AuthorizationError",
    "MalformedMessageError",
    "PlatformMessage",
    "PullPage",
    "RejectReason",
    "ShopConnector",
    "TokenStore",
    "Tokens",
    "UnknownMessageError",
]

# `VERIFY` (handlers.ports): the platform wants an SMS code before it agrees (淘宝
# `taobao.rp.refunds.agree`): `detail` says where the code was sent; the approver answers
# `验证码 R12 123456` and the call is made again with `data["sms_code"]`.


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str = ""
    expires_at: datetime | None = None  # None: not known (taken from config as given)


class TokenStore(Protocol):
    """Where a shop's tokens live between refreshes, shared by every instance."""

    async def load(self) -> Tokens | None: ...

    async def save(self, tokens: Tokens) -> None: ...

    def lock(self) -> AbstractAsyncContextManager[None]:
        """Held while refreshing, so one instance refreshes and the others read its result."""


@dataclass(frozen=True)
class PlatformMessage:
    """One message as the platform delivered it, kept raw.

    `id`: the platform's message id (抖店 `msg_id`, TMC `id`); `topic`: 抖店 `tag` or TMC
    `topic`; `body`: the message as decoded (抖店: the array element, with `data` still the
    JSON string it was; TMC: every custom field, `content` a JSON string)."""

    id: str
    topic: str
    body: dict[str, Any]


@dataclass(frozen=True)
class RejectReason:
    code: str
    text: str


@dataclass
class PullPage:
    """One page of the incremental pull: the events it gives, and the cursor to store once
    they are stored. `more`: another page follows at once (else wait for the next round)."""

    events: list[dict[str, Any]]
    cursor: str
    more: bool = False
    fetched: int = 0
    notes: list[str] = field(default_factory=list)


class ShopConnector(Protocol):
    shop: ShopSettings

    async def translate(self, message: PlatformMessage) -> list[dict[str, Any]]:
        """The envelopes (dicts, `data` as the wire has it) a message means; [] for one that
        means nothing to refundops. Raises `UnknownMessageError` for a tag or topic it does not
        know and `MalformedMessageError` for one it cannot read: both are kept and reported."""

    async def pull(self, cursor: str | None, now: datetime) -> PullPage:
        """The next page after `cursor` (None: start `pull_start_h` back from `now`)."""

    async def call(self, action: str, key: str, data: dict[str, Any]) -> CommerceResult | None: ...

    async def intercept(self, key: str, data: dict[str, Any]) -> CarrierAnswer | None: ...

    async def reject_reasons(self, refund_id: str) -> list[RejectReason]: ...

    def deep_link(self, refund_id: str) -> str:
        """The case in the platform's seller backend, or '' where no stable URL is known."""


class UnknownMessageError(Exception):
    """A tag or topic the connector does not know: stored, reported once, not redelivered."""


class MalformedMessageError(Exception):
    """A message the connector cannot read: stored, reported, not redelivered."""
