"""Commands on a batch card (F3): approve every eligible case at once, or list them."""

from __future__ import annotations

from pydantic import Field

from commands.case import ANYONE
from commands.router import Args, CommandContext, Router
from handlers import material
from handlers.authority import DECIDERS
from handlers.cards import build_card
from handlers.config import StaffSettings
from handlers.errors import NotFoundError
from handlers.message import Reply
from handlers.money import format_fen
from handlers.refund import people as refund
from handlers.refund.data import approval_role
from handlers.refund.machine import S
from storage.enums import CaseKind
from storage.models import Case, Fold

router = Router()

BULK = frozenset({S.AWAITING_REVIEW, S.ESCALATED, S.INSPECTING})


class FoldArgs(Args):
    fold: str = Field(
        description="F编号", min_length=2, max_length=16, json_schema_extra={"ref": "fold"}
    )


async def _fold(ctx: CommandContext, ref: str) -> tuple[Fold, list[Case]]:
    async with ctx.svc.tx() as tx:
        fold = await tx.session.get(Fold, ref.strip().lstrip("#＃").upper())
        if fold is None:
            raise NotFoundError(f"找不到合并卡片 {ref}")
        return fold, [c for c in [await tx.cases.get(pk) for pk in fold.case_pks] if c is not None]


async def _cases(ctx: CommandContext, ref: str) -> list[Case]:
    return (await _fold(ctx, ref))[1]


@router.command(
    "approve_all", "approve-all", "全部通过", args=FoldArgs, roles=DECIDERS, what="批量通过"
)
async def approve_all(ctx: CommandContext, args: FoldArgs) -> Reply:
    """通过合并卡片里我有权限批准的全部待审核退款"""
    staff, directory = ctx.me, ctx.svc.staff
    done: list[str] = []
    beyond: list[str] = []
    stale: list[str] = []
    able: dict[str, StaffSettings] = {}
    fold, cases = await _fold(ctx, args.fold)
    for case in cases:
        if not ctx.scope.allows(case):
            continue
        async with ctx.svc.tx() as tx:
            fresh = await tx.cases.get(case.id)
            if fresh is None or fresh.kind != CaseKind.REFUND or fresh.state not in BULK:
                continue
            role = approval_role(fresh)
            if not directory.may_approve(staff, fresh.amount_fen, role):
                beyond.append(fresh.handle)
                able |= {s.id: s for s in directory.approvers(fresh.amount_fen, role)}
                continue
            drawn = (fold.versions or {}).get(str(fresh.id), 0)
            if drawn < material.version(fresh):
                # The batch card shows the amount as it was when the card was drawn.
                await tx.sync_card(fresh, refresh=f"stale-{fold.key}")
                stale.append(fresh.handle)
                continue
            await refund.approve(tx, fresh, staff, ctx.channel)
            done.append(f"{fresh.handle} {format_fen(fresh.amount_fen)}")
    text = f"✅ 已通过 {len(done)} 件：{'、'.join(done)}" if done else "没有你可以批准的待审核单据"
    if beyond:
        who = "、".join(s.display for s in able.values()) or "管理员"
        text += f"\n超出 {staff.display} 的权限，未处理：{'、'.join(beyond)}。可以批准的是：{who}"
    if stale:
        text += f"\n{material.STALE_TEXT}，未处理：{'、'.join(stale)}"
    return Reply(text, mentions=directory.mentions(able.values()), ok=bool(done))


@router.command("list", "列表", args=FoldArgs, roles=ANYONE, what="查看合并卡片")
async def list_fold(ctx: CommandContext, args: FoldArgs) -> Reply:
    """合并卡片里每个单据的最新状态"""
    cases = await _cases(ctx, args.fold)
    async with ctx.svc.tx() as tx:
        lines = [
            f"{c.handle} {format_fen(c.amount_fen)} {build_card(c, tx.view).status}" for c in cases
        ]
    return Reply(f"{args.fold.upper()}（{len(cases)} 件）：\n" + "\n".join(lines))
