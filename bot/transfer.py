"""The `payout.transfer` outbox performer: one provider order (Alipay, WeChat Pay) per
out_biz_no, and after any answer that went missing we ask the provider (query) before anything
is sent again. A WeChat Pay transfer waiting for the buyer to confirm is asked about now and
then until it ends, without spending attempts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from handlers.errors import PermanentError, RetryableError, ThrottledError
from handlers.payout import outcome as payout
from handlers.payout.data import PayoutData
from handlers.payout.machine import KIND_TEXT, S
from handlers.ports import Payouts, TransferOrder, TransferResult, TransferStatus
from storage.models import Case, OutboxItem
from storage.repositories import StaleCaseError
from storage.repositories.payouts import PayoutRepository

if TYPE_CHECKING:
    from handlers.context import Services, Tx

# How soon to ask again about a transfer the provider is processing or did not answer for,
# and about one waiting for the buyer to confirm receipt (that can take a day).
ASK_AGAIN_S = 30.0
ASK_BUYER_S = 300.0
STALE_RETRIES = 5
OUTCOME: dict[TransferStatus, payout.TransferOutcome] = {
    TransferStatus.SUCCESS: "success",
    TransferStatus.FAILED: "failed",
    TransferStatus.PROCESSING: "processing",
    TransferStatus.WAITING_BUYER: "waiting_buyer",
}


class Dispatcher(Protocol):
    """What a transfer needs of the dispatcher performing it."""

    @property
    def svc(self) -> Services: ...

    @property
    def payouts(self) -> Payouts | None: ...


async def perform(d: Dispatcher, item: OutboxItem) -> None:
    biz_no = str(item.payload["out_biz_no"])
    async with d.svc.tx() as tx:
        loaded = await _load(tx, item, biz_no)
    if loaded is None:
        return
    order, sent_before = loaded
    client = d.payouts
    if client is None:
        raise PermanentError("[payout] provider moves no money itself: the transfer cannot be sent")
    if sent_before:
        found = await client.query(biz_no)
        if found.status is not TransferStatus.NOT_FOUND:
            await _record(d, item, biz_no, found)
            return
    async with d.svc.tx() as tx:
        # Counted (and committed) before the request leaves: a crash after this point makes
        # the next attempt ask first.
        if await _load(tx, item, biz_no) is None:
            return
        await PayoutRepository(tx.session).mark_sent(item.case_pk or 0, biz_no, now=tx.now)
    await _record(d, item, biz_no, await client.transfer(order))


async def _load(tx: Tx, item: OutboxItem, biz_no: str) -> tuple[TransferOrder, bool] | None:
    """The order to send and whether a request may already have reached Alipay; None: stale."""
    case = await tx.cases.get(item.case_pk or 0)
    row = await PayoutRepository(tx.session).get(item.case_pk or 0)
    if case is None or row is None:
        raise PermanentError(f"payout case {item.case_pk} is gone")
    if case.state != S.PAYING or row.out_biz_no != biz_no:
        return None
    order = TransferOrder(
        out_biz_no=biz_no,
        amount_fen=case.amount_fen,
        account=row.payee_account,
        name=row.payee_name,
        title=_title(case),
        remark=case.reason,
    )
    return order, row.sends > 0


def _title(case: Case) -> str:
    kind = KIND_TEXT.get(PayoutData.of(case).payout.kind or "", "打款")
    return f"{kind} 订单 {case.order_id}" if case.order_id else kind


async def _record(d: Dispatcher, item: OutboxItem, biz_no: str, result: TransferResult) -> None:
    # The payout may change meanwhile (the shop system's answer, a notification on another
    # instance): read it again; still changing, the provider is asked again later.
    for attempt in range(STALE_RETRIES):
        try:
            await _apply(d, item, biz_no, result)
            break
        except StaleCaseError as exc:
            if attempt == STALE_RETRIES - 1:
                raise RetryableError(f"transfer {biz_no}: the payout kept changing") from exc
    if result.status is TransferStatus.WAITING_BUYER:
        raise ThrottledError(f"transfer {biz_no} waits for the buyer", defer=ASK_BUYER_S)
    if result.status not in (TransferStatus.SUCCESS, TransferStatus.FAILED):
        raise RetryableError(
            f"transfer {biz_no}: {result.status.value} {result.detail}".strip(),
            defer=ASK_AGAIN_S,
        )


async def _apply(d: Dispatcher, item: OutboxItem, biz_no: str, result: TransferResult) -> None:
    async with d.svc.tx() as tx:
        case = await tx.cases.get(item.case_pk or 0)
        if case is not None:
            await payout.on_transfer_result(
                tx,
                case,
                out_biz_no=biz_no,
                status=OUTCOME.get(result.status, "unknown"),
                reference=result.reference,
                provider_status=result.provider_status,
                detail=result.detail,
                confirm=result.confirm,
            )


async def gave_up(tx: Tx, case: Case, item: OutboxItem, error: str) -> None:
    await payout.on_transfer_gave_up(
        tx, case, out_biz_no=str(item.payload.get("out_biz_no", "")), error=error
    )
