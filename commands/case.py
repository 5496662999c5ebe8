"""Commands on cases: show and find, the queue, approve and reject (several at once, with a
note), undo, hand over, claim, note."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from pydantic import Field

from commands.router import Args, CommandContext, Router
from handlers import decision, lookup, masking, material, reference
from handlers import queue as work
from handlers.authority import DECIDERS, SUPERVISORS
from handlers.cards import build_card
from handlers.case_data import CaseData
from handlers.config import StaffSettings
from handlers.context import Tx
from handlers.errors import NotFoundError, UsageError, UserError
from handlers.handover import hand_over
from handlers.intercept import machine as intercept_machine
from handlers.logistics.machine import ANOMALY_ACTION_TEXT
from handlers.message import Mention, Reply, one_line
from handlers.money import format_fen
from handlers.payout import flow as payout
from handlers.payout.machine import ACTION_TEXT as PAYOUT_ACTION_TEXT
from handlers.payout.machine import PAYOUT_KINDS
from handlers.refund import machine as refund_machine
from handlers.refund import people as refund
from storage.enums import CaseKind
from storage.models import Case
from storage.repositories import StaleCaseError

log = logging.getLogger(__name__)
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


# Handles after the first (通过 R5 R11 …); what follows them is the note or the reason.
MORE_HANDLES = re.compile(r"(?:[#＃]?[RXPABrxpab][0-9]{1,9}(?:\s+|$))+")
MAX_CASES = 20
STALE_RETRIES = 3


class DecideArgs(Args):
    case: str = CASE
    more: str = Field(
        default="", description="更多单号 备注", max_length=1000, json_schema_extra={"rest": True}
    )


class UndoArgs(Args):
    case: str = Field(
        default="",
        description="单号…",
        max_length=1000,
        json_schema_extra={"ref": "case", "rest": True},
    )


class HandoverArgs(Args):
    case: str = CASE
    person: str = Field(description="接手的人", min_length=1, max_length=64)


class FindArgs(Args):
    case: str = Field(
        description="单号|订单号|运单号|昵称",
        min_length=1,
        max_length=128,
        json_schema_extra={"ref": "case", "rest": True},
    )


class TodoArgs(Args):
    filters: str = Field(
        default="",
        description="筛选",
        max_length=200,
        json_schema_extra={"rest": True},
    )


LIST_MAX = 20


@router.command("show", "查", "查看", args=FindArgs, roles=ANYONE, what="查看单据")
async def show(ctx: CommandContext, args: FindArgs) -> Reply:
    """看单据详情和记录；也可用订单号、运单号、买家昵称查"""
    async with ctx.svc.tx() as tx:
        case = await reference.find(tx, args.case)
        if case is None:
            found = await lookup.find(tx, args.case, groups=ctx.scope.listed, limit=LIST_MAX + 1)
            if len(found) > 1:
                return _matches(tx, args.case, found)
            if not found:
                raise NotFoundError(
                    f"找不到 {args.case[:40]}：可以用卡片编号（R12）、订单号、运单号、买家昵称或退款单号查"
                )
            case = found[0]
        return await _detail(tx, ctx.allow(case))


async def _detail(tx: Tx, case: Case) -> Reply:
    """The case as its card shows it, its latest notes and its history."""
    card = build_card(case, tx.view)
    history = await tx.audit_log.history(case.id)
    lines = [f"【{card.title}】{card.status}"]
    lines += [f"{f.label}：{f.value}" for f in card.fields]
    lines += list(card.lines)
    notes = [
        one_line(f"📝 {tx.svc.staff.name(n.by)}：{n.text}") for n in CaseData.of(case).notes[-3:]
    ]
    lines += [n for n in notes if n not in card.lines]
    lines.append("记录：")
    texts = ACTION_TEXTS.get(case.kind, refund_machine.ACTION_TEXT)
    for entry in history[-8:]:
        who = tx.svc.staff.name(entry.actor)
        what = texts.get(entry.action, refund_machine.ACTION_TEXT.get(entry.action, entry.action))
        lines.append(f"  {tx.local(entry.at):%m-%d %H:%M} {who} {what}")
    return Reply("\n".join(lines), card=card, allow=tuple(masking.identifiers(case)))


def _matches(tx: Tx, asked: str, found: list[Case]) -> Reply:
    """Several cases for one order number, tracking number or nick: one line each."""
    shown = found[:LIST_MAX]
    lines = [
        f"「{asked[:40]}」找到 {len(found) if len(found) <= LIST_MAX else f'{LIST_MAX}+'} 件："
    ]
    for case in shown:
        kind = reference.KIND_TEXT.get(case.kind, case.kind)
        amount = f" {format_fen(case.amount_fen)}" if case.amount_fen else ""
        order = f" · 订单 {case.order_id}" if case.order_id else ""
        status = build_card(case, tx.view).status
        lines.append(
            f"{case.handle} {kind}{amount} {status}{order} · {tx.local(case.created_at):%m-%d}"
        )
    if len(found) > LIST_MAX:
        lines.append(f"只列出最近 {LIST_MAX} 件，请用更完整的单号查")
    lines.append("看详情：查 <编号>，如 查 " + shown[0].handle)
    return Reply("\n".join(lines), allow=_numbers(shown))


@router.command("todo", "待办", args=TodoArgs, roles=ANYONE, what="查看待办")
async def todo(ctx: CommandContext, args: TodoArgs) -> Reply:
    """等我处理的各类单据，最紧急的在前（待办 打款 / 超时 / agent2 / all）

    Kinds: 退款 异常 打款 拦截 买家; 超时 keeps the overdue; a person's id shows their queue
    (supervisors), all everyone's by whose it is; any of them combine."""
    me = ctx.me
    everyone, person, flt = _todo_filters(ctx, args.filters)
    if everyone:
        ctx.require(SUPERVISORS, "查看全部待办")
    elif person.id != me.id:
        ctx.require(SUPERVISORS, "查看别人的待办")
    async with ctx.svc.tx() as tx:
        queue = await work.waiting(tx, groups=ctx.scope.listed)
        items = [i for i in queue.items if flt.admits(i, tx.now)]
        if not everyone:
            items = [i for i in items if work.is_for(tx, i, person)]
        described = f" · {flt.describe()}" if flt.describe() else ""
        if not items:
            which = f"（{flt.describe()}）" if flt.describe() else ""
            return Reply(("🎉 全部处理完了" if everyone else "🎉 没有待办") + which)
        title = "全部待办" if everyone else f"{person.display} 的待办"
        count = f"{len(items)}" if queue.complete else f"至少 {len(items)}"
        lines = [f"{title}（{count}）{described}："]
        if len(items) > TODO_FULL:
            lines.append(_tally(tx, items))
        if everyone:
            by_owner: dict[str, list[work.Item]] = {}
            for item in items:
                by_owner.setdefault(work.owner(tx, item), []).append(item)
            ordered = [(who, group) for who, group in sorted(by_owner.items())]
        else:
            ordered = [("", items)]
        shown: list[work.Item] = []
        for who, group in ordered:
            if who:
                lines.append(f"【{who}】{len(group)} 件")
            for item in group:
                if len(shown) >= TODO_MAX:
                    break
                text = work.line(tx, item) if len(shown) < TODO_FULL else work.compact(tx, item)
                lines.append(f"  {text}" if who else text)
                shown.append(item)
        if len(items) > len(shown):
            lines.append(f"…还有 {len(items) - len(shown)} 件未列出")
        if len(items) > TODO_FULL:
            lines.append(
                "筛选：待办 打款 · 待办 超时 · 待办 agent2（类型：退款 异常 打款 拦截 买家，可组合）"
            )
        return Reply("\n".join(lines), allow=_numbers(work.cases_of(shown)))


