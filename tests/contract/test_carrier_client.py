"""The carrier webhook client against FakeCarrier: signature, idempotency keys, retries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest

from handlers.clock import FakeClock
from handlers.errors import PermanentError, RetryableError
from handlers.ports import CarrierAnswer
from integrations.carrier.client import WebhookCarrier
from integrations.carrier.fake import FakeCarrier
from tests.support.fakes import Served

DATA = {
    "carrier": "SF",
    "tracking_no": "SF1234567890",
    "order_id": "T88001",
    "shop": "flagship",
    "platform": "taobao",
    "refund_ids": ["RF1"],
    "reason": "买家申请退款，拦截退回",
}
KEY = "carrier.intercept:intercept:SF:SF1234567890:1"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


def client(
    session: aiohttp.ClientSession, url: str, clock: FakeClock, secret: str, timeout_s: float = 5
) -> WebhookCarrier:
    return WebhookCarrier(session, url, secret, clock, timeout_s)


async def test_signed_request_is_accepted_and_carries_the_key(
    session: aiohttp.ClientSession, fake_carrier: Served[FakeCarrier], clock: FakeClock
) -> None:
    fake, url = fake_carrier
    answer = await client(session, url, clock, fake.secret).intercept(KEY, DATA)
    assert answer == CarrierAnswer("accepted", "已受理拦截")
    (request,) = fake.requests
    assert request["action"] == "intercept"
    assert request["idempotency_key"] == KEY
    assert request["headers"]["Idempotency-Key"] == KEY
    assert request["data"] == DATA
    assert request["sent_at"] == clock.now().isoformat()
    assert fake.bad_signatures == 0
    assert fake.intercepted() == ["SF1234567890"]


async def test_a_stale_timestamp_is_refused_like_a_bad_signature(
    session: aiohttp.ClientSession, fake_carrier: Served[FakeCarrier], clock: FakeClock
) -> None:
    fake, url = fake_carrier
    late = FakeClock(clock.now() + timedelta(seconds=301))
    with pytest.raises(PermanentError, match="HTTP 401"):
        await client(session, url, late, fake.secret).intercept(KEY, DATA)
    within = FakeClock(clock.now() + timedelta(seconds=299))
    assert (await client(session, url, within, fake.secret).intercept(KEY, DATA)).status == (
        "accepted"
    )
    assert fake.bad_signatures == 1


async def test_wrong_secret_is_a_permanent_error(
    session: aiohttp.ClientSession, fake_carrier: Served[FakeCarrier], clock: FakeClock
) -> None:
    fake, url = fake_carrier
    with pytest.raises(PermanentError, match="HTTP 401"):
        await client(session, url, clock, "not-the-secret").intercept(KEY, DATA)
    assert fake.bad_signatures == 1
    assert fake.effects == {}


async def test_a_repeated_key_intercepts_once_and_answers_the_same(
    session: aiohttp.ClientSession, fake_carrier: Served[FakeCarrier], clock: FakeClock
) -> None:
    fake, url = fake_carrier
    carrier = client(session, url, clock, fake.secret)
    first = await carrier.intercept(KEY, DATA)
    fake.status = "intercepted"
    again = await carrier.intercept(KEY, DATA)
    other = await carrier.intercept(KEY.replace(":1", ":2"), DATA)
    assert again == first
    assert other.status == "intercepted"
    assert len(fake.requests) == 3
    assert len(fake.effects) == 2


async def test_server_errors_and_429_are_retryable_with_the_hint(
    session: aiohttp.ClientSession, fake_carrier: Served[FakeCarrier], clock: FakeClock
) -> None:
    fake, url = fake_carrier
    carrier = client(session, url, clock, fake.secret)
    fake.fail_next, fake.fail_status = 1, 503
    with pytest.raises(RetryableError, match="HTTP 503"):
        await carrier.intercept(KEY, DATA)
    fake.fail_next, fake.fail_status, fake.retry_after = 1, 429, "7"
    with pytest.raises(RetryableError) as caught:
        await carrier.intercept(KEY, DATA)
    assert caught.value.defer == 7.0
    assert fake.effects == {}
    assert (await carrier.intercept(KEY, DATA)).status == "accepted"
    assert len(fake.effects) == 1


async def test_other_4xx_are_permanent(
    session: aiohttp.ClientSession, fake_carrier: Served[FakeCarrier], clock: FakeClock
) -> None:
    fake, url = fake_carrier
    fake.fail_next, fake.fail_status = 1, 422
    with pytest.raises(PermanentError, match="HTTP 422"):
        await client(session, url, clock, fake.secret).intercept(KEY, DATA)


async def test_a_refusal_is_an_answer_not_an_error(
    session: aiohttp.ClientSession, fake_carrier: Served[FakeCarrier], clock: FakeClock
) -> None:
    fake, url = fake_carrier
    fake.refuse["SF1234567890"] = "快件已派送，无法拦截"
    answer = await client(session, url, clock, fake.secret).intercept(KEY, DATA)
    assert answer == CarrierAnswer("failed", "快件已派送，无法拦截")
    assert fake.intercepted() == []


async def test_timeouts_and_unreachable_endpoints_are_retryable(
    session: aiohttp.ClientSession, fake_carrier: Served[FakeCarrier], clock: FakeClock
) -> None:
    fake, url = fake_carrier
    fake.delay_s = 0.5
    with pytest.raises(RetryableError, match="TimeoutError"):
        await client(session, url, clock, fake.secret, timeout_s=0.05).intercept(KEY, DATA)
    with pytest.raises(RetryableError):
        await client(session, "http://127.0.0.1:9/intercepts", clock, fake.secret).intercept(
            KEY, DATA
        )


async def test_an_unknown_status_is_retried_not_trusted(
    session: aiohttp.ClientSession, fake_carrier: Served[FakeCarrier], clock: FakeClock
) -> None:
    fake, url = fake_carrier
    fake.status = "maybe"
    with pytest.raises(RetryableError, match="unknown status 'maybe'"):
        await client(session, url, clock, fake.secret).intercept(KEY, DATA)
