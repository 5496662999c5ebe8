"""WeChat Pay transfer-bills: what each bill state means to the payout flow, and bill numbers."""

from __future__ import annotations

import pytest

from handlers.ports import TransferStatus
from integrations.wechatpay.client import out_bill_no, result_of
from integrations.wechatpay.models import Bill


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("SUCCESS", TransferStatus.SUCCESS),
        ("FAIL", TransferStatus.FAILED),
        ("CANCELLED", TransferStatus.FAILED),
        ("WAIT_USER_CONFIRM", TransferStatus.WAITING_BUYER),
        ("ACCEPTED", TransferStatus.PROCESSING),
        ("PROCESSING", TransferStatus.PROCESSING),
        ("TRANSFERING", TransferStatus.PROCESSING),
        ("CANCELING", TransferStatus.PROCESSING),
        ("SOMETHING_NEW", TransferStatus.UNKNOWN),
    ],
)
def test_result_of_maps_every_documented_state(state: str, status: TransferStatus) -> None:
    result = result_of(Bill(out_bill_no="PO1", transfer_bill_no="1330", state=state))
    assert (result.status, result.provider_status, result.reference) == (status, state, "1330")


def test_result_of_carries_the_confirm_package_and_the_fail_reason() -> None:
    waiting = result_of(Bill(out_bill_no="PO1", state="WAIT_USER_CONFIRM", package_info="pkg"))
    assert waiting.confirm == "pkg"
    failed = result_of(Bill(out_bill_no="PO1", state="FAIL", fail_reason="PAYEE_ACCOUNT_ABNORMAL"))
    assert failed.detail == "PAYEE_ACCOUNT_ABNORMAL"
    cancelled = result_of(Bill(out_bill_no="PO1", state="CANCELLED"))
    assert cancelled.detail


def test_out_bill_no_keeps_plain_numbers_and_digests_the_rest() -> None:
    assert out_bill_no("PO26112300001") == "PO26112300001"
    derived = out_bill_no("PO26112300001_2")
    assert derived == out_bill_no("PO26112300001_2")
    assert derived.isalnum()
    assert len(derived) == 32
    assert out_bill_no("x" * 33) != "x" * 32