TODO_FULL = 10
TODO_MAX = 50


def _todo_filters(ctx: CommandContext, text: str) -> tuple[bool, StaffSettings, work.Filter]:
    """(everyone, whose, the filter) from `all`, a person, kind words and 超时, in any order."""
    everyone, person = False, ctx.me
    kinds: set[work.Kind] = set()
    overdue = False
    named: StaffSettings | None = None
    for word in text.replace("，", " ").replace(",", " ").split():
        low = word.lower()
        if low in ("mine", "我的", "我"):
            continue
        if low in ("all", "全部", "所有"):
            everyone = True
        elif low in work.KIND_WORDS:
            kinds.add(work.KIND_WORDS[low])
        elif low in work.OVERDUE_WORDS:
            overdue = True
        elif (staff := _staff_named(ctx, word)) is not None:
            if named is not None and named.id != staff.id:
                raise UsageError("一次只能看一个人的待办")
            named = staff
        else:
            raise UsageError(
                f"不认识「{word[:20]}」：待办 [all|人] [退款|异常|打款|拦截|买家] [超时]，可组合，如 待办 打款 超时"
            )
    if everyone and named is not None:
        raise UsageError("all 和人只能选一个：待办 all，或 待办 agent2")
    return everyone, named or person, work.Filter(frozenset(kinds), overdue)


