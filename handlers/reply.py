"""Agents answer buyers from the group; buyers' messages come back to it.

A reply (free text or a template) is checked for personal data, recorded on the case and
sent through the commerce adapter (`send_buyer_message`, the outbox item id as its
idempotency key). A buyer message becomes a line in the group and starts the response
clock again; the next reply stops it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from handlers import conversation, escalation, masking
from handlers.config import StaffSettings
from handlers.context import Tx
from handlers.errors import ConflictError, MissingRefundError, UsageError
from handlers.message import Mention, Reply, one_line
from handlers.money import format_fen
from handlers.ports import MANUAL
from handlers.refund.data import Awaiting, Complaint, LastBuyerMessage, RefundData, ReplyRecord
from handlers.refund.machine import OPEN, RefundState
from handlers.schema import BuyerMessage
from handlers.templates import CaseFacts, Filled, TemplateError, fill
from storage.enums import CaseKind
from storage.models import Case

ACTION = "commerce.send_buyer_message"
TIMER = "buyer_reply"
CARRIERS = {
    "SF": "顺丰速运",
    "ZTO": "中通快递",
    "YTO": "圆通速递",
    "YD": "韵达快递",
    "STO": "申通快递",
    "JD": "京东物流",
    "EMS": "中国邮政 EMS",
    "JT": "极兔速递",
    "DBL": "德邦快递",
}


def values_of(case: Case, tx: Tx) -> dict[str, str]:
    """What a template's placeholders are filled with; absent when the case does not know."""
    data = RefundData.of(case)
    shipping = data.refund.shipping
    back = data.refund.return_tracking or {}
    item = data.refund.item
    order_amount = data.order_amount_fen
    deadline = ""
    if case.deadline_at is not None and case.deadline_at > tx.now:
        local = tx.local(case.deadline_at)
        deadline = f"{local.month}月{local.day}日 {local:%H:%M}"
    values = {
        "order": case.order_id,
        "amount": format_fen(case.amount_fen),
        "order_amount": format_fen(order_amount) if order_amount is not None else "",
        "deadline": deadline,
        "carrier": _carrier(shipping.carrier),
        "tracking_no": shipping.tracking_no,
        "return_carrier": _carrier(back.get("carrier", "")),
        "return_tracking_no": str(back.get("tracking_no", "")),
        "item": str(item.get("title", "")) if isinstance(item, dict) else "",
        "reason": case.reason,
        "buyer": data.refund.buyer.nick,
    }
    return {k: v for k, v in values.items() if v}


def _carrier(code: Any) -> str:
    return CARRIERS.get(str(code).upper(), str(code))


def facts_of(case: Case) -> CaseFacts:
    return CaseFacts(case.path, RefundData.of(case).kind, case.state, case.reason)


def identifiers(case: Case) -> list[str]:
    """The case's own numbers: a reply may carry them although they look like card numbers."""
    return masking.identifiers(case)


# -- replies ------------------------------------------------------------------------------


async def send(tx: Tx, case: Case, staff: StaffSettings, text: str, channel: str) -> Reply:
    """Send `text` (or `#template`) to the buyer of `case`, as `staff`."""
    _require_buyer(case)
    await tx.cases.lock(case)
    message, template, notice = _compose(tx, case, text.strip())
    data = RefundData.of(case)
    sent = data.replies
    n = (sent[-1].n if sent else 0) + 1
    payload = {
        "refund_id": case.case_id,
        "order_id": case.order_id,
        "shop": case.shop,
        "platform": case.platform,
        "text": message,
        "template": template,
        "sent_by": staff.id,
    }
    key = await tx.side_effect(case, ACTION, payload, attempt=n)
    record = ReplyRecord(
        n=n,
        by=staff.id,
        at=tx.now.isoformat(),
        text=message,
        template=template,
        key=key,
        status="queued",
        detail="",
    )
    data.replies = [*sent, record][-conversation.KEEP_REPLIES :]
    data.drop("awaiting_reply")
    changes: dict[str, Any] = {"data": data.dump(), "last_actor": staff.id, "last_action": "reply"}
    if case.first_response_at is None:
        changes["first_response_at"] = tx.now
    await tx.cases.touch(case, now=tx.now, **changes)
    await tx.timers.cancel(case.id, ["first_response", TIMER])
    await tx.audit(
        case,
        staff.id,
        "reply",
        from_state=case.state,
        channel=channel,
        text=message,
        template=template,
    )
    await tx.sync_card(case)
    shown = f"（#{template}）" if template else ""
    return Reply(f"✉ 已发给 {case.handle} 的买家{shown}：{one_line(message)}{notice}")


