"""Refund cases: the transition table, the card, and every way a refund moves.

Paths (DESIGN §1): 1 not shipped → approve + stop shipment; 2 shipped → intercept, then
refund; 3 received, refund only / partial → review within the approver's limit;
4 return and refund → return tracking number → warehouse receipt → QC → refund.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.settings import StaffSettings
from handlers import material, reference
from handlers.authority import SUPERVISORS
from handlers.context import Tx, effect_key
from handlers.conversation import card_lines as conversation_lines
from handlers.errors import ConflictError, MissingRefundError, NotFoundError, UsageError
from handlers.message import Button, ButtonStyle, Card, Field, Mention, Reply, Tone, one_line
from handlers.money import fen_to_yuan, format_fen
from handlers.rules import Action, Decision, RefundFacts
from handlers.schema import PLATFORMS, RefundEnded, RefundRequested, RefundUpdated, yuan_text
from handlers.states import Machine
from handlers.step import step
from integrations.commerce.client import MANUAL
from storage.enums import CaseKind
from storage.models import Case


class RefundState(StrEnum):
    NEW = "new"
    AWAITING_REVIEW = "awaiting_review"
    ESCALATED = "escalated"
    APPROVED = "approved"
    AUTO_APPROVED = "auto_approved"
    SUBMITTED = "submitted"
    # Approved, but no shop system is connected ([commerce] mode = "none"): nothing was sent.
    MANUAL = "manual_refund"
    REFUNDED = "refunded"
    REJECTED = "rejected"
    WAITING_INTERCEPT = "waiting_intercept"
    WAITING_RETURN = "waiting_return"
    RETURNING = "returning"
    INSPECTING = "inspecting"
    CANCELLED = "cancelled"
    CLOSED_BY_PLATFORM = "closed_by_platform"
    FAILED = "failed"


class Trigger(StrEnum):
    REVIEW = "review"
    AUTO_APPROVE = "auto_approve"
    INTERCEPT = "intercept"
    AWAIT_RETURN = "await_return"
    APPROVE = "approve"
    ESCALATE = "escalate"
    REJECT = "reject"
    SUBMITTED = "submitted"
    MANUAL = "manual"
    REFUNDED = "refunded"
    FAIL = "fail"
    RETRY = "retry"
    INTERCEPTED = "intercepted"
    INTERCEPT_FAILED = "intercept_failed"
    RETURN_SHIPPED = "return_shipped"
    RETURN_RECEIVED = "return_received"
    CANCEL = "cancel"
    PLATFORM_CLOSE = "platform_close"
    REOPEN = "reopen"


S, T = RefundState, Trigger
TERMINAL = frozenset({S.REFUNDED, S.REJECTED, S.CANCELLED, S.CLOSED_BY_PLATFORM})
DECISIONS = frozenset({T.APPROVE, T.AUTO_APPROVE, T.REJECT, T.ESCALATE, T.RETRY})
FINAL_DECISIONS = frozenset({T.APPROVE, T.AUTO_APPROVE, T.REJECT})
OPEN = frozenset(S) - TERMINAL
DECIDABLE = frozenset({S.AWAITING_REVIEW, S.ESCALATED, S.WAITING_INTERCEPT, S.INSPECTING})
PAYING = frozenset({S.APPROVED, S.AUTO_APPROVED, S.SUBMITTED})
APPROVING = frozenset({S.APPROVED, S.AUTO_APPROVED})
# Decided, and no money has moved: an amount change withdraws the decision.
REOPENABLE = APPROVING | {S.FAILED}
APPROVE_REFUND = "commerce.approve_refund"
NEEDS_PERSON = frozenset({S.AWAITING_REVIEW, S.ESCALATED, S.INSPECTING, S.FAILED})
# Which states each timer kind watches; leaving them cancels the timer.
TIMER_STATES: dict[str, frozenset[RefundState]] = {
    "deadline_warn": NEEDS_PERSON | {S.WAITING_INTERCEPT},
    "approval": frozenset({S.ESCALATED}),
    "return_tracking": frozenset({S.WAITING_RETURN}),
    "qc": frozenset({S.INSPECTING}),
}

TRANSITIONS: dict[tuple[RefundState, Trigger], RefundState] = {
    (S.NEW, T.REVIEW): S.AWAITING_REVIEW,
    (S.NEW, T.AUTO_APPROVE): S.AUTO_APPROVED,
    (S.NEW, T.INTERCEPT): S.WAITING_INTERCEPT,
    (S.NEW, T.AWAIT_RETURN): S.WAITING_RETURN,
    (S.AWAITING_REVIEW, T.ESCALATE): S.ESCALATED,
    (S.WAITING_INTERCEPT, T.INTERCEPTED): S.AUTO_APPROVED,
    (S.WAITING_INTERCEPT, T.INTERCEPT_FAILED): S.WAITING_RETURN,
    (S.WAITING_RETURN, T.RETURN_SHIPPED): S.RETURNING,
    (S.WAITING_RETURN, T.RETURN_RECEIVED): S.INSPECTING,
    (S.RETURNING, T.RETURN_RECEIVED): S.INSPECTING,
    (S.INSPECTING, T.AUTO_APPROVE): S.AUTO_APPROVED,
    (S.FAILED, T.RETRY): S.APPROVED,
    **{(s, T.APPROVE): S.APPROVED for s in DECIDABLE},
    **{(s, T.ESCALATE): S.ESCALATED for s in DECIDABLE - {S.ESCALATED}},
    **{(s, T.REJECT): S.REJECTED for s in DECIDABLE | {S.WAITING_RETURN, S.RETURNING}},
    **{(s, T.SUBMITTED): S.SUBMITTED for s in {S.APPROVED, S.AUTO_APPROVED}},
    **{(s, T.MANUAL): S.MANUAL for s in {S.APPROVED, S.AUTO_APPROVED}},
    **{(s, T.REFUNDED): S.REFUNDED for s in PAYING | {S.FAILED, S.MANUAL}},
    **{(s, T.FAIL): S.FAILED for s in PAYING},
    **{(s, T.CANCEL): S.CANCELLED for s in OPEN - PAYING},
    **{(s, T.PLATFORM_CLOSE): S.CLOSED_BY_PLATFORM for s in OPEN},
    **{(s, T.REOPEN): S.NEW for s in REOPENABLE},
}


STATE_TEXT: dict[str, str] = {
    S.NEW: "新申请",
    S.AWAITING_REVIEW: "待审核",
    S.ESCALATED: "待主管审批",
    S.APPROVED: "已通过 · 退款提交中",
    S.AUTO_APPROVED: "自动通过 · 退款提交中",
    S.SUBMITTED: "已提交 · 等待平台退款",
    S.MANUAL: "已通过 · 待手动退款",
    S.REFUNDED: "已退款",
    S.REJECTED: "已拒绝",
    S.WAITING_INTERCEPT: "已发货 · 等待拦截结果",
    S.WAITING_RETURN: "等待买家寄回",
    S.RETURNING: "退货在途",
    S.INSPECTING: "仓库已签收 · 待质检",
    S.CANCELLED: "买家已撤销",
    S.CLOSED_BY_PLATFORM: "平台已关闭",
    S.FAILED: "退款失败",
}
TRIGGER_TEXT: dict[str, str] = {
    T.APPROVE: "通过",
    T.REJECT: "拒绝",
    T.ESCALATE: "升级",
    T.CANCEL: "撤销",
    T.RETRY: "重试",
    T.INTERCEPTED: "确认拦截",
    T.RETURN_RECEIVED: "确认收货",
    T.REFUNDED: "登记已退款",
}
MACHINE = Machine("这个退款", RefundState, TRANSITIONS, STATE_TEXT, TRIGGER_TEXT)
advance = MACHINE.advance
# Actors whose moves are not a response to the buyer (rules are: they decide).
KIND_TEXT = {"refund_only": "仅退款", "return_refund": "退货退款", "price_diff": "退差价"}
SHIPPING_TEXT = {
    "unshipped": "未发货",
    "shipped": "已发货",
    "in_transit": "运输中",
    "delivered": "已签收",
}
TONE = {
    **dict.fromkeys(NEEDS_PERSON, Tone.WARNING),
    S.ESCALATED: Tone.DANGER,
    S.FAILED: Tone.DANGER,
    S.MANUAL: Tone.WARNING,
    S.REFUNDED: Tone.SUCCESS,
    **dict.fromkeys({S.REJECTED, S.CANCELLED, S.CLOSED_BY_PLATFORM}, Tone.MUTED),
}
ACTION_TEXT = {
    "created": "收到申请",
    "approve": "通过",
    "auto_approve": "自动通过",
    "escalate": "升级主管",
    "reject": "拒绝",
    "claim": "认领",
    "note": "备注",
    "review": "转人工审核",
    "intercept": "申请拦截",
    "await_return": "等待退货",
    "refunded": "确认退款",
    "submitted": "提交退款",
    "manual": "转手动退款（未接店铺系统）",
    "fail": "退款失败",
    "retry": "重新提交",
    "cancel": "撤销申请",
    "platform_close": "关闭",
    "updated": "更新申请",
    "return_shipped": "寄回退货",
    "return_received": "签收退货",
    "intercepted": "拦截成功",
    "intercept_failed": "拦截失败",
    "qc_failed": "质检不通过",
    "reply": "回复买家",
    "buyer_message": "留言",
    "reply_failed": "回复未送达",
    "stop_shipment": "截单",
    "amount_changed": "金额变更",
    "amount_refused": "金额变更未采用",
    "reopen": "撤回审批，重新判定",
}


def path_of(kind: str, shipping: str) -> int:
    if kind == "return_refund":
        return 4
    return {"unshipped": 1, "shipped": 2, "in_transit": 2}.get(shipping, 3)


def facts_of(case: Case) -> RefundFacts:
    data = case.data.get("refund", {})
    order_amount = case.data.get("order_amount_fen")
    return RefundFacts(
        platform=case.platform,
        shop=case.shop,
        kind=data.get("kind", "refund_only"),
        shipping=data.get("shipping", {}).get("status", "unshipped"),
        amount_fen=case.amount_fen,
        order_amount_fen=order_amount if isinstance(order_amount, int) else None,
        reason=case.reason,
    )


# -- the card ------------------------------------------------------------------------------


def refund_card(case: Case, tx: Tx) -> Card:
    data = case.data.get("refund", {})
    state = RefundState(case.state)
    kind = data.get("kind", "refund_only")
    directory = tx.svc.staff
    fields = [
        Field("订单", case.order_id),
        Field("平台", f"{PLATFORMS.get(case.platform, case.platform)} · {case.shop}"),
        Field("金额", _amount_text(case)),
        *_approved_field(case),
        Field("原因", case.reason or "—"),
        Field("物流", _shipping_text(data.get("shipping", {}))),
    ]
    if case.data.get("stop_shipment"):
        fields.append(Field("截单", stop_shipment_text(case.data)))
    if isinstance(shown := case.data.get("intercept"), dict):
        fields.append(Field("拦截", f"{shown['handle']} · {shown['text']}"))
    if nick := data.get("buyer", {}).get("nick"):
        fields.append(Field("买家", nick))
    if case.deadline_at is not None and state in OPEN:
        fields.append(Field("平台时限", _deadline_text(case.deadline_at, tx)))
    if case.assignee:
        fields.append(Field("处理人", directory.name(case.assignee)))
    if decided := case.data.get("decision"):
        at = tx.local(datetime.fromisoformat(decided["at"]))
        what = ACTION_TEXT.get(decided["action"], decided["action"])
        fields.append(Field("决定", f"{directory.name(decided['by'])} {what} · {at:%m-%d %H:%M}"))
    if rule := case.data.get("rule"):
        fields.append(Field("规则", rule))
    lines = _amount_lines(case, state)
    lines += [f"📝 {directory.name(n['by'])}：{n['text']}" for n in case.data.get("notes", [])[-3:]]
    if state is S.ESCALATED and (esc := case.data.get("escalation")):
        who = directory.name(esc["by"])
        if via := esc.get("intercept"):
            lines.append(f"⬆ {who} 登记 {via} 拦截成功，退款超出其权限 {esc['limit']}，请主管审批")
        else:
            lines.append(f"⬆ {who} 建议通过，超出其权限 {esc['limit']}，请主管审批")
    if state is S.FAILED and (error := case.data.get("commerce", {}).get("error")):
        lines.append(f"⚠ 失败原因：{error}")
    if state is S.MANUAL:
        lines.append(
            f"⚠ 未接店铺系统，退款没有发出：请在店铺后台手动退款 {format_fen(_standing_fen(case))}，"
            f"完成后点「已手动退款」或输入「已退款 {case.handle}」"
        )
    if state is S.REJECTED and case.data.get("commerce", {}).get("reject") == MANUAL:
        lines.append("⚠ 未接店铺系统，拒绝没有提交到平台：请在店铺后台手动拒绝")
    if state is S.INSPECTING and case.data.get("qc", {}).get("result") == "failed":
        lines.append(f"⚠ 仓库质检不通过 {case.data['qc'].get('detail', '')}".rstrip())
    if state in (S.CANCELLED, S.CLOSED_BY_PLATFORM) and (detail := case.data.get("end_detail")):
        lines.append(f"平台：{detail}")
    if state is S.REJECTED and (why := case.data.get("reject_reason")):
        lines.append(f"拒绝原因：{why}")
    lines += conversation_lines(case, tx)
    buttons = refund_buttons(state) + _intercept_button(case, state)
    if state in OPEN and tx.svc.templates:
        buttons += (Button("templates", "常用回复"),)
    mentions: tuple[Mention, ...] = ()
    if state is S.ESCALATED:
        mentions = directory.mentions(directory.approvers(case.amount_fen, "supervisor"))
    return Card(
        case_pk=case.id,
        case_id=case.case_id,
        handle=case.handle,
        kind=case.kind,
        state=case.state,
        version=case.version,
        title=f"{KIND_TEXT.get(kind, '退款')} {case.handle} · {format_fen(case.amount_fen)}",
        status=_status_text(state, tx),
        tone=TONE.get(state, Tone.INFO),
        fields=tuple(fields),
        buttons=buttons,
        lines=tuple(lines),
        footer=footer(case, tx),
        mentions=mentions,
    )


def _status_text(state: RefundState, tx: Tx) -> str:
    """Without a shop system nothing is being submitted, not even for a moment."""
    if state in (S.APPROVED, S.AUTO_APPROVED) and tx.svc.settings.commerce.mode == "none":
        return STATE_TEXT[state].split(" · ")[0]
    return STATE_TEXT[state]


def refund_buttons(state: RefundState) -> tuple[Button, ...]:
    approve = Button("approve", "通过", ButtonStyle.PRIMARY)
    reject = Button("reject", "拒绝", ButtonStyle.DANGER)
    claim = Button("claim", "认领")
    if state in (S.AWAITING_REVIEW, S.ESCALATED):
        return (approve, reject, claim)
    if state is S.INSPECTING:
        return (Button("approve", "质检通过 · 退款", ButtonStyle.PRIMARY), reject, claim)
    if state is S.WAITING_INTERCEPT:
        return (Button("approve", "不等拦截 · 直接退款"), claim)
    if state in (S.WAITING_RETURN, S.RETURNING):
        return (reject, claim)
    if state is S.FAILED:
        return (Button("retry", "重新提交", ButtonStyle.PRIMARY), claim)
    if state is S.MANUAL:
        return (Button("refunded", "已手动退款", ButtonStyle.PRIMARY), claim)
    return ()


def _intercept_button(case: Case, state: RefundState) -> tuple[Button, ...]:
    """A shipped parcel nobody has asked the carrier about yet can be intercepted from the card."""
    shipping = case.data.get("refund", {}).get("shipping", {}).get("status")
    if (
        shipping in ("shipped", "in_transit")
        and state in (S.AWAITING_REVIEW, S.ESCALATED, S.WAITING_INTERCEPT)
        and not case.data.get("intercept")
    ):
        return (Button("intercept", "拦截包裹"),)
    return ()


def footer(case: Case, tx: Tx) -> str:
    if not case.last_action:
        return ""
    who = tx.svc.staff.name(case.last_actor)
    what = ACTION_TEXT.get(case.last_action, case.last_action)
    return f"{who} {what} · {tx.local(case.updated_at):%m-%d %H:%M}"


def _amount_text(case: Case) -> str:
    order_amount = case.data.get("order_amount_fen")
    if isinstance(order_amount, int) and order_amount != case.amount_fen:
        return f"{format_fen(case.amount_fen)}（订单 {format_fen(order_amount)}，部分退款）"
    return format_fen(case.amount_fen)


def _approved_field(case: Case) -> tuple[Field, ...]:
    approved = approved_fen(case)
    if approved is None or approved == case.amount_fen:
        return ()
    return (Field("批准金额", format_fen(approved)),)


def _amount_lines(case: Case, state: RefundState) -> list[str]:
    """What the card says about amounts the platform changed (or tried to) under it."""
    lines: list[str] = []
    if isinstance(refused := case.data.get("amount_refused"), dict):
        lines.append(f"⚠ 平台推送的金额变更未采用：{refused.get('why', '')}，请人工核对")
    change = case.data.get("amount_change")
    if not isinstance(change, dict):
        return lines
    moved = f"{format_fen(int(change['from']))} → {format_fen(int(change['to']))}"
    outcome = change.get("outcome")
    if outcome == "flagged":
        approved = change.get("approved")
        sent = format_fen(int(approved if approved is not None else change["from"]))
        lines.append(f"⚠ 金额已变更 {moved}：退款已按 {sent} 提交，不会再次提交，请人工核对")
    elif outcome == "reopened" and state in NEEDS_PERSON:
        lines.append(f"⚠ 金额已变更 {moved}，原审批已撤回，需重新审核")
    elif state in OPEN:
        lines.append(f"金额已变更 {moved}")
    return lines


def _shipping_text(shipping: dict[str, Any]) -> str:
    status = SHIPPING_TEXT.get(shipping.get("status", ""), shipping.get("status", "—"))
    parcel = " ".join(
        p for p in (shipping.get("carrier", ""), shipping.get("tracking_no", "")) if p
    )
    return f"{status} · {parcel}" if parcel else status


def _deadline_text(deadline: datetime, tx: Tx) -> str:
    left = deadline - tx.now
    hours = left.total_seconds() / 3600
    when = f"{tx.local(deadline):%m-%d %H:%M}"
    if hours <= 0:
        return f"{when}（已超时）"
    if hours < 1:
        return f"{when}（剩 {int(left.total_seconds() // 60)} 分钟）"
    return f"{when}（剩 {hours:.0f} 小时）"


def ensure(tx: Tx, case: Case, trigger: Trigger) -> RefundState:
    """Like `advance`, but the refusal says who moved the case and when."""
    return MACHINE.ensure(case.handle, case.state, trigger, footer(case, tx))


def approval_role(case: Case) -> str:
    """The role a person needs to let this refund's money move: a supervisor once escalated."""
    if case.state == S.ESCALATED:
        return "supervisor"
    return str(case.data.get("review_role") or "agent")


