"""SfInterceptor against FakeSf: signed forms, the return address and monthly card, one
intercept per key (a retried key repeats its requestID), and route pushes as tracking events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from handlers.clock import FakeClock
from handlers.errors import PermanentError, RetryableError
from integrations.sf.client import SfClient, SfInterceptor, request_id
from integrations.sf.fake import FakeSf
from integrations.sf.models import PUSH_ACK, RoutePush
from integrations.sf.settings import SfAddress
from tests.support.fakes import Served, serve

PARCEL = {
    "carrier": "顺丰",
    "tracking_no": "SF1400000001",
    "order_id": "T1",
    "shop": "s1",
    "platform": "pdd",
    "refund_ids": ["R1"],
    "reason": "买家退款",
}
RETURN_TO = SfAddress(
    province="广东省",
    city="深圳市",
    county="南山区",
    address="科技园1号",
    contact="仓库",
    phone="1",
)


@pytest.fixture
async def fake_sf() -> AsyncIterator[Served[FakeSf]]:
    fake = FakeSf()
    async with serve(fake.app()) as base:
        yield Served(fake, base + "/std/service")


def interceptor(
    session: aiohttp.ClientSession,
    url: str,
    clock: FakeClock,
    *,
    checkword: str = "sf-checkword",
    return_address: SfAddress | None = RETURN_TO,
) -> SfInterceptor:
    client = SfClient(
        session,
        api_base=url,
        partner_id="SFPARTNER",
        checkword=checkword,
        clock=clock,
        timeout_s=0.3,
    )
    return SfInterceptor(client, monthly_card="7551234567", return_address=return_address)


async def test_intercept_returns_the_parcel_with_a_signed_request(
    fake_sf: Served[FakeSf], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_sf
    answer = await interceptor(session, url, clock).intercept("k1", PARCEL)
    assert answer.status == "accepted"
    (made,) = fake.intercepts
    assert made.request_id == request_id("k1")
    assert made.msg["serviceCode"] == "2"
    assert made.msg["payMode"] == "4"
    assert made.msg["monthlyCardNo"] == "7551234567"
    assert made.msg["newDestAddress"]["county"] == "南山区"
    (form,) = fake.requests
    assert form["timestamp"] == str(int(clock.now().timestamp() * 1000))


async def test_same_key_twice_intercepts_once(
    fake_sf: Served[FakeSf], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_sf
    sf = interceptor(session, url, clock)
    first = await sf.intercept("k1", PARCEL)
    assert await sf.intercept("k1", PARCEL) == first
    assert fake.intercepted() == ["SF1400000001"]
    assert len(fake.requests) == 1


async def test_lost_answer_repeats_the_request_id_and_sf_acts_once(
    fake_sf: Served[FakeSf], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_sf
    fake.hang_next = 1
    sf = interceptor(session, url, clock)
    with pytest.raises(RetryableError):
        await sf.intercept("k1", PARCEL)
    clock.advance(seconds=30)
    answer = await sf.intercept("k1", PARCEL)
    assert answer.status == "accepted"
    assert fake.intercepted() == ["SF1400000001"]
    assert fake.repeats == 1
    assert {r["requestID"] for r in fake.requests} == {request_id("k1")}


async def test_busy_and_5xx_are_retried(
    fake_sf: Served[FakeSf], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_sf
    fake.busy_next, fake.fail_next = 1, 1
    sf = interceptor(session, url, clock)
    for _ in range(2):
        with pytest.raises(RetryableError):
            await sf.intercept("k1", PARCEL)
    assert (await sf.intercept("k1", PARCEL)).status == "accepted"
    assert fake.intercepted() == ["SF1400000001"]


async def test_bad_checkword_is_a_permanent_a1006(
    fake_sf: Served[FakeSf], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_sf
    with pytest.raises(PermanentError, match="A1006"):
        await interceptor(session, url, clock, checkword="wrong").intercept("k1", PARCEL)
    assert fake.bad_digests == 1
    assert fake.intercepts == []


async def test_refusal_is_a_failed_answer_kept_for_the_key(
    fake_sf: Served[FakeSf], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_sf
    fake.refuse["SF1400000001"] = "快件已签收"
    sf = interceptor(session, url, clock)
    answer = await sf.intercept("k1", PARCEL)
    assert answer.status == "failed"
    assert "已签收" in answer.detail
    assert await sf.intercept("k1", PARCEL) == answer
    assert len(fake.requests) == 1


async def test_return_without_an_address_or_another_carrier_sends_nothing(
    fake_sf: Served[FakeSf], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, url = fake_sf
    with pytest.raises(PermanentError, match="return_address"):
        await interceptor(session, url, clock, return_address=None).intercept("k1", PARCEL)
    with pytest.raises(PermanentError, match="ZTO"):
        await interceptor(session, url, clock).intercept("k2", PARCEL | {"carrier": "ZTO"})
    assert fake.requests == []


async def test_route_push_becomes_tracking_events(
    fake_sf: Served[FakeSf], session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake, _ = fake_sf
    received: list[dict[str, Any]] = []

    async def push(request: web.Request) -> web.Response:
        received.extend(RoutePush.model_validate_json(await request.read()).tracking())
        return web.json_response(PUSH_ACK)

    app = web.Application()
    app.router.add_post("/sf/routes", push)
    later = clock.now() + timedelta(hours=20)
    async with serve(app) as ours:
        status, body = await fake.push_routes(
            session,
            ours + "/sf/routes",
            [
                ("SF1400000001", "80", later, "已签收"),
                ("SF1400000001", "50", clock.now(), "顺丰速运 已收取快件"),
            ],
        )
    assert status == 200
    assert '"0000"' in body
    assert [e["data"]["status"] for e in received] == ["picked_up", "delivered"]
    first = received[0]
    assert first["type"] == "shipment.tracking"
    assert first["data"]["carrier"] == "SF"
    assert first["data"]["tracking_no"] == "SF1400000001"