def _compose(tx: Tx, case: Case, body: str) -> tuple[str, str, str]:
    """The text to send, the template's name (or ""), and what the agent should be told."""
    if body[:1] in ("#", "＃"):
        filled = _template(tx, case, body[1:].strip())
        message, template, hidden = filled.text, filled.name, list(filled.masked)
    else:
        (message, hidden), template = _free_text(tx, case, body), ""
    limit = tx.svc.templates.max_chars
    if len(message) > limit:
        raise UsageError(f"回复太长了（{len(message)} 字，最多 {limit} 字），请分开发送")
    notice = f"\n（已隐去 {masking.describe(hidden)}）" if hidden else ""
    if tx.svc.settings.commerce_mode(case.shop) == "none":
        notice += "\n⚠ 未接店铺系统（[commerce] mode = none）：请在平台后台把这条回复发给买家"
    return message, template, notice


def _require_buyer(case: Case) -> None:
    if case.kind != CaseKind.REFUND.value:
        raise ConflictError(f"{case.handle} 不是退款单，没有可以回复的买家")


def _template(tx: Tx, case: Case, name: str) -> Filled:
    book = tx.svc.templates
    template = book.get(name) if name else None
    if template is None:
        what = f"没有叫「{name}」的常用回复。" if name else "请写上模板名。"
        raise UsageError(what + _offer(tx, case))
    try:
        return fill(template, values_of(case, tx))
    except TemplateError as exc:
        if exc.missing:
            raise UsageError(
                f"{exc}，{case.handle} 没有这些信息。请直接输入内容：回复 {case.handle} <内容>"
            ) from exc
        raise UsageError(f"{exc}，请管理员修正配置（refundops check-config）") from exc


def _free_text(tx: Tx, case: Case, body: str) -> tuple[str, list[masking.Finding]]:
    found = masking.find(body, identifiers(case))
    if not found:
        return body, []
    if tx.svc.settings.replies.sensitive_free_text == "mask":
        return masking.mask(body, identifiers(case))
    raise UsageError(
        f"没有发送：回复里有{masking.describe(found)}。为保护隐私，手机号、银行卡号、身份证号、"
        "详细地址和支付宝账号（全角数字、加空格或点号的写法也算）不会从群里发给买家；"
        "请去掉后再发。需要给买家留联系方式或退货地址时，请用标记了 reveal 的常用回复"
    )


def _offer(tx: Tx, case: Case) -> str:
    suitable = tx.svc.templates.suitable(facts_of(case), values_of(case, tx))
    if suitable:
        names = "、".join(f"#{f.name}" for f in suitable)
        return f"适合 {case.handle} 的有：{names}（用法：回复 {case.handle} #名称）"
    everything = "、".join(f"#{t.name}" for t in tx.svc.templates.templates) or "无"
    return f"{case.handle} 暂无合适的常用回复；全部常用回复：{everything}"


async def offer(tx: Tx, case: Case) -> Reply:
    """The templates that suit `case`, filled as they would be sent."""
    _require_buyer(case)
    suitable = tx.svc.templates.suitable(facts_of(case), values_of(case, tx))
    if not suitable:
        return Reply(_offer(tx, case) + f"。也可以直接输入：回复 {case.handle} <内容>")
    lines = [f"{case.handle} 的常用回复（发送：回复 {case.handle} #名称）："]
    for filled in suitable:
        lines += [f"#{filled.name}", f"  {filled.text}"]
    return Reply("\n".join(lines))


