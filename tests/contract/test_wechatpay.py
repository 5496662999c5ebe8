"""WechatPayTransfers against FakeWechatPay: signatures both ways, one bill per out_bill_no, the
buyer's confirmation, cancel and expiry, and a lost answer found again by a query."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from handlers.clock import FakeClock
from handlers.ports import TransferOrder, TransferStatus
from integrations.wechatpay.client import (
    CANCELLED_TEXT,
    WechatPayTransfers,
    config_problems,
    out_bill_no,
)
from integrations.wechatpay.fake import FakeWechatPay
from integrations.wechatpay.notify import (
    BadNotificationError,
    TransferNotice,
    WechatPayNotifications,
)
from tests.support.fakes import Served, serve
from tests.support.wechatpay import make_fake, pem, settings_for

ORDER = TransferOrder(
    out_biz_no="PO26112300001",
    amount_fen=1280,
    account="o-MYE42l80oelYMDE34nYD456Xoy",
    name="",
    title="补偿 订单 T88001",
    remark="少发配件补偿",
)
CREATE = "/v3/fund-app/mch-transfer/transfer-bills"


@pytest.fixture
async def fake_wechatpay(clock: FakeClock) -> AsyncIterator[Served[FakeWechatPay]]:
    fake = make_fake(clock)
    async with serve(fake.app()) as url:
        yield Served(fake, url)


def client_for(
    fake: FakeWechatPay, url: str, session: aiohttp.ClientSession, clock: FakeClock, **kw: object
) -> WechatPayTransfers:
    return WechatPayTransfers(settings_for(fake, url, **kw), session, clock)


def creates(fake: FakeWechatPay) -> int:
    return sum(1 for method, path, _ in fake.requests if (method, path) == ("POST", CREATE))


async def test_create_waits_for_the_buyer_with_the_confirm_package(
    fake_wechatpay: Served[FakeWechatPay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_wechatpay
    result = await client_for(fake, url, session, clock).transfer(ORDER)
    bill = fake.bills["PO26112300001"]
    assert result.status is TransferStatus.WAITING_BUYER
    assert result.confirm == bill.package_info != ""
    assert (result.reference, result.provider_status) == (
        bill.transfer_bill_no,
        "WAIT_USER_CONFIRM",
    )
    assert bill.params == {
        "appid": "wxf636efh567hg4356",
        "out_bill_no": "PO26112300001",
        "transfer_scene_id": "1011",
        "openid": "o-MYE42l80oelYMDE34nYD456Xoy",
        "transfer_amount": 1280,
        "transfer_remark": "补偿 订单 T88001",
        "notify_url": "https://refundops.example.com/wechatpay/transfer",
        "user_recv_perception": "商家赔付",
        "transfer_scene_report_infos": [
            {"info_type": "赔付原因", "info_content": "补偿 订单 T88001"}
        ],
    }
    assert fake.bad_signatures == 0


async def test_the_buyer_confirms_and_the_query_says_success(
    fake_wechatpay: Served[FakeWechatPay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_wechatpay
    client = client_for(fake, url, session, clock)
    await client.transfer(ORDER)
    waiting = await client.query(ORDER.out_biz_no)
    assert waiting.status is TransferStatus.WAITING_BUYER
    assert waiting.confirm == ""  # the query answer has no package_info: keep the create's
    fake.confirm(ORDER.out_biz_no)
    done = await client.query(ORDER.out_biz_no)
    assert (done.status, done.provider_status) == (TransferStatus.SUCCESS, "SUCCESS")
    assert done.reference == fake.bills[ORDER.out_biz_no].transfer_bill_no


@pytest.mark.parametrize("how", ["timeout", "lose"])
async def test_a_lost_answer_is_unknown_and_the_query_finds_the_one_bill(
    fake_wechatpay: Served[FakeWechatPay],
    session: aiohttp.ClientSession,
    clock: FakeClock,
    how: str,
) -> None:
    fake, url = fake_wechatpay
    fake.fail_next, fake.fail_how, fake.hang_s = 1, how, 0.6  # type: ignore[assignment]
    client = client_for(fake, url, session, clock)
    lost = await client.transfer(ORDER)
    assert lost.status is TransferStatus.UNKNOWN
    assert fake.made == 1
    found = await client.query(ORDER.out_biz_no)
    assert found.status is TransferStatus.WAITING_BUYER
    assert found.reference == fake.bills[ORDER.out_biz_no].transfer_bill_no
    # Sent again under the same number (原单重试) it is the same bill, now with its package.
    again = await client.transfer(ORDER)
    assert (again.status, again.reference) == (TransferStatus.WAITING_BUYER, found.reference)
    assert again.confirm == fake.bills[ORDER.out_biz_no].package_info
    assert (fake.made, creates(fake)) == (1, 2)


async def test_a_server_error_is_unknown_and_nothing_was_made(
    fake_wechatpay: Served[FakeWechatPay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_wechatpay
    fake.fail_next, fake.fail_how = 1, "error"
    client = client_for(fake, url, session, clock)
    result = await client.transfer(ORDER)
    assert result.status is TransferStatus.UNKNOWN
    assert "HTTP 500" in result.detail
    assert (await client.query(ORDER.out_biz_no)).status is TransferStatus.NOT_FOUND
    assert fake.made == 0


async def test_the_same_out_bill_no_is_one_bill(
    fake_wechatpay: Served[FakeWechatPay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_wechatpay
    client = client_for(fake, url, session, clock)
    named = TransferOrder(**{**ORDER.__dict__, "name": "王小明"})
    first = await client.transfer(named)
    again = await client.transfer(named)  # user_name is encrypted afresh (OAEP): still the same
    assert again == first
    assert (fake.made, creates(fake)) == (1, 2)


async def test_the_same_out_bill_no_with_other_parameters_answers_the_existing_bill(
    fake_wechatpay: Served[FakeWechatPay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_wechatpay
    client = client_for(fake, url, session, clock)
    await client.transfer(ORDER)
    fake.confirm(ORDER.out_biz_no)
    other = TransferOrder(**{**ORDER.__dict__, "amount_fen": 9900})
    result = await client.transfer(other)
    assert result.status is TransferStatus.SUCCESS
    assert "INVALID_REQUEST" in result.detail
    assert fake.made == 1
    assert fake.bills[ORDER.out_biz_no].params["transfer_amount"] == 1280


async def test_cancel_then_query_is_failed_with_the_reason(
    fake_wechatpay: Served[FakeWechatPay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_wechatpay
    client = client_for(fake, url, session, clock)
    await client.transfer(ORDER)
    cancelling = await client.cancel(ORDER.out_biz_no)
    assert (cancelling.status, cancelling.provider_status) == (
        TransferStatus.PROCESSING,
        "CANCELING",
    )
    ended = await client.query(ORDER.out_biz_no)
    assert (ended.status, ended.provider_status) == (TransferStatus.FAILED, "CANCELLED")
    assert ended.detail
    late = await client.cancel(ORDER.out_biz_no)
    assert late.status is TransferStatus.FAILED
    assert "cancel refused: INVALID_REQUEST" in late.detail
    assert (await client.cancel("PO-NEVER")).status is TransferStatus.NOT_FOUND


async def test_an_unconfirmed_bill_expires_as_cancelled(
    fake_wechatpay: Served[FakeWechatPay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_wechatpay
    client = client_for(fake, url, session, clock)
    await client.transfer(ORDER)
    clock.advance(hours=23)
    assert fake.expire_due() == []
    clock.advance(hours=1)
    assert fake.expire_due() == [ORDER.out_biz_no]
    expired = await client.query(ORDER.out_biz_no)
    assert (expired.status, expired.provider_status) == (TransferStatus.FAILED, "CANCELLED")
    assert expired.detail == CANCELLED_TEXT


async def test_a_refusal_by_the_buyer_or_bank_is_failed_with_its_reason(
    fake_wechatpay: Served[FakeWechatPay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_wechatpay
    client = client_for(fake, url, session, clock)
    await client.transfer(ORDER)
    fake.refuse(ORDER.out_biz_no, "PAYEE_ACCOUNT_ABNORMAL")
    failed = await client.query(ORDER.out_biz_no)
    assert (failed.status, failed.detail) == (TransferStatus.FAILED, "PAYEE_ACCOUNT_ABNORMAL")


async def test_business_refusals_are_final_when_no_bill_exists(
    fake_wechatpay: Served[FakeWechatPay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_wechatpay
    fake.balance_fen = 100
    result = await client_for(fake, url, session, clock).transfer(ORDER)
    assert (result.status, result.provider_status) == (TransferStatus.FAILED, "NOT_ENOUGH")
    fake.balance_fen = None
    wrong = client_for(fake, url, session, clock, user_recv_perception="现金奖励")
    refused = await wrong.transfer(ORDER)
    assert (refused.status, refused.provider_status) == (TransferStatus.FAILED, "INVALID_REQUEST")
    assert fake.made == 0


async def test_orders_that_must_not_leave_are_refused_before_sending(
    fake_wechatpay: Served[FakeWechatPay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_wechatpay
    client = client_for(fake, url, session, clock)
    review = TransferOrder(**{**ORDER.__dict__, "title": "好评返现 订单 T88001"})
    alipay = TransferOrder(**{**ORDER.__dict__, "account": "buyer@example.com"})
    large = TransferOrder(**{**ORDER.__dict__, "amount_fen": 200_000})
    for order in (review, alipay, large):
        result = await client.transfer(order)
        assert (result.status, result.provider_status) == (TransferStatus.FAILED, "NOT_SENT")
    assert fake.requests == []


async def test_a_request_signed_with_another_key_is_refused_and_not_believed(
    fake_wechatpay: Served[FakeWechatPay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_wechatpay
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    result = await client_for(fake, url, session, clock, private_key=pem(stranger)).transfer(ORDER)
    # The create and the query that should say whether a bill exists are both refused: with
    # no answer about the bill, the result stays unknown.
    assert fake.bad_signatures == 2
    assert fake.made == 0
    assert result.status is TransferStatus.UNKNOWN
    assert "SIGN_ERROR" in result.detail


async def test_an_answer_not_signed_by_wechat_pay_is_unknown(
    fake_wechatpay: Served[FakeWechatPay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, _ = fake_wechatpay
    impostor = FakeWechatPay(
        mchid=fake.mchid,
        appid=fake.appid,
        merchant_public_key=fake.merchant_public_key,
        merchant_serial_no=fake.merchant_serial_no,
        apiv3_key=fake.apiv3_key,
        public_key_id=fake.public_key_id,
        now=clock.now,
    )
    async with serve(impostor.app()) as other:
        client = WechatPayTransfers(settings_for(fake, other), session, clock)
        result = await client.transfer(ORDER)
    assert result.status is TransferStatus.UNKNOWN
    assert "bad signature" in result.detail
    assert impostor.made == 1  # it acted: only a query to the real one may say what happened


async def test_stale_answers_are_not_believed(
    fake_wechatpay: Served[FakeWechatPay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_wechatpay
    client = client_for(fake, url, session, clock)
    fake.now = lambda: clock.now() - timedelta(minutes=4)
    assert (await client.query("PO1")).status is TransferStatus.NOT_FOUND
    fake.now = lambda: clock.now() - timedelta(minutes=6)
    result = await client.query("PO1")
    assert result.status is TransferStatus.UNKNOWN


async def test_out_biz_nos_wechat_pay_does_not_take_map_to_one_fixed_bill_number(
    fake_wechatpay: Served[FakeWechatPay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_wechatpay
    client = client_for(fake, url, session, clock)
    retry = TransferOrder(**{**ORDER.__dict__, "out_biz_no": "PO26112300001_2"})
    assert (await client.transfer(retry)).status is TransferStatus.WAITING_BUYER
    (number,) = fake.bills
    assert number == out_bill_no("PO26112300001_2") != "PO26112300001_2"
    assert (await client.query("PO26112300001_2")).reference == fake.bills[number].transfer_bill_no


# -- the result notification ----------------------------------------------------------------


async def test_the_notification_is_verified_decrypted_and_delivered(
    fake_wechatpay: Served[FakeWechatPay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_wechatpay
    settings = settings_for(fake, url)
    await WechatPayTransfers(settings, session, clock).transfer(ORDER)
    fake.confirm(ORDER.out_biz_no)
    reader = WechatPayNotifications(settings, clock)
    received: list[TransferNotice] = []

    async def receive(request: web.Request) -> web.Response:
        try:
            received.append(reader.read(request.headers, await request.text()))
        except BadNotificationError as exc:
            return web.json_response({"code": "FAIL", "message": str(exc)}, status=400)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/wechatpay/transfer", receive)
    async with serve(app) as base:
        assert await fake.notify(session, base + "/wechatpay/transfer", ORDER.out_biz_no) == 204
    (notice,) = received
    assert notice.out_bill_no == ORDER.out_biz_no
    assert notice.result.status is TransferStatus.SUCCESS
    assert notice.result.reference == fake.bills[ORDER.out_biz_no].transfer_bill_no
    assert notice.id.startswith("EV-")


async def test_a_tampered_or_foreign_notification_is_refused(
    fake_wechatpay: Served[FakeWechatPay], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_wechatpay
    settings = settings_for(fake, url)
    await WechatPayTransfers(settings, session, clock).transfer(ORDER)
    fake.refuse(ORDER.out_biz_no)
    reader = WechatPayNotifications(settings, clock)
    headers, body = fake.notification(ORDER.out_biz_no)
    assert reader.read(headers, body).result.status is TransferStatus.FAILED
    tampered = body.replace("商家转账单据终态通知", "商家转账单据终态通知!")
    with pytest.raises(BadNotificationError, match="bad signature"):
        reader.read(headers, tampered)
    with pytest.raises(BadNotificationError, match="not signed"):
        reader.read({k: v for k, v in headers.items() if k != "Wechatpay-Signature"}, body)
    other_key = settings_for(fake, url, apiv3_key="0" * 32)
    with pytest.raises(BadNotificationError, match="does not decrypt"):
        WechatPayNotifications(other_key, clock).read(headers, body)
    clock.advance(minutes=6)
    with pytest.raises(BadNotificationError, match="timestamp"):
        reader.read(headers, body)


async def test_config_problems_name_what_is_missing(
    fake_wechatpay: Served[FakeWechatPay], clock: FakeClock
) -> None:
    fake, url = fake_wechatpay
    assert config_problems(settings_for(fake, url), clock) == []
    bad = settings_for(
        fake,
        url,
        mchid="",
        apiv3_key="short",
        public_key_id="",
        notify_url="http://x",
        user_recv_perception="现金奖励",
        report_infos=[{"info_type": "赔付原因", "info_content": "好评返现"}],
    )
    found = "\n".join(config_problems(bad, clock))
    for needle in ("mchid", "apiv3_key", "public_key_id", "https", "现金奖励", "好评返现"):
        assert needle in found