# -- moves ----------------------------------------------------------------------------------


async def move(
    tx: Tx,
    case: Case,
    trigger: Trigger,
    *,
    actor: str,
    channel: str = "",
    data: dict[str, Any] | None = None,
    **changes: Any,
) -> RefundState:
    """Advance `case` by `trigger` with compare-and-set, and write audit, card and effects."""
    after = advance(case.state, trigger)
    values: dict[str, Any] = dict(changes)
    if trigger in DECISIONS:
        decision = {"by": actor, "action": trigger.value, "at": tx.now.isoformat()}
        data = {**(data if data is not None else case.data), "decision": decision}
        if trigger in FINAL_DECISIONS and case.decided_at is None:
            values |= {"decided_at": tx.now, "decided_by": actor}
    if after in APPROVING:
        # What the ERP is sent is this, not the requested amount (which may change later).
        base = data if data is not None else case.data
        attempt = int(base.get("commerce", {}).get("attempt", 1))
        approved = {
            "amount_fen": changes.get("amount_fen", case.amount_fen),
            "by": actor,
            "at": tx.now.isoformat(),
            "key": effect_key(case, APPROVE_REFUND, attempt),
        }
        data = {**base, "approved": approved}
    await step(
        tx,
        case,
        MACHINE,
        trigger,
        actor=actor,
        closed=TERMINAL,
        channel=channel,
        data=data,
        **values,
    )
    await _enter(tx, case, after)
    return after


