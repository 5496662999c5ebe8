"""Commands on cases: show, todo, approve, reject, claim, note."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from commands.router import Args, CommandContext, Router
from handlers import masking, material
from handlers.authority import DECIDERS
from handlers.cards import build_card
from handlers.case_data import CaseData
from handlers.context import Tx
from handlers.errors import UsageError
from handlers.intercept import machine as intercept_machine
from handlers.logistics.machine import ANOMALY_ACTION_TEXT
from handlers.message import Reply, one_line
from handlers.money import format_fen
from handlers.payout import flow as payout
from handlers.payout.machine import ACTION_TEXT as PAYOUT_ACTION_TEXT
from handlers.payout.machine import PAYOUT_KINDS
from handlers.refund import machine as refund_machine
from handlers.refund import people as refund
from handlers.refund.data import approval_role
from storage.enums import CaseKind
from storage.models import Case

router = Router()

# `ref`: the router's scope filter checks the case it names (commands.scope).
CASE = Field(description="单号", min_length=1, max_length=128, json_schema_extra={"ref": "case"})
ANYONE = ("agent", "supervisor", "finance", "admin")


class CaseArgs(Args):
    case: str = CASE


class ReasonArgs(Args):
    case: str = CASE
    reason: str = Field(description="原因", min_length=1, json_schema_extra={"rest": True})


class NoteArgs(Args):
    case: str = CASE
    text: str = Field(description="内容", min_length=1, json_schema_extra={"rest": True})


class TodoArgs(Args):
    scope: Literal["mine", "all", "我的", "全部"] = Field(default="mine", description="mine|all")


@router.command("show", "查", "查看", args=CaseArgs, roles=ANYONE, what="查看单据")
async def show(ctx: CommandContext, args: CaseArgs) -> Reply:
    """看一个单据的详情和处理记录"""
    async with ctx.svc.tx() as tx:
        case = await refund.load_for_change(tx, args.case)
        card = build_card(case, tx.view)
        history = await tx.audit_log.history(case.id)
        lines = [f"【{card.title}】{card.status}"]
        lines += [f"{f.label}：{f.value}" for f in card.fields]
        lines += list(card.lines)
        notes = [
            one_line(f"📝 {tx.svc.staff.name(n.by)}：{n.text}")
            for n in CaseData.of(case).notes[-3:]
        ]
        lines += [n for n in notes if n not in card.lines]
        lines.append("记录：")
        texts = ACTION_TEXTS.get(case.kind, refund_machine.ACTION_TEXT)
        for entry in history[-8:]:
            who = tx.svc.staff.name(entry.actor)
            what = texts.get(
                entry.action, refund_machine.ACTION_TEXT.get(entry.action, entry.action)
            )
            lines.append(f"  {tx.local(entry.at):%m-%d %H:%M} {who} {what}")
        return Reply("\n".join(lines), card=card, allow=tuple(masking.identifiers(case)))


@router.command("todo", "待办", args=TodoArgs, roles=ANYONE, what="查看待办")
async def todo(ctx: CommandContext, args: TodoArgs) -> Reply:
    """我要处理的单据，最紧急的在前；主管用 all 看全部（按处理人分组）"""
    staff = ctx.me
    everyone = args.scope in ("all", "全部")
    if everyone:
        staff = ctx.require({"supervisor", "admin"}, "查看全部待办")
    async with ctx.svc.tx() as tx:
        states = [s.value for s in refund_machine.NEEDS_PERSON | {refund_machine.S.MANUAL}]
        cases = await tx.cases.open_cases(states=states, groups=ctx.scope.listed, limit=200)
        if not everyone:
            cases = [c for c in cases if _is_mine(tx, c, staff.id)]
        if not cases:
            return Reply("🎉 没有待办" if not everyone else "🎉 全部处理完了")
        if not everyone:
            shown = cases[:30]
            lines = [f"{staff.display} 的待办（{len(cases)}）：", *(_line(tx, c) for c in shown)]
            return Reply("\n".join(lines), allow=_numbers(shown))
        groups: dict[str, list[Case]] = {}
        for c in cases:
            groups.setdefault(_approver(tx, c), []).append(c)
        lines = [f"全部待办（{len(cases)}）："]
        shown = []
        for who, items in sorted(groups.items()):
            lines.append(f"【{who}】{len(items)} 件")
            lines += [f"  {_line(tx, c)}" for c in items[:15]]
            shown += items[:15]
        return Reply("\n".join(lines), allow=_numbers(shown))


@router.command("approve", "通过", "同意", args=CaseArgs, roles=DECIDERS, what="通过退款")
async def approve(ctx: CommandContext, args: CaseArgs) -> Reply:
    """同意退款；超出自己的权限会升级给主管"""
    staff = ctx.me
    async with ctx.svc.tx() as tx:
        case = await refund.load_for_change(tx, args.case)
        material.ensure_fresh(case, ctx.input.drawn)
        if case.kind in PAYOUT_KINDS:
            return await payout.approve(tx, case, staff, ctx.channel)
        _refund_only(case)
        return await refund.approve(tx, case, staff, ctx.channel)


class CodeArgs(Args):
    case: str = CASE
    code: str = Field(description="短信验证码", min_length=4, max_length=8, pattern=r"^[0-9]+$")


@router.command("verify", "验证码", args=CodeArgs, roles=DECIDERS, what="提交短信验证码")
async def verify(ctx: CommandContext, args: CodeArgs) -> Reply:
    """平台要求短信验证码时，把收到的验证码交给退款"""
    async with ctx.svc.tx() as tx:
        case = await refund.load_for_change(tx, args.case)
        _refund_only(case)
        return await refund.submit_code(tx, case, ctx.me, args.code, ctx.channel)


@router.command("retry", "重试", args=CaseArgs, roles=DECIDERS, what="重新提交退款")
async def retry(ctx: CommandContext, args: CaseArgs) -> Reply:
    """重新提交失败的退款"""
    return await approve(ctx, args)


@router.command("reject", "拒绝", "驳回", args=ReasonArgs, roles=ANYONE, what="拒绝退款")
async def reject(ctx: CommandContext, args: ReasonArgs) -> Reply:
    """拒绝退款或打款，写明原因"""
    async with ctx.svc.tx() as tx:
        case = await refund.load_for_change(tx, args.case)
        if case.kind in PAYOUT_KINDS:
            return await payout.reject(tx, case, ctx.me, args.reason, ctx.channel)
        staff = ctx.require(DECIDERS, "拒绝退款")
        _refund_only(case)
        return await refund.reject(tx, case, staff, args.reason, ctx.channel)


@router.command(
    "refunded", "已退款", "已手动退款", args=CaseArgs, roles=DECIDERS, what="登记手动退款"
)
async def refunded(ctx: CommandContext, args: CaseArgs) -> Reply:
    """登记已在店铺后台手动退款（未接店铺系统时，卡片会提示）"""
    staff = ctx.me
    async with ctx.svc.tx() as tx:
        case = await refund.load_for_change(tx, args.case)
        if case.kind != CaseKind.REFUND:
            raise UsageError(f"{case.handle} 不是退款单：已退款 <退款编号，如 R12>")
        return await refund.record_refunded(tx, case, staff, ctx.channel)


@router.command("claim", "认领", args=CaseArgs, roles=DECIDERS, what="认领单据")
async def claim(ctx: CommandContext, args: CaseArgs) -> Reply:
    """由我来处理这个单据"""
    staff = ctx.me
    async with ctx.svc.tx() as tx:
        case = await refund.load_for_change(tx, args.case)
        if case.kind in PAYOUT_KINDS:
            raise UsageError(
                f"打款单不用认领：审批用「通过 {case.handle}」，财务用「打款确认 {case.handle}」"
            )
        return await refund.claim(tx, case, staff, ctx.channel)


@router.command("note", "备注", args=NoteArgs, roles=ANYONE, what="写备注")
async def note(ctx: CommandContext, args: NoteArgs) -> Reply:
    """给单据加一条备注"""
    staff = ctx.me
    async with ctx.svc.tx() as tx:
        case = await refund.load_for_change(tx, args.case)
        return await refund.note(tx, case, staff, args.text, ctx.channel)


ACTION_TEXTS = {
    CaseKind.PAYOUT.value: PAYOUT_ACTION_TEXT,
    CaseKind.PAYOUT_BATCH.value: PAYOUT_ACTION_TEXT,
    CaseKind.INTERCEPT.value: intercept_machine.ACTION_TEXT,
    CaseKind.ANOMALY.value: ANOMALY_ACTION_TEXT,
}
OTHER_KINDS = {
    CaseKind.INTERCEPT.value: "拦截单：快递答复后用「拦截成功 {h}」或「拦截失败 {h} 原因」记录",
    CaseKind.ANOMALY.value: "物流异常：用卡片按钮，或「拦截 {h}」「补发 {h}」「联系快递 {h}」「忽略 {h} 原因」",
}


def _refund_only(case: Case) -> None:
    if case.kind in OTHER_KINDS:
        raise UsageError(f"{case.handle} 是" + OTHER_KINDS[case.kind].format(h=case.handle))


def _is_mine(tx: Tx, case: Case, staff_id: str) -> bool:
    if case.assignee:
        return case.assignee == staff_id
    staff = tx.svc.staff.get(staff_id)
    role = approval_role(case)
    return staff is not None and tx.svc.staff.may_approve(staff, case.amount_fen, role)


def _approver(tx: Tx, case: Case) -> str:
    if case.assignee:
        return tx.svc.staff.name(case.assignee)
    return "主管" if case.state == refund_machine.S.ESCALATED else "未认领"


def _numbers(cases: list[Case]) -> tuple[str, ...]:
    return tuple(n for c in cases for n in masking.identifiers(c))


def _line(tx: Tx, case: Case) -> str:
    state = refund_machine.STATE_TEXT.get(refund_machine.RefundState(case.state), case.state)
    due = f" · 时限 {tx.local(case.deadline_at):%m-%d %H:%M}" if case.deadline_at else ""
    what = one_line(case.reason) or case.order_id
    return f"{case.handle} {format_fen(case.amount_fen)} {state}{due} · {what}"
