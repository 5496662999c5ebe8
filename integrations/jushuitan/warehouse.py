"""Stop shipment through 聚水潭: the `Commerce` port's `stop_shipment`, nothing else.

`order_id` is the platform order number (JST `so_id`); one so_id can be several ERP orders
(`o_id`, after a split). Each stop first reads the orders (`/open/orders/single/query`) and
decides from their status: already 异常 (or, with `stop_by = "cancel"`, 取消) is done without
a second call, so a retried outbox item never adds a second 异常; any part 已发货 answers
SHIPPED (the refund turns to an intercept) after stopping the parts still in the warehouse;
unknown is permanent. The rest go to 订单转异常 (or cancel) by o_id, ≤50 a call. Stops that
arrive within `batch_window_s` share one call; a call refused as a whole is made again
order by order, so that one bad order does not sink the others. An order 转异常 refuses
(`data.message`) is read again: now shipped → SHIPPED, now 异常 → done, else permanent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from handlers.clock import Clock
from handlers.errors import PermanentError, RetryableError
from handlers.ports import SHIPPED, CommerceResult
from integrations.jushuitan.client import JushuitanApiError, JushuitanClient
from integrations.jushuitan.models import (
    CANCELLED,
    MAX_ORDER_SO_IDS,
    MAX_QUESTION_ORDERS,
    MERGED,
    ORDER_STATUS_TEXT,
    QUESTION,
    SENT,
    SPLIT,
    Order,
)
from integrations.jushuitan.settings import WarehouseSettings
from integrations.shop.connector import TokenStore

log = logging.getLogger(__name__)

STOP = "stop_shipment"
STOPPED = "聚水潭已转异常，仓库不会发货"
CANCELLED_TEXT = "聚水潭已取消订单，仓库不会发货"
GONE = frozenset({MERGED, SPLIT})

Outcome = CommerceResult | Exception


@dataclass
class _Batch:
    waiting: dict[str, asyncio.Future[CommerceResult]] = field(default_factory=dict)
    full: asyncio.Event = field(default_factory=asyncio.Event)


class JushuitanWarehouse:
    def __init__(
        self,
        settings: WarehouseSettings,
        session: aiohttp.ClientSession,
        tokens: TokenStore,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.client = JushuitanClient.of(settings, session, tokens, clock)
        self._open: _Batch | None = None

    async def call(self, action: str, key: str, data: dict[str, Any]) -> CommerceResult:
        if action != STOP:
            raise PermanentError(f"聚水潭只接截单（stop_shipment），不处理 {action}")
        return await self.stop(key, data)

    async def stop(
        self,
        key: str,  # noqa: ARG002 - idempotent by reading the order first, not by key
        data: dict[str, Any],
    ) -> CommerceResult:
        so_id = str(data.get("order_id") or "").strip()
        if not so_id:
            raise PermanentError("没有订单号，聚水潭无法截单：请在聚水潭手动把订单转异常")
        if self.settings.batch_window_s <= 0:
            return _settle(so_id, (await self._stop_all([so_id]))[so_id])
        batch = self._open
        leader = batch is None or (
            so_id not in batch.waiting and len(batch.waiting) >= MAX_QUESTION_ORDERS
        )
        if leader:
            batch = self._open = _Batch()
        assert batch is not None
        future = batch.waiting.get(so_id)
        if future is None:
            future = batch.waiting[so_id] = asyncio.get_running_loop().create_future()
            if len(batch.waiting) >= MAX_QUESTION_ORDERS:
                batch.full.set()
        if leader:
            await self._lead(batch, so_id)
        return await asyncio.shield(future)

    async def _lead(self, batch: _Batch, own: str) -> None:
        """Wait for the window (or a full batch), then stop the batch and answer each caller."""
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(batch.full.wait(), self.settings.batch_window_s)
        except BaseException:
            self._close(batch)
            self._fail(batch, RetryableError("截单被中断"), own)
            raise
        self._close(batch)
        try:
            outcomes = await self._stop_all(list(batch.waiting))
        except Exception as exc:
            self._fail(batch, exc, None)  # the leader reads its own from its future
            return
        except BaseException:
            self._fail(batch, RetryableError("截单被中断"), own)
            raise
        for so_id, future in batch.waiting.items():
            outcome = outcomes[so_id]
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    def _close(self, batch: _Batch) -> None:
        if self._open is batch:
            self._open = None

    @staticmethod
    def _fail(batch: _Batch, exc: Exception, own: str | None) -> None:
        for so_id, future in batch.waiting.items():
            if not future.done():
                future.set_exception(_copy(exc, so_id))
        if own is not None:
            # The leader is leaving without reading its own answer.
            batch.waiting[own].exception()

    # -- the work ---------------------------------------------------------------------

    async def _stop_all(self, so_ids: list[str]) -> dict[str, Outcome]:
        orders = await self._orders(so_ids)
        outcomes: dict[str, Outcome] = {}
        targets: dict[str, list[Order]] = {}
        shipped: dict[str, list[Order]] = {}
        for so_id in so_ids:
            mine = orders.get(so_id, [])
            decided = self._decide(so_id, mine)
            if isinstance(decided, list):
                targets[so_id] = decided
                shipped[so_id] = [o for o in mine if o.status == SENT]
            else:
                outcomes[so_id] = decided
        if targets:
            refused = await self._send(targets)
            again: dict[str, list[Order]] = {}
            if refused:
                touched = [
                    s for s, parts in targets.items() if any(o.o_id in refused for o in parts)
                ]
                again = await self._orders(touched)
            for so_id, parts in targets.items():
                outcomes[so_id] = self._after(so_id, parts, shipped[so_id], refused, again)
        return outcomes

    def _decide(self, so_id: str, orders: list[Order]) -> Outcome | list[Order]:
        """The answer already known from the orders, or the orders still to stop."""
        if not orders:
            return PermanentError(
                f"聚水潭找不到订单 {so_id}：请确认订单已同步到聚水潭，或在聚水潭手动截单"
            )
        live = [o for o in orders if o.status not in GONE]
        if not live:
            return PermanentError(
                f"聚水潭订单 {so_id} 已被合并或拆分：请在聚水潭找到新订单手动截单"
            )
        sent = [o for o in live if o.status == SENT]
        done = (QUESTION, CANCELLED) if self.settings.stop_by == "question" else (CANCELLED,)
        todo = [o for o in live if o.status != SENT and o.status not in done]
        if todo:
            return todo
        if sent:
            return _shipped(sent, [])
        if all(o.status == CANCELLED for o in live):
            return CommerceResult("done", CANCELLED_TEXT)
        types = {o.question_type for o in live if o.question_type}
        other = types - {self.settings.question_type}
        if other:
            return CommerceResult(
                "done", f"聚水潭订单已是异常（{'、'.join(sorted(other))}），仓库不会发货"
            )
        return CommerceResult("done", STOPPED)

    async def _send(self, targets: dict[str, list[Order]]) -> dict[int, str]:
        """Stop every target order; the o_ids JST refused, with its words."""
        groups = [[o.o_id for o in parts] for parts in targets.values()]
        refused: dict[int, str] = {}
        for chunk in _chunks(groups, MAX_QUESTION_ORDERS):
            o_ids = [o_id for group in chunk for o_id in group]
            try:
                refused |= await self._stop_orders(o_ids)
            except JushuitanApiError as exc:
                if len(chunk) == 1:
                    refused |= dict.fromkeys(o_ids, exc.text or str(exc.code))
                    continue
                log.warning("聚水潭 refused a batch of %d orders (%s); one by one", len(o_ids), exc)
                for group in chunk:
                    try:
                        refused |= await self._stop_orders(group)
                    except JushuitanApiError as one:
                        refused |= dict.fromkeys(group, one.text or str(one.code))
        return refused

    async def _stop_orders(self, o_ids: list[int]) -> dict[int, str]:
        s = self.settings
        if s.stop_by == "cancel":
            await self.client.cancel(o_ids, cancel_type=s.cancel_type, remark=s.question_desc)
            return {}
        data = await self.client.questions(
            o_ids, question_type=s.question_type, question_desc=s.question_desc, channel=s.operator
        )
        refused: dict[int, str] = {}
        for failure in data.message:
            try:
                refused[int(failure.id)] = failure.msg
            except (TypeError, ValueError):
                log.warning("聚水潭 questions: unreadable failure id %r", failure.id)
        if data.fail and not refused:
            # Counted but not named: none of them can be trusted as stopped.
            refused = dict.fromkeys(o_ids, f"{data.fail} 个订单转异常失败")
        return refused

    def _after(
        self,
        so_id: str,
        parts: list[Order],
        sent: list[Order],
        refused: dict[int, str],
        again: dict[str, list[Order]],
    ) -> Outcome:
        failed = [o for o in parts if o.o_id in refused]
        if not failed:
            return _shipped(sent, parts) if sent else CommerceResult("done", self._done_text())
        now = {o.o_id: o for o in again.get(so_id, [])}
        stopped = (QUESTION, CANCELLED) if self.settings.stop_by == "question" else (CANCELLED,)
        still: list[str] = []
        for order in failed:
            fresh = now.get(order.o_id)
            if fresh is not None and fresh.status == SENT:
                sent = [*sent, fresh]
            elif fresh is None or fresh.status not in stopped:
                status = ORDER_STATUS_TEXT.get(fresh.status, fresh.status) if fresh else "不存在"
                still.append(f"{order.o_id}（{status}）：{refused[order.o_id]}")
        if sent:
            return _shipped(sent, [o for o in parts if o not in failed])
        if still:
            verb = "取消" if self.settings.stop_by == "cancel" else "转异常"
            return PermanentError(
                f"聚水潭没有把订单 {so_id} {verb}（{'；'.join(still)}）：请在聚水潭手动截单"
            )
        return CommerceResult("done", self._done_text())

    def _done_text(self) -> str:
        return CANCELLED_TEXT if self.settings.stop_by == "cancel" else STOPPED

    async def _orders(self, so_ids: Iterable[str]) -> dict[str, list[Order]]:
        found: dict[str, list[Order]] = {}
        wanted = list(dict.fromkeys(so_ids))
        for start in range(0, len(wanted), MAX_ORDER_SO_IDS):
            chunk = wanted[start : start + MAX_ORDER_SO_IDS]
            page_index = 1
            while True:
                page = await self.client.orders(chunk, page_index=page_index)
                for order in page.orders:
                    if order.so_id in chunk:
                        found.setdefault(order.so_id, []).append(order)
                if not page.has_next or not page.orders:
                    break
                page_index += 1
        return found


def _shipped(sent: list[Order], stopped: list[Order]) -> CommerceResult:
    parcels = "、".join(
        " ".join(p for p in (o.logistics_company or "", o.l_id or "") if p) or f"内部单号 {o.o_id}"
        for o in sent
    )
    rest = "；未发出的部分已转异常" if stopped else ""
    return CommerceResult(SHIPPED, f"仓库已发货（{parcels}）{rest}")


def _chunks(groups: list[list[int]], limit: int) -> Iterable[list[list[int]]]:
    """Groups (one order's o_ids) packed into calls of at most `limit` ids, never split."""
    chunk: list[list[int]] = []
    size = 0
    for group in groups:
        if chunk and size + len(group) > limit:
            yield chunk
            chunk, size = [], 0
        chunk.append(group)
        size += len(group)
    if chunk:
        yield chunk


def _settle(so_id: str, outcome: Outcome) -> CommerceResult:
    if isinstance(outcome, Exception):
        raise outcome
    log.debug("聚水潭 stop %s: %s", so_id, outcome.status)
    return outcome


def _copy(exc: Exception, so_id: str) -> Exception:
    """Each waiting caller gets its own exception object (tracebacks are per raise)."""
    if isinstance(exc, RetryableError):
        return RetryableError(f"{exc}（订单 {so_id}）", defer=exc.defer)
    return exc