async def _enter(tx: Tx, case: Case, state: RefundState) -> None:
    """Side effects and timers that belong to arriving in `state`."""
    if case.first_response_at is not None:
        await tx.timers.cancel(case.id, ["first_response"])
    if state in APPROVING:
        attempt = int(case.data.get("commerce", {}).get("attempt", 1))
        await tx.side_effect(case, APPROVE_REFUND, approve_payload(case), attempt=attempt)
    elif state is S.REJECTED:
        payload = _commerce_payload(case) | {"reason": case.data.get("reject_reason", "")}
        await tx.side_effect(case, "commerce.reject_refund", payload)
    if state in TERMINAL:
        await tx.timers.cancel(case.id)
        return
    await tx.timers.cancel(
        case.id, [k for k, states in TIMER_STATES.items() if state not in states]
    )
    waits = tx.svc.settings.timers
    if state is S.ESCALATED:
        await tx.schedule(
            case, "approval", tx.after(hours=waits.approval_h), suffix=str(case.version)
        )
    elif state is S.WAITING_RETURN:
        await tx.schedule(case, "return_tracking", tx.after(hours=waits.return_tracking_h))
    elif state is S.INSPECTING:
        await tx.schedule(case, "qc", tx.after(hours=waits.qc_h))
    if state is S.WAITING_INTERCEPT:
        from handlers import intercept  # the intercept flow builds on this module

        await intercept.request_for_refund(tx, case)


