"""The outbox dispatcher: claims due items, performs them outside any transaction, records the end.

Retries use exponential backoff with jitter; after `max_attempts` (or a permanent error)
an item is dead-lettered and the admin group is told. A throttle or an unreachable Redis
(a lock, a sending budget, a token cache) is no failure: the item waits, no attempt spent. Every external call carries the
item id as its idempotency key, so a crash between "performed" and "recorded" repeats
the call harmlessly.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bot import flood
from bot.metrics import Metrics
from bot.services import BotServices
from bot.worker import forever
from handlers import reply
from handlers.cards import build_card
from handlers.channel import Budget, CardRef, Channel
from handlers.config import GroupSettings
from handlers.context import Tx
from handlers.errors import AuthorizationError, PermanentError, RetryableError, ThrottledError
from handlers.intercept import flow as intercept
from handlers.message import Card, Mention, Notice
from handlers.outbox import CardKey
from handlers.payout import outcome as payout
from handlers.ports import Carrier, Commerce, Payouts
from handlers.refund import commerce as refund
from handlers.refund.move import APPROVE_REFUND
from integrations.carrier.client import NoCarrier
from integrations.shop.connector import ShopConnector
from storage.coordination import CoordinationError
from storage.enums import OutboxState
from storage.models import Case, OutboxItem
from storage.repositories import StaleCaseError
from storage.repositories.outbox import OUTBOX_TOPIC

log = logging.getLogger(__name__)
STALE_RETRIES = 5
# A shop whose authorisation is gone: its work waits this long between tries.
AUTH_WAIT_S = 600.0

Perform = Callable[["Dispatcher", OutboxItem], Awaitable[None]]


GiveUp = Callable[[Tx, Case, OutboxItem, str], Awaitable[None]]


@dataclass(frozen=True)
class Performers:
    """Outbox kinds (or their prefix before ".") → what performs them, what the case's flow
    does when one is dead-lettered, and what the admin group calls them then."""

    perform: dict[str, Perform]
    on_dead: dict[str, GiveUp]
    what: dict[str, str]

    def runner(self, kind: str) -> Perform | None:
        return self.perform.get(kind) or self.perform.get(kind.split(".", 1)[0])

    def gave_up(self, kind: str) -> GiveUp | None:
        return self.on_dead.get(kind) or self.on_dead.get(kind.split(".", 1)[0])


@dataclass
class Dispatcher:
    svc: BotServices
    channels: dict[str, Channel]
    commerce: Commerce
    metrics: Metrics
    performers: Performers
    batch: int = 50
    rng: random.Random = field(default_factory=random.Random)
    payouts: Payouts | None = None
    carrier: Carrier = field(default_factory=NoCarrier)
    shops: dict[str, ShopConnector] = field(default_factory=dict)
    redis_away: bool = False

    async def run(self) -> None:
        poll_s = self.svc.settings.dispatch.poll_s
        await forever("dispatcher", self.run_once, self.svc.coord, OUTBOX_TOPIC, poll_s)

    async def run_once(self) -> int:
        """Claim and perform one batch of due items; the number handled."""
        async with self.svc.tx() as tx:
            items = await tx.outbox.claim(
                now=tx.now,
                limit=self.batch,
                lease_s=self.svc.settings.dispatch.lease_s,
                skip_groups=self.served_elsewhere(),
            )
        if items:
            await asyncio.gather(*(self.perform(item) for item in items))
        return len(items)

    def served_elsewhere(self) -> list[str]:
        """Groups whose channel connection another instance holds (the WeCom AI bot): their
        items are left for that instance to claim."""
        away = {
            name
            for name, channel in self.channels.items()
            if channel.capabilities.leased and not channel.held
        }
        return [g.id for g in self.svc.settings.groups if g.channel in away]

    async def perform(self, item: OutboxItem) -> None:
        runner = self.performers.runner(item.kind)
        try:
            if runner is None:
                raise PermanentError(f"no performer for outbox kind {item.kind!r}")
            await runner(self, item)
        except ThrottledError as exc:
            async with self.svc.tx() as tx:
                await tx.outbox.defer(item.id, at=tx.now + timedelta(seconds=exc.defer))
            self.metrics.dispatched.labels(item.kind, "throttled").inc()
        except CoordinationError as exc:
            # Once per outage in the log, not once per item and retry.
            (log.debug if self.redis_away else log.warning)(
                "outbox items wait for Redis (first: %s): %s", item.id, exc
            )
            self.redis_away = True
            async with self.svc.tx() as tx:
                wait = timedelta(seconds=self.svc.settings.dispatch.coordination_retry_s)
                await tx.outbox.defer(item.id, at=tx.now + wait)
            self.metrics.dispatched.labels(item.kind, "deferred").inc()
        except AuthorizationError as exc:
            # Every item of the shop would fail alike: one notice, and the work waits.
            async with self.svc.tx() as tx:
                await authorization_lost(tx, exc)
                await tx.outbox.defer(item.id, at=tx.now + timedelta(seconds=AUTH_WAIT_S))
            self.metrics.dispatched.labels(item.kind, "deferred").inc()
        except RetryableError as exc:
            await self._failed(item, str(exc), exc.defer)
        except PermanentError as exc:
            await self._dead(item, str(exc))
        except Exception as exc:
            log.exception("outbox item %s failed", item.id)
            await self._failed(item, f"{type(exc).__name__}: {exc}", None)
        else:
            async with self.svc.tx() as tx:
                await tx.outbox.done(item.id, now=tx.now)
            self.metrics.dispatched.labels(item.kind, "done").inc()
            if self.redis_away:
                self.redis_away = False
                log.info("outbox delivering again after a Redis outage")

    def backoff(self, attempts: int, defer: float | None) -> float:
        settings = self.svc.settings.dispatch
        delay = min(settings.backoff_max_s, settings.backoff_base_s * 2**attempts)
        delay *= self.rng.uniform(0.5, 1.0)
        return float(max(delay, defer or 0.0))

    async def _failed(self, item: OutboxItem, error: str, defer: float | None) -> None:
        self.metrics.dispatch_failures.labels(item.kind).inc()
        if item.attempts + 1 >= self.svc.settings.dispatch.max_attempts:
            await self._dead(item, error)
            return
        log.warning("outbox item %s attempt %d failed: %s", item.id, item.attempts + 1, error)
        async with self.svc.tx() as tx:
            delay = timedelta(seconds=self.backoff(item.attempts, defer))
            await tx.outbox.retry(item.id, error=error, at=tx.now + delay)

    async def on_case(
        self, case_pk: int | None, apply: Callable[[Tx, Case], Awaitable[None]]
    ) -> None:
        """Record what an external call did on its case; a concurrent change is retried here,
        so the (already performed) call is not repeated."""
        for attempt in range(STALE_RETRIES):
            try:
                async with self.svc.tx() as tx:
                    case = await tx.cases.get(case_pk) if case_pk is not None else None
                    if case is not None:
                        await apply(tx, case)
                return
            except StaleCaseError:
                if attempt == STALE_RETRIES - 1:
                    raise

    async def _dead(self, item: OutboxItem, error: str) -> None:
        log.error("outbox item %s dead-lettered: %s", item.id, error)
        self.metrics.dispatched.labels(item.kind, "dead").inc()
        for attempt in range(STALE_RETRIES):
            try:
                await self._bury(item, error)
                return
            except StaleCaseError:
                if attempt == STALE_RETRIES - 1:
                    raise

    async def _bury(self, item: OutboxItem, error: str) -> None:
        async with self.svc.tx() as tx:
            await tx.outbox.dead(item.id, error=error, now=tx.now)
            case = await tx.cases.get(item.case_pk) if item.case_pk is not None else None
            gave_up = self.performers.gave_up(item.kind)
            if case is not None and gave_up is not None:
                await gave_up(tx, case, item, error)
            is_admin_notice = item.kind == "text" and item.group_id == self.svc.admin_group
            if not is_admin_notice:
                what = f"{case.handle} 的" if case else ""
                await tx.post(
                    self.svc.admin_group,
                    f"⚠ {what}{self.performers.what.get(item.kind, item.kind)}"
                    f"{'多次失败，已放弃' if item.attempts else '失败（不会再试）'}：{error[:300]}",
                    key=f"dead:{item.id}",
                    mentions=tx.svc.staff.to_mention(roles=["admin"]),
                    case=case,
                )

    async def flush_case(self, case_pk: int, *, wait_s: float = 2.0) -> None:
        """Deliver the pending card updates of one case now (the sandbox answers a click with
        them); an update another worker already holds is waited for, up to `wait_s`."""
        async with self.svc.tx() as tx:
            pending = await tx.outbox.pending_for_case(case_pk, "card")
        held: list[str] = []
        for item in pending:
            async with self.svc.tx() as tx:
                claimed = await tx.outbox.get(item.id)
                if claimed is None or claimed.state != OutboxState.PENDING:
                    continue
                if claimed.lease_until is not None and claimed.lease_until > tx.now:
                    held.append(item.id)
                    continue
                claimed.lease_until = tx.now + timedelta(seconds=self.svc.settings.dispatch.lease_s)
            await self.perform(claimed)
        deadline = asyncio.get_running_loop().time() + wait_s
        while held and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
            async with self.svc.tx() as tx:
                held = [i for i in held if await tx.outbox.is_pending(i)]


async def authorization_lost(tx: Tx, exc: AuthorizationError) -> None:
    """Tell the admin group, once a day per shop, that a shop must be authorised again."""
    shop = exc.shop or "?"
    await tx.post(
        tx.svc.admin_group,
        f"⚠ 店铺 {shop} 的平台授权已失效（{str(exc)[:120]}）：请在开放平台重新授权并更新令牌，"
        "在此之前该店铺的消息和操作会暂停并自动重试，不会丢失",
        key=f"shop-auth:{shop}:{tx.now.date().isoformat()}",
        mentions=tx.svc.staff.to_mention(roles=["admin"]),
    )


OUTBOX_ID_CHARS = 255
KIND_TEXT = {
    "card": "卡片发送",
    "text": "群消息发送",
    "notify": "工作通知",
    "notice": "日报发送",
    "commerce.approve_refund": "退款提交",
    "commerce.reject_refund": "拒绝提交",
    "commerce.stop_shipment": "截单",
    "commerce.send_buyer_message": "买家回复发送",
    "commerce.notify_payout": "打款通知买家",
    "payout.transfer": "支付宝转账",
    "carrier.intercept": "快递拦截申请",
    "shop.message": "平台消息处理",
}


def resolve(d: Dispatcher, group_id: str) -> tuple[GroupSettings, Channel, Budget | None]:
    """The group, its running channel, and the tighter of the platform's and the group's limit."""
    group = d.svc.settings.group(group_id)
    if group is None:
        raise PermanentError(f"group {group_id!r} is not configured")
    if group.awaiting_chat_id:
        raise PermanentError(
            f"group {group_id!r} has no chat_id yet: @-mention the bot in that group, put the "
            "chat_id it answers with in [[groups]] and restart (then `refundops outbox requeue`)"
        )
    channel = d.channels.get(group.channel)
    if channel is None:
        raise PermanentError(f"channel {group.channel.value!r} is not running")
    budget = channel.budget(group)
    if group.max_per_minute:
        # burst + rate·60 s never exceeds the group's maximum in any minute.
        burst = max(1, group.max_per_minute // 4)
        mine = Budget(per_minute=max(1, group.max_per_minute - burst), burst=burst)
        if budget is None or mine.per_minute < budget.per_minute:
            budget = mine
    return group, channel, budget


async def spend(d: Dispatcher, group: GroupSettings, budget: Budget | None) -> None:
    """Take one send from the destination's token bucket, or ThrottledError with the wait."""
    if budget is None:
        return
    wait = await d.svc.coord.take(f"{group.channel}:{group.id}", budget.per_minute, budget.burst)
    if wait > 0:
        raise ThrottledError(f"{group.id} is at its sending limit", defer=wait)


