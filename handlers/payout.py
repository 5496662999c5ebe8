"""Payouts (cashback, price difference, compensation) under the two-person rule, and batches.

requested → approved → paid | rejected | failed; a provider that pays by itself (Alipay)
keeps a confirmed payout `paying` until it answers. A batch (B3) confirms N at once.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from bot.settings import StaffSettings
from handlers import reference
from handlers.context import Tx
from handlers.errors import ConflictError, NotFoundError, PermissionDeniedError, UsageError
from handlers.message import Button, ButtonStyle, Card, Field, Mention, Reply, Tone, one_line
from handlers.money import MAX_AMOUNT_FEN, fen_to_yuan, format_fen
from handlers.schema import PLATFORMS, PayoutRequested
from handlers.states import IllegalTransitionError, Machine
from handlers.step import step
from integrations.commerce.client import MANUAL
from storage.enums import CaseKind
from storage.models import Case
from storage.repositories.payouts import PayoutRepository, Tally


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
KIND_TEXT = {"cashback": "返现", "price_diff": "补差价", "compensation": "补偿"}
KIND_ALIASES = {
    **{k: k for k in KINDS},
    "返现": "cashback",
    "好评返现": "cashback",
    "差价": "price_diff",
    "补差价": "price_diff",
    "退差价": "price_diff",
    "补偿": "compensation",
    "赔付": "compensation",
    "赔偿": "compensation",
}
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
}
TONE = {
    S.REQUESTED: Tone.WARNING,
    S.APPROVED: Tone.WARNING,
    S.PAYING: Tone.INFO,
    S.PAID: Tone.SUCCESS,
    S.REJECTED: Tone.MUTED,
    S.FAILED: Tone.DANGER,
}
ACTORS = {"alipay": "支付宝", "platform": "店铺系统"}
FINANCE = frozenset({"finance", "admin"})
PAYOUT_KINDS = frozenset({CaseKind.PAYOUT.value, CaseKind.PAYOUT_BATCH.value})
DECIDERS = frozenset({"agent", "supervisor", "admin"})
BATCH_LINES = 30
OUT_BIZ_NO = re.compile(r"[A-Za-z0-9_-]{1,58}")


# -- masking --------------------------------------------------------------------------------


def mask_account(account: str) -> str:
    """138****8000, 2088****1234, zh****@example.com: enough to recognise, not to reuse."""
    account = account.strip()
    if "@" in account:
        local, _, domain = account.rpartition("@")
        keep = min(3, max(1, len(local) // 2)) if len(local) > 1 else 0
        return f"{local[:keep]}****@{domain}"
    if len(account) >= 7:
        return f"{account[:3]}****{account[-4:]}"
    if len(account) >= 3:
        return f"{account[0]}****{account[-1]}"
    return "****"


def mask_name(name: str) -> str:
    """王小明 → 王**; a name the platform already masked stays as it is."""
    name = name.strip()
    if not name or "*" in name:
        return name
    return name[0] + "*" * min(len(name) - 1, 3) if len(name) > 1 else name


def out_biz_no(payout_id: str, attempt: int) -> str:
    """Alipay's idempotency key: the payout id, and `_<n>` for a retry after a final failure."""
    base = payout_id
    if not OUT_BIZ_NO.fullmatch(payout_id):
        base = "PO" + hashlib.sha256(payout_id.encode()).hexdigest()[:30].upper()
    return base if attempt <= 1 else f"{base}_{attempt}"


def command_payout_id(input_id: str) -> str:
    """One chat message makes at most one payout, however often the platform delivers it."""
    seed = input_id or uuid.uuid4().hex
    return "PO" + hashlib.sha256(seed.encode()).hexdigest()[:16].upper()


# -- who may act ----------------------------------------------------------------------------


def requester_of(case: Case) -> str:
    return str(case.data.get("payout", {}).get("requested_by", ""))


def approver_of(case: Case) -> str:
    return str(case.data.get("approval", {}).get("by", ""))


def two_person(tx: Tx) -> bool:
    return tx.svc.settings.payout.two_person_rule


def approvers_for(tx: Tx, case: Case) -> list[StaffSettings]:
    """Who may approve this amount, without the requester under the two-person rule."""
    able = tx.svc.staff.approvers(case.amount_fen, "agent")
    if two_person(tx):
        able = [s for s in able if s.id != requester_of(case)]
    return able


def confirmers_for(tx: Tx, case: Case | None = None) -> list[StaffSettings]:
    """Finance (and admins), without the approver under the two-person rule."""
    able = tx.svc.staff.with_role(FINANCE)
    if case is not None and two_person(tx):
        able = [s for s in able if s.id != approver_of(case)]
    return able


def _names(staff: list[StaffSettings]) -> str:
    return "、".join(s.display for s in staff) or "管理员"


def _with_limits(tx: Tx, staff: list[StaffSettings]) -> str:
    directory = tx.svc.staff
    parts = []
    for s in staff:
        limit = directory.refund_limit_fen(s)
        parts.append(f"{s.display}（{'不限' if limit is None else format_fen(limit)}）")
    return "、".join(parts) or "管理员"


def who(tx: Tx, actor: str) -> str:
    return ACTORS.get(actor) or tx.svc.staff.name(actor)


# -- the cards ------------------------------------------------------------------------------


