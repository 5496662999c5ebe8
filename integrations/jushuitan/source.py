"""聚水潭 after-sales as an event source (optional): `/open/refund/single/query` by modified time.

Each pull reads one window (≤7 days, the API's limit; we take a day at a time) page by page
from a durable cursor, and maps 仅退款 / 普通退货 / 拒收退货 to `refund.requested` (and a
`refund.closed` once the platform status is SUCCESS or CLOSED). The refund id is the
platform's (`outer_as_id`), so an after-sale also seen through another source is one case;
event ids follow the shop connectors' scheme (platform, shop, after-sale, version, type) with
JST's `modified` as the version. 换货/补发/维修/投诉/其它 are not refunds and give no events.
After-sales of a shop with a platform connector of its own (`skip_shops`) are left to it: it
knows the deadline and the reasons the ERP does not carry.

Paging by modified time can skip rows while the data changes (the SDK's own note on
`modified_begin`): a window's end is fixed when it starts, and when its `data_count` shrinks
between pages (rows modified since left it, moving the rest forward), reading steps back as
many pages as rows left. Rows that left are in a later window.

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
import math
from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Position:
    """Where the pull stands: a window (its end fixed once read), a page, and how many rows
    the window held when last read."""

    begin: datetime
    end: datetime | None = None
    page: int = 1
    count: int = 0

    def dump(self) -> str:
        end = self.end.isoformat() if self.end else None
        return json.dumps(
            {"begin": self.begin.isoformat(), "end": end, "page": self.page, "count": self.count}
        )


class JushuitanRefunds:
    MAX_WINDOW: ClassVar[timedelta] = timedelta(days=1)
    PAGE_SIZE: ClassVar[int] = MAX_PAGE_SIZE_REFUNDS

    def __init__(
        self,
        settings: WarehouseSettings,
        session: aiohttp.ClientSession,
        tokens: TokenStore,
        clock: Clock,
        *,
        platforms: Mapping[str, str] | None = None,
        skip_shops: frozenset[str] = frozenset(),
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.client = JushuitanClient.of(settings, session, tokens, clock)
        # Our shop id → its platform id (from `[[shops]]`), for the envelope and event ids.
        self.platforms = dict(platforms or {})
        self.skip_shops = skip_shops

    async def pull(self, cursor: str | None, now: datetime) -> PullPage:
        """The next page after `cursor` (None: start `pull_start_h` back from `now`)."""
        at = self._position(cursor, now)
        end = at.end or min(at.begin + self.MAX_WINDOW, now)
        page = await self.client.refunds(
            at.begin, end, page_index=at.page, page_size=self.PAGE_SIZE
        )
        events: list[dict[str, Any]] = []
        notes: list[str] = []
        for item in page.datas:
            try:
                events += self.events(item)
            except ValueError as exc:
                notes.append(f"聚水潭售后单 {item.as_id} 无法读取：{exc}")
        fetched = len(page.datas)
        left = at.count - page.data_count if at.count and page.data_count else 0
        if left > 0 and at.page > 1:
            back = max(1, at.page - math.ceil(left / self.PAGE_SIZE))
            log.info(
                "聚水潭 window %s..%s lost %d rows while paging; reading again from page %d",
                at.begin,
                end,
                left,
                back,
            )
            again = Position(at.begin, end, back, page.data_count)
            return PullPage(events, again.dump(), True, fetched, notes)
        if page.has_next and page.datas:
            following = Position(at.begin, end, at.page + 1, page.data_count or at.count)
            return PullPage(events, following.dump(), True, fetched, notes)
        # The next window starts `pull_overlap_s` before this one ended (late writes), but
        # after this one started, so that a catch-up moves on. A window that ended within a
        # round of `now` means the pull has caught up: the next round reads on.
        caught_up = now - end <= timedelta(seconds=self.settings.pull_interval_s)
        overlapped = end - timedelta(seconds=self.settings.pull_overlap_s)
        later = at.begin if caught_up else at.begin + timedelta(seconds=1)
        following = Position(max(later, overlapped))
        return PullPage(events, following.dump(), not caught_up, fetched, notes)

    def _position(self, cursor: str | None, now: datetime) -> Position:
        if cursor:
            try:
                saved = json.loads(cursor)
                end = saved.get("end")
                return Position(
                    datetime.fromisoformat(saved["begin"]),
                    datetime.fromisoformat(end) if end else None,
                    int(saved["page"]),
                    int(saved.get("count") or 0),
                )
            except (ValueError, KeyError, TypeError, AttributeError):
                log.warning("聚水潭 pull cursor %r unreadable; starting again", cursor)
        return Position(now - timedelta(hours=self.settings.pull_start_h))

    def events(self, item: RefundItem) -> list[dict[str, Any]]:
        kind = KINDS.get(item.type)
        if kind is None:
            return []
        shop = self.settings.shops.get(str(item.shop_id or ""), "")
        if shop and shop in self.skip_shops:
            return []
        refund_id = item.outer_as_id or f"JST{item.as_id}"
        if not item.so_id:
            raise ValueError("没有线上单号 so_id")
        amount = _fen(item.refund)
        when = parse_beijing(item.modified) if item.modified else self.clock.now()
        version = f"jst{when:%Y%m%d%H%M%S}"
        data: dict[str, Any] = {
            "refund_id": refund_id,
            "order_id": item.so_id,
            "kind": kind,
            "amount": yuan_text(amount),
            "reason": item.question_type or "",
            "shipping": {"status": "shipped" if item.order_status == SENT else "unshipped"},
            "platform_status": item.shop_status or "",
            "erp_after_sale": {"as_id": item.as_id, "status": item.status, "type": item.type},
        }
        platform = self.platforms.get(shop, "")
        made = [self._wrap(platform, shop, refund_id, version, "refund.requested", when, data)]
        ending = ENDED.get(item.shop_status or "")
        if ending is not None:
            detail = "聚水潭显示平台退款成功" if ending == "success" else "聚水潭显示平台退款关闭"
            closed = {"refund_id": refund_id, "status": ending, "detail": detail}
            made.append(
                self._wrap(platform, shop, refund_id, version, "refund.closed", when, closed)
            )
        return made

    def _wrap(
        self,
        platform: str,
        shop: str,
        refund_id: str,
        version: str,
        event_type: str,
        when: datetime,
        data: dict[str, Any],
    ) -> dict[str, Any]:
        return {
            "id": f"{platform or 'jushuitan'}:{shop}:{refund_id}:{version}:{event_type}"[:128],
            "type": event_type,
            "occurred_at": when.isoformat(),
            "shop": shop,
            "platform": platform,
            "data": data,
        }


def _fen(value: Decimal | None) -> int:
    fen = yuan_to_fen(value if value is not None else Decimal(0))
    if fen > MAX_AMOUNT_FEN:
        raise ValueError(f"金额 {value} 超出上限")
    return fen