async def destination(d: Dispatcher, group_id: str) -> tuple[GroupSettings, Channel]:
    """The group and its running channel, once the destination's budget grants a send."""
    group, channel, budget = resolve(d, group_id)
    await spend(d, group, budget)
    return group, channel


async def _card(d: Dispatcher, item: OutboxItem) -> None:
    group, channel, budget = resolve(d, item.group_id)
    lease = d.svc.settings.dispatch.lease_s
    if budget is None:
        # Two items of one case (two versions, two instances) must not both post a first card.
        async with d.svc.coord.lock(f"card:{item.case_pk}:{group.id}", lease):
            await _place_card(d, item, group, channel)
        return
    # A limited group sends one thing at a time; when cards pile up they are folded.
    async with d.svc.coord.lock(f"send:{group.id}", lease):
        settings = d.svc.settings.dispatch
        async with d.svc.tx() as tx:
            current = await tx.outbox.get(item.id)
            if current is None or current.state != OutboxState.PENDING:
                return  # folded meanwhile
            drawn = await _drawn(tx, item, group)
            if not _posts(channel, item, *drawn):
                waiting = None  # an edit in place (or nothing): no send to spend
            else:
                waiting = await flood.backlog(tx, group.id, settings.fold_max)
                if all(w.id != item.id for w in waiting):
                    waiting = [*waiting[: settings.fold_max - 1], current]  # folded too
        if waiting is None:
            await _place_card(d, item, group, channel, drawn)
            return
        try:
            await spend(d, group, budget)
        except ThrottledError as exc:
            # The group's other cards would each be claimed and refused the same way until
            # the bucket refills: one statement puts them all back instead.
            async with d.svc.tx() as tx:
                at = tx.now + timedelta(seconds=exc.defer)
                await tx.outbox.defer_waiting(group.id, "card", at=at, now=tx.now)
            raise
        if len(waiting) >= settings.fold_at:
            await _fold(d, group, channel, waiting)
        else:
            await _place_card(d, item, group, channel, drawn)


