"""The payout and batch state tables, with the words their cards and refusals are made of.

requested → approved → paid | rejected | failed; a provider that pays by itself (Alipay)
keeps a confirmed payout `paying` until it answers. A batch confirms N at once.
"""

from __future__ import annotations

from enum import StrEnum

from handlers.states import Machine
from storage.enums import CaseKind


class PayoutState(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    PAYING = "paying"
    PAID = "paid"
    REJECTED = "rejected"
    FAILED = "failed"


class Trigger(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    CONFIRM = "confirm"
    PAID = "paid"
    FAIL = "fail"
    RETRY = "retry"


S, T = PayoutState, Trigger
TERMINAL = frozenset({S.PAID, S.REJECTED})

TRANSITIONS: dict[tuple[PayoutState, Trigger], PayoutState] = {
    (S.REQUESTED, T.APPROVE): S.APPROVED,
    (S.REQUESTED, T.REJECT): S.REJECTED,
    (S.APPROVED, T.REJECT): S.REJECTED,
    # Finance confirms: with `manual` the money has moved (PAID, with a reference); with
    # `alipay` the transfer starts (CONFIRM) and the provider's answer settles it.
    (S.APPROVED, T.PAID): S.PAID,
    (S.APPROVED, T.CONFIRM): S.PAYING,
    (S.PAYING, T.PAID): S.PAID,
    (S.PAYING, T.FAIL): S.FAILED,
    (S.FAILED, T.RETRY): S.PAYING,
    (S.FAILED, T.PAID): S.PAID,
    (S.FAILED, T.REJECT): S.REJECTED,
}


class BatchState(StrEnum):
    OPEN = "open"
    CONFIRMED = "confirmed"
    SETTLED = "settled"
    CANCELLED = "cancelled"


class BatchTrigger(StrEnum):
    CONFIRM = "confirm"
    SETTLE = "settle"
    CANCEL = "cancel"


B = BatchState
BATCH_TRANSITIONS: dict[tuple[BatchState, BatchTrigger], BatchState] = {
    (B.OPEN, BatchTrigger.CONFIRM): B.CONFIRMED,
    (B.OPEN, BatchTrigger.CANCEL): B.CANCELLED,
    (B.CONFIRMED, BatchTrigger.SETTLE): B.SETTLED,
}
BATCH_CLOSED = frozenset({B.SETTLED, B.CANCELLED})


STATE_TEXT: dict[str, str] = {
    S.REQUESTED: "待审批",
    S.APPROVED: "已审批 · 待财务打款",
    S.PAYING: "已确认 · 转账中",
    S.PAID: "已打款",
    S.REJECTED: "已拒绝",
    S.FAILED: "打款失败",
}
TRIGGER_TEXT: dict[str, str] = {
    T.APPROVE: "审批",
    T.REJECT: "拒绝",
    T.CONFIRM: "确认打款",
    T.PAID: "确认打款",
    T.FAIL: "标记失败",
    T.RETRY: "重新打款",
}
BATCH_STATE_TEXT: dict[str, str] = {
    B.OPEN: "待财务确认",
    B.CONFIRMED: "已确认 · 处理中",
    B.SETTLED: "已完成",
    B.CANCELLED: "已取消",
}
BATCH_TRIGGER_TEXT: dict[str, str] = {
    BatchTrigger.CONFIRM: "确认打款",
    BatchTrigger.SETTLE: "结束",
    BatchTrigger.CANCEL: "取消",
}
MACHINE = Machine("这笔打款", PayoutState, TRANSITIONS, STATE_TEXT, TRIGGER_TEXT)
BATCH_MACHINE = Machine(
    "这个批次", BatchState, BATCH_TRANSITIONS, BATCH_STATE_TEXT, BATCH_TRIGGER_TEXT
)
advance = MACHINE.advance
advance_batch = BATCH_MACHINE.advance

KINDS = ("cashback", "price_diff", "compensation")
KIND_TEXT = {"cashback": "活动返现", "price_diff": "补差价", "compensation": "补偿"}
KIND_ALIASES = {
    **{k: k for k in KINDS},
    "返现": "cashback",
    "活动返现": "cashback",
    "差价": "price_diff",
    "补差价": "price_diff",
    "退差价": "price_diff",
    "补偿": "compensation",
    "赔付": "compensation",
    "赔偿": "compensation",
}
# Cash for a good review is against the platforms' rules (淘宝, 抖音) and Art. 14 of
# 《网络交易监督管理办法》: a payout is never asked for as one.
FORBIDDEN_KINDS = {"好评返现": "好评返现（用钱换好评）违反平台规则和《网络交易监督管理办法》"}
ACTION_TEXT = {
    "created": "提交打款申请",
    "approve": "审批通过",
    "reject": "拒绝",
    "confirm": "确认打款",
    "paid": "打款确认",
    "fail": "打款失败",
    "retry": "重新打款",
    "recheck": "核对转账",
    "note": "备注",
    "batch": "放入批次",
    "unbatch": "移出批次",
    "settle": "批次完成",
    "cancel": "取消批次",
    "undo": "撤销决定",
    "payee_revealed": "查看完整收款账号",
    "payee_exported": "导出到支付宝批量付款文件",
}
# How a payout reads on its batch's card.
ITEM_TEXT = {
    S.APPROVED: "待确认",
    S.PAYING: "转账中",
    S.PAID: "✓ 已打款",
    S.FAILED: "✗ 失败",
    S.REJECTED: "已拒绝",
    S.REQUESTED: "待审批",
}
SETTLED_ITEMS = frozenset({S.PAID, S.FAILED, S.REJECTED})
FINANCE = frozenset({"finance", "admin"})
PAYOUT_KINDS = frozenset({CaseKind.PAYOUT.value, CaseKind.PAYOUT_BATCH.value})