def payout_card(case: Case, tx: Tx) -> Card:
    state = PayoutState(case.state)
    info = case.data.get("payout", {})
    kind = info.get("kind", "cashback")
    fields = [Field("订单", case.order_id or "—")]
    if case.platform or case.shop:
        platform = PLATFORMS.get(case.platform, case.platform)
        fields.append(Field("平台", " · ".join(p for p in (platform, case.shop) if p)))
    fields += [
        Field("金额", format_fen(case.amount_fen)),
        Field("收款", " · ".join(p for p in (info.get("payee_name"), info.get("payee")) if p)),
        Field("原因", case.reason or "—"),
        Field("申请", _step(tx, info.get("requested_by", ""), info.get("requested_at"))),
    ]
    if approval := case.data.get("approval"):
        fields.append(Field("审批", _step(tx, approval["by"], approval["at"])))
    if confirm := case.data.get("confirm"):
        fields.append(Field("打款", _step(tx, confirm["by"], confirm["at"])))
    if reference := case.data.get("reference"):
        fields.append(Field("流水号", reference))
    provider = tx.svc.settings.payout.provider
    paid_by = case.data.get("channel", provider)
    fields.append(Field("渠道", "支付宝转账" if paid_by == "alipay" else "财务线下打款"))
    if batch := case.data.get("batch"):
        fields.append(Field("批次", batch["handle"]))
    lines = [f"📝 {who(tx, n['by'])}：{n['text']}" for n in case.data.get("notes", [])[-3:]]
    transfer = case.data.get("transfer", {})
    if state is S.PAYING and transfer.get("unknown"):
        lines.append(
            f"⚠ 支付宝转账结果未知（{transfer.get('detail', '')[:120]}）。"
            f"请在支付宝核对：核对 {case.handle}，或已到账时 打款确认 {case.handle} <流水号>"
        )
    elif state is S.PAYING and transfer.get("status") == "DEALING":
        lines.append("⏳ 支付宝处理中，到账后卡片会更新")
    if state is S.FAILED and (error := case.data.get("error")):
        lines.append(f"⚠ 失败原因：{error}")
    if state is S.REJECTED and (rejected := case.data.get("reject")):
        lines.append(f"拒绝原因：{rejected['reason']}（{who(tx, rejected['by'])}）")
    if state is S.PAID and case.data.get("buyer_notified"):
        lines.append("已通知买家")
    elif state is S.PAID and (why := case.data.get("buyer_notify_error")):
        lines.append(f"⚠ 未能通知买家：{why[:120]}")
    elif state is S.PAID and case.data.get("buyer_notify_manual"):
        lines.append("⚠ 未接店铺系统，没有通知买家：请在平台后台告知买家已打款")
    mentions: tuple[Mention, ...] = ()
    if state is S.REQUESTED:
        mentions = tx.svc.staff.mentions(approvers_for(tx, case))
    elif state is S.APPROVED and not case.data.get("batch"):
        mentions = tx.svc.staff.mentions(confirmers_for(tx, case))
    return Card(
        case_pk=case.id,
        case_id=case.case_id,
        handle=case.handle,
        kind=case.kind,
        state=case.state,
        version=case.version,
        title=f"{KIND_TEXT.get(kind, '打款')} {case.handle} · {format_fen(case.amount_fen)}",
        status=STATE_TEXT[state],
        tone=TONE[state],
        fields=tuple(fields),
        buttons=payout_buttons(state, provider, case),
        lines=tuple(lines),
        footer=footer(case, tx),
        mentions=mentions,
    )


def payout_buttons(state: PayoutState, provider: str, case: Case) -> tuple[Button, ...]:
    reject = Button("reject", "拒绝", ButtonStyle.DANGER)
    if state is S.REQUESTED:
        return (Button("approve", "通过", ButtonStyle.PRIMARY), reject)
    if state is S.APPROVED:
        text = "确认打款" if provider == "alipay" else "已打款 · 填流水号"
        return (Button("paid", text, ButtonStyle.PRIMARY), reject)
    if state is S.FAILED:
        if provider == "alipay":
            return (Button("repay", "重新打款", ButtonStyle.PRIMARY), reject)
        return (Button("paid", "已打款 · 填流水号", ButtonStyle.PRIMARY), reject)
    if state is S.PAYING and case.data.get("transfer", {}).get("unknown"):
        return (Button("recheck", "核对转账", ButtonStyle.PRIMARY),)
    return ()


ITEM_TEXT = {
    S.APPROVED: "待确认",
    S.PAYING: "转账中",
    S.PAID: "✓ 已打款",
    S.FAILED: "✗ 失败",
    S.REJECTED: "已拒绝",
    S.REQUESTED: "待审批",
}
SETTLED_ITEMS = frozenset({S.PAID, S.FAILED, S.REJECTED})


def batch_card(case: Case, tx: Tx) -> Card:
    state = BatchState(case.state)
    items = case.data.get("items", [])
    live = [i for i in items if not i.get("skipped")]
    if state is B.OPEN:
        # Until the tap, only what is still approved would be paid.
        live = [i for i in live if i["state"] == S.APPROVED]
    total = sum(int(i["amount_fen"]) for i in live)
    fields = [
        Field("笔数", str(len(live))),
        Field("合计", format_fen(total)),
        Field("发起", _step(tx, case.data.get("created_by", ""), case.created_at.isoformat())),
    ]
    if confirm := case.data.get("confirm"):
        text = _step(tx, confirm["by"], confirm["at"])
        fields.append(
            Field("确认", f"{text} · 流水号 {confirm['ref']}" if confirm["ref"] else text)
        )
    status = BATCH_STATE_TEXT[state]
    if state in (B.CONFIRMED, B.SETTLED):
        fields.append(Field("结果", batch_summary(items)))
    lines = [_item_line(i) for i in items[:BATCH_LINES]]
    if len(items) > BATCH_LINES:
        lines.append(f"…另有 {len(items) - BATCH_LINES} 笔")
    if state is B.CANCELLED and (why := case.data.get("cancel_reason")):
        lines.append(f"取消原因：{why}")
    buttons: tuple[Button, ...] = ()
    mentions: tuple[Mention, ...] = ()
    if state is B.OPEN:
        buttons = (
            Button(
                "paid", f"全部确认打款（{len(live)} 笔 {format_fen(total)}）", ButtonStyle.PRIMARY
            ),
            Button("unbatch", "取消批次"),
        )
        mentions = tx.svc.staff.mentions(confirmers_for(tx))
    tone = {B.OPEN: Tone.WARNING, B.SETTLED: Tone.SUCCESS, B.CANCELLED: Tone.MUTED}.get(
        state, Tone.INFO
    )
    if state is B.SETTLED and any(i["state"] == S.FAILED for i in live):
        tone = Tone.DANGER
    return Card(
        case_pk=case.id,
        case_id=case.case_id,
        handle=case.handle,
        kind=case.kind,
        state=case.state,
        version=case.version,
        title=f"批量打款 {case.handle} · {len(live)} 笔 · {format_fen(total)}",
        status=status,
        tone=tone,
        fields=tuple(fields),
        buttons=buttons,
        lines=tuple(lines),
        footer=footer(case, tx),
        mentions=mentions,
    )