async def on_delivered(
    tx: Tx, case: Case, key: str, *, ok: bool, status: str = "", detail: str = ""
) -> None:
    """The commerce system took (or finally refused) reply `key`; only the record changes."""
    await tx.cases.lock(case)
    data = RefundData.of(case)
    record = next((r for r in data.replies if r.key == key), None)
    if record is None:
        return
    record.status = ({"done": "sent", MANUAL: MANUAL}.get(status, "accepted")) if ok else "failed"
    record.detail = detail[:300]
    await tx.cases.touch(case, now=tx.now, data=data.dump())
    await tx.sync_card(case)
    if ok:
        return
    await tx.audit(case, "commerce", "reply_failed", from_state=case.state, error=detail[:300])
    sender = tx.svc.staff.get(record.by)
    await tx.post(
        case.group_id,
        f"⚠ {case.handle} 给买家的回复没有送达：{conversation.short(detail, 80)}。"
        f"请重发（回复 {case.handle} …）或到平台后台回复",
        key=f"reply_failed:{key}",
        mentions=(tx.svc.staff.mention(sender),) if sender else (),
        case=case,
    )


# -- buyer messages -------------------------------------------------------------------------


async def on_buyer_message(tx: Tx, event_id: str, data: BuyerMessage) -> Case:
    """A buyer wrote: a line under the case in the group, the card, and the response clock.
    The first message that names a complaint (`[escalation] complaint_words`) marks the card
    and @-mentions the supervisors on that line, once per case."""
    case = await tx.cases.by_case_id(CaseKind.REFUND, data.refund_id)
    if case is None:
        raise MissingRefundError(data.refund_id)
    await tx.cases.lock(case)
    at = min(data.at or tx.now, tx.now)
    stored = RefundData.of(case)
    n = (stored.buyer_message.n if stored.buyer_message is not None else 0) + 1
    # The group is wider than the buyer's conversation: personal data stays in the event.
    text, _ = masking.mask(data.text.strip(), identifiers(case))
    stored.buyer_message = LastBuyerMessage(n=n, text=text[:500], at=at.isoformat())
    arm = stored.awaiting_reply is None and RefundState(case.state) in OPEN
    if arm:
        stored.awaiting_reply = Awaiting(n=n, since=at.isoformat())
    word = ""
    if stored.complaint is None:
        word = escalation.complaint_word(data.text, tx.svc.settings.escalation.complaint_words)
    owner = tx.svc.staff.get(case.assignee) if case.assignee else None
    mentions: tuple[Mention, ...] = (tx.svc.staff.mention(owner),) if owner else ()
    if word:
        stored.complaint = Complaint(n=n, word=word, at=at.isoformat())
        mentions += escalation.fresh(stored, "complaint", escalation.supervisors(tx))
    await tx.cases.touch(case, now=tx.now, data=stored.dump())
    await tx.audit(
        case, "buyer", "buyer_message", from_state=case.state, channel="api", text=text[:500]
    )
    if word:
        await tx.audit(case, "buyer", "complaint", from_state=case.state, channel="api", word=word)
    await tx.sync_card(case)
    nick = stored.refund.buyer.nick
    warned = f" · ⚠ 投诉风险（买家提到「{word}」），请主管跟进" if word else ""
    await tx.post(
        case.group_id,
        f"🗨 {case.handle} 买家{(' ' + nick) if nick else ''}：{conversation.short(text, 80)}{warned}",
        key=f"buyer:{event_id}",
        mentions=tuple(dict.fromkeys(mentions)),
        case=case,
    )
    if arm:
        window = timedelta(minutes=tx.svc.settings.timers.first_response_min)
        await tx.schedule(case, TIMER, max(at + window, tx.now), suffix=str(n))
    return case
