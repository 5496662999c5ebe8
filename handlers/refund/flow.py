"""A refund's events from the platform: requested, updated (amounts, shipping, the return and
its QC), cancelled or closed.
"""

from __future__ import annotations

from typing import Any

from handlers.context import Tx
from handlers.errors import MissingRefundError
from handlers.refund.amount import amount_change, amount_changed, amount_problem, amount_refused
from handlers.refund.data import AmountRefused, Qc, RefundData, Request, facts_of
from handlers.refund.machine import TERMINAL, TRANSITIONS, RefundState, S, T, Trigger, path_of
from handlers.refund.move import arm_timers, move
from handlers.refund.route import apply_decision
from handlers.schema import RefundEnded, RefundRequested, RefundUpdated, yuan_text
from storage.enums import CaseKind
from storage.models import Case

# The platform's raw message rides on the event (which keeps it), not in the case.
RAW = frozenset({"platform_message"})


async def on_requested(
    tx: Tx,
    envelope_shop: str,
    platform: str,
    data: RefundRequested,
    *,
    ended: tuple[RefundEnded, bool] | None = None,
) -> Case:
    """A new refund request: one case, routed to a group, decided by the rules.

    `ended` is a cancellation (True) or closure that arrived before the request: the case
    then starts ended, and no rule approves what the buyer already withdrew.
    """
    existing = await tx.cases.by_case_id(CaseKind.REFUND, data.refund_id)
    if existing is not None:
        again = data.model_dump(mode="json", exclude={"amount", "order_amount", *RAW})
        again["amount"] = yuan_text(data.amount)
        if data.order_amount is not None:
            again["order_amount"] = yuan_text(data.order_amount)
        await _apply_update(tx, existing, RefundUpdated.model_validate(again))
        return existing
    group = tx.svc.route(shop=envelope_shop, platform=platform, kind=CaseKind.REFUND.value)
    kind, shipping = data.kind, data.shipping.status
    case = await tx.cases.create(
        kind=CaseKind.REFUND,
        case_id=data.refund_id,
        state=S.NEW.value,
        now=tx.now,
        shop=envelope_shop,
        platform=platform,
        order_id=data.order_id,
        amount_fen=data.amount,
        group_id=group.id if group else "",
        path=path_of(kind, shipping),
        reason=data.reason[:255],
        deadline_at=data.deadline_at,
        data=RefundData(
            refund=Request.load(
                data.model_dump(mode="json", exclude={"amount", "order_amount", *RAW})
            ),
            order_amount_fen=data.order_amount,
        ).dump(),
        last_actor="platform",
        last_action="created",
    )
    await tx.audit(case, "platform", "created", channel="api", refund_id=data.refund_id)
    if group is None:
        await tx.post(
            tx.svc.admin_group,
            f"⚠ 退款 {case.handle}（{case.shop}/{case.platform}）没有匹配的群，请检查 [[groups]] 的路由配置",
            key=f"unrouted:{case.id}",
            case=case,
        )
    if ended is not None:
        await on_ended(tx, ended[0], cancelled=ended[1])
        return case
    decision = tx.svc.rules.decide(facts_of(case))
    await apply_decision(tx, case, decision)
    return case


async def on_updated(tx: Tx, data: RefundUpdated) -> Case:
    case = await _load(tx, data.refund_id)
    await _apply_update(tx, case, data)
    return case


async def _apply_update(tx: Tx, case: Case, update: RefundUpdated) -> None:
    new_data = RefundData.of(case)
    fields = update.model_dump(
        mode="json", exclude_none=True, exclude={"amount", "order_amount", *RAW}
    )
    new_data.refund = Request.load(new_data.refund.dump() | fields)
    changes: dict[str, Any] = {}
    refused = amount_problem(case, update)
    change = None if refused else amount_change(case, update)
    if refused:
        new_data.amount_refused = AmountRefused(
            amount_fen=update.amount,
            order_amount_fen=update.order_amount,
            why=refused,
            at=tx.now.isoformat(),
        )
    elif change is not None:
        changes["amount_fen"] = change.to
        new_data.order_amount_fen = change.order_to
        new_data.drop("amount_refused")
        new_data.amount_change = change.model_copy()
        new_data.amount_change.at = tx.now.isoformat()
        new_data.material_version = case.version + 1
    if update.reason is not None:
        changes["reason"] = update.reason[:255]
    if update.deadline_at is not None:
        changes["deadline_at"] = update.deadline_at
    if update.shipping is not None:
        changes["path"] = path_of(new_data.kind, update.shipping.status)
    trigger = _return_trigger(case, update)
    if trigger is not None:
        await move(tx, case, trigger, actor="platform", data=new_data, **changes)
    else:
        await tx.cases.touch(
            case,
            now=tx.now,
            data=new_data.dump(),
            last_actor="platform",
            last_action="updated",
            **changes,
        )
        await tx.audit(case, "platform", "updated", from_state=case.state, channel="api")
        await tx.sync_card(case)
    if refused:
        await amount_refused(tx, case, refused)
    elif change is not None:
        await amount_changed(tx, case, change)
    if case.state == S.INSPECTING and update.return_status == "qc_passed":
        await move(tx, case, T.AUTO_APPROVE, actor="warehouse")
    elif case.state == S.INSPECTING and update.return_status == "qc_failed":
        detail = update.qc_detail
        qc_data = RefundData.of(case)
        qc_data.qc = Qc(result="failed", detail=detail, at=tx.now.isoformat())
        await tx.cases.touch(
            case,
            now=tx.now,
            data=qc_data.dump(),
            last_actor="warehouse",
            last_action="qc_failed",
        )
        await tx.audit(
            case, "warehouse", "qc_failed", from_state=case.state, channel="api", detail=detail
        )
        await tx.sync_card(case)
        await tx.post(
            case.group_id,
            f"⚠ {case.handle} 仓库质检不通过{('：' + detail) if detail else ''}，请决定部分退款或拒绝",
            key=f"qc_failed:{case.id}:{case.version}",
            mentions=tx.svc.staff.to_mention(approving=(case.amount_fen, "agent")),
            case=case,
        )
    if trigger is None and update.deadline_at is not None:
        await tx.timers.cancel(case.id, ["deadline_warn"])
        await arm_timers(tx, case)


def _return_trigger(case: Case, update: RefundUpdated) -> Trigger | None:
    state = RefundState(case.state)
    if update.return_status in ("received", "qc_passed", "qc_failed") and state in (
        S.WAITING_RETURN,
        S.RETURNING,
    ):
        return T.RETURN_RECEIVED
    if (update.return_status == "shipped" or update.return_tracking) and state is S.WAITING_RETURN:
        return T.RETURN_SHIPPED
    return None


async def on_ended(tx: Tx, data: RefundEnded, *, cancelled: bool) -> Case:
    case = await _load(tx, data.refund_id)
    state = RefundState(case.state)
    if state in TERMINAL:
        return case
    new_data = RefundData.of(case)
    new_data.end_detail = data.detail or data.status
    if not cancelled and data.status == "refunded" and (state, T.REFUNDED) in TRANSITIONS:
        await move(tx, case, T.REFUNDED, actor="platform", data=new_data)
    elif cancelled and (state, T.CANCEL) in TRANSITIONS:
        await move(tx, case, T.CANCEL, actor="platform", data=new_data)
    else:
        await move(tx, case, T.PLATFORM_CLOSE, actor="platform", data=new_data)
    return case


async def _load(tx: Tx, refund_id: str) -> Case:
    case = await tx.cases.by_case_id(CaseKind.REFUND, refund_id)
    if case is None:
        raise MissingRefundError(refund_id)
    return case
