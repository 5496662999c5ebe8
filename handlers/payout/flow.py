"""The payout flow's entry points: a payout raised by the shop's systems or asked for in chat,
what people decide on it (approve, confirm, retry, recheck, reject), and what they look up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from handlers import reference
from handlers.config import StaffSettings
from handlers.context import Tx
from handlers.errors import ConflictError, NotFoundError, PermissionDeniedError, UsageError
from handlers.masking import mask_account, mask_name
from handlers.message import Reply, one_line
from handlers.money import MAX_AMOUNT_FEN, format_fen
from handlers.payout import reveal
from handlers.payout.batch import cancel_batch, confirm_batch
from handlers.payout.data import PayoutData, PayoutInfo, Rejection, Stamp
from handlers.payout.machine import FINANCE, KIND_TEXT, STATE_TEXT, PayoutState, S, T
from handlers.payout.move import ensure, move, pay, repo, start_transfer, two_person
from handlers.payout.people import (
    approver_of,
    approvers_for,
    confirmers_for,
    names,
    requester_of,
    with_limits,
)
from handlers.schema import PayoutRequested
from storage.enums import CaseKind
from storage.models import Case
from storage.repositories.payouts import Tally


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


def _approvers(tx: Tx, case: Case) -> list[StaffSettings]:
    return approvers_for(tx.svc.staff, case, two_person=two_person(tx))


def _confirmers(tx: Tx, case: Case | None = None) -> list[StaffSettings]:
    return confirmers_for(tx.svc.staff, case, two_person=two_person(tx))


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
    able = _approvers(tx, case)
    where = ""
    if case.group_id and case.group_id != chat_group:
        group = tx.svc.settings.group(case.group_id)
        where = f"，卡片在「{group.name or group.id if group else case.group_id}」"
    info = PayoutData.of(case).payout
    text = (
        f"📝 {'已提交' if created else '已经提交过'}打款申请 {case.handle}："
        f"{KIND_TEXT[info.kind or '']} {format_fen(case.amount_fen)} → "
        f"{info.payee_name} {info.payee}{where}。等待审批：{names(able)}"
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
    info = PayoutInfo(
        kind=new.kind,
        payee_name=mask_name(new.payee_name),
        payee=mask_account(new.payee_account),
        requested_by=new.requested_by,
        requested_at=tx.now.isoformat(),
    )
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
        data=PayoutData(payout=info).dump(),
        last_actor=new.requested_by,
        last_action="created",
    )
    await repo(tx).add(
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


async def approve(tx: Tx, case: Case, staff: StaffSettings, channel: str) -> Reply:
    """Approval by someone with authority for the amount who did not ask for it."""
    if case.kind == CaseKind.PAYOUT_BATCH:
        raise UsageError(f"{case.handle} 是批量打款，财务用「打款确认 {case.handle}」确认")
    if case.state == S.FAILED:
        raise UsageError(f"{case.handle} 打款失败：财务用「重新打款 {case.handle}」再试")
    ensure(tx, case, T.APPROVE)
    directory = tx.svc.staff
    able = _approvers(tx, case)
    if two_person(tx) and staff.id == requester_of(case):
        raise PermissionDeniedError(
            f"{staff.display} 是 {case.handle} 的申请人，按双人复核不能自己审批。"
            f"可以审批的是：{with_limits(directory, able)}",
            mentions=directory.mentions(able),
        )
    if not directory.may_approve(staff, case.amount_fen, "agent"):
        limit = directory.refund_limit_fen(staff)
        mine = "无" if limit is None else format_fen(limit)
        raise PermissionDeniedError(
            f"{format_fen(case.amount_fen)} 超出 {staff.display} 的审批权限（{mine}）。"
            f"可以审批的是：{with_limits(directory, able)}",
            mentions=directory.mentions(able),
        )
    data = PayoutData.of(case)
    data.approval = Stamp(by=staff.id, at=tx.now.isoformat())
    await move(tx, case, T.APPROVE, actor=staff.id, channel=channel, data=data)
    await repo(tx).update(case.id, now=tx.now, approved_by=staff.id, approved_at=tx.now)
    await reveal.send_to_finance(tx, case)
    finance = _confirmers(tx, case)
    return Reply(
        f"✅ 已审批 {case.handle}（{format_fen(case.amount_fen)}），请财务打款：{names(finance)}",
        mentions=directory.mentions(finance),
    )


def _check_confirmer(tx: Tx, case: Case, staff: StaffSettings) -> None:
    directory = tx.svc.staff
    directory.require(staff, FINANCE, "确认打款")
    if two_person(tx) and staff.id == approver_of(case):
        able = _confirmers(tx, case)
        raise PermissionDeniedError(
            f"{staff.display} 审批了 {case.handle}，按双人复核不能再确认打款。可以确认的是：{names(able)}",
            mentions=directory.mentions(able),
        )


async def confirm(tx: Tx, case: Case, staff: StaffSettings, reference: str, channel: str) -> Reply:
    """Finance confirms: with a reference the money has moved; without, Alipay moves it."""
    if case.kind == CaseKind.PAYOUT_BATCH:
        return await confirm_batch(tx, case, staff, reference, channel)
    reference = reference.strip()
    state = PayoutState(case.state)
    policy = tx.svc.settings.payout
    if state is S.REQUESTED:
        able = _approvers(tx, case)
        raise ConflictError(
            f"{case.handle} 还没有审批，需要先由 {names(able)} 审批",
            mentions=tx.svc.staff.mentions(able),
        )
    unknown = PayoutData.of(case).transfer.unknown
    if state is S.PAYING and not (reference and unknown):
        raise ConflictError(
            f"{case.handle} 正在通过{policy.provider_text}转账，结果回来后卡片会更新"
        )
    pays_now = bool(reference) or not policy.transfers
    ensure(tx, case, T.PAID if pays_now else (T.RETRY if state is S.FAILED else T.CONFIRM))
    _check_confirmer(tx, case, staff)
    if not reference and not policy.transfers:
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
        f"💸 {case.handle} 已确认，正在通过{policy.provider_text}转账 {format_fen(case.amount_fen)}"
        f" 到 {PayoutData.of(case).payout.payee}"
    )


async def retry(tx: Tx, case: Case, staff: StaffSettings, channel: str) -> Reply:
    """After a final Alipay failure: transfer again under a new out_biz_no."""
    if not tx.svc.settings.payout.transfers:
        raise UsageError(f"线下打款请登记流水号：打款确认 {case.handle} <流水号>")
    ensure(tx, case, T.RETRY)
    _check_confirmer(tx, case, staff)
    await start_transfer(tx, case, staff, channel)
    return Reply(f"🔁 {case.handle} 正在重新转账 {format_fen(case.amount_fen)}")


async def recheck(tx: Tx, case: Case, staff: StaffSettings, channel: str) -> Reply:
    """Ask Alipay again about a transfer whose outcome the dispatcher gave up on."""
    tx.svc.staff.require(staff, FINANCE, "核对转账")
    data = PayoutData.of(case)
    transfer = data.transfer
    if case.state != S.PAYING or not transfer.unknown:
        status = STATE_TEXT.get(case.state, case.state)
        raise ConflictError(f"{case.handle} 现在是「{status}」，没有需要核对的转账")
    transfer.unknown = False
    transfer.checks += 1
    transfer.detail = ""
    data.transfer = transfer
    await tx.cases.touch(
        case, now=tx.now, data=data.dump(), last_actor=staff.id, last_action="recheck"
    )
    await tx.audit(case, staff.id, "recheck", from_state=case.state, channel=channel)
    await tx.sync_card(case)
    await tx.outbox.add(
        f"payout.transfer:payout:{case.case_id}:{transfer.attempt}:check{transfer.checks}",
        "payout.transfer",
        now=tx.now,
        case_pk=case.id,
        group_id=case.group_id,
        payload={"out_biz_no": transfer.out_biz_no},
    )
    return Reply(f"🔎 正在向{tx.svc.settings.payout.provider_text}核对 {case.handle} 的转账")


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
        able = _approvers(tx, case)
    else:
        allowed = may_approve or bool(FINANCE & set(staff.roles))
        able = _confirmers(tx)
    if not allowed:
        raise PermissionDeniedError(
            f"{staff.display} 不能拒绝 {case.handle}（{format_fen(case.amount_fen)}）。可以拒绝的是：{names(able)}",
            mentions=directory.mentions(able),
        )
    data = PayoutData.of(case)
    data.reject = Rejection(by=staff.id, at=tx.now.isoformat(), reason=reason[:500])
    await move(tx, case, T.REJECT, actor=staff.id, channel=channel, data=data)
    await repo(tx).update(case.id, now=tx.now, rejected_by=staff.id, rejected_at=tx.now)
    return Reply(f"已拒绝 {case.handle}：{one_line(reason)}")


# -- lookups --------------------------------------------------------------------------------


async def load(tx: Tx, ref: str) -> Case:
    case = await reference.find(tx, ref)
    if case is None or case.kind not in (CaseKind.PAYOUT, CaseKind.PAYOUT_BATCH):
        raise NotFoundError(f"找不到打款单 {ref}：请用卡片上的编号（如 P7、B3）或完整的打款单号")
    return case


async def pending(tx: Tx, staff: StaffSettings) -> list[Case]:
    """Payouts waiting for this person: to approve, or (finance) to confirm."""
    states = [S.REQUESTED.value, S.APPROVED.value, S.FAILED.value]
    cases = await repo(tx).in_states(states, limit=500)
    mine = []
    for case in cases:
        if case.state == S.REQUESTED:
            if staff.id in {s.id for s in _approvers(tx, case)}:
                mine.append(case)
        elif staff.id in {s.id for s in _confirmers(tx, case)}:
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
    payouts = repo(tx)
    return PayoutTotals(
        requested=await payouts.tally("requested", since, until, group_id=group_id),
        approved=await payouts.tally("approved", since, until, group_id=group_id),
        paid=await payouts.tally("paid", since, until, group_id=group_id),
    )