def batch_summary(items: list[dict[str, Any]]) -> str:
    parts = []
    for state, label in ((S.PAID, "已打款"), (S.PAYING, "转账中"), (S.FAILED, "失败")):
        chosen = [i for i in items if not i.get("skipped") and i["state"] == state]
        if chosen:
            fen = sum(int(i["amount_fen"]) for i in chosen)
            parts.append(f"{label} {len(chosen)} 笔 {format_fen(fen)}")
    if skipped := [i for i in items if i.get("skipped")]:
        parts.append(f"跳过 {len(skipped)} 笔")
    return " · ".join(parts) or "—"


def _item_line(item: dict[str, Any]) -> str:
    head = f"{item['handle']} {format_fen(int(item['amount_fen']))} {item.get('payee', '')}"
    if item.get("skipped"):
        return f"{head} · 跳过：{item['skipped']}"
    text = ITEM_TEXT.get(PayoutState(item["state"]), item["state"])
    return f"{head} · {text}" + (f"：{item['note']}" if item.get("note") else "")


def footer(case: Case, tx: Tx) -> str:
    if not case.last_action:
        return ""
    what = ACTION_TEXT.get(case.last_action, case.last_action)
    return f"{who(tx, case.last_actor)} {what} · {tx.local(case.updated_at):%m-%d %H:%M}"


def _step(tx: Tx, actor: str, at: str | None) -> str:
    if not at:
        return who(tx, actor)
    return f"{who(tx, actor)} · {tx.local(datetime.fromisoformat(at)):%m-%d %H:%M}"


def ensure(tx: Tx, case: Case, trigger: Trigger) -> PayoutState:
    """Like `advance`, but the refusal says who moved the payout last and when."""
    return MACHINE.ensure(case.handle, case.state, trigger, footer(case, tx))


# -- moves ----------------------------------------------------------------------------------


def _repo(tx: Tx) -> PayoutRepository:
    return PayoutRepository(tx.session)


async def move(
    tx: Tx,
    case: Case,
    trigger: Trigger,
    *,
    actor: str,
    channel: str = "",
    data: dict[str, Any] | None = None,
    sync_batch: bool = True,
    **changes: Any,
) -> PayoutState:
    """Advance `case` by `trigger` with compare-and-set; write audit, card, batch and effects."""
    after = await step(
        tx,
        case,
        MACHINE,
        trigger,
        actor=actor,
        closed=TERMINAL,
        channel=channel,
        data=data,
        **changes,
    )
    if after is S.PAID:
        await tx.side_effect(case, "commerce.notify_payout", notify_payload(case))
    if sync_batch:
        await sync_batch_item(tx, case)
    return after


def notify_payload(case: Case) -> dict[str, Any]:
    """What the shop system needs to tell the buyer; the account only masked."""
    info = case.data.get("payout", {})
    return {
        "payout_id": case.case_id,
        "order_id": case.order_id,
        "shop": case.shop,
        "platform": case.platform,
        "kind": info.get("kind", ""),
        "amount": str(fen_to_yuan(case.amount_fen)),
        "payee": info.get("payee", ""),
        "reference": case.data.get("reference", ""),
    }


# -- entry points: new payouts ----------------------------------------------------------------


@dataclass(frozen=True)
class NewPayout:
    payout_id: str
    kind: str
    order_id: str
    amount_fen: int
    payee_name: str
    payee_account: str
    reason: str
    requested_by: str
    shop: str = ""
    platform: str = ""


async def on_requested(tx: Tx, envelope_shop: str, platform: str, data: PayoutRequested) -> Case:
    """A payout raised by the shop's systems: one case and card, waiting for approval."""
    group = tx.svc.route(shop=envelope_shop, platform=platform, kind=CaseKind.PAYOUT.value)
    new = NewPayout(
        payout_id=data.payout_id,
        kind=data.kind,
        order_id=data.order_id,
        amount_fen=data.amount,
        payee_name=data.payee.name,
        payee_account=data.payee.account,
        reason=data.reason,
        requested_by=data.requested_by or "platform",
        shop=envelope_shop,
        platform=platform,
    )
    case, _ = await create(tx, new, group_id=group.id if group else "", channel="api")
    return case


