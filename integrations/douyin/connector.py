"""The 抖店 shop connector: messages and the incremental list become events; refunds are agreed
or refused through `afterSale/operate`; parcels are intercepted through the platform.

Messages carry ids and amounts but no tracking, deadline or order total, so every after-sale
message is completed from `afterSale/Detail`. Event ids are
`douyin:<shop>:<after-sale>:<update_time>:<type>`, the same by push and by pull.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo

import aiohttp
from pydantic import ValidationError

from handlers.clock import Clock
from handlers.errors import PermanentError, RetryableError
from handlers.ports import MANUAL, CarrierAnswer, CommerceResult
from handlers.schema import yuan_text
from integrations.douyin.client import DouyinApiError, DouyinClient
from integrations.douyin.models import (
    AfterSaleDetail,
    ListItem,
    OperateItem,
    OperateLogistics,
    Parcel,
    PushElement,
    RefundMessage,
    RejectReasonItem,
    TradeLogisticsMessage,
)
from integrations.shop.connector import (
    MalformedMessageError,
    PlatformMessage,
    PullPage,
    RejectReason,
    Tokens,
    TokenStore,
    UnknownMessageError,
)
from integrations.shop.settings import ShopSettings

log = logging.getLogger(__name__)
M = TypeVar("M", RefundMessage, TradeLogisticsMessage)

BEIJING = ZoneInfo("Asia/Shanghai")
API_BASE = "https://openapi-fxg.jinritemai.com"
# The after-sale in the 抖店 seller backend. Not in the open-platform docs: the path is the one
# public RPA scripts open (find_string ids 70882314907, 68861306525), so treat it as reported.
DETAIL_URL = "https://fxg.jinritemai.com/ffa/maftersale/aftersale/detail-v3?aftersale_id="

REFUND_TAGS = frozenset({*(str(t) for t in range(200, 219)), "224", "225", "226", "227"} - {"210"})
TRADE_LOGISTICS = "104"
# aftersale_type (afterSale/List request doc): 3 换货, 7 补寄, 8 维修 are not refunds.
KINDS = {0: "return_refund", 1: "refund_only", 2: "refund_only", 6: "price_diff"}
STATUS_TEXT = {
    6: "待商家同意",
    7: "待买家退货",
    8: "待商家发货",
    11: "待商家二次同意",
    12: "售后成功",
    13: "换货待买家收货",
    14: "换货成功",
    27: "商家一次拒绝",
    28: "售后失败",
    29: "商家二次拒绝",
}
OPEN = frozenset({6, 7, 8, 11, 27, 29})
SUCCESS, FAILED = 12, 28
# order_logistics_state: 1 拒签, 2 签收, 3 快递退回中 (includes a successful intercept), 4 商家已签收.
RETURNING = 3

# afterSale/operate `type` (question-docs/93/2752, as transcribed by two integrators'
# public code, find_string ids 18499855938 and 27523312626; renhonghai/doudian-sdk
# AfterSaleTypeConstant confirms 201/202): per after-sale type and status.
AGREE_RETURN_FIRST = 101  # 同意退货申请（一次审核）, needs logistics.receiver_address_id
REFUSE_RETURN_FIRST = 102
AGREE_RETURN_SECOND = 111  # 同意退货（二次审核）: the refund after the goods came back
REFUSE_RETURN_SECOND = 112
AGREE_REFUND_ONLY = 201  # 同意仅退款 (shipped)
REFUSE_REFUND_ONLY = 202
AGREE_BEFORE_SHIPPING = 401  # 同意售前退申请; refusing one is done by shipping, not by operate
MANUAL_ONLY = 11001
WRONG_STATE = 20309541

MANUAL_APPROVE = "抖店不支持通过接口审核这笔售后：请在抖店后台人工审核"
MANUAL_MESSAGE = "抖店没有开放回复买家的接口：请复制回复到抖店飞鸽发送"


@dataclass(frozen=True)
class Snapshot:
    """One after-sale as Detail or List shows it, in the terms the events need."""

    refund_id: str
    order_id: str
    aftersale_type: int
    status: int
    status_desc: str
    amount: int
    order_amount: int
    reason: str
    update_time: int
    status_deadline: int
    parcel: Parcel | None
    return_parcel: Parcel | None
    got_pkg: int

    @classmethod
    def of_detail(cls, detail: AfterSaleDetail) -> Snapshot:
        info = detail.process_info.after_sale_info
        parcels = detail.process_info.logistics_info.order
        back = detail.process_info.logistics_info.return_
        return cls(
            refund_id=info.after_sale_id,
            order_id=detail.order_info.shop_order_id,
            aftersale_type=info.after_sale_type,
            status=info.after_sale_status,
            status_desc=info.after_sale_status_desc,
            amount=info.refund_total_amount,
            order_amount=sum(s.pay_amount for s in detail.order_info.sku_order_infos),
            reason=info.reason,
            update_time=info.update_time,
            status_deadline=info.status_deadline,
            parcel=parcels[0] if parcels else None,
            return_parcel=back if back is not None and back.tracking_no else None,
            got_pkg=info.got_pkg,
        )

    @classmethod
    def of_list(cls, item: ListItem) -> Snapshot:
        info = item.aftersale_info
        back = None
        if info.return_logistics_code:
            name = info.return_logistics_company_name
            back = Parcel(tracking_no=info.return_logistics_code, company_name=name)
        return cls(
            refund_id=info.aftersale_id,
            order_id=item.order_info.shop_order_id or info.related_id,
            aftersale_type=info.aftersale_type,
            status=info.aftersale_status,
            status_desc=item.text_part.aftersale_status_text,
            amount=info.refund_amount + info.refund_post_amount,
            order_amount=sum(o.pay_amount for o in item.order_info.related_order_info),
            reason=item.text_part.reason_text,
            update_time=info.update_time,
            status_deadline=info.status_deadline,
            parcel=info.order_logistics[0] if info.order_logistics else None,
            return_parcel=back,
            got_pkg=info.got_pkg,
        )


class DouyinConnector:
    # One afterSale/List window per page run. 抖店 publishes no limit on the update-time span;
    # an hour keeps a window to a few pages at ordinary volumes (10,000 after-sales a day are
    # ~4 pages an hour), so a record that moves while we page costs little, and a 24-hour
    # first run is 24 windows. A busier hour simply pages on.
    MAX_WINDOW: ClassVar[timedelta] = timedelta(hours=1)
    PAGE_SIZE: ClassVar[int] = 100
    REASONS_TTL_S: ClassVar[float] = 600.0

    def __init__(
        self,
        shop: ShopSettings,
        session: aiohttp.ClientSession,
        tokens: TokenStore,
        clock: Clock,
        *,
        return_address_id: int | None = None,
    ) -> None:
        self.shop = shop
        self.clock = clock
        # 101 (agree a return) must name the merchant's return address (/address/list id).
        self.return_address_id = return_address_id
        configured = None
        if shop.access_token.get_secret_value():
            configured = Tokens(
                shop.access_token.get_secret_value(), shop.refresh_token.get_secret_value()
            )
        self.client = DouyinClient(
            session,
            app_key=shop.app_key,
            app_secret=shop.app_secret.get_secret_value(),
            base_url=shop.api_base or API_BASE,
            clock=clock,
            tokens=tokens,
            configured=configured,
            shop_id=shop.shop_id,
            shop=shop.id,
            sign_method=shop.sign_method,
            timeout_s=shop.timeout_s,
        )
        self._reasons: tuple[float, list[RejectReasonItem]] | None = None
        # Parcels we asked the platform to intercept: their turning back is our intercept.
        self._intercepts: dict[str, tuple[str, str]] = {}

    # -- in -------------------------------------------------------------------------

    async def translate(self, message: PlatformMessage) -> list[dict[str, Any]]:
        tag = message.topic
        if tag != TRADE_LOGISTICS and tag not in REFUND_TAGS:
            raise UnknownMessageError(f"抖店消息 tag {tag} 不认识")
        body = _message_data(message)
        if tag == TRADE_LOGISTICS:
            return self._tracking(_parse(TradeLogisticsMessage, body))
        refund = _parse(RefundMessage, body)
        snap = Snapshot.of_detail(await self.client.aftersale_detail(refund.aftersale_id))
        if tag == "209" and refund.status_deadline:
            snap = _with_deadline(snap, refund.status_deadline)
        events = await self._events(snap, source=message.body, deadline_tag=tag == "209")
        if tag == "203" and snap.return_parcel is not None:
            events.append(self._returned(snap, snap.return_parcel))
        return _unique(events)

    async def pull(self, cursor: str | None, now: datetime) -> PullPage:
        start, page = self._position(cursor, now)
        end = min(start + int(self.MAX_WINDOW.total_seconds()), int(now.timestamp()))
        data = await self.client.aftersale_list(
            update_start_time=start, update_end_time=end, page=page, size=self.PAGE_SIZE
        )
        events: list[dict[str, Any]] = []
        for item in data.items:
            snap = Snapshot.of_list(item)
            events += await self._events(snap, source=None, deadline_tag=False)
            if snap.return_parcel is not None and snap.status in OPEN | {SUCCESS}:
                events.append(self._returned(snap, snap.return_parcel))
        if data.has_more:
            next_cursor = _cursor(start, page + 1)
            return PullPage(_unique(events), next_cursor, more=True, fetched=len(data.items))
        # The next window starts `pull_overlap_s` before this one ended (late writes), but
        # always after this one started, so that a catch-up moves on.
        caught_up = end >= int(now.timestamp())
        overlapped = end - int(self.shop.pull_overlap_s)
        next_start = max(start, overlapped) if caught_up else max(start + 1, overlapped)
        return PullPage(
            _unique(events), _cursor(next_start, 0), more=not caught_up, fetched=len(data.items)
        )

    def _position(self, cursor: str | None, now: datetime) -> tuple[int, int]:
        if cursor:
            try:
                saved = json.loads(cursor)
                return int(saved["start"]), int(saved["page"])
            except (ValueError, KeyError, TypeError):
                log.warning("抖店 pull cursor %r unreadable; starting again", cursor)
        return int((now - timedelta(hours=self.shop.pull_start_h)).timestamp()), 0

    async def _events(
        self, snap: Snapshot, *, source: dict[str, Any] | None, deadline_tag: bool
    ) -> list[dict[str, Any]]:
        kind = KINDS.get(snap.aftersale_type)
        if kind is None:
            return []
        version = (
            f"{snap.update_time}d{snap.status_deadline}" if deadline_tag else str(snap.update_time)
        )
        events = [await self._requested(snap, kind, version, source)]
        if snap.status == SUCCESS:
            data = {
                "refund_id": snap.refund_id,
                "status": "success",
                "detail": "抖店售后成功，已退款",
            }
            events.append(self._envelope(snap, "refund.closed", data, version))
        elif snap.status == FAILED:
            withdrew = "撤销" in snap.status_desc or "取消" in snap.status_desc
            data = {
                "refund_id": snap.refund_id,
                "status": "closed",
                "detail": snap.status_desc or "抖店售后关闭",
            }
            ending = "refund.cancelled" if withdrew else "refund.closed"
            events.append(self._envelope(snap, ending, data, version))
        parcel = snap.parcel
        if parcel is not None and parcel.logistics_state == RETURNING and parcel.tracking_no:
            events.append(self._turned_back(snap, parcel, version))
        return events

    async def _requested(
        self, snap: Snapshot, kind: str, version: str, source: dict[str, Any] | None
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "refund_id": snap.refund_id,
            "order_id": snap.order_id,
            "kind": kind,
            "amount": yuan_text(snap.amount),
            "reason": snap.reason,
            "shipping": _shipping(snap),
            "buyer": {"nick": ""},
            "platform_status": snap.status,
            "platform_version": snap.update_time,
            "back_office_url": self.deep_link(snap.refund_id),
        }
        if snap.order_amount >= snap.amount and snap.order_amount:
            data["order_amount"] = yuan_text(snap.order_amount)
        if snap.status_deadline:
            data["deadline_at"] = _iso(snap.status_deadline)
        if snap.status in OPEN:
            data["reject_reasons"] = [
                {"code": r.code, "text": r.text} for r in await self.reject_reasons(snap.refund_id)
            ]
        if source is not None:
            data["platform_message"] = source
        return self._envelope(snap, "refund.requested", data, version)

    def _returned(self, snap: Snapshot, parcel: Parcel) -> dict[str, Any]:
        data = {
            "refund_id": snap.refund_id,
            "return_tracking": {
                "carrier": parcel.company_code or parcel.company_name,
                "tracking_no": parcel.tracking_no,
            },
            "return_status": "shipped",
        }
        return self._envelope(snap, "refund.updated", data, str(snap.update_time))

    def _turned_back(self, snap: Snapshot, parcel: Parcel, version: str) -> dict[str, Any]:
        carrier = parcel.company_code or parcel.company_name
        if snap.refund_id in self._intercepts:
            data = {
                "carrier": carrier,
                "tracking_no": parcel.tracking_no,
                "result": "intercepted",
                "detail": "抖店显示包裹快递退回中（拦截成功）",
            }
            return self._envelope(snap, "intercept.result", data, version)
        data = {
            "carrier": carrier,
            "tracking_no": parcel.tracking_no,
            "order_id": snap.order_id,
            "status": "returned",
            "description": "快递退回中",
        }
        if parcel.logistics_time:
            data["at"] = _iso(parcel.logistics_time)
        return self._envelope(snap, "shipment.tracking", data, version)

    def _tracking(self, trade: TradeLogisticsMessage) -> list[dict[str, Any]]:
        sent = trade.logistics_msg
        if sent is None or not sent.logistics_code or not sent.express_company_id:
            return []
        data: dict[str, Any] = {
            "carrier": sent.express_company_id,
            "tracking_no": sent.logistics_code,
            "order_id": trade.p_id,
            "status": "created",
            "description": "商家发货物流信息变更",
        }
        when = trade.update_time or int(self.clock.now().timestamp())
        data["at"] = _iso(when)
        event_id = (
            f"douyin:{self.shop.id}:{trade.p_id}:{when}:{sent.logistics_code}:shipment.tracking"
        )
        return [self._wrap(event_id, "shipment.tracking", when, data)]

    def _envelope(
        self, snap: Snapshot, event_type: str, data: dict[str, Any], version: str
    ) -> dict[str, Any]:
        event_id = f"{self.shop.platform}:{self.shop.id}:{snap.refund_id}:{version}:{event_type}"
        return self._wrap(event_id, event_type, snap.update_time, data)

    def _wrap(
        self, event_id: str, event_type: str, when: int, data: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "id": event_id[:128],
            "type": event_type,
            "occurred_at": _iso(when or int(self.clock.now().timestamp())),
            "shop": self.shop.id,
            "platform": self.shop.platform,
            "data": data,
        }

    # -- out ------------------------------------------------------------------------

    async def call(
        self,
        action: str,
        key: str,  # noqa: ARG002 - a retry re-reads the after-sale; agreed already is done
        data: dict[str, Any],
    ) -> CommerceResult | None:
        if action == "approve_refund":
            return await self._decide(str(data["refund_id"]), data, agree=True)
        if action == "reject_refund":
            return await self._decide(str(data["refund_id"]), data, agree=False)
        if action == "send_buyer_message":
            return CommerceResult(MANUAL, MANUAL_MESSAGE)
        return None

    async def _decide(self, refund_id: str, data: dict[str, Any], *, agree: bool) -> CommerceResult:
        snap = Snapshot.of_detail(await self.client.aftersale_detail(refund_id))
        for attempt in range(2):
            plan = await self._plan(snap, data, agree=agree)
            if isinstance(plan, CommerceResult):
                return plan
            op_type, item = plan
            try:
                await self.client.operate(op_type, [item])
            except DouyinApiError as exc:
                if exc.business == MANUAL_ONLY:
                    return CommerceResult(MANUAL, MANUAL_APPROVE)
                fresh = Snapshot.of_detail(await self.client.aftersale_detail(refund_id))
                if fresh.update_time != snap.update_time:
                    if attempt == 0:
                        snap = fresh
                        continue
                    raise RetryableError("抖店售后单在处理期间又有变化，稍后重试") from exc
                if exc.business == WRONG_STATE:
                    state = STATUS_TEXT.get(fresh.status, str(fresh.status))
                    return CommerceResult(
                        MANUAL, f"抖店售后当前状态为「{state}」，接口无法处理：请在抖店后台人工处理"
                    )
                raise
            verb = "同意" if agree else "拒绝"
            return CommerceResult("done", f"抖店已{verb}（operate type {op_type}）")
        raise RetryableError("抖店售后单在处理期间又有变化，稍后重试")

    async def _plan(
        self, snap: Snapshot, data: dict[str, Any], *, agree: bool
    ) -> tuple[int, OperateItem] | CommerceResult:
        kind, status = snap.aftersale_type, snap.status
        state = STATUS_TEXT.get(status, str(status))
        item = OperateItem(aftersale_id=snap.refund_id, update_time=snap.update_time)
        if agree:
            if status == SUCCESS or (kind == 0 and status == 7 and snap.return_parcel is None):
                return CommerceResult("done", f"抖店已同意（{state}）")
            if kind == 0 and status in (6, 27):
                if self.return_address_id is None:
                    return CommerceResult(
                        MANUAL, "抖店同意退货需要选择退货地址：请在抖店后台同意退货"
                    )
                item.logistics = OperateLogistics(receiver_address_id=self.return_address_id)
                return AGREE_RETURN_FIRST, item
            if kind == 0 and status in (7, 11, 29):
                return AGREE_RETURN_SECOND, item
            if kind == 1 and status in (6, 27):
                return AGREE_REFUND_ONLY, item
            if kind == 2 and status == 6:
                return AGREE_BEFORE_SHIPPING, item
            return CommerceResult(
                MANUAL, f"抖店售后当前状态为「{state}」，接口无法同意：请在抖店后台人工处理"
            )
        if status in (27, 29, FAILED):
            return CommerceResult("done", f"抖店已是「{state}」")
        if kind == 0 and status == 6:
            op_type = REFUSE_RETURN_FIRST
        elif kind == 0 and status == 11:
            op_type = REFUSE_RETURN_SECOND
        elif kind == 1 and status == 6:
            op_type = REFUSE_REFUND_ONLY
        elif kind == 2:
            return CommerceResult(
                MANUAL, "抖店未发货仅退款不能通过接口拒绝：请发货或在抖店后台处理"
            )
        else:
            return CommerceResult(
                MANUAL, f"抖店售后当前状态为「{state}」，接口无法拒绝：请在抖店后台人工处理"
            )
        reason = await self._reject_reason(data)
        text = str(data.get("reason") or reason.reason)
        item.reject_reason_code = reason.reject_reason_code
        item.reason = reason.reason
        item.remark = text[:200]
        return op_type, item

    async def _reject_reason(self, data: dict[str, Any]) -> RejectReasonItem:
        # We upload no evidence, so only a reason that needs none (evidence_need N) is sent.
        plain = [r for r in await self._reason_items() if r.evidence_need != "Y"]
        if not plain:
            raise PermanentError("抖店的拒绝原因都需要上传凭证：请在抖店后台拒绝")
        wanted = str(data.get("reason_code") or "")
        text = str(data.get("reason") or "")
        for r in plain:
            if wanted and str(r.reject_reason_code) == wanted:
                return r
        for r in plain:
            if text and r.reason and (r.reason in text or text in r.reason):
                return r
        return plain[0]

    async def _reason_items(self) -> list[RejectReasonItem]:
        cached = self._reasons
        if cached is not None and time.monotonic() - cached[0] < self.REASONS_TTL_S:
            return cached[1]
        items = await self.client.reject_reason_codes()
        self._reasons = (time.monotonic(), items)
        return items

    async def reject_reasons(
        self,
        refund_id: str,  # noqa: ARG002 - the pick list is the shop's, cached per shop
    ) -> list[RejectReason]:
        return [
            RejectReason(str(r.reject_reason_code), r.reason) for r in await self._reason_items()
        ]

    async def intercept(
        self,
        key: str,  # noqa: ARG002 - the platform keeps one intercept per after-sale
        data: dict[str, Any],
    ) -> CarrierAnswer | None:
        refund_ids = [str(r) for r in data.get("refund_ids") or []]
        if not refund_ids:
            return None
        refund_id = refund_ids[0]
        carrier, tracking = str(data.get("carrier", "")), str(data.get("tracking_no", ""))
        try:
            answer = await self.client.apply_logistics_intercept(refund_id, carrier, tracking)
        except DouyinApiError as exc:
            return CarrierAnswer("failed", exc.text or str(exc))
        if answer.success_count > 0:
            self._intercepts[refund_id] = (carrier, tracking)
            return CarrierAnswer("accepted", f"抖店已受理拦截 {tracking}")
        why = answer.unavailable_reason or next(
            (r.unavailable_reason for r in answer.intercept_results if r.unavailable_reason), ""
        )
        return CarrierAnswer("failed", why or "抖店拒绝拦截")

    def deep_link(self, refund_id: str) -> str:
        return DETAIL_URL + refund_id


def _message_data(message: PlatformMessage) -> dict[str, Any]:
    try:
        element = PushElement.model_validate({"tag": message.topic, **message.body})
        data = json.loads(element.data) if isinstance(element.data, str) else element.data
    except (ValidationError, ValueError) as exc:
        raise MalformedMessageError(f"抖店消息 {message.id} 读不懂：{exc}") from exc
    if not isinstance(data, dict):
        raise MalformedMessageError(f"抖店消息 {message.id} 的 data 不是对象")
    return data


def _parse(model: type[M], body: dict[str, Any]) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise MalformedMessageError(f"抖店消息字段不对：{exc.errors()[0]['loc']}") from exc


def _with_deadline(snap: Snapshot, deadline: int) -> Snapshot:
    return replace(snap, status_deadline=deadline)


def _shipping(snap: Snapshot) -> dict[str, str]:
    parcel = snap.parcel
    if snap.aftersale_type == 2:
        return {"status": "unshipped", "carrier": "", "tracking_no": ""}
    delivered = snap.got_pkg == 1 or (parcel is not None and parcel.logistics_state in (2, 4))
    if parcel is None or not parcel.tracking_no:
        # Only type 2 says the goods never left: anything else without tracking is treated as
        # shipped (or delivered, when the buyer got it), so that no rule refunds (and stops) a
        # parcel that is on its way.
        return {"status": "delivered" if delivered else "shipped", "carrier": "", "tracking_no": ""}
    return {
        "status": "delivered" if delivered else "shipped",
        "carrier": parcel.company_code or parcel.company_name,
        "tracking_no": parcel.tracking_no,
    }


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, BEIJING).isoformat()


def _cursor(start: int, page: int) -> str:
    return json.dumps({"start": start, "page": page}, separators=(",", ":"))


def _unique(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for event in events:
        if event["id"] not in seen:
            seen.add(event["id"])
            out.append(event)
    return out