def _staff_named(ctx: CommandContext, word: str) -> StaffSettings | None:
    low = word.lstrip("@").lower()
    return next(
        (
            s
            for s in ctx.svc.staff.staff
            if s.id.lower() == low or (s.name and s.name.lower() == low)
        ),
        None,
    )


def _tally(tx: Tx, items: list[work.Item]) -> str:
    counts = {k: sum(1 for i in items if k in i.kinds) for k in work.Kind}
    parts = [f"{work.KIND_TEXT[k]} {n}" for k, n in counts.items() if n]
    late = sum(1 for i in items if i.overdue(tx.now))
    if late:
        parts.append(f"⛔超时 {late}")
    return "共 " + " · ".join(parts)


# -- decisions ------------------------------------------------------------------------------

Act = Callable[[Tx, Case], Awaitable[Reply]]


def _more(first: str, rest: str) -> tuple[list[str], str]:
    """The handles named (`R5`, then any handles that follow it) and the text after them."""
    match = MORE_HANDLES.match(rest)
    extra = match.group().split() if match else []
    refs = list(dict.fromkeys([first, *extra]))
    if len(refs) > MAX_CASES:
        raise UsageError(f"一次最多 {MAX_CASES} 个单号")
    return refs, rest[match.end() :].strip() if match else rest.strip()


async def _each(ctx: CommandContext, refs: list[str], act: Act) -> Reply:
    """`act` on each case named, each in its own transaction; one reply, a line per case."""
    if len(refs) == 1:
        async with ctx.svc.tx() as tx:
            return await act(tx, ctx.allow(await refund.load_for_change(tx, refs[0])))
    lines: list[str] = []
    mentions: dict[str, Mention] = {}
    allow: list[str] = []
    ok = True
    for ref in refs:
        reply = await _one(ctx, ref, act)
        ok = ok and reply.ok
        mark = "" if reply.ok else "✗ "
        label = "" if ref.lstrip("#＃").upper() in reply.text else f"{ref}："
        lines.append(f"• {mark}{label}{reply.text}")
        mentions |= {m.staff_id: m for m in reply.mentions}
        allow += reply.allow
    return Reply(
        "\n".join(lines),
        mentions=tuple(mentions.values()),
        ok=ok,
        allow=tuple(allow),
    )


async def _one(ctx: CommandContext, ref: str, act: Act) -> Reply:
    """One case of several: its own answer; a refusal or a failure stops only this one."""
    for attempt in range(STALE_RETRIES):
        try:
            async with ctx.svc.tx() as tx:
                case = ctx.allow(await refund.load_for_change(tx, ref))
                reply = await act(tx, case)
                return Reply(
                    reply.text,
                    mentions=reply.mentions,
                    ok=reply.ok,
                    allow=(*reply.allow, *masking.identifiers(case)),
                )
        except StaleCaseError:
            if attempt == STALE_RETRIES - 1:
                return Reply(f"{ref} 正在被别人处理，请稍后再试", ok=False)
        except UserError as exc:
            return Reply(exc.message, mentions=exc.mentions, ok=False)
        except Exception:
            input_id = ctx.input.input_id or uuid.uuid4().hex[:12]
            log.exception("command on %s failed: input %s from %s", ref, input_id, ctx.input.user)
            return Reply(f"{ref} 处理出错了，已记录（编号 {input_id}）", ok=False)
    raise AssertionError("unreachable")