async def start_payout(tx: Tx, new: NewPayout, *, chat_group: str, channel: str) -> Reply:
    """An agent asks for a payout in chat."""
    if not 0 < new.amount_fen <= MAX_AMOUNT_FEN:
        raise UsageError(f"打款金额要大于 0 且不超过 {format_fen(MAX_AMOUNT_FEN)}")
    case, created = await create(tx, new, group_id=_command_group(tx, chat_group), channel=channel)
    able = approvers_for(tx, case)
    where = ""
    if case.group_id and case.group_id != chat_group:
        group = tx.svc.settings.group(case.group_id)
        where = f"，卡片在「{group.name or group.id if group else case.group_id}」"
    info = case.data["payout"]
    text = (
        f"📝 {'已提交' if created else '已经提交过'}打款申请 {case.handle}："
        f"{KIND_TEXT[info['kind']]} {format_fen(case.amount_fen)} → "
        f"{info['payee_name']} {info['payee']}{where}。等待审批：{_names(able)}"
    )
    return Reply(text, mentions=tx.svc.staff.mentions(able))


def _command_group(tx: Tx, chat_group: str) -> str:
    here = tx.svc.settings.group(chat_group)
    if here is not None and (not here.kinds or CaseKind.PAYOUT.value in here.kinds):
        return here.id
    routed = tx.svc.route(shop="", platform="", kind=CaseKind.PAYOUT.value)
    if routed is not None:
        return routed.id
    return here.id if here is not None else tx.svc.admin_group


async def create(tx: Tx, new: NewPayout, *, group_id: str, channel: str) -> tuple[Case, bool]:
    """The payout's case, card and money row; the same payout id again changes nothing."""
    existing = await tx.cases.by_case_id(CaseKind.PAYOUT, new.payout_id)
    if existing is not None:
        return existing, False
    provider = tx.svc.settings.payout.provider
    case = await tx.cases.create(
        kind=CaseKind.PAYOUT,
        case_id=new.payout_id,
        state=S.REQUESTED.value,
        now=tx.now,
        shop=new.shop,
        platform=new.platform,
        order_id=new.order_id,
        amount_fen=new.amount_fen,
        group_id=group_id,
        reason=new.reason[:255],
        data={
            "payout": {
                "kind": new.kind,
                "payee_name": mask_name(new.payee_name),
                "payee": mask_account(new.payee_account),
                "requested_by": new.requested_by,
                "requested_at": tx.now.isoformat(),
            }
        },
        last_actor=new.requested_by,
        last_action="created",
    )
    await _repo(tx).add(
        case_pk=case.id,
        now=tx.now,
        payout_id=new.payout_id,
        kind=new.kind,
        payee_name=new.payee_name,
        payee_account=new.payee_account,
        provider=provider,
        requested_by=new.requested_by,
        requested_at=tx.now,
    )
    await tx.audit(case, new.requested_by, "created", channel=channel, payout_id=new.payout_id)
    await tx.sync_card(case)
    if not group_id:
        await tx.post(
            tx.svc.admin_group,
            f"⚠ 打款 {case.handle}（{case.shop}/{case.platform}）没有匹配的群，请检查 [[groups]] 的路由配置",
            key=f"unrouted:{case.id}",
            case=case,
        )
    return case, True


# -- entry points: people -------------------------------------------------------------------


async def approve(tx: Tx, case: Case, staff: StaffSettings, channel: str) -> Reply:
    """Approval by someone with authority for the amount who did not ask for it."""
    if case.kind == CaseKind.PAYOUT_BATCH:
        raise UsageError(f"{case.handle} 是批量打款，财务用「打款确认 {case.handle}」确认")
    if case.state == S.FAILED:
        raise UsageError(f"{case.handle} 打款失败：财务用「重新打款 {case.handle}」再试")
    ensure(tx, case, T.APPROVE)
    directory = tx.svc.staff
    able = approvers_for(tx, case)
    if two_person(tx) and staff.id == requester_of(case):
        raise PermissionDeniedError(
            f"{staff.display} 是 {case.handle} 的申请人，按双人复核不能自己审批。"
            f"可以审批的是：{_with_limits(tx, able)}",
            mentions=directory.mentions(able),
        )
    if not directory.may_approve(staff, case.amount_fen, "agent"):
        limit = directory.refund_limit_fen(staff)
        mine = "无" if limit is None else format_fen(limit)
        raise PermissionDeniedError(
            f"{format_fen(case.amount_fen)} 超出 {staff.display} 的审批权限（{mine}）。"
            f"可以审批的是：{_with_limits(tx, able)}",
            mentions=directory.mentions(able),
        )
    data = {**case.data, "approval": {"by": staff.id, "at": tx.now.isoformat()}}
    await move(tx, case, T.APPROVE, actor=staff.id, channel=channel, data=data)
    await _repo(tx).update(case.id, now=tx.now, approved_by=staff.id, approved_at=tx.now)
    finance = confirmers_for(tx, case)
    return Reply(
        f"✅ 已审批 {case.handle}（{format_fen(case.amount_fen)}），请财务打款：{_names(finance)}",
        mentions=directory.mentions(finance),
    )


def _check_confirmer(tx: Tx, case: Case, staff: StaffSettings) -> None:
    directory = tx.svc.staff
    directory.require(staff, FINANCE, "确认打款")
    if two_person(tx) and staff.id == approver_of(case):
        able = confirmers_for(tx, case)
        raise PermissionDeniedError(
            f"{staff.display} 审批了 {case.handle}，按双人复核不能再确认打款。可以确认的是：{_names(able)}",
            mentions=directory.mentions(able),
        )


