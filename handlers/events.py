"""Inbound events: accepted by the API, then applied here one transaction per event, in order."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from handlers import reply
from handlers.context import Tx
from handlers.intercept import flow as intercept
from handlers.logistics import watch
from handlers.payout import flow as payout
from handlers.refund import flow as refund
from handlers.schema import (
    BuyerMessage,
    Envelope,
    Inbound,
    InterceptResult,
    InvalidEventError,
    PayoutRequested,
    RefundEnded,
    RefundRequested,
    RefundUpdated,
    ShipmentTracking,
    parse_event,
)
from storage.models import Event

log = logging.getLogger(__name__)

EventHandler = Callable[[Tx, Envelope, Inbound], Awaitable[None]]
ENDINGS = ("refund.cancelled", "refund.closed")


async def _refund_requested(tx: Tx, envelope: Envelope, data: Inbound) -> None:
    assert isinstance(data, RefundRequested)
    waiting = await tx.events.waiting(data.refund_id)
    ended = _ended_before(waiting)
    await refund.on_requested(tx, envelope.shop, envelope.platform, data, ended=ended)
    if waiting:
        # Whatever arrived before the request and waits for it is due now.
        await tx.events.rearm(data.refund_id, now=tx.now)


def _ended_before(waiting: list[tuple[str, dict[str, Any]]]) -> tuple[RefundEnded, bool] | None:
    """A cancellation or closure among the events that arrived before their request."""
    for type_, body in waiting:
        if type_ not in ENDINGS:
            continue
        try:
            _, data = parse_event(body)
        except InvalidEventError:
            continue  # its own attempt fails it and tells the admin group
        assert isinstance(data, RefundEnded)
        return data, type_ == "refund.cancelled"
    return None


async def _refund_updated(tx: Tx, _envelope: Envelope, data: Inbound) -> None:
    assert isinstance(data, RefundUpdated)
    await refund.on_updated(tx, data)


async def _refund_cancelled(tx: Tx, _envelope: Envelope, data: Inbound) -> None:
    assert isinstance(data, RefundEnded)
    await refund.on_ended(tx, data, cancelled=True)


async def _refund_closed(tx: Tx, _envelope: Envelope, data: Inbound) -> None:
    assert isinstance(data, RefundEnded)
    await refund.on_ended(tx, data, cancelled=False)


async def _buyer_message(tx: Tx, envelope: Envelope, data: Inbound) -> None:
    assert isinstance(data, BuyerMessage)
    await reply.on_buyer_message(tx, envelope.id, data)


async def _payout_requested(tx: Tx, envelope: Envelope, data: Inbound) -> None:
    assert isinstance(data, PayoutRequested)
    await payout.on_requested(tx, envelope.shop, envelope.platform, data)


async def _shipment_tracking(tx: Tx, envelope: Envelope, data: Inbound) -> None:
    assert isinstance(data, ShipmentTracking)
    await watch.on_tracking(tx, envelope, data)


async def _intercept_result(tx: Tx, _envelope: Envelope, data: Inbound) -> None:
    assert isinstance(data, InterceptResult)
    await intercept.on_result(tx, data)


HANDLERS: dict[str, EventHandler] = {
    "refund.requested": _refund_requested,
    "refund.updated": _refund_updated,
    "refund.cancelled": _refund_cancelled,
    "refund.closed": _refund_closed,
    "buyer.message": _buyer_message,
    "payout.requested": _payout_requested,
    "shipment.tracking": _shipment_tracking,
    "intercept.result": _intercept_result,
}


async def apply(tx: Tx, event: Event) -> bool:
    """Apply one stored event; False when no flow handles its type (it stays stored for replay)."""
    handler = HANDLERS.get(event.type)
    if handler is None:
        return False
    envelope, data = parse_event(event.body)
    await handler(tx, envelope, data)
    return True