def unsendable_approval(case: Case, key: str) -> str:
    """Why the `approve_refund` item `key` must not reach the shop now ('' when it may).

    Only the current attempt of a refund that is approved and not yet submitted is sent: an
    old attempt brought back from the dead letters never pays a failed refund (that needs a
    person's retry, within their limit) nor pays one twice.
    """
    state = RefundState(case.state)
    if state not in (S.APPROVED, S.AUTO_APPROVED):
        return f"{case.handle} is {state.value}"
    attempt = int(case.data.get("commerce", {}).get("attempt", 1))
    if key != effect_key(case, APPROVE_REFUND, attempt):
        return f"{case.handle} is on attempt {attempt}"
    return ""


def _commerce_payload(case: Case) -> dict[str, Any]:
    return {
        "refund_id": case.case_id,
        "order_id": case.order_id,
        "shop": case.shop,
        "platform": case.platform,
        "amount": str(fen_to_yuan(case.amount_fen)),
    }


def approved_fen(case: Case) -> int | None:
    """The amount of the approval that stands (kept apart from the requested amount)."""
    approved = case.data.get("approved")
    amount = approved.get("amount_fen") if isinstance(approved, dict) else None
    return amount if isinstance(amount, int) else None


def _standing_fen(case: Case) -> int:
    """What the refund pays: the approved amount once there is one, else the requested."""
    amount = approved_fen(case)
    return case.amount_fen if amount is None else amount


def approve_payload(case: Case) -> dict[str, Any]:
    return _commerce_payload(case) | {"amount": str(fen_to_yuan(_standing_fen(case)))}


def _sending(case: Case) -> bool:
    """The ERP call for the standing approval has begun (it may have moved money)."""
    approved = case.data.get("approved")
    sent = case.data.get("commerce", {}).get("sent")
    return isinstance(approved, dict) and bool(sent) and sent == approved.get("key")