def _posts(channel: Channel, item: OutboxItem, card: Card, placement: CardRef | None) -> bool:
    """Delivering `item` posts a message: a first card, or an update the platform cannot
    make in place."""
    if _shown(item, card, placement):
        return False
    own = _own(placement)
    return own is None or not own.ref or channel.update_sends(card, own)


async def _drawn(tx: Tx, item: OutboxItem, group: GroupSettings) -> tuple[Card, CardRef | None]:
    """The case's card as it is now, and where (if anywhere) the group already shows it."""
    case = await tx.cases.get(item.case_pk or 0)
    if case is None:
        raise PermanentError(f"case {item.case_pk} is gone")
    placement = await tx.cards.get(case.id, group.id)
    return build_card(case, tx.view), CardRef.of(placement) if placement is not None else None


def _own(placement: CardRef | None) -> CardRef | None:
    """The card's own message; one shown only on a batch card gets its own now the rush is over."""
    return None if placement is None or flood.folded(placement.ref) else placement


def _shown(item: OutboxItem, card: Card, placement: CardRef | None) -> bool:
    """The platform already shows this version of the card (or a newer one)."""
    if placement is None:
        return False
    if flood.folded(placement.ref):
        return placement.version >= card.version  # on the batch card
    refresh = bool(CardKey.parse(item.id).refresh)
    return placement.version > card.version or (placement.version == card.version and not refresh)


