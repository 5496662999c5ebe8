"""The intercept transition table: states, triggers, the sets flows ask about, and the words
for each, on its own card and on the cards of the refunds and anomalies it serves.
"""

from __future__ import annotations

from enum import StrEnum

from handlers.states import Machine

# Requested by the rule (a shipped refund enters waiting_intercept), a card button or
# `拦截 R12`; one case per parcel, the carrier call goes through the outbox under an
# idempotency key. The carrier's answer or an `intercept.result` settles it. No answer in
# `[timers] intercept_feedback_h` → a reminder, after as long again → the supervisors.
# An unshipped order is stopped at the warehouse instead (截单); a delivered one cannot
# be intercepted and the reply says why.


class InterceptState(StrEnum):
    REQUESTED = "requested"
    SENT = "sent"
    # No carrier system is connected ([carrier] mode = "none"): nothing was sent, call them.
    MANUAL = "manual"
    OVERDUE = "overdue"
    INTERCEPTED = "intercepted"
    FAILED = "intercept_failed"
    ERROR = "submit_error"


class InterceptTrigger(StrEnum):
    SENT = "sent"
    MANUAL = "manual"
    INTERCEPTED = "intercepted"
    FAIL = "fail"
    ESCALATE = "escalate"
    ERROR = "error"
    RETRY = "retry"


S, T = InterceptState, InterceptTrigger
WAITING = frozenset({S.REQUESTED, S.SENT, S.MANUAL, S.OVERDUE})
OPEN = WAITING | {S.ERROR}
DONE = frozenset({S.INTERCEPTED, S.FAILED})

TRANSITIONS: dict[tuple[InterceptState, InterceptTrigger], InterceptState] = {
    (S.REQUESTED, T.SENT): S.SENT,
    (S.REQUESTED, T.MANUAL): S.MANUAL,
    **{(s, T.INTERCEPTED): S.INTERCEPTED for s in OPEN},
    **{(s, T.FAIL): S.FAILED for s in OPEN},
    **{(s, T.ESCALATE): S.OVERDUE for s in (S.REQUESTED, S.SENT, S.MANUAL)},
    **{(s, T.ERROR): S.ERROR for s in (S.REQUESTED, S.OVERDUE)},
    (S.ERROR, T.RETRY): S.REQUESTED,
}

STATE_TEXT: dict[str, str] = {
    S.REQUESTED: "已申请 · 提交快递中",
    S.SENT: "快递已受理 · 等待拦截结果",
    S.MANUAL: "未接快递系统 · 请电话联系快递拦截",
    S.OVERDUE: "快递超时未反馈 · 已升级主管",
    S.INTERCEPTED: "拦截成功",
    S.FAILED: "拦截失败",
    S.ERROR: "未能提交给快递",
}
TRIGGER_TEXT: dict[str, str] = {
    T.INTERCEPTED: "登记拦截成功",
    T.FAIL: "登记拦截失败",
    T.RETRY: "重新提交",
}
MACHINE = Machine("这个拦截", InterceptState, TRANSITIONS, STATE_TEXT, TRIGGER_TEXT)
advance = MACHINE.advance
ACTION_TEXT = {
    "requested": "申请拦截",
    T.SENT.value: "快递受理",
    T.MANUAL.value: "转电话拦截（未接快递系统）",
    T.INTERCEPTED.value: "拦截成功",
    T.FAIL.value: "拦截失败",
    T.ESCALATE.value: "超时升级",
    T.ERROR.value: "提交失败",
    T.RETRY.value: "重新提交",
    "linked": "关联单据",
    "late_result": "迟到的快递反馈",
    "carrier_confirmed": "快递确认拦截成功",
    "handover": "转交",
}
SOURCE_TEXT = {"rule": "规则", "command": "命令", "anomaly": "物流异常"}
# How an intercept shows on its refunds' and anomalies' cards: coarser than its own states,
# so the carrier's "accepted" does not redraw every linked card.
LINK_TEXT: dict[str, str] = {
    S.REQUESTED: "拦截中 · 等快递结果",
    S.SENT: "拦截中 · 等快递结果",
    S.MANUAL: "待电话拦截",
    S.OVERDUE: "快递超时未反馈 · 已升级主管",
    S.INTERCEPTED: "拦截成功",
    S.FAILED: "拦截失败",
    S.ERROR: "未能提交给快递",
}