async def begin_submission(
    tx: Tx, case: Case, key: str, queued: dict[str, Any]
) -> dict[str, Any] | None:
    """What to send the ERP for outbox item `key`, or None when its approval was withdrawn
    (an amount change re-opened review, or it is not the current attempt of an approved
    refund). The case is marked first, so that an amount change arriving while the call is
    under way is flagged for a person rather than re-decided."""
    if unsendable_approval(case, key):
        return None
    data = dict(case.data)
    approved = data.get("approved")
    if not isinstance(approved, dict):
        # Queued before approvals were kept apart: it stands only for the amount it carries.
        if queued.get("amount") != str(fen_to_yuan(case.amount_fen)):
            error = f"金额已变更（提交时 ¥{queued.get('amount')}），请重新审核"
            commerce = {**data.get("commerce", {}), "error": error}
            await move(tx, case, T.FAIL, actor="system", data={**data, "commerce": commerce})
            return None
        approved = {"amount_fen": case.amount_fen, "key": key}
        data["approved"] = approved
    elif approved.get("key") != key:
        return None
    commerce = dict(data.get("commerce", {}))
    if commerce.get("sent") != key:
        data["commerce"] = commerce | {"sent": key}
        await tx.cases.touch(case, now=tx.now, data=data)
    return approve_payload(case)


STOP_TEXT = {
    "requested": "已通知仓库截单，等待结果",
    "pending": "已提交，等仓库确认",
    MANUAL: "❗ 未接仓库/ERP，没有通知仓库：请手动截单",
    "done": "✅ 已截单",
}


def stop_shipment_text(data: dict[str, Any]) -> str:
    status = str(data.get("stop_shipment", ""))
    if status.startswith("failed: "):
        return f"❌ 截单失败：{status[8:]}"
    return STOP_TEXT.get(status, status)


async def request_stop_shipment(tx: Tx, case: Case, *, actor: str, channel: str = "") -> bool:
    """Tell the warehouse/ERP to stop an unshipped order (截单); False when already under way."""
    if case.data.get("stop_shipment") in ("requested", "pending", MANUAL, "done"):
        return False
    attempt = int(case.data.get("stop_attempt", 0)) + 1
    data = {**case.data, "stop_shipment": "requested", "stop_attempt": attempt}
    await tx.cases.touch(case, now=tx.now, data=data)
    await tx.audit(case, actor, "stop_shipment", from_state=case.state, channel=channel)
    await tx.sync_card(case)
    await tx.side_effect(case, "commerce.stop_shipment", _commerce_payload(case), attempt=attempt)
    return True


# -- events ---------------------------------------------------------------------------------


async def on_requested(
    tx: Tx,
    envelope_shop: str,
    platform: str,
    data: RefundRequested,
    *,
    ended: tuple[RefundEnded, bool] | None = None,
) -> Case:
    """A new refund request: one case, routed to a group, decided by the rules.

    `ended` is a cancellation (True) or closure that arrived before the request: the case
    then starts ended, and no rule approves what the buyer already withdrew.
    """
    existing = await tx.cases.by_case_id(CaseKind.REFUND, data.refund_id)
    if existing is not None:
        again = data.model_dump(mode="json", exclude={"amount", "order_amount"})
        again["amount"] = yuan_text(data.amount)
        if data.order_amount is not None:
            again["order_amount"] = yuan_text(data.order_amount)
        await _apply_update(tx, existing, RefundUpdated.model_validate(again))
        return existing
    group = tx.svc.route(shop=envelope_shop, platform=platform, kind=CaseKind.REFUND.value)
    kind, shipping = data.kind, data.shipping.status
    case = await tx.cases.create(
        kind=CaseKind.REFUND,
        case_id=data.refund_id,
        state=S.NEW.value,
        now=tx.now,
        shop=envelope_shop,
        platform=platform,
        order_id=data.order_id,
        amount_fen=data.amount,
        group_id=group.id if group else "",
        path=path_of(kind, shipping),
        reason=data.reason[:255],
        deadline_at=data.deadline_at,
        data={
            "refund": data.model_dump(mode="json", exclude={"amount", "order_amount"}),
            "order_amount_fen": data.order_amount,
        },
        last_actor="platform",
        last_action="created",
    )
    await tx.audit(case, "platform", "created", channel="api", refund_id=data.refund_id)
    if group is None:
        await tx.post(
            tx.svc.admin_group,
            f"⚠ 退款 {case.handle}（{case.shop}/{case.platform}）没有匹配的群，请检查 [[groups]] 的路由配置",
            key=f"unrouted:{case.id}",
            case=case,
        )
    if ended is not None:
        await on_ended(tx, ended[0], cancelled=ended[1])
        return case
    decision = tx.svc.rules.decide(facts_of(case))
    await apply_decision(tx, case, decision)
    return case


async def apply_decision(tx: Tx, case: Case, decision: Decision, *, again: bool = False) -> None:
    """Route a new case by the rules' decision; `again` for one whose decision was withdrawn,
    where the intercept or return it waited for has already happened: a person reviews it."""
    actor = f"rule:{decision.rule}"
    route = decision.route
    data = {**case.data, "rule": decision.rule, "review_role": decision.review_role}
    if route is Action.AUTO_APPROVE:
        await move(tx, case, T.AUTO_APPROVE, actor=actor, data=data)
    elif route is Action.REQUEST_INTERCEPT and not again:
        await move(tx, case, T.INTERCEPT, actor=actor, data=data)
    elif route is Action.AWAIT_RETURN and not again:
        await move(tx, case, T.AWAIT_RETURN, actor=actor, data=data)
    else:
        await move(
            tx, case, T.REVIEW, actor=actor, data=data, first_response_at=case.first_response_at
        )
    if Action.STOP_SHIPMENT in decision.actions:
        await request_stop_shipment(tx, case, actor=actor)
    await arm_timers(tx, case)


async def arm_timers(tx: Tx, case: Case) -> None:
    timers = tx.svc.settings.timers
    if case.first_response_at is None:
        await tx.schedule(case, "first_response", tx.after(minutes=timers.first_response_min))
    if case.deadline_at is not None and case.state in NEEDS_PERSON | {S.WAITING_INTERCEPT}:
        # One warning per window, plus one when the deadline passes; a case that arrives
        # already inside windows gets only the most urgent of them, at once.
        windows = sorted({*timers.deadline_warn_h, 0.0}, reverse=True)
        entered = [h for h in windows if case.deadline_at - timedelta(hours=h) <= tx.now]
        for hours in windows:
            if entered and hours in entered and hours != entered[-1]:
                continue
            await tx.schedule(
                case,
                "deadline_warn",
                max(case.deadline_at - timedelta(hours=hours), tx.now),
                suffix=f"{hours:g}h:{case.deadline_at:%Y%m%d%H%M}",
                hours=hours,
            )