@router.command("approve", "通过", "同意", args=DecideArgs, roles=DECIDERS, what="通过退款")
async def approve(ctx: CommandContext, args: DecideArgs) -> Reply:
    """同意退款或打款，可写几个单号和备注；超出权限升级给主管"""
    refs, note = _more(args.case, args.more)

    async def act(tx: Tx, case: Case) -> Reply:
        return await _approve(ctx, tx, case, note)

    return await _each(ctx, refs, act)


async def _approve(ctx: CommandContext, tx: Tx, case: Case, note: str) -> Reply:
    staff = ctx.me
    material.ensure_fresh(case, ctx.input.drawn)
    if case.kind in PAYOUT_KINDS:
        reply = await payout.approve(tx, case, staff, ctx.channel)
    else:
        _refund_only(case)
        reply = await refund.approve(tx, case, staff, ctx.channel)
    if note:
        await decision.attach_note(tx, case, staff, note, on=case.last_action, channel=ctx.channel)
        reply = Reply(f"{reply.text}；备注：{note}", mentions=reply.mentions, ok=reply.ok)
    return reply


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
    async with ctx.svc.tx() as tx:
        return await _approve(ctx, tx, await refund.load_for_change(tx, args.case), "")


@router.command("reject", "拒绝", "驳回", args=ReasonArgs, roles=ANYONE, what="拒绝退款")
async def reject(ctx: CommandContext, args: ReasonArgs) -> Reply:
    """拒绝退款或打款，写明原因（可写几个单号）"""
    refs, reason = _more(args.case, args.reason)
    if not reason:
        raise UsageError(f"请写明拒绝原因：拒绝 {' '.join(refs)} <原因>")

    async def act(tx: Tx, case: Case) -> Reply:
        if case.kind in PAYOUT_KINDS:
            return await payout.reject(tx, case, ctx.me, reason, ctx.channel)
        staff = ctx.require(DECIDERS, "拒绝退款")
        _refund_only(case)
        return await refund.reject(tx, case, staff, reason, ctx.channel)

    return await _each(ctx, refs, act)


@router.command("undo", "撤销", args=UndoArgs, roles=ANYONE, what="撤销决定")
async def undo(ctx: CommandContext, args: UndoArgs) -> Reply:
    """撤销自己几分钟内、尚未发出的通过或拒绝"""
    me = ctx.me
    if args.case:
        first, _, more = args.case.partition(" ")
        refs, rest = _more(first, more)
        if rest:
            raise UsageError(f"多余的内容「{rest[:20]}」。用法：撤销 [单号…]")
    else:
        async with ctx.svc.tx() as tx:
            window = ctx.svc.settings.commands.undo_window_min
            since = tx.now - timedelta(minutes=window)
            last = await tx.audit_log.last_by(
                me.id, decision.UNDOABLE, since=since, groups=ctx.scope.listed
            )
            case = await tx.cases.get(last.case_pk) if last and last.case_pk else None
            if case is None:
                raise NotFoundError(f"最近 {window:g} 分钟里你没有通过或拒绝过单据")
            refs = [reference.handle_ref(case.handle)]

    async def act(tx: Tx, case: Case) -> Reply:
        return await decision.undo(tx, case, me, ctx.channel)

    return await _each(ctx, refs, act)


@router.command("handover", "转交", args=HandoverArgs, roles=SUPERVISORS, what="转交单据")
async def handover(ctx: CommandContext, args: HandoverArgs) -> Reply:
    """主管把单据转交给别人，TA 会被 @ 一次"""
    to = _staff_named(ctx, args.person)
    if to is None:
        names = "、".join(s.id for s in ctx.svc.staff.with_role(DECIDERS))
        raise UsageError(f"没有「{args.person[:20]}」这个人：可以转交给 {names}")
    async with ctx.svc.tx() as tx:
        case = await refund.load_for_change(tx, args.case)
        return await hand_over(tx, case, ctx.me, to, channel=ctx.channel, here=ctx.scope.place)


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


def _numbers(cases: list[Case]) -> tuple[str, ...]:
    return tuple(n for c in cases for n in masking.identifiers(c))
