"""Payout commands: ask for a payout, confirm it (finance), batches, and what is waiting."""

from __future__ import annotations

import dataclasses
import re
import unicodedata

from pydantic import Field

from commands.case import ANYONE, CASE, CaseArgs
from commands.router import Args, CommandContext, NoArgs, Router
from handlers.authority import DECIDERS, SUPERVISORS
from handlers.errors import UsageError, UserError
from handlers.message import Mention, Reply
from handlers.money import MAX_AMOUNT_FEN, format_fen, yuan_to_fen
from handlers.payout import batch as payout_batch
from handlers.payout import flow as payout
from handlers.payout import machine, reveal
from handlers.payout.data import PayoutData
from handlers.payout.identity import command_payout_id
from handlers.payout.move import repo as payout_repo
from storage.models import Case
from storage.repositories import StaleCaseError

router = Router()

FINANCE = tuple(sorted(machine.FINANCE))
ACCOUNT = re.compile(r"[\w.@+-]{4,64}")
# Plain yuan as people type them: no exponents, signs, NaN/Infinity or a third decimal.
AMOUNT = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,2})?")


class PayoutArgs(Args):
    kind: str = Field(description="类型:活动返现|补差价|补偿", max_length=16)
    order: str = Field(description="订单号(无则写-)", max_length=128)
    amount: str = Field(description="金额", max_length=64)
    account: str = Field(description="收款账号", max_length=64)
    name: str = Field(description="收款人", max_length=64)
    reason: str = Field(
        description="原因", min_length=1, max_length=200, json_schema_extra={"rest": True}
    )


class PaidArgs(Args):
    case: str = CASE
    ref: str = Field(default="", description="流水号", max_length=64)


class ApprovePayoutsArgs(Args):
    limit: str = Field(
        description="打款 ≤金额", min_length=1, max_length=40, json_schema_extra={"rest": True}
    )


# `≤200`, `<=200`, `<200`, `200` (at most), with full-width signs and ¥ / 元 around it.
LIMIT = re.compile(
    r"(≤|<=|≦|<|＜|小于等于|不超过|以内|小于)?\s*¥?\s*([0-9.]+)\s*(?:元)?\s*(以内|以下)?"
)
BULK_MAX = 100


class BatchArgs(Args):
    cases: str = Field(
        default="", description="P1 P2 …", json_schema_extra={"rest": True, "ref": "cases"}
    )


@router.command("payout", "打款", "申请打款", args=PayoutArgs, roles=DECIDERS, what="申请打款")
async def request_payout(ctx: CommandContext, args: PayoutArgs) -> Reply:
    """申请活动返现/补差价/补偿打款：另一人审批，财务确认后打款"""
    staff = ctx.me
    new = payout.NewPayout(
        payout_id=command_payout_id(ctx.input.input_id),
        kind=_kind(args.kind),
        order_id="" if args.order == "-" else args.order,
        amount_fen=_amount(args.amount),
        payee_name=args.name,
        payee_account=_account(args.account),
        reason=args.reason,
        requested_by=staff.id,
    )
    async with ctx.svc.tx() as tx:
        reply = await payout.start_payout(
            tx, new, chat_group=ctx.input.group_id, channel=ctx.channel
        )
        typed = ctx.input.text
        clean = reveal.redacted(typed, args.account, args.name)
        if not ctx.input.action and clean != typed:
            case = await payout.load(tx, new.payout_id)
            hint = await reveal.redact_request(
                tx,
                case,
                channel=ctx.channel,
                input_id=ctx.input.input_id,
                text=clean,
                direct=ctx.input.direct,
            )
            if hint:
                reply = dataclasses.replace(reply, text=f"{reply.text}\n{hint}")
        return reply


@router.command("payee", "收款", "收款账号", args=CaseArgs, roles=FINANCE, what="查看完整收款账号")
async def payee(ctx: CommandContext, args: CaseArgs) -> Reply:
    """财务/管理员查看打款单的完整收款账号：私信发给你，群里不显示，每次查看都记录"""
    asker = reveal.Asker(
        staff=ctx.me,
        channel=ctx.channel,
        platform=ctx.input.platform,
        user=ctx.input.user,
        group_id=ctx.input.group_id,
        input_id=ctx.input.input_id,
        direct=ctx.scope.direct,
    )
    async with ctx.svc.tx() as tx:
        case = await payout.load(tx, args.case)
        return await reveal.reveal(tx, case, asker)