async def on_updated(tx: Tx, data: RefundUpdated) -> Case:
    case = await _load(tx, data.refund_id)
    await _apply_update(tx, case, data)
    return case


async def _apply_update(tx: Tx, case: Case, data: RefundUpdated) -> None:
    refund = dict(case.data.get("refund", {}))
    refund.update(
        data.model_dump(mode="json", exclude_none=True, exclude={"amount", "order_amount"})
    )
    new_data = {**case.data, "refund": refund}
    changes: dict[str, Any] = {}
    refused = _amount_problem(case, data)
    change = None if refused else _amount_change(case, data)
    if refused:
        new_data["amount_refused"] = {
            "amount_fen": data.amount,
            "order_amount_fen": data.order_amount,
            "why": refused,
            "at": tx.now.isoformat(),
        }
    elif change is not None:
        changes["amount_fen"] = change["to"]
        new_data["order_amount_fen"] = change["order_to"]
        new_data.pop("amount_refused", None)
        new_data["amount_change"] = change | {"at": tx.now.isoformat()}
        new_data = material.changed(new_data, version=case.version + 1)
    if data.reason is not None:
        changes["reason"] = data.reason[:255]
    if data.deadline_at is not None:
        changes["deadline_at"] = data.deadline_at
    if data.shipping is not None:
        changes["path"] = path_of(refund.get("kind", "refund_only"), data.shipping.status)
    trigger = _return_trigger(case, data)
    if trigger is not None:
        await move(tx, case, trigger, actor="platform", data=new_data, **changes)
    else:
        await tx.cases.touch(
            case, now=tx.now, data=new_data, last_actor="platform", last_action="updated", **changes
        )
        await tx.audit(case, "platform", "updated", from_state=case.state, channel="api")
        await tx.sync_card(case)
    if refused:
        await _amount_refused(tx, case, refused)
    elif change is not None:
        await _amount_changed(tx, case, change)
    if case.state == S.INSPECTING and data.return_status == "qc_passed":
        await move(tx, case, T.AUTO_APPROVE, actor="warehouse")
    elif case.state == S.INSPECTING and data.return_status == "qc_failed":
        detail = data.qc_detail
        qc = {"result": "failed", "detail": detail, "at": tx.now.isoformat()}
        await tx.cases.touch(
            case,
            now=tx.now,
            data={**case.data, "qc": qc},
            last_actor="warehouse",
            last_action="qc_failed",
        )
        await tx.audit(
            case, "warehouse", "qc_failed", from_state=case.state, channel="api", detail=detail
        )
        await tx.sync_card(case)
        await tx.post(
            case.group_id,
            f"⚠ {case.handle} 仓库质检不通过{('：' + detail) if detail else ''}，请决定部分退款或拒绝",
            key=f"qc_failed:{case.id}:{case.version}",
            mentions=tx.svc.staff.mentions(tx.svc.staff.approvers(case.amount_fen, "agent")),
            case=case,
        )
    if trigger is None and data.deadline_at is not None:
        await tx.timers.cancel(case.id, ["deadline_warn"])
        await arm_timers(tx, case)


def _amount_problem(case: Case, data: RefundUpdated) -> str:
    """Why the amounts in `data` cannot be taken, judged against what the case holds ("" if
    they can): a refund above its order, or an order amount raised after the request."""
    held = case.data.get("order_amount_fen")
    held_order = held if isinstance(held, int) else None
    amount = case.amount_fen if data.amount is None else data.amount
    order = held_order if data.order_amount is None else data.order_amount
    if held_order is not None and data.order_amount is not None and data.order_amount > held_order:
        return f"订单金额不能调高（{format_fen(held_order)} → {format_fen(data.order_amount)}）"
    if order is not None and amount > order:
        return f"退款金额 {format_fen(amount)} 超过订单金额 {format_fen(order)}"
    return ""


def _amount_change(case: Case, data: RefundUpdated) -> dict[str, Any] | None:
    """The amounts before and after `data`, and what the change means for the case; None when
    neither the amount nor the order amount changes."""
    held = case.data.get("order_amount_fen")
    held_order = held if isinstance(held, int) else None
    amount = case.amount_fen if data.amount is None else data.amount
    order = held_order if data.order_amount is None else data.order_amount
    if amount == case.amount_fen and order == held_order:
        return None
    state = RefundState(case.state)
    if state in (S.SUBMITTED, S.REFUNDED) or (state in APPROVING and _sending(case)):
        outcome = "flagged"  # money moved (or is moving): never sent again, a person looks
    elif state in REOPENABLE:
        outcome = "reopened"
    elif state in TERMINAL:
        outcome = "recorded"
    else:
        outcome = "changed"
    return {
        "from": case.amount_fen,
        "to": amount,
        "order_from": held_order,
        "order_to": order,
        "approved": approved_fen(case),
        "outcome": outcome,
    }


async def _amount_refused(tx: Tx, case: Case, why: str) -> None:
    await tx.audit(
        case, "platform", "amount_refused", from_state=case.state, channel="api", why=why
    )
    supervisors = tx.svc.staff.with_role(SUPERVISORS)
    await tx.post(
        case.group_id,
        f"⚠ {case.handle} 平台推送的金额变更未采用：{why}。请在平台后台核对",
        key=f"amount_refused:{case.id}:{case.version}",
        mentions=tx.svc.staff.mentions(supervisors),
        case=case,
    )


