"""The refund transition table: states, triggers, the sets of states flows ask about, and the
words for each (DESIGN §1 paths: 1 not shipped, 2 shipped → intercept, 3 received, 4 return).
"""

from __future__ import annotations

from enum import StrEnum

from handlers.states import Machine


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
KIND_TEXT = {"refund_only": "仅退款", "return_refund": "退货退款", "price_diff": "退差价"}
SHIPPING_TEXT = {
    "unshipped": "未发货",
    "shipped": "已发货",
    "in_transit": "运输中",
    "delivered": "已签收",
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
    "manual": "转手动退款",
    "code": "提交短信验证码",
    "shipped": "仓库回复已发货",
    "stopped": "截单成功，发出退款",
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
    "undo": "撤销决定",
    "handover": "转交",
}


def path_of(kind: str, shipping: str) -> int:
    """The DESIGN §1 path a refund of `kind` takes with its goods `shipping`."""
    if kind == "return_refund":
        return 4
    return {"unshipped": 1, "shipped": 2, "in_transit": 2}.get(shipping, 3)
