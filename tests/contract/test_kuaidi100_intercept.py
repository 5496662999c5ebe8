"""Kuaidi100Interceptor against FakeKuaidi100's interceptOrder: signed requests with the
courier account, one intercept per key whatever happens, and the result callback verified."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web

from handlers.clock import FakeClock
from handlers.errors import PermanentError, RetryableError
from integrations.kuaidi100.callback import ACK, CallbackError, intercept_result
from integrations.kuaidi100.client import CourierAccount, Kuaidi100Interceptor
from integrations.kuaidi100.fake import FakeKuaidi100
from integrations.kuaidi100.settings import CallbackFields
from tests.support.fakes import Served, serve

PARCEL = {
    "carrier": "中通",
    "tracking_no": "ZT7700001",
    "order_id": "T1",
    "shop": "s1",
    "platform": "taobao",
    "refund_ids": ["R1"],
    "reason": "买家退款",
}


@pytest.fixture
async def fake_kuaidi100(clock: FakeClock) -> AsyncIterator[Served[FakeKuaidi100]]:
    fake = FakeKuaidi100(now=clock.now)
    async with serve(fake.app()) as base:
        yield Served(fake, base)


def interceptor(
    session: aiohttp.ClientSession,
    url: str,
    clock: FakeClock,
    *,
    secret: str = "kuaidi100-secret",
    callback_url: str = "",
) -> Kuaidi100Interceptor:
    return Kuaidi100Interceptor(
        session,
        api_base=url,
        key="kuaidi100-key",
        secret=secret,
        clock=clock,
        courier={"ZTO": CourierAccount(partner_id="ZTO-P", partner_key="ZTO-K")},
        intercept_type="RETURN_SEND_ADDR",
        timeout_s=0.3,
        callback_url=callback_url,
        callback_salt="cb-salt",
    )


async def test_intercept_is_accepted_with_the_courier_account(
    fake_kuaidi100: Served[FakeKuaidi100], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_kuaidi100
    answer = await interceptor(session, url, clock).intercept("k1", PARCEL)
    assert answer.status == "accepted"
    assert "KD00000001" in answer.detail
    (made,) = fake.intercepts
    assert made.param["kuaidicom"] == "zhongtong"
    assert made.param["partnerId"] == "ZTO-P"
    assert made.param["interceptType"] == "RETURN_SEND_ADDR"
    assert made.param["salt"] == "cb-salt"


async def test_same_key_twice_intercepts_once(
    fake_kuaidi100: Served[FakeKuaidi100], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_kuaidi100
    client = interceptor(session, url, clock)
    first = await client.intercept("k1", PARCEL)
    again = await client.intercept("k1", PARCEL)
    assert again == first
    assert fake.intercepted() == ["ZT7700001"]
    assert len(fake.requests) == 1


async def test_wrong_secret_is_refused_by_the_fake(
    fake_kuaidi100: Served[FakeKuaidi100], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_kuaidi100
    answer = await interceptor(session, url, clock, secret="wrong").intercept("k1", PARCEL)
    assert answer.status == "failed"
    assert fake.bad_signatures == 1
    assert fake.intercepts == []


async def test_stale_timestamp_is_refused(
    fake_kuaidi100: Served[FakeKuaidi100], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_kuaidi100
    fake.now = lambda: clock.now() + timedelta(hours=1)
    answer = await interceptor(session, url, clock).intercept("k1", PARCEL)
    assert answer.status == "failed"
    assert "过期" in answer.detail
    assert fake.intercepts == []


async def test_delivered_parcel_is_a_failed_answer_with_the_reason(
    fake_kuaidi100: Served[FakeKuaidi100], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_kuaidi100
    fake.refuse["ZT7700001"] = "快件已签收，无法拦截"
    answer = await interceptor(session, url, clock).intercept("k1", PARCEL)
    assert answer.status == "failed"
    assert "已签收" in answer.detail


async def test_5xx_is_retried_and_then_sent_once(
    fake_kuaidi100: Served[FakeKuaidi100], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_kuaidi100
    fake.fail_next = 1
    client = interceptor(session, url, clock)
    with pytest.raises(RetryableError):
        await client.intercept("k1", PARCEL)
    answer = await client.intercept("k1", PARCEL)
    assert answer.status == "accepted"
    assert fake.intercepted() == ["ZT7700001"]


async def test_lost_answer_is_never_sent_again(
    fake_kuaidi100: Served[FakeKuaidi100], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_kuaidi100
    fake.hang_next = 1
    client = interceptor(session, url, clock)
    with pytest.raises(PermanentError, match="不再重发"):
        await client.intercept("k1", PARCEL)
    with pytest.raises(PermanentError):
        await client.intercept("k1", PARCEL)
    assert fake.intercepted() == ["ZT7700001"]
    assert len(fake.requests) == 1


async def test_missing_courier_account_is_permanent_and_sends_nothing(
    fake_kuaidi100: Served[FakeKuaidi100], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_kuaidi100
    with pytest.raises(PermanentError, match=r"couriers\.YTO"):
        await interceptor(session, url, clock).intercept("k1", PARCEL | {"carrier": "圆通"})
    assert fake.requests == []


async def test_result_callback_is_verified_into_an_intercept_result(
    fake_kuaidi100: Served[FakeKuaidi100], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_kuaidi100
    received: list[dict[str, object]] = []

    async def callback(request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        try:
            received.append(intercept_result(form, salt="cb-salt", fields=CallbackFields()))
        except CallbackError:
            return web.json_response({"result": False}, status=400)
        return web.json_response(ACK)

    app = web.Application()
    app.router.add_post("/cb", callback)
    async with serve(app) as ours:
        client = interceptor(session, url, clock, callback_url=ours + "/cb")
        await client.intercept("k1", PARCEL)
        status, _ = await fake.send_result(session, "ZT7700001", "SUCCESS", "已拦截，退回中")
    assert status == 200
    (event,) = received
    assert event["type"] == "intercept.result"
    assert event["data"] == {
        "carrier": "ZTO",
        "tracking_no": "ZT7700001",
        "result": "intercepted",
        "detail": "已拦截，退回中",
    }


async def test_callback_with_a_forged_sign_or_unknown_result_is_refused(
    fake_kuaidi100: Served[FakeKuaidi100], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_kuaidi100
    await interceptor(session, url, clock).intercept("k1", PARCEL)
    _, form = fake.result_form("ZT7700001", "FAIL", "已派送")
    event = intercept_result(form, salt="cb-salt", fields=CallbackFields())
    assert event["data"]["result"] == "failed"
    assert intercept_result(form, salt="cb-salt", fields=CallbackFields())["id"] == event["id"]
    with pytest.raises(CallbackError):
        intercept_result(form, salt="other", fields=CallbackFields())
    _, odd = fake.result_form("ZT7700001", "WHATEVER")
    with pytest.raises(CallbackError, match="unknown result"):
        intercept_result(odd, salt="cb-salt", fields=CallbackFields())
