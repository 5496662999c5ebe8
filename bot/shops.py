"""Shop platform connectors at work: their tokens, the messages they push (stored raw, then
translated into events), their incremental pull, and the 淘宝 TMC channel.

Nothing a platform hands over is answered before it is stored: a push is acknowledged once its
messages are outbox items (`shop.message`, keyed by the platform's message id, so a
redelivery is a no-op), and a TMC message is confirmed the same way. The item's performer
translates the message, fetching what it lacks, and stores the events it means.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from bot.dispatch import AUTH_WAIT_S, Dispatcher, authorization_lost
from bot.group_commit import event_row
from bot.lease import DatabaseLease
from bot.services import BotServices
from handlers.clock import Clock
from handlers.context import Tx
from handlers.errors import AuthorizationError, PermanentError
from handlers.schema import Envelope, InvalidEventError, parse_event
from integrations.douyin.connector import DouyinConnector
from integrations.shop.connector import (
    MalformedMessageError,
    PlatformMessage,
    ShopConnector,
    Tokens,
    TokenStore,
    UnknownMessageError,
)
from integrations.shop.settings import ShopSettings
from integrations.taobao.connector import TaobaoConnector
from integrations.taobao.tmc import TmcConsumer
from storage.models import OutboxItem
from storage.repositories.connector_state import ConnectorStateRepository

log = logging.getLogger(__name__)

SHOP_MESSAGE = "shop.message"
TOKEN_LOCK_S = 60.0
PULL_LEASE_S = 120.0
TMC_LEASE_S = 30.0

ConnectorFactory = Callable[[ShopSettings, aiohttp.ClientSession, TokenStore, Clock], ShopConnector]


def _douyin(
    shop: ShopSettings, session: aiohttp.ClientSession, tokens: TokenStore, clock: Clock
) -> ShopConnector:
    address = shop.return_address_id or None
    return DouyinConnector(shop, session, tokens, clock, return_address_id=address)


def _taobao(
    shop: ShopSettings, session: aiohttp.ClientSession, tokens: TokenStore, clock: Clock
) -> ShopConnector:
    return TaobaoConnector(shop, session, tokens, clock)


# `[[shops]] connector` → how its connector is made.
CONNECTORS: dict[str, ConnectorFactory] = {"douyin": _douyin, "taobao": _taobao}


class DatabaseTokenStore:
    """A shop's tokens in `connector_state`, refreshed by one instance at a time."""

    def __init__(self, svc: BotServices, shop: str) -> None:
        self.svc = svc
        self.shop = shop
        self.name = f"tokens:{shop}"

    async def load(self) -> Tokens | None:
        async with self.svc.tx() as tx:
            data = await ConnectorStateRepository(tx.session).get(self.name)
        if not data or not data.get("access_token"):
            return None
        expires = data.get("expires_at")
        return Tokens(
            access_token=str(data["access_token"]),
            refresh_token=str(data.get("refresh_token", "")),
            expires_at=datetime.fromisoformat(expires) if expires else None,
        )

    async def save(self, tokens: Tokens) -> None:
        data = {
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "expires_at": tokens.expires_at.isoformat() if tokens.expires_at else None,
        }
        async with self.svc.tx() as tx:
            await ConnectorStateRepository(tx.session).put(self.name, data, now=tx.now)

    def lock(self) -> AbstractAsyncContextManager[None]:
        return self.svc.coord.lock(f"shop-token:{self.shop}", TOKEN_LOCK_S)


def build(
    svc: BotServices, session: aiohttp.ClientSession, shops: Iterable[ShopSettings]
) -> dict[str, ShopConnector]:
    """One connector per shop whose `[[shops]]` entry names a platform connector."""
    return {
        shop.id: CONNECTORS[shop.connector](
            shop, session, DatabaseTokenStore(svc, shop.id), svc.clock
        )
        for shop in shops
        if shop.connector in CONNECTORS
    }


def message_key(shop: str, message_id: str) -> str:
    return f"shop:{shop}:{message_id}"


async def store_messages(tx: Tx, shop: str, messages: list[PlatformMessage]) -> None:
    """Keep each message as an outbox item, once per message id: the platform may be told it
    was received as soon as this transaction commits."""
    for message in messages:
        await tx.outbox.add(
            message_key(shop, message.id),
            SHOP_MESSAGE,
            now=tx.now,
            payload={"shop": shop, "id": message.id, "topic": message.topic, "body": message.body},
        )