async def confirm(tx: Tx, case: Case, staff: StaffSettings, reference: str, channel: str) -> Reply:
    """Finance confirms: with a reference the money has moved; without, Alipay moves it."""
    if case.kind == CaseKind.PAYOUT_BATCH:
        return await confirm_batch(tx, case, staff, reference, channel)
    reference = reference.strip()
    state = PayoutState(case.state)
    provider = tx.svc.settings.payout.provider
    if state is S.REQUESTED:
        able = approvers_for(tx, case)
        raise ConflictError(
            f"{case.handle} 还没有审批，需要先由 {_names(able)} 审批",
            mentions=tx.svc.staff.mentions(able),
        )
    unknown = bool(case.data.get("transfer", {}).get("unknown"))
    if state is S.PAYING and not (reference and unknown):
        raise ConflictError(f"{case.handle} 正在通过支付宝转账，结果回来后卡片会更新")
    pays_now = bool(reference) or provider != "alipay"
    ensure(tx, case, T.PAID if pays_now else (T.RETRY if state is S.FAILED else T.CONFIRM))
    _check_confirmer(tx, case, staff)
    if not reference and provider != "alipay":
        raise UsageError(f"请输入打款流水号：打款确认 {case.handle} <流水号>")
    if not reference and state is S.FAILED:
        raise UsageError(
            f"{case.handle} 上次转账失败：重新打款 {case.handle}，或线下已打款时 打款确认 {case.handle} <流水号>"
        )
    if reference:
        await pay(tx, case, staff, reference, channel)
        return Reply(
            f"💰 {case.handle} 已登记打款 {format_fen(case.amount_fen)}（流水号 {reference}）"
        )
    await start_transfer(tx, case, staff, channel)
    return Reply(
        f"💸 {case.handle} 已确认，正在通过支付宝转账 {format_fen(case.amount_fen)}"
        f" 到 {case.data['payout']['payee']}"
    )


async def pay(
    tx: Tx,
    case: Case,
    staff: StaffSettings,
    reference: str,
    channel: str,
    *,
    sync_batch: bool = True,
) -> None:
    """Record money that finance moved outside, with its reference (流水号)."""
    if len(reference) > 64:
        raise UsageError("流水号太长（最多 64 个字符）")
    # Recorded against a transfer finance found in the Alipay console, it stays an Alipay one.
    provider = "alipay" if case.state == S.PAYING else "manual"
    data = {
        **case.data,
        "confirm": {"by": staff.id, "at": tx.now.isoformat()},
        "reference": reference,
        "channel": provider,
    }
    await move(tx, case, T.PAID, actor=staff.id, channel=channel, data=data, sync_batch=sync_batch)
    await _repo(tx).update(
        case.id,
        now=tx.now,
        paid_by=staff.id,
        paid_at=tx.now,
        reference=reference,
        provider=provider,
        provider_status="CONFIRMED" if provider == "alipay" else "MANUAL",
    )


async def start_transfer(
    tx: Tx, case: Case, staff: StaffSettings, channel: str, *, sync_batch: bool = True
) -> None:
    """Hand the payout to Alipay: a new out_biz_no per attempt, one outbox item per attempt."""
    transfer = case.data.get("transfer", {})
    attempt = int(transfer.get("attempt", 0)) + 1
    biz_no = out_biz_no(case.case_id, attempt)
    data = {
        **case.data,
        "confirm": {"by": staff.id, "at": tx.now.isoformat()},
        "transfer": {"attempt": attempt, "out_biz_no": biz_no},
        "channel": "alipay",
    }
    data.pop("error", None)
    trigger = T.RETRY if case.state == S.FAILED else T.CONFIRM
    await move(tx, case, trigger, actor=staff.id, channel=channel, data=data, sync_batch=sync_batch)
    await _repo(tx).update(
        case.id,
        now=tx.now,
        paid_by=staff.id,
        provider="alipay",
        out_biz_no=biz_no,
        sends=0,
        provider_status="",
    )
    await tx.side_effect(case, "payout.transfer", {"out_biz_no": biz_no}, attempt=attempt)


async def retry(tx: Tx, case: Case, staff: StaffSettings, channel: str) -> Reply:
    """After a final Alipay failure: transfer again under a new out_biz_no."""
    if tx.svc.settings.payout.provider != "alipay":
        raise UsageError(f"线下打款请登记流水号：打款确认 {case.handle} <流水号>")
    ensure(tx, case, T.RETRY)
    _check_confirmer(tx, case, staff)
    await start_transfer(tx, case, staff, channel)
    return Reply(f"🔁 {case.handle} 正在重新转账 {format_fen(case.amount_fen)}")


async def recheck(tx: Tx, case: Case, staff: StaffSettings, channel: str) -> Reply:
    """Ask Alipay again about a transfer whose outcome the dispatcher gave up on."""
    tx.svc.staff.require(staff, FINANCE, "核对转账")
    transfer = dict(case.data.get("transfer", {}))
    if case.state != S.PAYING or not transfer.get("unknown"):
        status = STATE_TEXT.get(case.state, case.state)
        raise ConflictError(f"{case.handle} 现在是「{status}」，没有需要核对的转账")
    checks = int(transfer.get("checks", 0)) + 1
    transfer.update(unknown=False, checks=checks, detail="")
    await tx.cases.touch(
        case,
        now=tx.now,
        data={**case.data, "transfer": transfer},
        last_actor=staff.id,
        last_action="recheck",
    )
    await tx.audit(case, staff.id, "recheck", from_state=case.state, channel=channel)
    await tx.sync_card(case)
    await tx.outbox.add(
        f"payout.transfer:payout:{case.case_id}:{transfer['attempt']}:check{checks}",
        "payout.transfer",
        now=tx.now,
        case_pk=case.id,
        group_id=case.group_id,
        payload={"out_biz_no": transfer["out_biz_no"]},
    )
    return Reply(f"🔎 正在向支付宝核对 {case.handle} 的转账")


