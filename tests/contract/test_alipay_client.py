"""AlipayClient against FakeAlipay: signatures both ways, one order per out_biz_no, and a lost
answer is found again by a query rather than sent twice."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from handlers.clock import FakeClock
from handlers.ports import TransferOrder, TransferStatus
from integrations.payout.client import AlipayClient
from integrations.payout.fake import FakeAlipay
from integrations.payout.models import QUERY, TRANSFER, QueryBiz
from tests.support.fakes import Served
from tests.support.payout import APP_ID, alipay_key, app_key

ORDER = TransferOrder(
    out_biz_no="PO26112300001",
    amount_fen=12800,
    account="13800138000",
    name="王小明",
    title="活动返现 订单 T88001",
    remark="活动返现",
)


def client_for(
    session: aiohttp.ClientSession,
    url: str,
    clock: FakeClock,
    *,
    key: rsa.RSAPrivateKey | None = None,
    alipay_public: rsa.RSAPublicKey | None = None,
    **extra: str,
) -> AlipayClient:
    return AlipayClient(
        session,
        app_id=APP_ID,
        private_key=key or app_key(),
        alipay_public_key=alipay_public or alipay_key().public_key(),
        gateway=url,
        clock=clock,
        timeout_s=0.3,
        **extra,
    )


async def test_transfer_pays_once_with_a_verified_answer(
    fake_alipay: Served[FakeAlipay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_alipay
    result = await client_for(session, url, clock).transfer(ORDER)
    assert result.status is TransferStatus.SUCCESS
    (order,) = fake.paid()
    assert result.reference == order.order_id
    assert result.provider_status == "SUCCESS"
    (sent,) = fake.calls(TRANSFER)
    assert sent == {
        "out_biz_no": "PO26112300001",
        "trans_amount": "128.00",
        "product_code": "TRANS_ACCOUNT_NO_PWD",
        "biz_scene": "DIRECT_TRANSFER",
        "order_title": "活动返现 订单 T88001",
        "payee_info": {
            "identity": "13800138000",
            "identity_type": "ALIPAY_LOGON_ID",
            "name": "王小明",
        },
        "remark": "活动返现",
    }
    assert fake.bad_signatures == 0


async def test_the_same_out_biz_no_is_one_order(
    fake_alipay: Served[FakeAlipay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_alipay
    client = client_for(session, url, clock)
    first = await client.transfer(ORDER)
    again = await client.transfer(ORDER)
    assert again == first
    assert len(fake.calls(TRANSFER)) == 2
    assert len(fake.paid()) == 1
    assert fake.mismatched_repeats == 0


async def test_a_request_signed_with_the_wrong_key_is_refused(
    fake_alipay: Served[FakeAlipay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_alipay
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    result = await client_for(session, url, clock, key=stranger).transfer(ORDER)
    assert fake.bad_signatures == 1
    assert fake.orders == {}
    # The refusal is unsigned, so it proves nothing either way: unknown, not failed.
    assert result.status is TransferStatus.UNKNOWN
    assert "isv.invalid-signature" in result.detail


async def test_an_answer_not_signed_by_alipay_is_not_believed(
    fake_alipay: Served[FakeAlipay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_alipay
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    result = await client_for(session, url, clock, alipay_public=impostor).transfer(ORDER)
    assert result.status is TransferStatus.UNKNOWN
    assert "not signed by Alipay" in result.detail
    found = await client_for(session, url, clock).query(ORDER.out_biz_no)
    assert found.status is TransferStatus.SUCCESS
    assert len(fake.paid()) == 1


@pytest.mark.parametrize("how", ["disconnect", "timeout", "gateway"])
async def test_a_lost_answer_is_found_by_query_not_by_sending_again(
    fake_alipay: Served[FakeAlipay],
    session: aiohttp.ClientSession,
    clock: FakeClock,
    how: str,
) -> None:
    fake, url = fake_alipay
    fake.lose_next, fake.lose_how, fake.hang_s = 1, how, 0.6  # type: ignore[assignment]
    client = client_for(session, url, clock)
    lost = await client.transfer(ORDER)
    assert lost.status is TransferStatus.UNKNOWN
    assert len(fake.paid()) == 1
    found = await client.query(ORDER.out_biz_no)
    assert found.status is TransferStatus.SUCCESS
    assert found.reference == fake.paid()[0].order_id
    assert [r["method"] for r in fake.requests] == [TRANSFER, QUERY]


async def test_query_of_a_transfer_that_never_arrived(
    fake_alipay: Served[FakeAlipay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    _, url = fake_alipay
    result = await client_for(session, url, clock).query("PO-NEVER-SENT")
    assert result.status is TransferStatus.NOT_FOUND
    assert result.provider_status == "ORDER_NOT_EXIST"


async def test_business_refusals_are_final_and_busy_is_unknown(
    fake_alipay: Served[FakeAlipay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_alipay
    client = client_for(session, url, clock)
    fake.refuse[ORDER.account] = ("PAYEE_NOT_EXIST", "收款账号不存在")
    refused = await client.transfer(ORDER)
    assert refused.status is TransferStatus.FAILED
    assert (refused.provider_status, refused.detail) == ("PAYEE_NOT_EXIST", "收款账号不存在")
    del fake.refuse[ORDER.account]
    fake.busy_next = 1
    busy = await client.transfer(ORDER)
    assert busy.status is TransferStatus.UNKNOWN
    assert fake.orders == {}
    nameless = await client.transfer(
        TransferOrder(out_biz_no="PO2", amount_fen=500, account="a@b.cn", name="", title="t")
    )
    assert (nameless.status, nameless.provider_status) == (
        TransferStatus.FAILED,
        "PAYEE_USER_INFO_ERROR",
    )


async def test_a_dealing_transfer_settles_on_a_later_query(
    fake_alipay: Served[FakeAlipay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_alipay
    fake.dealing_next = 1
    client = client_for(session, url, clock)
    assert (await client.transfer(ORDER)).status is TransferStatus.PROCESSING
    assert (await client.query(ORDER.out_biz_no)).status is TransferStatus.PROCESSING
    assert (await client.query(ORDER.out_biz_no)).status is TransferStatus.SUCCESS


async def test_stale_timestamps_and_unknown_apps_are_refused(
    fake_alipay: Served[FakeAlipay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_alipay
    late = FakeClock(clock.now() + timedelta(hours=1))
    result = await client_for(session, url, late).transfer(ORDER)
    assert "isv.invalid-timestamp" in result.detail
    fake.app_id = "2021000000000000"
    result = await client_for(session, url, clock).transfer(ORDER)
    assert "isv.invalid-app-id" in result.detail
    assert fake.orders == {}


def test_the_signed_form_carries_every_common_parameter(clock: FakeClock) -> None:
    client = AlipayClient(
        None,  # type: ignore[arg-type]
        app_id=APP_ID,
        private_key=app_key(),
        alipay_public_key=alipay_key().public_key(),
        gateway="http://unused",
        clock=clock,
        app_cert_sn="50fa7bc5dc305a4fbdbe166689ddc827",
        root_cert_sn="687b59193f3f462dd5336e5abf83c5d8_02941eef3187dddf3d3b83462e1dfcf6",
    )
    form = client.request(QUERY, QueryBiz(out_biz_no="PO1"))
    assert form["timestamp"] == "2026-11-23 10:00:00"
    assert form["biz_content"] == (
        '{"out_biz_no":"PO1","product_code":"TRANS_ACCOUNT_NO_PWD","biz_scene":"DIRECT_TRANSFER"}'
    )
    assert form["app_cert_sn"] == "50fa7bc5dc305a4fbdbe166689ddc827"
    assert {"app_id", "method", "format", "charset", "sign_type", "version", "sign"} <= set(form)