@router.command("paid", "打款确认", "已打款", args=PaidArgs, roles=FINANCE, what="确认打款")
async def paid(ctx: CommandContext, args: PaidArgs) -> Reply:
    """财务确认打款：线下已付写流水号，支付宝由系统转账；B3 确认整个批次"""
    async with ctx.svc.tx() as tx:
        case = await payout.load(tx, args.case)
        return await payout.confirm(tx, case, ctx.me, args.ref, ctx.channel)


@router.command("repay", "重新打款", args=CaseArgs, roles=FINANCE, what="重新打款")
async def repay(ctx: CommandContext, args: CaseArgs) -> Reply:
    """支付宝转账失败后重新转账"""
    async with ctx.svc.tx() as tx:
        case = await payout.load(tx, args.case)
        return await payout.retry(tx, case, ctx.me, ctx.channel)


@router.command("recheck", "核对", "核对转账", args=CaseArgs, roles=FINANCE, what="核对转账")
async def recheck(ctx: CommandContext, args: CaseArgs) -> Reply:
    """向支付宝核对结果未知的转账（不会重复转账）"""
    async with ctx.svc.tx() as tx:
        case = await payout.load(tx, args.case)
        return await payout.recheck(tx, case, ctx.me, ctx.channel)


@router.command("batch", "批量打款", args=BatchArgs, roles=FINANCE, what="批量打款")
async def batch(ctx: CommandContext, args: BatchArgs) -> Reply:
    """把已审批的打款（本群全部，或指定的 P1 P2…）放进一张批量确认卡片"""
    async with ctx.svc.tx() as tx:
        return await payout_batch.make_batch(
            tx,
            ctx.me,
            args.cases.split(),
            chat_group=ctx.input.group_id,
            input_id=ctx.input.input_id,
            channel=ctx.channel,
            groups=ctx.scope.listed,
        )


@router.command("unbatch", "取消批次", args=CaseArgs, roles=FINANCE, what="取消批次")
async def unbatch(ctx: CommandContext, args: CaseArgs) -> Reply:
    """取消还没确认的批次，其中的打款回到逐笔确认"""
    async with ctx.svc.tx() as tx:
        case = await payout.load(tx, args.case)
        if case.kind != "payout_batch":
            raise UsageError(f"{case.handle} 不是批次；拒绝打款用：拒绝 {case.handle} <原因>")
        return await payout_batch.cancel_batch(tx, case, ctx.me, ctx.channel)


@router.command(
    "approve_payouts",
    "approve-payouts",
    "全部审批",
    args=ApprovePayoutsArgs,
    roles=SUPERVISORS,
    what="批量审批打款",
)
async def approve_payouts(ctx: CommandContext, args: ApprovePayoutsArgs) -> Reply:
    """主管审批不超过上限的全部待审批打款（跳过超出权限的）"""
    max_fen, inclusive = _limit(args.limit)
    async with ctx.svc.tx() as tx:
        waiting = await payout_repo(tx).requested_up_to(
            max_fen if inclusive else max_fen - 1, groups=ctx.scope.listed, limit=BULK_MAX + 1
        )
    more = len(waiting) > BULK_MAX
    done: list[Case] = []
    skipped: list[str] = []
    told: dict[str, Mention] = {}
    for listed in waiting[:BULK_MAX]:
        try:
            reply = await _approve_one(ctx, listed.id)
        except UserError as exc:
            why = _why(exc.message)
            skipped.append(f"{listed.handle} {format_fen(listed.amount_fen)}（{why}）")
            told |= {m.staff_id: m for m in exc.mentions}
            continue
        if reply is not None:
            done.append(listed)
            told |= {m.staff_id: m for m in reply.mentions}
    sign = "≤" if inclusive else "<"
    if not done and not skipped:
        return Reply(f"没有 {sign}{format_fen(max_fen)} 的待审批打款")
    total = format_fen(sum(c.amount_fen for c in done))
    named = "、".join(f"{c.handle} {format_fen(c.amount_fen)}" for c in done) or "无"
    lines = [f"✅ 已审批 {len(done)} 笔 {sign}{format_fen(max_fen)} 的打款，合计 {total}：{named}"]
    if skipped:
        lines.append(f"跳过 {len(skipped)} 笔：" + "；".join(skipped))
    if more:
        lines.append(f"一次最多 {BULK_MAX} 笔，再发一次继续")
    return Reply("\n".join(lines), mentions=tuple(told.values()), ok=bool(done))