async def reject(tx: Tx, case: Case, staff: StaffSettings, reason: str, channel: str) -> Reply:
    """Stop a payout, with the reason: at approval (approvers, or the requester withdrawing) or
    at confirmation (finance, or an approver)."""
    if case.kind == CaseKind.PAYOUT_BATCH:
        return await cancel_batch(tx, case, staff, channel, reason=reason)
    reason = reason.strip()
    if not reason:
        raise UsageError(f"请写明拒绝原因：拒绝 {case.handle} <原因>")
    ensure(tx, case, T.REJECT)
    state = PayoutState(case.state)
    directory = tx.svc.staff
    may_approve = directory.may_approve(staff, case.amount_fen, "agent")
    if state is S.REQUESTED:
        allowed = may_approve or staff.id == requester_of(case)
        able = approvers_for(tx, case)
    else:
        allowed = may_approve or bool(FINANCE & set(staff.roles))
        able = confirmers_for(tx)
    if not allowed:
        raise PermissionDeniedError(
            f"{staff.display} 不能拒绝 {case.handle}（{format_fen(case.amount_fen)}）。可以拒绝的是：{_names(able)}",
            mentions=directory.mentions(able),
        )
    data = {
        **case.data,
        "reject": {"by": staff.id, "at": tx.now.isoformat(), "reason": reason[:500]},
    }
    await move(tx, case, T.REJECT, actor=staff.id, channel=channel, data=data)
    await _repo(tx).update(case.id, now=tx.now, rejected_by=staff.id, rejected_at=tx.now)
    return Reply(f"已拒绝 {case.handle}：{one_line(reason)}")


# -- entry points: the provider and the shop ----------------------------------------------------

TransferOutcome = Literal["success", "failed", "processing", "unknown"]


async def on_transfer_result(
    tx: Tx,
    case: Case,
    *,
    out_biz_no: str,
    status: TransferOutcome,
    reference: str = "",
    provider_status: str = "",
    detail: str = "",
) -> None:
    """What Alipay said about the transfer `out_biz_no` of `case` (a late answer changes nothing)."""
    transfer = dict(case.data.get("transfer", {}))
    if case.state != S.PAYING or transfer.get("out_biz_no") != out_biz_no:
        return
    transfer.update(status=provider_status or status.upper(), detail=detail[:300])
    repo = _repo(tx)
    if status == "success":
        data = {**case.data, "transfer": transfer, "reference": reference}
        await move(tx, case, T.PAID, actor="alipay", data=data)
        await repo.update(
            case.id,
            now=tx.now,
            paid_at=tx.now,
            reference=reference,
            provider_status=provider_status or "SUCCESS",
        )
    elif status == "failed":
        data = {**case.data, "transfer": transfer, "error": detail or provider_status}
        await move(tx, case, T.FAIL, actor="alipay", data=data)
        await repo.update(case.id, now=tx.now, provider_status=provider_status or "FAIL")
    else:
        await repo.update(case.id, now=tx.now, provider_status=provider_status or status.upper())
        if transfer != case.data.get("transfer"):
            await tx.cases.touch(case, now=tx.now, data={**case.data, "transfer": transfer})
            await tx.sync_card(case)


async def on_transfer_gave_up(tx: Tx, case: Case, *, out_biz_no: str, error: str) -> None:
    """The dispatcher stopped trying. Never sent: failed. Maybe sent: finance must look."""
    transfer = dict(case.data.get("transfer", {}))
    if case.state != S.PAYING or transfer.get("out_biz_no") != out_biz_no:
        return
    row = await _repo(tx).get(case.id)
    if row is not None and row.sends == 0:
        data = {**case.data, "error": f"转账未发出：{error[:200]}"}
        await move(tx, case, T.FAIL, actor="system", data=data)
        return
    transfer.update(unknown=True, detail=error[:300])
    await tx.cases.touch(
        case,
        now=tx.now,
        data={**case.data, "transfer": transfer},
        last_actor="system",
        last_action="fail",
    )
    await tx.sync_card(case)
    finance = confirmers_for(tx)
    await tx.post(
        case.group_id,
        f"⚠ {case.handle}（{format_fen(case.amount_fen)}）的支付宝转账结果未知，请在支付宝后台核对："
        f"核对 {case.handle}，或已到账时 打款确认 {case.handle} <流水号>",
        key=f"transfer-unknown:{case.id}:{transfer.get('attempt', 1)}:{transfer.get('checks', 0)}",
        mentions=tx.svc.staff.mentions(finance),
        case=case,
    )


async def on_commerce_result(
    tx: Tx, case: Case, action: str, *, ok: bool, status: str = "", error: str = ""
) -> None:
    """The shop system told the buyer about the payment (or gave up trying, or none is connected)."""
    if action != "commerce.notify_payout":
        return
    if ok and status == MANUAL:
        data = {**case.data, "buyer_notify_manual": tx.now.isoformat()}
    else:
        key = "buyer_notified" if ok else "buyer_notify_error"
        data = {**case.data, key: tx.now.isoformat() if ok else error[:300]}
    await tx.cases.touch(case, now=tx.now, data=data)
    await tx.sync_card(case)


# -- batches --------------------------------------------------------------------------------