async def _amount_changed(tx: Tx, case: Case, change: dict[str, Any]) -> None:
    """After the new amount is on the row: withdraw a decision that moved no money (rules
    decide again), or flag one that did; the audit log keeps both amounts."""
    await tx.audit(
        case,
        "platform",
        "amount_changed",
        from_state=case.state,
        channel="api",
        amount_from=change["from"],
        amount_to=change["to"],
        order_from=change["order_from"],
        order_to=change["order_to"],
        outcome=change["outcome"],
    )
    moved = f"{format_fen(change['from'])} → {format_fen(change['to'])}"
    directory = tx.svc.staff
    if change["outcome"] == "reopened":
        await _reopen(tx, case)
        if case.state in NEEDS_PERSON:
            role = case.data.get("review_role", "agent")
            await tx.post(
                case.group_id,
                f"⚠ {case.handle} 金额已变更 {moved}，原审批已撤回，请重新审核",
                key=f"amount_changed:{case.id}:{case.version}",
                mentions=directory.mentions(directory.approvers(case.amount_fen, role)),
                case=case,
            )
    elif change["outcome"] == "flagged":
        sent = format_fen(change["approved"] if change["approved"] is not None else change["from"])
        await tx.post(
            case.group_id,
            f"⚠ {case.handle} 金额已变更 {moved}，退款已按 {sent} 提交，不会再次提交，请人工核对",
            key=f"amount_changed:{case.id}:{case.version}",
            mentions=directory.mentions(directory.with_role(SUPERVISORS)),
            case=case,
        )


async def _reopen(tx: Tx, case: Case) -> None:
    """Withdraw the standing approval (its queued ERP call is refused by `begin_submission`) and
    let the rules decide the new amount; anything but an automatic approval goes to review."""
    commerce = {
        k: v for k, v in case.data.get("commerce", {}).items() if k not in ("error", "sent")
    }
    commerce["attempt"] = int(commerce.get("attempt", 1)) + 1
    data = {k: v for k, v in case.data.items() if k not in ("approved", "decision")}
    await move(tx, case, T.REOPEN, actor="platform", data={**data, "commerce": commerce})
    await apply_decision(tx, case, tx.svc.rules.decide(facts_of(case)), again=True)


def _return_trigger(case: Case, data: RefundUpdated) -> Trigger | None:
    state = RefundState(case.state)
    if data.return_status in ("received", "qc_passed", "qc_failed") and state in (
        S.WAITING_RETURN,
        S.RETURNING,
    ):
        return T.RETURN_RECEIVED
    if (data.return_status == "shipped" or data.return_tracking) and state is S.WAITING_RETURN:
        return T.RETURN_SHIPPED
    return None


async def on_ended(tx: Tx, data: RefundEnded, *, cancelled: bool) -> Case:
    case = await _load(tx, data.refund_id)
    state = RefundState(case.state)
    if state in TERMINAL:
        return case
    new_data = {**case.data, "end_detail": data.detail or data.status}
    if not cancelled and data.status == "refunded" and (state, T.REFUNDED) in TRANSITIONS:
        await move(tx, case, T.REFUNDED, actor="platform", data=new_data)
    elif cancelled and (state, T.CANCEL) in TRANSITIONS:
        await move(tx, case, T.CANCEL, actor="platform", data=new_data)
    else:
        await move(tx, case, T.PLATFORM_CLOSE, actor="platform", data=new_data)
    return case


async def _load(tx: Tx, refund_id: str) -> Case:
    case = await tx.cases.by_case_id(CaseKind.REFUND, refund_id)
    if case is None:
        raise MissingRefundError(refund_id)
    return case


# -- people ---------------------------------------------------------------------------------


async def approve(tx: Tx, case: Case, staff: StaffSettings, channel: str) -> Reply:
    state = RefundState(case.state)
    if state is S.FAILED:
        return await retry(tx, case, staff, channel)
    ensure(tx, case, T.APPROVE)
    role = approval_role(case)
    directory = tx.svc.staff
    if not directory.may_approve(staff, case.amount_fen, role):
        if state is S.ESCALATED or not directory.may_approve(staff, 0, "agent"):
            raise directory.refuse_amount(staff, case.amount_fen, role)
        limit = directory.refund_limit_fen(staff)
        data = {
            **case.data,
            "escalation": {
                "by": staff.id,
                "limit": format_fen(limit or 0),
                "at": tx.now.isoformat(),
            },
        }
        await move(tx, case, T.ESCALATE, actor=staff.id, channel=channel, data=data)
        supervisors = directory.approvers(case.amount_fen, "supervisor")
        names = "、".join(s.display for s in supervisors) or "管理员"
        return Reply(
            f"{case.handle} {format_fen(case.amount_fen)} 超出你的权限"
            f"（{format_fen(limit or 0)}），已升级给主管：{names}",
            mentions=directory.mentions(supervisors),
        )
    await move(
        tx, case, T.APPROVE, actor=staff.id, channel=channel, assignee=case.assignee or staff.id
    )
    return Reply(f"✅ 已通过 {case.handle}（{format_fen(case.amount_fen)}），正在提交退款")


async def retry(tx: Tx, case: Case, staff: StaffSettings, channel: str) -> Reply:
    """Submit a failed refund again: a new approval, so it needs the same authority."""
    role = approval_role(case)
    if not tx.svc.staff.may_approve(staff, case.amount_fen, role):
        raise tx.svc.staff.refuse_amount(staff, case.amount_fen, role)
    commerce = dict(case.data.get("commerce", {}))
    commerce["attempt"] = int(commerce.get("attempt", 1)) + 1
    commerce.pop("error", None)
    await move(
        tx, case, T.RETRY, actor=staff.id, channel=channel, data={**case.data, "commerce": commerce}
    )
    return Reply(f"🔁 已重新提交 {case.handle} 的退款")


async def reject(tx: Tx, case: Case, staff: StaffSettings, reason: str, channel: str) -> Reply:
    if not reason.strip():
        raise UsageError(f"请写明拒绝原因：拒绝 {case.handle} <原因>")
    ensure(tx, case, T.REJECT)
    data = {**case.data, "reject_reason": reason.strip()[:500]}
    await move(
        tx,
        case,
        T.REJECT,
        actor=staff.id,
        channel=channel,
        data=data,
        assignee=case.assignee or staff.id,
    )
    return Reply(f"已拒绝 {case.handle}：{one_line(reason.strip())}")