async def _fold(
    d: Dispatcher, group: GroupSettings, channel: Channel, items: list[OutboxItem]
) -> None:
    async with d.svc.tx() as tx:
        pks = list(dict.fromkeys(i.case_pk for i in items if i.case_pk is not None))
        cases = [c for c in [await tx.cases.get(pk) for pk in pks] if c is not None]
        notice = await flood.fold_notice(tx, group, cases)
    await channel.deliver_notice(group, notice)
    async with d.svc.tx() as tx:
        for case in cases:
            placement = await tx.cards.get(case.id, group.id)
            if placement is None or flood.folded(placement.ref):
                await tx.cards.record(
                    case_pk=case.id,
                    group_id=group.id,
                    channel=group.channel,
                    ref=flood.FOLD_REF + notice.ref,
                    version=case.version,
                    now=tx.now,
                )
        for item in items:
            await tx.outbox.done(item.id, now=tx.now)
    d.metrics.dispatched.labels("card", "folded").inc(len(items))


async def _place_card(
    d: Dispatcher,
    item: OutboxItem,
    group: GroupSettings,
    channel: Channel,
    drawn: tuple[Card, CardRef | None] | None = None,
) -> None:
    """Post or update the case's card; `drawn` is the card and placement already read."""
    if drawn is None:
        async with d.svc.tx() as tx:
            drawn = await _drawn(tx, item, group)
    card, placement = drawn
    if _shown(item, card, placement):
        return
    placement = _own(placement)
    where = await channel.deliver_card(group, card, placement)
    async with d.svc.tx() as tx:
        await tx.cards.record(
            case_pk=card.case_pk,
            group_id=group.id,
            channel=group.channel,
            ref=where.ref,
            version=card.version,
            now=tx.now,
            extra=where.extra or None,
        )
        for older in await tx.outbox.pending_for_case(card.case_pk, "card"):
            if older.id != item.id and int(older.payload.get("version", 0)) <= card.version:
                await tx.outbox.done(older.id, now=tx.now)


async def _text(d: Dispatcher, item: OutboxItem) -> None:
    group, channel = await destination(d, item.group_id)
    mentions = tuple(Mention(staff_id, name) for staff_id, name in item.payload.get("mentions", []))
    await channel.deliver_text(group, item.payload["text"], mentions)
    if mentions and channel.capabilities.notifies_apart:
        async with d.svc.tx() as tx:
            await queue_notify(tx, group.id, item.payload["text"], mentions, key=item.id)


