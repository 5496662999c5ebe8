"""Who may act on a payout: approvers for its amount and finance to confirm, each without the
other half of the two-person rule; and how people and systems are named on its card."""

from __future__ import annotations

from handlers.authority import StaffDirectory
from handlers.config import StaffSettings
from handlers.money import format_fen
from handlers.payout.data import PayoutData
from handlers.payout.machine import FINANCE
from storage.models import Case

ACTORS = {"alipay": "支付宝", "wechatpay": "微信支付", "platform": "店铺系统"}


def requester_of(case: Case) -> str:
    return PayoutData.of(case).payout.requested_by


def approver_of(case: Case) -> str:
    approval = PayoutData.of(case).approval
    return approval.by if approval else ""


def approvers_for(
    directory: StaffDirectory, case: Case, *, two_person: bool
) -> list[StaffSettings]:
    """Who may approve this amount, without the requester under the two-person rule."""
    able = directory.approvers(case.amount_fen, "agent")
    if two_person:
        able = [s for s in able if s.id != requester_of(case)]
    return able


def confirmers_for(
    directory: StaffDirectory, case: Case | None = None, *, two_person: bool
) -> list[StaffSettings]:
    """Finance (and admins), without the approver under the two-person rule."""
    able = directory.with_role(FINANCE)
    if case is not None and two_person:
        able = [s for s in able if s.id != approver_of(case)]
    return able


def names(staff: list[StaffSettings]) -> str:
    return "、".join(s.display for s in staff) or "管理员"


def with_limits(directory: StaffDirectory, staff: list[StaffSettings]) -> str:
    parts = []
    for s in staff:
        limit = directory.refund_limit_fen(s)
        parts.append(f"{s.display}（{'不限' if limit is None else format_fen(limit)}）")
    return "、".join(parts) or "管理员"


def who(directory: StaffDirectory, actor: str) -> str:
    return ACTORS.get(actor) or directory.name(actor)
