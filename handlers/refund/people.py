"""What people do to a refund from the group: approve (or escalate above their limit), retry,
reject, record a refund made by hand, claim, note.
"""

from __future__ import annotations

from typing import Any

from handlers import reference
from handlers.case_data import CaseData, Note
from handlers.config import StaffSettings
from handlers.context import Tx
from handlers.errors import ConflictError, NotFoundError, UsageError
from handlers.escalation import fresh
from handlers.message import Reply, one_line
from handlers.money import format_fen
from handlers.refund.commerce import resubmit_with_code
from handlers.refund.data import (
    Escalation,
    PlatformReason,
    RefundData,
    approval_role,
    standing_fen,
)
from handlers.refund.machine import STATE_TEXT, RefundState, S, T
from handlers.refund.move import ensure, move
from storage.enums import CaseKind
from storage.models import Case


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
        data = RefundData.of(case)
        data.escalation = Escalation(
            by=staff.id, limit=format_fen(limit or 0), at=tx.now.isoformat()
        )
        supervisors = directory.approvers(case.amount_fen, "supervisor")
        called = fresh(data, "escalate", directory.mentions(supervisors))
        await move(tx, case, T.ESCALATE, actor=staff.id, channel=channel, data=data)
        names = "、".join(s.display for s in supervisors) or "管理员"
        return Reply(
            f"{case.handle} {format_fen(case.amount_fen)} 超出你的权限"
            f"（{format_fen(limit or 0)}），已升级给主管：{names}",
            mentions=called,
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
    data = RefundData.of(case)
    data.commerce.attempt += 1
    data.commerce.drop("error")
    await move(tx, case, T.RETRY, actor=staff.id, channel=channel, data=data)
    return Reply(f"🔁 已重新提交 {case.handle} 的退款")


async def reject(tx: Tx, case: Case, staff: StaffSettings, reason: str, channel: str) -> Reply:
    if not reason.strip():
        raise UsageError(f"请写明拒绝原因：拒绝 {case.handle} <原因>")
    ensure(tx, case, T.REJECT)
    data = RefundData.of(case)
    picked, said = platform_reason(case, data, reason.strip())
    data.reject_reason = said[:500]
    if picked is not None:
        data.reject_code = picked.code
    await move(
        tx,
        case,
        T.REJECT,
        actor=staff.id,
        channel=channel,
        data=data,
        assignee=case.assignee or staff.id,
    )
    return Reply(f"已拒绝 {case.handle}：{one_line(data.reject_reason)}")


def platform_reason(case: Case, data: RefundData, reason: str) -> tuple[PlatformReason | None, str]:
    """The platform's refusal reason a person picked (by its number on the card, or its text),
    and the reason as the record keeps it. Where the platform has a pick list, one of them must
    be picked: it refuses a refusal without one."""
    reasons = data.refund.reject_reasons
    if not reasons:
        return None, reason
    head, _, rest = reason.partition(" ")
    if head.isdigit() and 1 <= int(head) <= len(reasons):
        picked = reasons[int(head) - 1]
        return picked, f"{picked.text}：{rest.strip()}" if rest.strip() else picked.text
    for candidate in reasons:
        if reason == candidate.text or reason.startswith(candidate.text + " "):
            return candidate, reason
    listed = " · ".join(f"{i} {r.text}" for i, r in enumerate(reasons[:9], 1))
    raise UsageError(f"平台要求选择拒绝理由：拒绝 {case.handle} <编号> [说明]（{listed}）")


async def submit_code(tx: Tx, case: Case, staff: StaffSettings, code: str, channel: str) -> Reply:
    """The SMS code the platform sent for an approval: the approval is submitted again with it.
    Whoever gives it must be able to approve the refund themselves."""
    data = RefundData.of(case)
    if case.state not in (S.APPROVED, S.AUTO_APPROVED) or not data.commerce.verify:
        raise ConflictError(f"{case.handle} 没有在等短信验证码")
    if not (code.isdigit() and 4 <= len(code) <= 8):
        raise UsageError(f"验证码是 4–8 位数字：验证码 {case.handle} 123456")
    role = approval_role(case)
    if not tx.svc.staff.may_approve(staff, standing_fen(case), role):
        raise tx.svc.staff.refuse_amount(staff, standing_fen(case), role)
    await resubmit_with_code(tx, case, data, code, actor=staff.id, channel=channel)
    return Reply(f"🔐 已用验证码重新提交 {case.handle} 的退款")


async def record_refunded(tx: Tx, case: Case, staff: StaffSettings, channel: str) -> Reply:
    """A person refunded by hand in the shop backend (no shop system is connected)."""
    if case.state != S.MANUAL:
        raise ConflictError(
            f"{case.handle} 是「{STATE_TEXT.get(case.state, case.state)}」：只有待手动退款的单据需要登记"
        )
    await move(tx, case, T.REFUNDED, actor=staff.id, channel=channel)
    return Reply(f"✅ 已登记 {case.handle} 手动退款 {format_fen(standing_fen(case))}")


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
    # Taking a case answers nobody: its first-response clock runs on (handlers.step).
    changes: dict[str, Any] = {"assignee": staff.id, "last_actor": staff.id, "last_action": "claim"}
    await tx.cases.touch(case, now=tx.now, **changes)
    await tx.audit(case, staff.id, "claim", from_state=case.state, channel=channel)
    await tx.sync_card(case)
    return Reply(f"👌 {case.handle} 由 {staff.display} 处理")


async def note(tx: Tx, case: Case, staff: StaffSettings, text: str, channel: str) -> Reply:
    if not text.strip():
        raise UsageError(f"备注不能为空：备注 {case.handle} <内容>")
    data = CaseData.of(case)
    added = Note(by=staff.id, at=tx.now.isoformat(), text=text.strip()[:500])
    data.notes = [*data.notes, added][-20:]
    changes: dict[str, Any] = {
        "data": data.dump(),
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