async def on_commerce_result(
    tx: Tx, case: Case, action: str, *, ok: bool, status: str = "", error: str = ""
) -> None:
    """The commerce system answered (or gave up on) an approve/reject/stop-shipment call."""
    commerce = {**case.data.get("commerce", {})}
    if action == "commerce.stop_shipment":
        outcome = (
            (status if status in ("done", MANUAL) else "pending") if ok else f"failed: {error}"
        )
        data = {**case.data, "stop_shipment": outcome}
        await tx.cases.touch(case, now=tx.now, data=data)
        await tx.sync_card(case)
        return
    if action == "commerce.reject_refund":
        if not ok or status == MANUAL:
            told = {"reject": MANUAL} if ok else {"error": f"拒绝未能提交：{error}"}
            data = {**case.data, "commerce": commerce | told}
            await tx.cases.touch(case, now=tx.now, data=data)
            await tx.sync_card(case)
        return
    if action != APPROVE_REFUND:
        return  # other calls (a message to the buyer) never move the refund
    state = RefundState(case.state)
    if state not in PAYING:
        return
    if ok and status == MANUAL:
        data = {**case.data, "commerce": commerce | {"status": status}}
        await move(tx, case, T.MANUAL, actor="system", data=data)
    elif ok:
        data = {**case.data, "commerce": commerce | {"status": status}}
        trigger = T.SUBMITTED if status == "pending" else T.REFUNDED
        if trigger is T.SUBMITTED and state is S.SUBMITTED:
            return
        await move(tx, case, trigger, actor="commerce", data=data)
    else:
        data = {**case.data, "commerce": commerce | {"error": error}}
        await move(tx, case, T.FAIL, actor="commerce", data=data)


async def on_intercepted(
    tx: Tx, case: Case, *, recorded_by: str, via: str, actor: str, data: dict[str, Any]
) -> None:
    """The parcel of a refund waiting for its intercept was stopped (intercept `via`).

    On the carrier's word (its API or a signed `intercept.result`) the refund goes on, as the
    rule says. On a person's word it goes on only within that person's refund limit; above
    it, it is escalated and waits for someone who may approve the amount.
    """
    directory = tx.svc.staff
    staff = directory.get(recorded_by)
    if recorded_by == "carrier" or (
        staff is not None and directory.may_approve(staff, case.amount_fen, approval_role(case))
    ):
        await move(tx, case, T.INTERCEPTED, actor=actor, data=data)
        return
    escalation = {
        "by": recorded_by,
        "limit": directory.limit_text(staff),
        "at": tx.now.isoformat(),
        "intercept": via,
    }
    await move(tx, case, T.ESCALATE, actor=actor, data={**data, "escalation": escalation})


def held_for(case: Case, via: str) -> bool:
    """The refund waits for an approver only because a person recorded intercept `via`."""
    escalation = case.data.get("escalation") or {}
    return case.state == S.ESCALATED and escalation.get("intercept") == via


async def on_carrier_confirmed(tx: Tx, case: Case, *, via: str) -> None:
    """The carrier confirmed intercept `via`, which a person had recorded first: a refund
    held for that person's limit goes on, on the carrier's word."""
    if held_for(case, via):
        await move(tx, case, T.APPROVE, actor="carrier")


async def record_refunded(tx: Tx, case: Case, staff: StaffSettings, channel: str) -> Reply:
    """A person refunded by hand in the shop backend (no shop system is connected)."""
    if case.state != S.MANUAL:
        raise ConflictError(
            f"{case.handle} 是「{STATE_TEXT.get(case.state, case.state)}」：只有待手动退款的单据需要登记"
        )
    await move(tx, case, T.REFUNDED, actor=staff.id, channel=channel)
    return Reply(f"✅ 已登记 {case.handle} 手动退款 {format_fen(_standing_fen(case))}")


async def claim(tx: Tx, case: Case, staff: StaffSettings, channel: str) -> Reply:
    """Take a case (any kind): the card names the assignee, reminders go to them."""
    if case.closed_at is not None:
        status = STATE_TEXT.get(case.state, "已办结") if case.kind == CaseKind.REFUND else "已办结"
        raise ConflictError(f"{case.handle} 已经是「{status}」，无需认领")
    if case.assignee == staff.id:
        return Reply(f"{case.handle} 已经由你处理")
    if case.assignee and "supervisor" not in staff.roles and "admin" not in staff.roles:
        owner = tx.svc.staff.name(case.assignee)
        raise ConflictError(f"{case.handle} 已由 {owner} 认领；需要转交请找主管")
    changes: dict[str, Any] = {"assignee": staff.id, "last_actor": staff.id, "last_action": "claim"}
    if case.first_response_at is None:
        changes["first_response_at"] = tx.now
    await tx.cases.touch(case, now=tx.now, **changes)
    await tx.timers.cancel(case.id, ["first_response"])
    await tx.audit(case, staff.id, "claim", from_state=case.state, channel=channel)
    await tx.sync_card(case)
    return Reply(f"👌 {case.handle} 由 {staff.display} 处理")


async def note(tx: Tx, case: Case, staff: StaffSettings, text: str, channel: str) -> Reply:
    if not text.strip():
        raise UsageError(f"备注不能为空：备注 {case.handle} <内容>")
    notes = [
        *case.data.get("notes", []),
        {"by": staff.id, "at": tx.now.isoformat(), "text": text.strip()[:500]},
    ]
    changes: dict[str, Any] = {
        "data": {**case.data, "notes": notes[-20:]},
        "last_actor": staff.id,
        "last_action": "note",
    }
    await tx.cases.touch(case, now=tx.now, **changes)
    await tx.audit(
        case, staff.id, "note", from_state=case.state, channel=channel, text=text.strip()[:500]
    )
    await tx.sync_card(case)
    return Reply(f"已记下 {case.handle} 的备注")


async def load_for_change(tx: Tx, ref: str) -> Case:
    case = await reference.find(tx, ref)
    if case is None:
        raise NotFoundError(f"找不到 {ref}：请用卡片上的编号（如 R12）或完整的退款单号")
    return case