async def make_batch(
    tx: Tx,
    staff: StaffSettings,
    refs: list[str],
    *,
    chat_group: str,
    input_id: str,
    channel: str,
    groups: Collection[str] | None,
) -> Reply:
    """Gather approved payouts (the named ones, or all waiting in `groups`, None for every
    group) on one batch card."""
    tx.svc.staff.require(staff, FINANCE, "批量打款")
    seed = (input_id or uuid.uuid4().hex).encode()
    batch_id = "PB" + hashlib.sha256(seed).hexdigest()[:14].upper()
    existing = await tx.cases.by_case_id(CaseKind.PAYOUT_BATCH, batch_id)
    if existing is not None:
        return Reply(f"📦 批次 {existing.handle} 已经生成")
    limit = tx.svc.settings.payout.batch_max
    mine: list[Case] = []
    if refs:
        members, problems = [], []
        for ref in dict.fromkeys(refs):
            case = await reference.find(tx, ref)
            problem = _batch_problem(tx, case, staff, ref)
            if problem:
                problems.append(problem)
            elif case is not None:
                members.append(case)
        if problems:
            raise ConflictError("不能放入批次：" + "；".join(problems))
        if len(members) > limit:
            raise UsageError(f"一个批次最多 {limit} 笔")
    else:
        waiting = await _repo(tx).unbatched(S.APPROVED.value, groups=groups, limit=limit * 2)
        mine = [c for c in waiting if two_person(tx) and approver_of(c) == staff.id]
        members = [c for c in waiting if c not in mine][:limit]
    if not members:
        extra = f"（{len(mine)} 笔由你审批，需要其他财务确认）" if mine else ""
        return Reply(f"🎉 没有待确认的已审批打款{extra}")
    group_id = chat_group if tx.svc.settings.group(chat_group) else members[0].group_id
    total = sum(c.amount_fen for c in members)
    batch = await tx.cases.create(
        kind=CaseKind.PAYOUT_BATCH,
        case_id=batch_id,
        state=B.OPEN.value,
        now=tx.now,
        amount_fen=total,
        group_id=group_id,
        data={"created_by": staff.id, "items": [_item(c) for c in members]},
        last_actor=staff.id,
        last_action="batch",
    )
    await tx.audit(batch, staff.id, "batch", channel=channel, count=len(members))
    for member in members:
        await _link(tx, member, batch, staff.id, channel)
    await tx.sync_card(batch)
    extra = f"；{len(mine)} 笔由你审批的未放入（双人复核）" if mine else ""
    return Reply(
        f"📦 已生成批量打款 {batch.handle}：{len(members)} 笔，合计 {format_fen(total)}{extra}。"
        f"点卡片上的「全部确认打款」，或输入：打款确认 {batch.handle}"
    )


def _batch_problem(tx: Tx, case: Case | None, staff: StaffSettings, ref: str) -> str:
    if case is None or case.kind != CaseKind.PAYOUT:
        return f"{ref} 不是打款单"
    if case.state != S.APPROVED:
        return f"{case.handle} 是「{STATE_TEXT.get(case.state, case.state)}」"
    if batch := case.data.get("batch"):
        return f"{case.handle} 已在批次 {batch['handle']}"
    if two_person(tx) and approver_of(case) == staff.id:
        return f"{case.handle} 由你审批（双人复核）"
    return ""


def _item(case: Case) -> dict[str, Any]:
    info = case.data.get("payout", {})
    return {
        "pk": case.id,
        "handle": case.handle,
        "amount_fen": case.amount_fen,
        "payee": " ".join(p for p in (info.get("payee_name"), info.get("payee")) if p),
        "state": case.state,
        "note": "",
    }


async def _link(tx: Tx, member: Case, batch: Case, actor: str, channel: str) -> None:
    data = {**member.data, "batch": {"pk": batch.id, "handle": batch.handle}}
    await tx.cases.touch(member, now=tx.now, data=data)
    await _repo(tx).update(member.id, now=tx.now, batch_pk=batch.id)
    await tx.audit(member, actor, "batch", from_state=member.state, channel=channel)
    await tx.sync_card(member)


async def _unlink(tx: Tx, member: Case, actor: str, channel: str) -> None:
    data = {k: v for k, v in member.data.items() if k != "batch"}
    await tx.cases.touch(member, now=tx.now, data=data)
    await _repo(tx).update(member.id, now=tx.now, batch_pk=None)
    await tx.audit(member, actor, "unbatch", from_state=member.state, channel=channel)
    await tx.sync_card(member)


async def confirm_batch(
    tx: Tx, batch: Case, staff: StaffSettings, reference: str, channel: str
) -> Reply:
    """One tap for N payouts; each is confirmed on its own terms and reported on its own line."""
    tx.svc.staff.require(staff, FINANCE, "确认打款")
    try:
        advance_batch(batch.state, BatchTrigger.CONFIRM)
    except IllegalTransitionError:
        status = BATCH_STATE_TEXT.get(batch.state, batch.state)
        raise ConflictError(f"{batch.handle} 现在是「{status}」（{footer(batch, tx)}）") from None
    reference = reference.strip()
    if not reference and tx.svc.settings.payout.provider != "alipay":
        raise UsageError(f"请输入这批打款的流水号：打款确认 {batch.handle} <流水号>")
    items, confirmed, skipped = [], [], []
    for item in batch.data.get("items", []):
        member = await tx.cases.get(int(item["pk"]))
        item = {**item, "skipped": ""}
        if member is None:
            item["skipped"] = "找不到这笔打款"
        elif member.state != S.APPROVED:
            item["skipped"] = STATE_TEXT.get(member.state, member.state)
        elif two_person(tx) and approver_of(member) == staff.id:
            item["skipped"] = "由你审批，需其他财务确认（双人复核）"
        else:
            if reference:
                await pay(tx, member, staff, reference, channel, sync_batch=False)
            else:
                await start_transfer(tx, member, staff, channel, sync_batch=False)
            item["state"] = member.state
            confirmed.append(member)
        if item["skipped"]:
            skipped.append(f"{item['handle']}（{item['skipped']}）")
            if member is not None and member.data.get("batch", {}).get("pk") == batch.id:
                await _unlink(tx, member, staff.id, channel)
        items.append(item)
    if not confirmed:
        raise ConflictError(f"{batch.handle} 里没有可以由你确认的打款：" + "；".join(skipped))
    data = {
        **batch.data,
        "items": items,
        "confirm": {"by": staff.id, "at": tx.now.isoformat(), "ref": reference},
    }
    await _move_batch(tx, batch, BatchTrigger.CONFIRM, actor=staff.id, channel=channel, data=data)
    await _settle_if_done(tx, batch)
    total = sum(c.amount_fen for c in confirmed)
    done = "已登记打款" if reference else "已确认，正在转账"
    text = f"✅ {batch.handle} {done} {len(confirmed)} 笔，合计 {format_fen(total)}"
    if skipped:
        text += f"；跳过 {len(skipped)} 笔：" + "、".join(skipped)
    return Reply(text)