async def store_unreadable(tx: Tx, shop: str, raw: bytes, why: str) -> None:
    """Keep a delivery nobody can read, to be reported: asking for it again would not help."""
    digest = hashlib.sha256(raw).hexdigest()[:32]
    text = raw[:20000].decode("utf-8", "replace")
    await tx.outbox.add(
        message_key(shop, f"unreadable:{digest}"),
        SHOP_MESSAGE,
        now=tx.now,
        payload={"shop": shop, "unreadable": text, "why": why},
    )


def envelopes_of(
    found: list[dict[str, Any]],
) -> tuple[list[tuple[Envelope, dict[str, Any]]], list[str]]:
    """The envelopes that validate, each with its raw form, and what is wrong with the others."""
    good: list[tuple[Envelope, dict[str, Any]]] = []
    bad: list[str] = []
    for raw in found:
        try:
            envelope, _ = parse_event(raw)
        except InvalidEventError as exc:
            bad.append(f"{raw.get('id', '?')}: {exc}")
        else:
            good.append((envelope, raw))
    return good, bad


async def store_events(tx: Tx, found: list[dict[str, Any]], *, source: str) -> int:
    """Store the events a message or a pull page means; the number that were new. An event
    the connector made that does not validate is reported, never silently dropped."""
    good, bad = envelopes_of(found)
    rows = {envelope.id: event_row(envelope, raw) for envelope, raw in good}
    new = await tx.events.add_many(list(rows.values()), now=tx.now)
    if bad:
        await tx.post(
            tx.svc.admin_group,
            f"⚠ 平台消息 {source} 转成事件时有 {len(bad)} 条不合格，已保留原消息：{bad[0][:200]}",
            key=f"shop-bad:{source}",
        )
    return len(new)


async def perform(d: Dispatcher, item: OutboxItem) -> None:
    await ShopMessages(d.svc, d.shops).perform(item.id, item.payload)


@dataclass
class ShopMessages:
    """Performs `shop.message` outbox items: translate, then store the events."""

    svc: BotServices
    connectors: dict[str, ShopConnector]

    async def perform(self, item_id: str, payload: dict[str, Any]) -> None:
        shop = str(payload.get("shop", ""))
        connector = self.connectors.get(shop)
        if "unreadable" in payload:
            await self.tell_admins(
                f"⚠ 店铺 {shop} 收到一条无法解析的平台推送（{payload.get('why', '')}），"
                f"已保存为 {item_id}，请联系开发查看",
                key=f"shop-unreadable:{item_id}",
            )
            return
        if connector is None:
            raise PermanentError(f"shop {shop!r} has no platform connector configured")
        message = PlatformMessage(
            id=str(payload["id"]), topic=str(payload["topic"]), body=dict(payload["body"])
        )
        try:
            found = await connector.translate(message)
        except UnknownMessageError as exc:
            await self.tell_admins(
                f"ℹ 店铺 {shop} 收到未识别的平台消息 {message.topic}（已保存，不影响其他消息）：{exc}",
                key=f"shop-unknown:{shop}:{message.topic}",
            )
            return
        except MalformedMessageError as exc:
            await self.tell_admins(
                f"⚠ 店铺 {shop} 的平台消息 {message.id} 内容不完整，已保存：{exc}",
                key=f"shop-malformed:{item_id}",
            )
            return
        async with self.svc.tx() as tx:
            await store_events(tx, found, source=item_id)

    async def tell_admins(self, text: str, *, key: str) -> None:
        """One line to the admin group, once per `key`: the message itself stays stored."""
        async with self.svc.tx() as tx:
            await tx.post(tx.svc.admin_group, text, key=key)


