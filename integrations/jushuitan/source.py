"""聚水潭 after-sales as an event source (optional): `/open/refund/single/query` by modified time.

Each pull reads one window (≤7 days, the API's limit; we take a day at a time) page by page
from a durable cursor, and maps 仅退款 / 普通退货 / 拒收退货 to `refund.requested` (and a
`refund.closed` once the platform status is SUCCESS or CLOSED). The refund id is the
platform's (`outer_as_id`), so an after-sale also seen through the shop's own connector
is one case. 换货/补发/维修/投诉/其它 are not refunds and give no events.

What JST does not return: after-sales JST has not downloaded from the platform; and, as the
旺店通 and 快麦 docs state for their standard APIs, 淘系 (淘宝/天猫) and 拼多多 data may be
withheld from third-party apps by those platforms' data rules (it goes through 奇门 / the
platforms' own channels). JST's own docs, as far as we could read them, do not confirm or
deny this for `/open/refund/single/query`: treat 淘宝/天猫/拼多多 shops as needing their own
connector and use this source for the others (抖店, 快手, 小红书, 微信小店, 自有商城 …).
Also: the sandbox pushes nothing, and JST's message push is not used here.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

import aiohttp

from handlers.clock import Clock
from handlers.money import MAX_AMOUNT_FEN, yuan_to_fen
from handlers.schema import yuan_text
from integrations.jushuitan.client import JushuitanClient, parse_beijing
from integrations.jushuitan.models import MAX_PAGE_SIZE_REFUNDS, SENT, RefundItem
from integrations.jushuitan.settings import WarehouseSettings
from integrations.shop.connector import PullPage, TokenStore

log = logging.getLogger(__name__)

KINDS = {"仅退款": "refund_only", "普通退货": "return_refund", "拒收退货": "return_refund"}
ENDED = {"SUCCESS": "success", "CLOSED": "closed"}


class JushuitanRefunds:
    MAX_WINDOW: ClassVar[timedelta] = timedelta(days=1)
    PAGE_SIZE: ClassVar[int] = MAX_PAGE_SIZE_REFUNDS

    def __init__(
        self,
        settings: WarehouseSettings,
        session: aiohttp.ClientSession,
        tokens: TokenStore,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.client = JushuitanClient.of(settings, session, tokens, clock)

    async def pull(self, cursor: str | None, now: datetime) -> PullPage:
        """The next page after `cursor` (None: start `pull_start_h` back from `now`)."""
        begin, page_index = self._position(cursor, now)
        end = min(begin + self.MAX_WINDOW, now)
        page = await self.client.refunds(
            begin, end, page_index=page_index, page_size=self.PAGE_SIZE
        )
        events: list[dict[str, Any]] = []
        notes: list[str] = []
        for item in page.datas:
            try:
                events += self.events(item)
            except ValueError as exc:
                notes.append(f"聚水潭售后单 {item.as_id} 无法读取：{exc}")
        if page.has_next and page.datas:
            return PullPage(events, _cursor(begin, page_index + 1), True, len(page.datas), notes)
        # The next window starts `pull_overlap_s` before this one ended (late writes), but
        # after this one started, so that a catch-up moves on.
        caught_up = end >= now
        overlapped = end - timedelta(seconds=self.settings.pull_overlap_s)
        later = begin if caught_up else begin + timedelta(seconds=1)
        return PullPage(
            events, _cursor(max(later, overlapped), 1), not caught_up, len(page.datas), notes
        )

    def _position(self, cursor: str | None, now: datetime) -> tuple[datetime, int]:
        if cursor:
            try:
                saved = json.loads(cursor)
                return datetime.fromisoformat(saved["begin"]), int(saved["page"])
            except (ValueError, KeyError, TypeError):
                log.warning("聚水潭 pull cursor %r unreadable; starting again", cursor)
        return now - timedelta(hours=self.settings.pull_start_h), 1

    def events(self, item: RefundItem) -> list[dict[str, Any]]:
        kind = KINDS.get(item.type)
        if kind is None:
            return []
        refund_id = item.outer_as_id or f"JST{item.as_id}"
        if not item.so_id:
            raise ValueError("没有线上单号 so_id")
        amount = _fen(item.refund)
        when = parse_beijing(item.modified) if item.modified else self.clock.now()
        version = item.modified or ""
        data: dict[str, Any] = {
            "refund_id": refund_id,
            "order_id": item.so_id,
            "kind": kind,
            "amount": yuan_text(amount),
            "shipping": {"status": "shipped" if item.order_status == SENT else "unshipped"},
            "platform_status": item.shop_status or "",
            "erp_after_sale": {"as_id": item.as_id, "status": item.status, "type": item.type},
        }
        shop = self.settings.shops.get(str(item.shop_id or ""), "")
        made = [self._wrap(refund_id, version, "refund.requested", when, shop, data)]
        ending = ENDED.get(item.shop_status or "")
        if ending is not None:
            detail = "聚水潭显示平台退款成功" if ending == "success" else "聚水潭显示平台退款关闭"
            closed = {"refund_id": refund_id, "status": ending, "detail": detail}
            made.append(self._wrap(refund_id, version, "refund.closed", when, shop, closed))
        return made

    def _wrap(
        self,
        refund_id: str,
        version: str,
        event_type: str,
        when: datetime,
        shop: str,
        data: dict[str, Any],
    ) -> dict[str, Any]:
        return {
            "id": f"jushuitan:{refund_id}:{version}:{event_type}"[:128],
            "type": event_type,
            "occurred_at": when.isoformat(),
            "shop": shop,
            "platform": "",
            "data": data,
        }


def _fen(value: Decimal | None) -> int:
    fen = yuan_to_fen(value if value is not None else Decimal(0))
    if fen > MAX_AMOUNT_FEN:
        raise ValueError(f"金额 {value} 超出上限")
    return fen


def _cursor(begin: datetime, page: int) -> str:
    return json.dumps({"begin": begin.isoformat(), "page": page})