async def cancel_batch(
    tx: Tx, batch: Case, staff: StaffSettings, channel: str, *, reason: str = ""
) -> Reply:
    """Dissolve an unconfirmed batch; its payouts wait for confirmation one by one again."""
    tx.svc.staff.require(staff, FINANCE, "取消批次")
    try:
        advance_batch(batch.state, BatchTrigger.CANCEL)
    except IllegalTransitionError:
        status = BATCH_STATE_TEXT.get(batch.state, batch.state)
        raise ConflictError(f"{batch.handle} 现在是「{status}」，不能取消") from None
    for item in batch.data.get("items", []):
        member = await tx.cases.get(int(item["pk"]))
        if member is not None and member.data.get("batch", {}).get("pk") == batch.id:
            await _unlink(tx, member, staff.id, channel)
    data = {**batch.data, "cancel_reason": reason.strip()[:500]}
    await _move_batch(tx, batch, BatchTrigger.CANCEL, actor=staff.id, channel=channel, data=data)
    return Reply(f"已取消批次 {batch.handle}，其中的打款可以逐笔确认")


async def _move_batch(
    tx: Tx,
    batch: Case,
    trigger: BatchTrigger,
    *,
    actor: str,
    channel: str = "",
    data: dict[str, Any] | None = None,
) -> None:
    before = batch.state
    after = advance_batch(before, trigger)
    values: dict[str, Any] = {"last_actor": actor, "last_action": trigger.value}
    if data is not None:
        values["data"] = data
    if after in (B.SETTLED, B.CANCELLED):
        values["closed_at"] = tx.now
    await tx.cases.transition(batch, after.value, now=tx.now, **values)
    await tx.audit(batch, actor, trigger.value, from_state=before, channel=channel)
    await tx.sync_card(batch)


async def sync_batch_item(tx: Tx, member: Case) -> None:
    """Reflect a member's new state on its batch card, and settle the batch when all are done."""
    link = member.data.get("batch")
    if not link:
        return
    # Results for several members of one batch land at once: take the batch row's lock so
    # each sees the others' lines (SQLite has one writer anyway).
    batch = await _repo(tx).lock_case(int(link["pk"]))
    if batch is None or batch.state == B.CANCELLED:
        return
    items = [
        {**i, "state": member.state, "note": _member_note(member)}
        if int(i["pk"]) == member.id
        else i
        for i in batch.data.get("items", [])
    ]
    await tx.cases.touch(batch, now=tx.now, data={**batch.data, "items": items})
    await tx.sync_card(batch)
    await _settle_if_done(tx, batch)


def _member_note(member: Case) -> str:
    if member.state == S.FAILED:
        return str(member.data.get("error", ""))[:80]
    if member.state == S.REJECTED:
        return str(member.data.get("reject", {}).get("reason", ""))[:80]
    return ""


async def _settle_if_done(tx: Tx, batch: Case) -> None:
    if batch.state != B.CONFIRMED:
        return
    live = [i for i in batch.data.get("items", []) if not i.get("skipped")]
    if not all(i["state"] in SETTLED_ITEMS for i in live):
        return
    await _move_batch(tx, batch, BatchTrigger.SETTLE, actor="system")
    failed = [i for i in live if i["state"] == S.FAILED]
    text = f"📦 {batch.handle} 完成：{batch_summary(batch.data['items'])}"
    if failed:
        text += "。失败：" + "、".join(f"{i['handle']}（{i['note'] or '—'}）" for i in failed)
    finance = tx.svc.staff.with_role(FINANCE) if failed else []
    await tx.post(
        batch.group_id,
        text,
        key=f"batch-settled:{batch.id}",
        mentions=tx.svc.staff.mentions(finance),
        case=batch,
    )


# -- lookups ------------------------------------------------------------------------------


async def load(tx: Tx, ref: str) -> Case:
    case = await reference.find(tx, ref)
    if case is None or case.kind not in (CaseKind.PAYOUT, CaseKind.PAYOUT_BATCH):
        raise NotFoundError(f"找不到打款单 {ref}：请用卡片上的编号（如 P7、B3）或完整的打款单号")
    return case


async def pending(tx: Tx, staff: StaffSettings) -> list[Case]:
    """Payouts waiting for this person: to approve, or (finance) to confirm."""
    states = [S.REQUESTED.value, S.APPROVED.value, S.FAILED.value]
    cases = await _repo(tx).in_states(states, limit=500)
    mine = []
    for case in cases:
        if case.state == S.REQUESTED:
            if staff.id in {s.id for s in approvers_for(tx, case)}:
                mine.append(case)
        elif staff.id in {s.id for s in confirmers_for(tx, case)}:
            mine.append(case)
    return mine


@dataclass(frozen=True)
class PayoutTotals:
    """For the daily digest: payouts requested / approved / paid in a period, and their sums."""

    requested: Tally
    approved: Tally
    paid: Tally


async def totals(
    tx: Tx, since: datetime, until: datetime, *, group_id: str | None = None
) -> PayoutTotals:
    """Counts and sums (fen) of payouts requested, approved and paid in [since, until)."""
    repo = _repo(tx)
    return PayoutTotals(
        requested=await repo.tally("requested", since, until, group_id=group_id),
        approved=await repo.tally("approved", since, until, group_id=group_id),
        paid=await repo.tally("paid", since, until, group_id=group_id),
    )
