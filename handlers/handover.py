"""A supervisor hands a case to someone else (转交 R8 agent1): the card names the new assignee,
reminders go to them, and they are told once — by @-mention in the case's group."""

from __future__ import annotations

from handlers.authority import DECIDERS, ROLE_NAMES
from handlers.config import StaffSettings
from handlers.context import Tx
from handlers.errors import ConflictError, UsageError
from handlers.message import Reply
from handlers.money import format_fen
from handlers.payout.machine import PAYOUT_KINDS
from handlers.refund.data import approval_role
from storage.enums import CaseKind
from storage.models import Case


async def hand_over(
    tx: Tx, case: Case, staff: StaffSettings, to: StaffSettings, *, channel: str, here: str
) -> Reply:
    """Make `to` the assignee of `case`. `here` is the group the command was typed in: there
    the reply itself @-mentions them; anywhere else the case's group gets the line."""
    directory = tx.svc.staff
    if case.kind in PAYOUT_KINDS:
        raise UsageError(f"打款单不用转交：审批按金额权限，{case.handle} 由财务确认打款")
    if case.closed_at is not None:
        raise ConflictError(f"{case.handle} 已经办结，无需转交")
    if not DECIDERS & set(to.roles):
        roles = "/".join(ROLE_NAMES[r] for r in ("agent", "supervisor", "admin"))
        raise UsageError(f"{to.display} 不能处理单据（需要{roles}），不能转交给 TA")
    if case.assignee == to.id:
        return Reply(f"{case.handle} 已经由 {to.display} 处理")
    before = case.assignee
    await tx.cases.touch(
        case, now=tx.now, assignee=to.id, last_actor=staff.id, last_action="handover"
    )
    await tx.audit(
        case, staff.id, "handover", from_state=case.state, channel=channel, to=to.id, before=before
    )
    await tx.sync_card(case)
    text = f"📌 {case.handle} 由 {staff.display} 转交给 {to.display}"
    if before:
        text += f"（原处理人 {directory.name(before)}）"
    if case.kind == CaseKind.REFUND and not directory.may_approve(
        to, case.amount_fen, approval_role(case)
    ):
        text += (
            f"；{format_fen(case.amount_fen)} 超出 {to.display} 的权限"
            f"（{directory.limit_text(to)}），通过时会升级给主管"
        )
    told = (directory.mention(to),)
    if case.group_id and case.group_id != here:
        await tx.post(
            case.group_id, text, key=f"handover:{case.id}:{case.version}", mentions=told, case=case
        )
        return Reply(text)
    return Reply(text, mentions=told)
