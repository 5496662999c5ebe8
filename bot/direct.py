"""The outbox kinds that reach one person or change what a person typed: the full payee account
by direct message (its words made when it is sent, so the outbox never holds them), and a
typed message with the account taken out."""

from __future__ import annotations

from bot.dispatch import Dispatcher, Perform
from handlers.channel import Channel
from handlers.errors import PermanentError
from handlers.payout import reveal
from storage.models import OutboxItem


async def _payee(d: Dispatcher, item: OutboxItem) -> None:
    payload = item.payload
    channel = _channel(d, str(payload["channel"]))
    if not channel.capabilities.direct_messages:
        raise PermanentError(f"channel {channel.name!r} cannot write to one person")
    # Whoever asked must still be that finance person or admin when the words leave.
    staff = d.svc.staff.by_platform(str(payload["platform"]), str(payload["to"]))
    if staff is None or staff.id != payload.get("staff_id") or not reveal.may_see(staff):
        raise PermanentError(f"{payload['to']!r} may no longer see full payee accounts")
    async with d.svc.tx() as tx:
        case = await tx.cases.get(item.case_pk) if item.case_pk is not None else None
        if case is None:
            raise PermanentError(f"no case {item.case_pk} for {item.id}")
        text = await reveal.direct_text(tx, case)
    await channel.send_direct(str(payload["to"]), text)


async def _redact(d: Dispatcher, item: OutboxItem) -> None:
    channel = _channel(d, str(item.payload["channel"]))
    if not channel.capabilities.redacts_input:
        raise PermanentError(f"channel {channel.name!r} cannot change a message someone typed")
    await channel.redact_input(str(item.payload["ref"]), str(item.payload["text"]))


def _channel(d: Dispatcher, name: str) -> Channel:
    channel = d.channels.get(name)
    if channel is None:
        raise PermanentError(f"no channel {name!r} runs here")
    return channel


# What bot.registry adds to the performers, and what the admin group calls them when they fail.
PERFORMERS: dict[str, Perform] = {reveal.DIRECT: _payee, reveal.REDACT: _redact}
KIND_TEXT = {reveal.DIRECT: "私信完整收款账号", reveal.REDACT: "隐去消息里的收款账号"}
