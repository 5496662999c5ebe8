"""`TaobaoConnector`: a 淘宝 or 天猫 shop through TOP and TMC, as a `ShopConnector`.

Messages (TMC `taobao_refund_*`) carry little (types/taobao.d.ts): every one is followed by
taobao.refund.get, and the events describe the refund as it is now. Event ids carry the
refund's `modified` time, which both taobao.refund.get and taobao.refunds.receive.get return,
so a pushed and a pulled state are the same event.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from pydantic import ValidationError

from handlers.clock import Clock
from handlers.errors import PermanentError, RetryableError
from handlers.money import fen_to_yuan, yuan_to_fen
from handlers.ports import MANUAL, CarrierAnswer, CommerceResult
from integrations.shop.connector import (
    VERIFY,
    AuthorizationError,
    MalformedMessageError,
    PlatformMessage,
    PullPage,
    RejectReason,
    Tokens,
    TokenStore,
    UnknownMessageError,
)
from integrations.shop.settings import ShopSettings
from integrations.taobao.client import BEIJING, InvalidSessionError, TopClient, TopError
from integrations.taobao.models import (
    ENDED_STATUSES,
    LIST_FIELDS,
    OPEN_STATUSES,
    REFUND_FIELDS,
    AgreeAnswer,
    OrderStatusSyncContent,
    Refund,
    RefundMessageContent,
    RefundNote,
    RefuseReason,
    TokenResult,
    items,
)

log = logging.getLogger(__name__)

GATEWAY = "https://eco.taobao.com/router/rest"
PREFIX = "taobao_refund_"
# A state change of the refund: the events say what the refund is now.
STATE_TOPICS = frozenset(
    {
        "RefundCreated",
        "RefundSellerAgreeAgreement",
        "RefundSellerRefuseAgreement",
        "RefundBuyerModifyAgreement",
        "RefundBuyerReturnGoods",
        "TaobaoInterApplied",
        "TaobaoIntervened",
        "OrderStatusSync",
    }
)
ENDING_TOPICS = frozenset({"RefundClosed", "RefundSuccess"})
# Known, and nothing to refundops: RefundBlockMessage (a message hidden; docId=124 says the
# message no longer exists), RefundableMarked/Canceled (an order's refundable mark; their
# content has only `modified`).
QUIET_TOPICS = frozenset({"RefundBlockMessage", "RefundableMarked", "RefundableCanceled"})
KNOWN_TOPICS = STATE_TOPICS | ENDING_TOPICS | QUIET_TOPICS | {"RefundCreateMessage"}
# Per call (taobao.rp.refunds.agree docs): refunds, and fen.
AGREE_LIMITS = {"taobao": (20, 600000), "tmall": (30, 1000000)}
TOKEN_MARGIN = timedelta(minutes=10)
MESSAGE_BYTES = 400
VERIFY_TEXT = "淘宝要求短信验证码（已发到子账号绑定的手机）"
# Taobao's seller refund page by refund id (seen as "进入退款后台" in public ERP code);
# no such link by refund id was found for Tmall.
TAOBAO_REFUND_PAGE = "https://refund2.taobao.com/dispute/detail.htm?disputeId={refund_id}"


def _beijing(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        return None


def _fmt(at: datetime) -> str:
    return f"{at.astimezone(BEIJING):%Y-%m-%d %H:%M:%S}"


def _yuan(text: str) -> str | None:
    try:
        return str(fen_to_yuan(yuan_to_fen(text)))
    except ValueError:
        return None


def kind_of(refund: Refund, bill_type: str = "") -> str | None:
    """refund_only / return_refund, or None for an exchange, repair or reship."""
    if bill_type == "replace_bill" or refund.dispute_type in (
        "TMALL_EXCHANGE",
        "TAOBAO_EXCHANGE",
        "REPAIR",
        "RESHIPPING",
    ):
        return None
    if bill_type == "return_bill" or refund.dispute_type == "REFUND_AND_RETURN":
        return "return_refund"
    return "return_refund" if refund.has_good_return else "refund_only"


def shipping_status(refund: Refund) -> str:
    if refund.good_status in ("BUYER_RECEIVED", "BUYER_RETURNED_GOODS"):
        return "delivered"
    if refund.order_status in ("TRADE_BUYER_SIGNED", "TRADE_FINISHED"):
        return "delivered"
    if refund.order_status == "WAIT_BUYER_CONFIRM_GOODS":
        return "shipped"
    if refund.order_status in ("WAIT_SELLER_SEND_GOODS", "WAIT_BUYER_PAY", "TRADE_NO_CREATE_PAY"):
        return "unshipped"
    return "shipped" if refund.refund_phase == "aftersale" else "unshipped"


@dataclass
class _Cursor:
    start: datetime
    end: datetime | None
    page: int

    def text(self) -> str:
        end = self.end.isoformat() if self.end else None
        return json.dumps({"v": 1, "from": self.start.isoformat(), "to": end, "page": self.page})

    @classmethod
    def parse(cls, text: str) -> _Cursor:
        raw = json.loads(text)
        end = datetime.fromisoformat(raw["to"]) if raw.get("to") else None
        return cls(datetime.fromisoformat(raw["from"]), end, int(raw["page"]))


class TaobaoConnector:
    def __init__(
        self,
        shop: ShopSettings,
        session: aiohttp.ClientSession,
        tokens: TokenStore,
        clock: Clock,
        *,
        reasons_ttl: timedelta = timedelta(minutes=10),
        max_window: timedelta = timedelta(hours=6),
        page_size: int = 100,
    ) -> None:
        self.shop = shop
        self.tokens = tokens
        self.clock = clock
        self.reasons_ttl = reasons_ttl
        self.max_window = max(max_window, timedelta(seconds=shop.pull_overlap_s + 60))
        self.page_size = min(page_size, 100)
        self.client = TopClient(
            session,
            url=shop.api_base or GATEWAY,
            app_key=shop.app_key,
            app_secret=shop.app_secret.get_secret_value(),
            clock=clock,
            sign_method=shop.sign_method,
            timeout_s=shop.timeout_s,
        )
        self._reasons: tuple[datetime, list[RejectReason]] | None = None

    # -- tokens --------------------------------------------------------------------------

    def _configured(self) -> Tokens:
        return Tokens(
            self.shop.access_token.get_secret_value(), self.shop.refresh_token.get_secret_value()
        )

    def _expiring(self, tokens: Tokens) -> bool:
        return tokens.expires_at is not None and tokens.expires_at - self.clock.now() < TOKEN_MARGIN

    async def _tokens(self) -> Tokens:
        tokens = await self.tokens.load() or self._configured()
        if not tokens.access_token:
            raise AuthorizationError(
                f"店铺 {self.shop.id} 没有淘宝授权（access_token）：请授权应用"
            )
        if self._expiring(tokens) and tokens.refresh_token:
            return await self._refresh(tokens)
        return tokens

    async def _refresh(self, stale: Tokens) -> Tokens:
        async with self.tokens.lock():
            current = await self.tokens.load() or self._configured()
            if current.access_token != stale.access_token and not self._expiring(current):
                return current
            if not current.refresh_token:
                raise AuthorizationError(f"店铺 {self.shop.id} 的淘宝授权已过期：请重新授权应用")
            try:
                node = await self.client.call(
                    "taobao.top.auth.token.refresh", {"refresh_token": current.refresh_token}
                )
                result = TokenResult.model_validate_json(str(node.get("token_result", "")))
            except (TopError, ValidationError) as exc:
                raise AuthorizationError(
                    f"店铺 {self.shop.id} 的淘宝授权刷新失败（{exc}）：请重新授权应用"
                ) from exc
            expires = (
                self.clock.now() + timedelta(seconds=result.expires_in)
                if result.expires_in
                else None
            )
            fresh = Tokens(
                result.access_token, result.refresh_token or current.refresh_token, expires
            )
            await self.tokens.save(fresh)
            return fresh

    async def _call(
        self, method: str, params: dict[str, str | int | bool | None]
    ) -> dict[str, Any]:
        tokens = await self._tokens()
        try:
            return await self.client.call(method, params, tokens.access_token)
        except InvalidSessionError:
            if not tokens.refresh_token:
                raise
            fresh = await self._refresh(tokens)
            return await self.client.call(method, params, fresh.access_token)

    async def permit(self) -> None:
        """Let the app receive this seller's TMC messages (taobao.tmc.user.permit, without
        `topics`: every topic the app subscribes to in its console)."""
        await self._call("taobao.tmc.user.permit", {})

    # -- reads ---------------------------------------------------------------------------

    async def _refund(self, refund_id: str) -> Refund | None:
        try:
            node = await self._call(
                "taobao.refund.get", {"refund_id": refund_id, "fields": REFUND_FIELDS}
            )
        except TopError as exc:
            if "not-exist" in exc.sub_code:
                return None
            raise
        return Refund.model_validate(node.get("refund") or {})

    async def _must_refund(self, refund_id: str) -> Refund:
        refund = await self._refund(refund_id)
        if refund is None:
            raise PermanentError(f"淘宝查不到退款 {refund_id}")
        return refund

    async def _reason_list(self, refund_id: str, phase: str) -> list[RejectReason]:
        now = self.clock.now()
        if self._reasons is not None and now - self._reasons[0] < self.reasons_ttl:
            return self._reasons[1]
        node = await self._call(
            "taobao.refund.refusereason.get",
            {
                "refund_id": refund_id,
                "refund_phase": phase or "aftersale",
                "fields": "reason_id,reason_text,reason_tips",
            },
        )
        reasons = [RefuseReason.model_validate(r) for r in items(node.get("reasons"))]
        found = [RejectReason(r.reason_id, r.reason_text) for r in reasons]
        self._reasons = (now, found)
        return found

    async def reject_reasons(self, refund_id: str) -> list[RejectReason]:
        phase = ""
        if self._reasons is None:
            refund = await self._refund(refund_id)
            phase = refund.refund_phase if refund else ""
        return await self._reason_list(refund_id, phase)

    def deep_link(self, refund_id: str) -> str:
        if self.shop.platform == "taobao":
            return TAOBAO_REFUND_PAGE.format(refund_id=refund_id)
        return ""

    # -- events --------------------------------------------------------------------------

    def _envelope(
        self, refund_id: str, version: str, event_type: str, at: datetime, data: dict[str, Any]
    ) -> dict[str, Any]:
        platform = self.shop.platform
        return {
            "id": f"{platform}:{self.shop.id}:{refund_id}:{version}:{event_type}",
            "type": event_type,
            "occurred_at": at.astimezone(BEIJING).isoformat(),
            "shop": self.shop.id,
            "platform": platform,
            "data": data,
        }

    async def _events(
        self,
        refund: Refund,
        *,
        bill_type: str = "",
        snapshot: bool = True,
        message: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        kind = kind_of(refund, bill_type)
        amount = _yuan(refund.refund_fee)
        modified = _beijing(refund.modified)
        if kind is None or amount is None or modified is None or not refund.tid:
            return []
        version = f"{modified:%Y%m%d%H%M%S}"
        events: list[dict[str, Any]] = []
        if snapshot or refund.status in OPEN_STATUSES:
            data: dict[str, Any] = {
                "refund_id": refund.refund_id,
                "order_id": refund.tid,
                "kind": kind,
                "amount": amount,
                "reason": refund.reason,
                "shipping": {"status": shipping_status(refund), "carrier": "", "tracking_no": ""},
                "buyer": {"nick": refund.buyer_nick},
                "platform_status": refund.status,
                "platform_version": str(refund.refund_version or version),
            }
            order_amount = _yuan(refund.total_fee)
            if order_amount is not None and yuan_to_fen(order_amount) >= yuan_to_fen(amount):
                data["order_amount"] = order_amount
            timeout = refund.refund_remind_timeout
            deadline = _beijing(timeout.timeout) if timeout and timeout.exist_timeout else None
            if deadline is not None and refund.status in OPEN_STATUSES:
                data["deadline_at"] = deadline.isoformat()
            if refund.status in ("WAIT_SELLER_AGREE", "WAIT_SELLER_CONFIRM_GOODS"):
                try:
                    reasons = await self._reason_list(refund.refund_id, refund.refund_phase)
                except TopError as exc:
                    log.warning("refusal reasons for %s not read: %s", refund.refund_id, exc)
                    reasons = []
                data["reject_reasons"] = [{"code": r.code, "text": r.text} for r in reasons]
            if link := self.deep_link(refund.refund_id):
                data["back_office_url"] = link
            if message is not None:
                data["platform_message"] = message
            events.append(
                self._envelope(refund.refund_id, version, "refund.requested", modified, data)
            )
        if refund.status == "WAIT_SELLER_CONFIRM_GOODS" and refund.sid:
            returned = {
                "refund_id": refund.refund_id,
                "return_tracking": {"carrier": refund.company_name, "tracking_no": refund.sid},
                "return_status": "shipped",
            }
            events.append(
                self._envelope(refund.refund_id, version, "refund.updated", modified, returned)
            )
        if refund.status in ENDED_STATUSES:
            ended = {
                "refund_id": refund.refund_id,
                "status": "success" if refund.status == "SUCCESS" else "closed",
                "detail": "淘宝退款成功" if refund.status == "SUCCESS" else "淘宝退款已关闭",
            }
            events.append(
                self._envelope(refund.refund_id, version, "refund.closed", modified, ended)
            )
        return events

    async def translate(self, message: PlatformMessage) -> list[dict[str, Any]]:
        name = message.topic.removeprefix(PREFIX)
        if not message.topic.startswith(PREFIX) or name not in KNOWN_TOPICS:
            raise UnknownMessageError(message.topic)
        if name in QUIET_TOPICS:
            return []
        raw = message.body.get("content")
        try:
            content = json.loads(raw) if isinstance(raw, str) else raw
            if not isinstance(content, dict):
                raise MalformedMessageError(
                    f"{message.topic} {message.id}: content is not an object"
                )
            if name == "OrderStatusSync":
                refund_id, bill_type = (
                    OrderStatusSyncContent.model_validate(content).refund_order_id,
                    "",
                )
            else:
                parsed = RefundMessageContent.model_validate(content)
                refund_id, bill_type = parsed.refund_id, parsed.bill_type
        except (ValueError, ValidationError) as exc:
            raise MalformedMessageError(f"{message.topic} {message.id}: {exc}") from exc
        refund = await self._refund(refund_id)
        if refund is None:
            return []
        if name == "RefundCreateMessage":
            return await self._buyer_message(refund)
        return await self._events(
            refund, bill_type=bill_type, snapshot=name not in ENDING_TOPICS, message=content
        )

    async def _buyer_message(self, refund: Refund) -> list[dict[str, Any]]:
        node = await self._call(
            "taobao.refund.messages.get",
            {
                "refund_id": refund.refund_id,
                "refund_phase": refund.refund_phase or None,
                "fields": "id,content,created,owner_role,owner_nick,message_type",
                "page_no": 1,
                "page_size": 100,
            },
        )
        notes = [RefundNote.model_validate(n) for n in items(node.get("refund_messages"))]
        said = [n for n in notes if n.owner_role == "1" and n.content.strip()]
        if not said:
            return []
        note = max(said, key=lambda n: (n.created, n.id))
        at = _beijing(note.created) or self.clock.now()
        data = {
            "refund_id": refund.refund_id,
            "text": note.content.strip()[:2000],
            "at": at.astimezone(BEIJING).isoformat(),
        }
        return [self._envelope(refund.refund_id, note.id, "buyer.message", at, data)]

    # -- pull ----------------------------------------------------------------------------

    async def pull(self, cursor: str | None, now: datetime) -> PullPage:
        if cursor:
            try:
                state = _Cursor.parse(cursor)
            except (ValueError, KeyError, TypeError):
                state = _Cursor(now - timedelta(hours=self.shop.pull_start_h), None, 1)
        else:
            state = _Cursor(now - timedelta(hours=self.shop.pull_start_h), None, 1)
        end = state.end or min(now, state.start + self.max_window)
        node = await self._call(
            "taobao.refunds.receive.get",
            {
                "fields": LIST_FIELDS,
                "start_modified": _fmt(state.start),
                "end_modified": _fmt(end),
                "page_no": state.page,
                "page_size": self.page_size,
                "use_has_next": True,
            },
        )
        rows = [Refund.model_validate(r) for r in items(node.get("refunds"))]
        events: list[dict[str, Any]] = []
        for row in rows:
            refund = row
            if row.status in OPEN_STATUSES:
                # The list has no refund_version or deadline; open refunds need both.
                refund = await self._refund(row.refund_id) or row
            events.extend(await self._events(refund, snapshot=True))
        if node.get("has_next"):
            following = _Cursor(state.start, end, state.page + 1)
            return PullPage(events, following.text(), more=True, fetched=len(rows))
        overlap = timedelta(seconds=self.shop.pull_overlap_s)
        following = _Cursor(max(state.start, end - overlap), None, 1)
        notes = [f"{_fmt(state.start)} – {_fmt(end)}: {state.page} 页"]
        return PullPage(events, following.text(), more=end < now, fetched=len(rows), notes=notes)

    # -- commerce ------------------------------------------------------------------------

    async def call(self, action: str, key: str, data: dict[str, Any]) -> CommerceResult | None:  # noqa: ARG002 (idempotent by re-reading the refund)
        handlers = {
            "approve_refund": self._approve,
            "reject_refund": self._reject,
            "send_buyer_message": self._message,
        }
        handler = handlers.get(action)
        if handler is None:
            return None
        try:
            return await handler(data)
        except TopError as exc:
            manual = self._permission(exc)
            if manual is not None:
                return CommerceResult(MANUAL, manual)
            raise PermanentError(f"淘宝拒绝了（{exc.method}）：{exc.said}") from exc

    @staticmethod
    def _permission(exc: TopError) -> str | None:
        said = f"{exc.sub_code} {exc.sub_msg} {exc.msg}"
        if "subaccount" in exc.sub_code or "子账号" in said:
            return f"淘宝只允许授权的子账号调用 {exc.method}：请用子账号授权应用，或在后台手动处理"
        if "聚石塔" in said or "jushita" in said.lower():
            return f"{exc.method} 只能在聚石塔内调用：请在后台手动处理"
        if exc.code == 11 or "permission" in exc.sub_code:
            return f"应用没有 {exc.method} 的接口权限（{exc.said}）：请在开放平台申请权限包，或在后台手动处理"
        if exc.code == 12:
            return f"授权账号没有 {exc.method} 的权限（{exc.said}）：请在后台手动处理"
        return None

    @staticmethod
    def _sms(exc: TopError) -> bool:
        return "sms" in exc.sub_code.lower() or "验证码" in exc.sub_msg

    @staticmethod
    def _stale(text: str) -> bool:
        return "version" in text.lower() or "版本" in text

    async def _approve(self, data: dict[str, Any]) -> CommerceResult:
        refund = await self._must_refund(str(data["refund_id"]))
        for attempt in range(2):
            early = self._approve_state(refund, data)
            if early is not None:
                return early
            try:
                if self.shop.platform == "tmall":
                    await self._call(
                        "taobao.rp.refund.review",
                        {
                            "refund_id": refund.refund_id,
                            "operator": self.shop.operator or None,
                            "refund_phase": refund.refund_phase,
                            "refund_version": refund.refund_version,
                            "result": True,
                            "message": "同意退款",
                        },
                    )
                    refund = await self._must_refund(refund.refund_id)
                answer = await self._agree(refund, data.get("sms_code"))
            except TopError as exc:
                if self._sms(exc):
                    return CommerceResult(VERIFY, VERIFY_TEXT)
                if not self._stale(exc.sub_code + exc.sub_msg):
                    raise
                answer = None
            if answer is not None and answer.msg_code == "OP_SUCC":
                return CommerceResult("done", f"淘宝已同意退款 {refund.refund_id}")
            said = answer.message if answer else "refund_version"
            if answer is not None and answer.results:
                said = answer.results[0].message or said
            refund = await self._must_refund(refund.refund_id)
            if refund.status == "SUCCESS":
                return CommerceResult("done", f"淘宝退款 {refund.refund_id} 已成功")
            if not self._stale(said):
                return CommerceResult(MANUAL, f"淘宝没有同意退款（{said}）：请在后台处理")
            if attempt == 1:
                raise RetryableError(f"淘宝退款 {refund.refund_id} 一直在变（{said}），稍后再试")
        raise RetryableError("unreachable")  # pragma: no cover

    def _approve_state(self, refund: Refund, data: dict[str, Any]) -> CommerceResult | None:
        if refund.status == "SUCCESS":
            return CommerceResult("done", f"淘宝退款 {refund.refund_id} 已成功")
        if refund.status == "CLOSED":
            return CommerceResult(MANUAL, "淘宝退款已关闭，不能再同意：如仍要退款请在后台处理")
        if refund.status == "WAIT_BUYER_RETURN_GOODS":
            return CommerceResult(
                MANUAL, "已同意退货，买家还没寄回：收到退货后再同意退款，或在后台直接退款"
            )
        if refund.status == "WAIT_SELLER_AGREE" and kind_of(refund) == "return_refund":
            return CommerceResult(MANUAL, "退货退款要先在后台同意退货并选择退货地址")
        fen = yuan_to_fen(refund.refund_fee)
        wanted = data.get("amount")
        if wanted is not None and yuan_to_fen(str(wanted)) != fen:
            return CommerceResult(
                MANUAL,
                f"淘宝上的退款金额是 {fen_to_yuan(fen)} 元，与审批的 {wanted} 元不同：请重新审批或在后台处理",
            )
        _, cap = AGREE_LIMITS[self.shop.platform if self.shop.platform == "tmall" else "taobao"]
        if fen > cap:
            return CommerceResult(
                MANUAL, f"单笔退款超过接口上限 {fen_to_yuan(cap)} 元：请在后台手动退款"
            )
        return None

    async def _agree(self, refund: Refund, sms_code: Any) -> AgreeAnswer:
        info = f"{refund.refund_id}|{yuan_to_fen(refund.refund_fee)}|{refund.refund_version or ''}"
        if self.shop.platform == "tmall":
            info += f"|{refund.refund_phase}"
        node = await self._call(
            "taobao.rp.refunds.agree",
            {"refund_infos": info, "code": str(sms_code) if sms_code else None},
        )
        return AgreeAnswer.model_validate(node)

    async def _reject(self, data: dict[str, Any]) -> CommerceResult:
        refund = await self._must_refund(str(data["refund_id"]))
        for attempt in range(2):
            if refund.status == "SELLER_REFUSE_BUYER":
                return CommerceResult("done", f"淘宝退款 {refund.refund_id} 已拒绝")
            if refund.status == "CLOSED":
                return CommerceResult("done", f"淘宝退款 {refund.refund_id} 已关闭")
            if refund.status == "SUCCESS":
                return CommerceResult(MANUAL, "淘宝退款已成功，不能再拒绝")
            if refund.status == "WAIT_BUYER_RETURN_GOODS":
                return CommerceResult(MANUAL, "已同意退货，淘宝不能再拒绝：请在后台处理")
            reasons = await self._reason_list(refund.refund_id, refund.refund_phase)
            reason = self._pick(
                reasons, str(data.get("reason_code") or ""), str(data.get("reason") or "")
            )
            text = str(data.get("reason") or "").strip()
            if len(text) < 2:
                text = reason.text if reason else "不同意退款"
            try:
                await self._call(
                    "taobao.refund.refuse",
                    {
                        "refund_id": refund.refund_id,
                        "refuse_message": text[:200],
                        "refund_phase": refund.refund_phase or None,
                        "refund_version": refund.refund_version,
                        "refuse_reason_id": reason.code if reason else None,
                    },
                )
                return CommerceResult("done", f"淘宝已拒绝退款 {refund.refund_id}")
            except TopError as exc:
                said = f"{exc.msg} {exc.sub_code}"
                if "refuse_proof" in said:
                    return CommerceResult(
                        MANUAL, "天猫拒绝退款必须上传凭证图片：请在后台拒绝并上传凭证"
                    )
                if not self._stale(exc.sub_code + exc.sub_msg):
                    raise
            refund = await self._must_refund(refund.refund_id)
            if attempt == 1:
                raise RetryableError(f"淘宝退款 {refund.refund_id} 一直在变，稍后再试")
        raise RetryableError("unreachable")  # pragma: no cover

    @staticmethod
    def _pick(reasons: list[RejectReason], code: str, text: str) -> RejectReason | None:
        for reason in reasons:
            if code and reason.code == code:
                return reason
        for reason in reasons:
            if text and (reason.text == text.strip() or reason.text in text):
                return reason
        return reasons[0] if reasons else None

    async def _message(self, data: dict[str, Any]) -> CommerceResult:
        text = str(data.get("text") or "").strip()
        size = len(text.encode())
        if not text:
            raise PermanentError("留言是空的")
        if size > MESSAGE_BYTES:
            raise PermanentError(
                f"淘宝退款留言最多 {MESSAGE_BYTES} 字节（约 133 个汉字），这条有 {size} 字节：请缩短后重发"
            )
        refund_id = str(data["refund_id"])
        node = await self._call(
            "taobao.refund.messages.get",
            {
                "refund_id": refund_id,
                "fields": "id,content,owner_role",
                "page_no": 1,
                "page_size": 100,
            },
        )
        notes = [RefundNote.model_validate(n) for n in items(node.get("refund_messages"))]
        if any(n.owner_role == "2" and n.content == text for n in notes):
            return CommerceResult("done", "这条留言淘宝上已经有了")
        await self._call("taobao.refund.message.add", {"refund_id": refund_id, "content": text})
        return CommerceResult("done", "已在淘宝退款留言")

    # -- carrier -------------------------------------------------------------------------

    async def intercept(self, key: str, data: dict[str, Any]) -> CarrierAnswer | None:  # noqa: ARG002 (idempotent by re-reading the refund)
        refund_ids = [str(r) for r in data.get("refund_ids") or []]
        if not refund_ids:
            return None
        done: list[str] = []
        for refund_id in refund_ids:
            try:
                refund = await self._must_refund(refund_id)
                try:
                    await self._intercept_one(refund)
                except TopError as exc:
                    if not self._stale(exc.sub_code + exc.sub_msg):
                        raise
                    await self._intercept_one(await self._must_refund(refund_id))
            except TopError as exc:
                manual = self._permission(exc)
                if manual is not None:
                    return CarrierAnswer("manual", manual)
                return CarrierAnswer("failed", f"淘宝拦截没有受理（退款 {refund_id}）：{exc.said}")
            done.append(refund_id)
        return CarrierAnswer("accepted", f"淘宝已受理拦截（退款 {'、'.join(done)}）")

    async def _intercept_one(self, refund: Refund) -> None:
        await self._call(
            "taobao.rp.refund.intercept",
            {"refund_id": refund.refund_id, "refund_version": refund.refund_version},
        )