async def _approve_one(ctx: CommandContext, pk: int) -> Reply | None:
    """Approve one payout as `通过 P7` would, within the caller's authority; None when it is no
    longer waiting (someone else decided it meanwhile)."""
    for _ in range(3):
        try:
            async with ctx.svc.tx() as tx:
                case = await tx.cases.get(pk)
                if case is None or case.state != machine.S.REQUESTED:
                    return None
                return await payout.approve(tx, ctx.allow(case), ctx.me, ctx.channel)
        except StaleCaseError:
            continue
    return None


def _why(message: str) -> str:
    """A refusal in a few words: the part before who may approve instead."""
    return message.split("。", 1)[0]


def _limit(text: str) -> tuple[int, bool]:
    """(fen, inclusive) from `打款 ≤200`, `payouts <=200`, `200`."""
    plain = unicodedata.normalize("NFKC", text).strip()
    for word in ("打款", "payouts", "payout"):
        if plain.lower().startswith(word):
            plain = plain[len(word) :].strip()
            break
    match = LIMIT.fullmatch(plain)
    fen = yuan_to_fen(match.group(2)) if match and AMOUNT.fullmatch(match.group(2)) else 0
    if match is None or not 0 < fen <= MAX_AMOUNT_FEN:
        raise UsageError(
            f"请写明金额上限：全部审批 打款 ≤200（≤ 含 200，< 不含）；「{text[:20]}」看不懂"
        )
    return fen, match.group(1) not in ("<", "＜", "小于")


@router.command("payouts", "待打款", args=NoArgs, roles=ANYONE, what="查看待打款")
async def payouts(ctx: CommandContext, _args: NoArgs) -> Reply:
    """等我审批或确认的打款"""
    staff = ctx.me
    async with ctx.svc.tx() as tx:
        cases = [c for c in await payout.pending(tx, staff) if ctx.scope.allows_listed(c)]
        if not cases:
            return Reply("🎉 没有等你处理的打款")
        lines = [f"{staff.display} 的待打款（{len(cases)}）："]
        for case in cases[:30]:
            info = PayoutData.of(case).payout
            state = machine.STATE_TEXT.get(case.state, case.state)
            lines.append(
                f"{case.handle} {format_fen(case.amount_fen)} {state} · "
                f"{machine.KIND_TEXT.get(info.kind or '', '')} {info.payee}"
            )
        return Reply("\n".join(lines))


def _usage() -> str:
    command = router.lookup("打款")
    assert command is not None
    return f"用法：{command.usage('打款')}"


def _kind(text: str) -> str:
    if (why := machine.FORBIDDEN_KINDS.get(text)) is not None:
        raise UsageError(f"{why}，不能打款；补偿、补差价或活动返现请写明类型。{_usage()}")
    kind = machine.KIND_ALIASES.get(text.lower())
    if kind is None:
        raise UsageError(f"类型「{text}」不认识，可以是 活动返现 | 补差价 | 补偿。{_usage()}")
    return kind


def _amount(text: str) -> int:
    plain = unicodedata.normalize("NFKC", text).strip().lstrip("¥").removesuffix("元")
    fen = yuan_to_fen(plain) if AMOUNT.fullmatch(plain) else 0
    if not 0 < fen <= MAX_AMOUNT_FEN:
        raise UsageError(
            f"金额「{text}」不对：写元，最多两位小数，大于 0 且不超过 {format_fen(MAX_AMOUNT_FEN)}，"
            f"例如 5 或 12.50。{_usage()}"
        )
    return fen


def _account(text: str) -> str:
    if not ACCOUNT.fullmatch(text):
        raise UsageError(f"收款账号不对：写手机号、邮箱或支付宝账号（不含空格）。{_usage()}")
    return text
