"""Errors, and what each one becomes at the edge.

    RefundopsError
    ├── UserError ............ shown to the person as is (chat reply / HTTP 4xx message)
    │   ├── UsageError ....... bad command shape: reply with the usage line
    │   ├── NotFoundError .... no such case / message
    │   │   └── MissingRefundError  an event about a refund not received yet: it waits
    │   ├── PermissionDeniedError  not allowed: says why and who can (with mentions)
    │   └── ConflictError .... illegal move for the case's state, or someone else won
    │       └── StaleCardError  a button drawn before the case's last material change:
    │                          refused, and the card is redrawn
    ├── ExternalError ........ a platform / commerce / carrier call failed
    │   ├── RetryableError ... retry later (5xx, timeouts); counts as an attempt; `defer` hints when
    │   ├── PermanentError ... will never succeed (4xx): dead-letter and tell the admin group
    │   └── AuthorizationError  the shop's authorisation expired or was revoked: the work
    │                          waits, and the admin group is told once, not once per case
    └── ThrottledError ....... not sent, not failed: the destination's budget is spent
                               (our token bucket, 45009, 130101); try again after `defer`

Anything else is a bug: the person gets a generic reply, the log gets the event id.
"""

from __future__ import annotations

from handlers.message import Mention


class RefundopsError(Exception):
    pass


class UserError(RefundopsError):
    def __init__(self, message: str, *, mentions: tuple[Mention, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.mentions = mentions


class UsageError(UserError):
    pass


class NotFoundError(UserError):
    pass


class MissingRefundError(NotFoundError):
    """An event names a refund whose request has not been applied (yet)."""

    def __init__(self, refund_id: str) -> None:
        super().__init__(f"没有退款 {refund_id}")
        self.refund_id = refund_id


class PermissionDeniedError(UserError):
    pass


class ConflictError(UserError):
    pass


class StaleCardError(ConflictError):
    def __init__(self, message: str, *, case_pk: int) -> None:
        super().__init__(message)
        self.case_pk = case_pk


class ExternalError(RefundopsError):
    pass


class RetryableError(ExternalError):
    def __init__(self, message: str, *, defer: float | None = None) -> None:
        super().__init__(message)
        self.defer = defer


class PermanentError(ExternalError):
    pass


class AuthorizationError(ExternalError):
    """A platform no longer accepts the shop's authorisation; `shop` names the shop."""

    def __init__(self, message: str, *, shop: str = "") -> None:
        super().__init__(message)
        self.shop = shop


class ThrottledError(RefundopsError):
    def __init__(self, message: str, *, defer: float) -> None:
        super().__init__(message)
        self.defer = defer