async def queue_notify(
    tx: Tx, group_id: str, text: str, mentions: tuple[Mention, ...], *, key: str
) -> None:
    """Tell the people a group line named, one by one, where the group cannot @ them; once
    per `key`. The words carry the time they were said, so two alike lines in a day are two
    notifications."""
    said = f"{text}（{tx.local(tx.now):%m-%d %H:%M}）"
    item_id = f"notify:{key}"
    if len(item_id) > OUTBOX_ID_CHARS:
        item_id = f"notify:{hashlib.sha256(key.encode()).hexdigest()}"
    await tx.outbox.add(
        item_id,
        "notify",
        now=tx.now,
        group_id=group_id,
        payload={"text": said, "mentions": [[m.staff_id, m.name] for m in mentions]},
    )


async def _notify(d: Dispatcher, item: OutboxItem) -> None:
    group, channel, _budget = resolve(d, item.group_id)
    mentions = tuple(Mention(staff_id, name) for staff_id, name in item.payload.get("mentions", []))
    await channel.notify(group, item.payload["text"], mentions)


async def _notice(d: Dispatcher, item: OutboxItem) -> None:
    group, channel = await destination(d, item.group_id)
    await channel.deliver_notice(group, Notice.from_json(item.payload))


async def _commerce(d: Dispatcher, item: OutboxItem) -> None:
    action = item.kind.split(".", 1)[1]
    payload: dict[str, Any] | None = item.payload
    if item.kind == APPROVE_REFUND:
        payload = await _standing_approval(d, item)
    if payload is None:
        log.info("outbox item %s: its approval was withdrawn; nothing sent", item.id)
        return
    result = await d.commerce.call(action, item.id, payload)

    async def record(tx: Tx, case: Case) -> None:
        if case.kind == "payout":
            await payout.on_commerce_result(tx, case, item.kind, ok=True, status=result.status)
        else:
            await refund.on_commerce_result(
                tx, case, item.kind, ok=True, status=result.status, detail=result.detail
            )

    await d.on_case(item.case_pk, record)


async def _standing_approval(d: Dispatcher, item: OutboxItem) -> dict[str, Any] | None:
    """The approval's payload as the case holds it now (the approved amount), or None when the
    approval no longer stands; marks the call as begun, in its own transaction, before it is made."""
    sent: dict[str, Any] | None = None

    async def begin(tx: Tx, case: Case) -> None:
        nonlocal sent
        sent = await refund.begin_submission(tx, case, item.id, item.payload)

    await d.on_case(item.case_pk, begin)
    return sent


async def _commerce_gave_up(tx: Tx, case: Case, item: OutboxItem, error: str) -> None:
    if case.kind == "payout":
        await payout.on_commerce_result(tx, case, item.kind, ok=False, error=error)
        return
    await refund.on_commerce_result(tx, case, item.kind, ok=False, error=error)


async def _buyer_message(d: Dispatcher, item: OutboxItem) -> None:
    result = await d.commerce.call("send_buyer_message", item.id, item.payload)

    async def record(tx: Tx, case: Case) -> None:
        await reply.on_delivered(
            tx, case, item.id, ok=True, status=result.status, detail=result.detail
        )

    await d.on_case(item.case_pk, record)


async def _buyer_message_gave_up(tx: Tx, case: Case, item: OutboxItem, error: str) -> None:
    await reply.on_delivered(tx, case, item.id, ok=False, detail=error)


async def _carrier(d: Dispatcher, item: OutboxItem) -> None:
    answer = await d.carrier.intercept(item.id, item.payload)

    async def record(tx: Tx, case: Case) -> None:
        await intercept.on_carrier_answer(tx, case, answer)

    await d.on_case(item.case_pk, record)


async def _carrier_gave_up(tx: Tx, case: Case, _item: OutboxItem, error: str) -> None:
    await intercept.on_carrier_gave_up(tx, case, error)


# The kinds performed here; bot.registry adds the others.
PERFORMERS: dict[str, Perform] = {
    "card": _card,
    "text": _text,
    "notify": _notify,
    "notice": _notice,
    "commerce": _commerce,
    "commerce.send_buyer_message": _buyer_message,
    "carrier": _carrier,
}
ON_DEAD: dict[str, GiveUp] = {
    "commerce": _commerce_gave_up,
    "commerce.send_buyer_message": _buyer_message_gave_up,
    "carrier": _carrier_gave_up,
}