@dataclass
class Puller:
    """Each shop's incremental pull, from its durable cursor, by whichever instance holds the
    shop's pull lease."""

    svc: BotServices
    connectors: dict[str, ShopConnector]
    due: dict[str, datetime] = field(default_factory=dict)
    leases: dict[str, DatabaseLease] = field(default_factory=dict)

    def cursor_name(self, shop: str) -> str:
        return f"cursor:{shop}"

    async def run(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(1.0)

    async def run_once(self) -> int:
        """One page for every shop that is due; the number of events stored."""
        stored = 0
        for shop, connector in self.connectors.items():
            now = self.svc.clock.now()
            if self.due.get(shop, now) > now:
                continue
            stored += await self.pull_shop(shop, connector)
        return stored

    async def pull_shop(self, shop: str, connector: ShopConnector) -> int:
        lease = self.leases.setdefault(
            shop, DatabaseLease(self.svc, f"shop-pull:{shop}", PULL_LEASE_S)
        )
        interval = timedelta(seconds=connector.shop.pull_interval_s)
        if not await lease.take():
            self.due[shop] = self.svc.clock.now() + interval
            return 0
        stored = 0
        try:
            more = True
            while more:
                async with self.svc.tx() as tx:
                    state = await ConnectorStateRepository(tx.session).get(self.cursor_name(shop))
                cursor = (state or {}).get("cursor")
                page = await connector.pull(cursor, self.svc.clock.now())
                async with self.svc.tx() as tx:
                    stored += await store_events(tx, page.events, source=f"pull:{shop}")
                    await ConnectorStateRepository(tx.session).put(
                        self.cursor_name(shop),
                        {"cursor": page.cursor, "fetched": page.fetched},
                        now=tx.now,
                    )
                more = page.more
                if more:
                    await lease.take()
        except AuthorizationError as exc:
            async with self.svc.tx() as tx:
                await authorization_lost(tx, exc)
            interval = max(interval, timedelta(seconds=AUTH_WAIT_S))
        except Exception:
            log.exception("pull of shop %s failed; trying again in %s", shop, interval)
        self.due[shop] = self.svc.clock.now() + interval
        return stored


@dataclass
class TmcRunner:
    """One TMC connection per 淘宝 app across every instance: the lease holder consumes, and
    each message is confirmed only once it is stored (a failure to store nacks it)."""

    svc: BotServices
    session: aiohttp.ClientSession
    shops: list[ShopSettings]
    connectors: dict[str, ShopConnector] = field(default_factory=dict)
    permitted: bool = False

    @property
    def app_key(self) -> str:
        return self.shops[0].app_key

    async def permit(self) -> None:
        """Ask TMC for each shop's messages once (taobao.tmc.user.permit); a refusal is
        logged and the channel opens anyway (the seller may have been permitted before)."""
        for shop in self.shops:
            connector = self.connectors.get(shop.id)
            if not isinstance(connector, TaobaoConnector):
                continue
            try:
                await connector.permit()
            except Exception as exc:
                log.warning("taobao.tmc.user.permit for shop %s failed: %s", shop.id, exc)
        self.permitted = True

    def shop_of(self, message: PlatformMessage) -> str:
        """The shop a message is about: by the seller's nick, the only shop when there is one."""
        nick = str(message.body.get("nick") or message.body.get("user_nick") or "")
        for shop in self.shops:
            if nick and shop.seller_nick == nick:
                return shop.id
        return self.shops[0].id if len(self.shops) == 1 else ""

    async def store(self, message: PlatformMessage) -> None:
        shop = self.shop_of(message)
        async with self.svc.tx() as tx:
            if shop:
                await store_messages(tx, shop, [message])
            else:
                raw = repr(message.body).encode()
                await store_unreadable(tx, self.shops[0].id, raw, "消息没有对应的店铺 seller_nick")

    async def run(self) -> None:
        lease = DatabaseLease(self.svc, f"tmc:{self.app_key}", TMC_LEASE_S)
        first = self.shops[0]
        while True:
            if not await lease.take():
                await asyncio.sleep(TMC_LEASE_S / 3)
                continue
            if not self.permitted:
                await self.permit()
            consumer = TmcConsumer(
                self.session,
                first.tmc_url,
                first.app_key,
                first.app_secret.get_secret_value(),
                first.tmc_group,
                self.svc.clock,
                pull_interval_s=first.tmc_pull_s,
            )
            task = asyncio.create_task(consumer.run(self.store))
            try:
                while not task.done():
                    await asyncio.wait({task}, timeout=TMC_LEASE_S / 3)
                    if not await lease.take():
                        log.warning("TMC lease for app %s moved; closing", self.app_key)
                        break
            finally:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                except Exception:
                    log.exception("TMC consumer for app %s failed", self.app_key)


def tmc_runners(
    svc: BotServices, session: aiohttp.ClientSession, connectors: dict[str, ShopConnector]
) -> list[TmcRunner]:
    by_app: dict[str, list[ShopSettings]] = {}
    for connector in connectors.values():
        if connector.shop.connector == "taobao":
            by_app.setdefault(connector.shop.app_key, []).append(connector.shop)
    return [TmcRunner(svc, session, group, connectors) for group in by_app.values()]
