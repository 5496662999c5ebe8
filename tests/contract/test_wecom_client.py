"""WeComClient and WebhookClient against FakeWeComAPI: tokens, error codes, limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from handlers.errors import PermanentError, RetryableError, ThrottledError
from integrations.wecom.client import WebhookClient, WeComClient
from integrations.wecom.fake import FakeWeComAPI
from storage.coordination import Coordination, InProcessCoordination
from storage.redis_coordination import RedisCoordination
from tests.support.fakes import serve

CARD = {
    "card_type": "button_interaction",
    "main_title": {"title": "退款审批 R12", "desc": "¥128.00 · 淘宝"},
    "task_id": "refund-R12-3",
    "button_list": [{"text": "同意", "style": 1, "key": "approve:R12:3"}],
}


@pytest.fixture
async def api() -> AsyncIterator[FakeWeComAPI]:
    fake = FakeWeComAPI(users={"zhangsan", "lisi"})
    async with serve(fake.app()) as fake.base_url:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def client(
    session: aiohttp.ClientSession, api: FakeWeComAPI, coord: Coordination, **kw: str
) -> WeComClient:
    return WeComClient(
        session,
        coord,
        api_base=api.base_url,
        corp_id=api.corp_id,
        agent_id=api.agent_id,
        secret=kw.get("secret", api.secret),
        busy_delay_s=0.001,
    )


async def test_token_is_fetched_once_and_shared_per_app(
    api: FakeWeComAPI, session: aiohttp.ClientSession
) -> None:
    coord = InProcessCoordination()
    first, second = client(session, api, coord), client(session, api, coord)
    await asyncio.gather(
        *(c.send_text("zhangsan", f"hi {i}") for i, c in enumerate([first, second] * 5))
    )
    assert api.tokens_issued == 1
    assert len(api.texts) == 10


async def test_expired_and_revoked_tokens_are_refetched_then_retried_once(
    api: FakeWeComAPI, session: aiohttp.ClientSession
) -> None:
    wecom = client(session, api, InProcessCoordination())
    await wecom.send_text("zhangsan", "one")
    api.expire_tokens()
    await wecom.send_text("zhangsan", "two")
    assert api.tokens_issued == 2
    assert [c.errcode for c in api.app_calls("/cgi-bin/message/send")] == [0, 42001, 0]
    api.tokens.clear()
    await wecom.send_text("zhangsan", "three")
    assert api.tokens_issued == 3
    assert [c.errcode for c in api.app_calls("/cgi-bin/message/send")][-2:] == [40014, 0]
    api.fail_next = [40001, 40001]
    with pytest.raises(RetryableError, match="fresh access token was refused"):
        await wecom.send_text("zhangsan", "four")


async def test_error_codes_map_to_our_errors(
    api: FakeWeComAPI, session: aiohttp.ClientSession
) -> None:
    wecom = client(session, api, InProcessCoordination())
    api.fail_next = [45009]
    with pytest.raises(ThrottledError) as throttled:
        await wecom.send_text("zhangsan", "x")
    assert throttled.value.defer == 60
    api.fail_next = [45033]
    with pytest.raises(ThrottledError):
        await wecom.send_text("zhangsan", "x")
    api.untrusted_ip = True
    with pytest.raises(PermanentError, match="企业可信IP"):
        await wecom.send_text("zhangsan", "x")
    api.untrusted_ip = False
    with pytest.raises(PermanentError, match="可见范围"):
        await wecom.send_text("stranger", "x")
    api.fail_next = [-1, -1]
    await wecom.send_text("zhangsan", "busy twice, then through")
    api.fail_next = [-1, -1, -1, -1]
    with pytest.raises(RetryableError, match="-1"):
        await wecom.send_text("zhangsan", "x")
    with pytest.raises(PermanentError, match=r"wecom\.secret"):
        await client(session, api, InProcessCoordination(), secret="wrong").send_text("lisi", "x")


async def test_cards_and_single_use_response_codes(
    api: FakeWeComAPI, session: aiohttp.ClientSession
) -> None:
    wecom = client(session, api, InProcessCoordination())
    sent = await wecom.send_card("zhangsan|lisi|gone", CARD)
    assert sent.response_code
    assert api.recipients["refund-R12-3"] == ["zhangsan", "lisi"]
    with pytest.raises(PermanentError, match="task_id refund-R12-3 exists"):
        await wecom.send_card("zhangsan", CARD)
    updated = {**CARD, "main_title": {"title": "退款审批 R12", "desc": "已通过"}}
    await wecom.update_card(sent.response_code, updated)
    assert api.cards["refund-R12-3"]["main_title"]["desc"] == "已通过"
    with pytest.raises(PermanentError, match="invalid response_code"):
        await wecom.update_card(sent.response_code, updated)
    await wecom.update_card(api.click_code("refund-R12-3"), CARD)
    (body,) = [
        c.body for c in api.app_calls("/cgi-bin/message/update_template_card") if c.errcode == 0
    ][:1]
    assert body["atall"] == 1
    assert body["agentid"] == api.agent_id


async def test_webhook_keys_and_the_twenty_a_minute_limit(
    api: FakeWeComAPI, session: aiohttp.ClientSession
) -> None:
    hook = WebhookClient(session)
    for i in range(20):
        await hook.send_markdown(api.webhook_url(), f"**第 {i} 条**")
    with pytest.raises(ThrottledError) as caught:
        await hook.send_markdown(api.webhook_url(), "21st")
    assert caught.value.defer == 60
    with pytest.raises(ThrottledError) as caught:
        await WebhookClient(session, throttle_s=5).send_markdown(api.webhook_url(), "22nd")
    assert caught.value.defer == 5
    with pytest.raises(PermanentError, match="93000"):
        await hook.send_markdown(api.webhook_url("removed"), "x")
    assert api.max_per_minute("robot-key") == 20


async def test_response_urls_are_single_use(
    api: FakeWeComAPI, session: aiohttp.ClientSession
) -> None:
    hook = WebhookClient(session)
    url = api.response_url()
    await hook.send_markdown(url, "已处理", "response_url")
    with pytest.raises(PermanentError):
        await hook.send_markdown(url, "again", "response_url")
    assert api.response_posts == [{"msgtype": "markdown", "markdown": {"content": "已处理"}}]


async def test_network_trouble_is_retryable(session: aiohttp.ClientSession) -> None:
    wecom = WeComClient(
        session,
        InProcessCoordination(),
        api_base="http://127.0.0.1:9",
        corp_id="c",
        agent_id=1,
        secret="s",
    )
    with pytest.raises(RetryableError):
        await wecom.send_text("zhangsan", "x")


@pytest.mark.redis
async def test_token_is_shared_across_instances_through_redis(
    api: FakeWeComAPI, session: aiohttp.ClientSession, redis_url: str
) -> None:
    instances = [await RedisCoordination.connect(redis_url) for _ in range(3)]
    try:
        clients = [client(session, api, coord) for coord in instances]
        await asyncio.gather(*(c.send_text("lisi", str(i)) for i, c in enumerate(clients * 3)))
        assert api.tokens_issued == 1
        api.expire_tokens()
        await asyncio.gather(*(c.send_text("lisi", "after expiry") for c in clients))
        assert api.tokens_issued == 2, "one refresh under the lock, not one per instance"
    finally:
        for coord in instances:
            await coord.close()
