"""The DingTalk client against FakeDingtalk: token, cards, robot messages, error codes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest

from handlers.clock import FakeClock
from handlers.errors import PermanentError, RetryableError, ThrottledError
from integrations.dingtalk.client import (
    CardExistsError,
    CustomRobot,
    DingtalkClient,
    SessionExpiredError,
)
from integrations.dingtalk.fake import FakeDingtalk
from integrations.dingtalk.models import (
    CARD_TOPIC,
    ROBOT_TOPIC,
    CardData,
    CreateAndDeliver,
    GroupDeliverModel,
    RobotSend,
    Text,
    UpdateCard,
)
from integrations.dingtalk.render import group_message, robot_text
from integrations.dingtalk.settings import DingtalkSettings
from storage.coordination import Coordination, InProcessCoordination
from storage.redis_coordination import RedisCoordination
from tests.support.dingtalk import CHAT, ROBOT_SECRET, running_fake


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[FakeDingtalk]:
    async with running_fake(clock) as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


def client_for(
    fake: FakeDingtalk,
    http: aiohttp.ClientSession,
    secret: str | None = None,
    coord: Coordination | None = None,
    agent_id: int | None = None,
) -> DingtalkClient:
    settings = DingtalkSettings(
        agent_id=fake.agent_id if agent_id is None else agent_id,
        app_key=fake.app_key,
        app_secret=secret or fake.app_secret,
        robot_code=fake.robot_code,
        card_template_id="t.schema",
        api_base=fake.base_url.rstrip("/"),
        oapi_base=fake.base_url.rstrip("/"),
    )
    return DingtalkClient(http, settings, coord or InProcessCoordination())


def card(track: str = "refund-R1", chat: str = CHAT, **params: str) -> CreateAndDeliver:
    return CreateAndDeliver(
        card_template_id="t.schema",
        out_track_id=track,
        callback_type="STREAM",
        card_data=CardData(card_param_map={"handle": "R1", "status": "待审核", **params}),
        open_space_id=f"dtv1.card//IM_GROUP.{chat}",
        im_group_open_deliver_model=GroupDeliverModel(
            robot_code="dingrobot", at_user_ids={"ding-sup1": "sup1"}
        ),
    )


async def test_access_token_is_fetched_once_and_shared(
    fake: FakeDingtalk, session: aiohttp.ClientSession
) -> None:
    client = client_for(fake, session)
    tokens = await asyncio.gather(*(client.token() for _ in range(8)))
    assert len(set(tokens)) == 1
    assert await client.token() == tokens[0]
    assert fake.tokens_issued == 1


@pytest.mark.redis
async def test_instances_share_one_token_through_redis(
    fake: FakeDingtalk, session: aiohttp.ClientSession, redis_url: str
) -> None:
    first, second = [await RedisCoordination.connect(redis_url) for _ in range(2)]
    try:
        a, b = client_for(fake, session, coord=first), client_for(fake, session, coord=second)
        tokens = await asyncio.gather(*(c.token() for c in (a, b) * 4))
        assert len(set(tokens)) == 1
        assert fake.tokens_issued == 1
        fake.expire_tokens()
        await a.send_group(CHAT, *group_message("刷新"))
        await b.send_group(CHAT, *group_message("共用新的"))
        assert fake.tokens_issued == 2
        assert await b.token() == await a.token() != tokens[0]
    finally:
        await first.close()
        await second.close()


async def test_a_refused_token_is_refreshed_and_the_call_retried_once(
    fake: FakeDingtalk, session: aiohttp.ClientSession
) -> None:
    client = client_for(fake, session)
    await client.send_group(CHAT, *group_message("第一条"))
    fake.expire_tokens()
    await client.send_group(CHAT, *group_message("第二条"))
    assert fake.tokens_issued == 2
    assert fake.count("POST", "/v1.0/robot/groupMessages/send") == 3
    assert [m["param"]["content"] for m in fake.group_messages] == ["第一条", "第二条"]


async def test_wrong_app_secret_is_permanent(
    fake: FakeDingtalk, session: aiohttp.ClientSession
) -> None:
    client = client_for(fake, session, secret="not-the-secret")
    with pytest.raises(PermanentError, match="invalidClientIdOrSecret"):
        await client.send_group(CHAT, *group_message("x"))
    with pytest.raises(PermanentError, match="authFailed"):
        await client.open_connection()


async def test_create_and_deliver_then_update_in_place(
    fake: FakeDingtalk, session: aiohttp.ClientSession
) -> None:
    client = client_for(fake, session)
    await client.create_and_deliver(card())
    (created,) = fake.cards.values()
    assert created.space_id == f"dtv1.card//IM_GROUP.{CHAT}"
    assert created.at_user_ids == {"ding-sup1": "sup1"}
    assert created.callback_type == "STREAM"
    with pytest.raises(CardExistsError):
        await client.create_and_deliver(card())
    await client.update_card(
        UpdateCard(
            out_track_id="refund-R1", card_data=CardData(card_param_map={"status": "已通过"})
        )
    )
    assert created.params == {"handle": "R1", "status": "已通过"}
    with pytest.raises(PermanentError, match="cardNotExist"):
        await client.update_card(
            UpdateCard(out_track_id="refund-R9", card_data=CardData(card_param_map={"a": "b"}))
        )


async def test_failed_delivery_and_server_errors_are_told_apart(
    fake: FakeDingtalk, session: aiohttp.ClientSession
) -> None:
    client = client_for(fake, session)
    fake.unreachable_groups.add("cidGONE==")
    with pytest.raises(PermanentError, match="机器人不在该群中"):
        await client.create_and_deliver(card(chat="cidGONE=="))
    fake.fail_next["/v1.0/card/instances/createAndDeliver"] = 1
    with pytest.raises(RetryableError, match="503"):
        await client.create_and_deliver(card())
    await client.create_and_deliver(card())
    assert "refund-R1" in fake.cards


async def test_open_connection_subscribes_messages_and_card_callbacks(
    fake: FakeDingtalk, session: aiohttp.ClientSession
) -> None:
    conn = await client_for(fake, session).open_connection()
    assert conn.endpoint.startswith("ws://")
    assert conn.ticket
    (opened,) = fake.opens
    assert opened["clientId"] == fake.app_key
    assert {(s["type"], s["topic"]) for s in opened["subscriptions"]} == {
        ("CALLBACK", ROBOT_TOPIC),
        ("CALLBACK", CARD_TOPIC),
    }


async def test_session_webhook_replies_until_it_expires(
    fake: FakeDingtalk, session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    client = client_for(fake, session)
    url, _ = fake.session(CHAT, ttl_s=60)
    await client.reply_by_session(url, robot_text("好的"))
    assert fake.session_replies[0]["text"] == {"content": "好的"}
    clock.advance(seconds=61)
    with pytest.raises(SessionExpiredError, match="300001"):
        await client.reply_by_session(url, robot_text("晚了"))
    assert len(fake.session_replies) == 1


async def test_custom_robot_signs_each_send(
    fake: FakeDingtalk, session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    url = fake.add_robot(ROBOT_SECRET)
    robot = CustomRobot(session, clock, 5.0)
    await robot.send(url, ROBOT_SECRET, robot_text("签名正确"))
    assert fake.robot_messages[0]["text"] == {"content": "签名正确"}
    with pytest.raises(PermanentError, match="310000 sign not match"):
        await robot.send(url, "SECwrong", robot_text("签名错误"))
    late = CustomRobot(session, FakeClock(clock.now().replace(year=2025)), 5.0)
    with pytest.raises(PermanentError, match="310000 invalid timestamp"):
        await late.send(url, ROBOT_SECRET, robot_text("时间戳过期"))
    with pytest.raises(PermanentError, match="300001"):
        await robot.send(
            url.replace("access_token=", "access_token=x"), ROBOT_SECRET, robot_text("?")
        )
    assert fake.robot_errors == [310000, 310000, 300001]


async def test_custom_robot_limits_map_to_our_errors(
    fake: FakeDingtalk, session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    url = fake.add_robot(ROBOT_SECRET)
    robot = CustomRobot(session, clock, 5.0)
    too_long = RobotSend(msgtype="text", text=Text(content="长" * 7000))
    with pytest.raises(PermanentError, match="460101"):
        await robot.send(url, ROBOT_SECRET, too_long)
    for i in range(20):
        await robot.send(url, ROBOT_SECRET, robot_text(f"第{i}条"))
    with pytest.raises(ThrottledError, match="130101") as caught:
        await robot.send(url, ROBOT_SECRET, robot_text("第21条"))
    assert caught.value.defer == 600
    clock.advance(minutes=5)
    with pytest.raises(ThrottledError):
        await robot.send(url, ROBOT_SECRET, robot_text("还在禁言"))
    clock.advance(minutes=5, seconds=1)
    await robot.send(url, ROBOT_SECRET, robot_text("恢复了"))
    assert len(fake.robot_messages) == 21
    fake.throttle_next_robot = 1
    with pytest.raises(ThrottledError, match="130101") as caught:
        await CustomRobot(session, clock, 5.0, mute_s=30).send(url, ROBOT_SECRET, robot_text("x"))
    assert caught.value.defer == 30


async def test_work_notices_reach_each_person_once_a_day_per_text(
    fake: FakeDingtalk, session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    client = client_for(fake, session)
    await client.send_work_notice(["ding-agent1", "ding-sup1"], "⏰ R1 30 分钟无人响应")
    assert fake.notices_to("ding-agent1") == ["⏰ R1 30 分钟无人响应"]
    assert fake.notices_to("ding-sup1") == ["⏰ R1 30 分钟无人响应"]
    (sent, _) = fake.work_notices
    assert sent["msg"] == {"msgtype": "text", "text": {"content": "⏰ R1 30 分钟无人响应"}}
    # A retry of a call whose answer was lost: DingTalk takes it and delivers nothing again.
    await client.send_work_notice(["ding-agent1"], "⏰ R1 30 分钟无人响应")
    assert fake.notices_to("ding-agent1") == ["⏰ R1 30 分钟无人响应"]
    assert [n["user"] for n in fake.work_notices_dropped] == ["ding-agent1"]
    clock.advance(timedelta(days=1))
    await client.send_work_notice(["ding-agent1"], "⏰ R1 30 分钟无人响应")
    assert len(fake.notices_to("ding-agent1")) == 2


async def test_work_notices_go_100_people_a_call_with_a_refreshed_token(
    fake: FakeDingtalk, session: aiohttp.ClientSession
) -> None:
    client = client_for(fake, session)
    await client.send_work_notice(["ding-a"], "先拿到令牌")
    fake.expire_tokens()
    people = [f"ding-{i}" for i in range(150)]
    await client.send_work_notice(people, "全员提醒")
    assert {n["user"] for n in fake.work_notices if n["text"] == "全员提醒"} == set(people)
    assert sorted({n["task_id"] for n in fake.work_notices if n["text"] == "全员提醒"}) == [2, 3]
    assert fake.work_notice_errors == [40014]
    assert fake.tokens_issued == 2


async def test_work_notices_are_refused_without_the_apps_agent_id(
    fake: FakeDingtalk, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(PermanentError, match="40056"):
        await client_for(fake, session, agent_id=fake.agent_id + 1).send_work_notice(
            ["ding-sup1"], "提醒"
        )
    with pytest.raises(PermanentError, match="agent_id is not set"):
        await client_for(fake, session, agent_id=0).send_work_notice(["ding-sup1"], "提醒")
    assert fake.work_notices == []


async def test_the_fake_takes_work_notices_only_as_documented(
    fake: FakeDingtalk, session: aiohttp.ClientSession
) -> None:
    token = await client_for(fake, session).token()
    url = fake.url(f"/topapi/message/corpconversation/asyncsend_v2?access_token={token}")
    text = {"msgtype": "text", "text": {"content": "提醒"}}
    good = {"agent_id": fake.agent_id, "userid_list": "ding-sup1", "msg": text}
    bad = [
        {**good, "agent_id": str(fake.agent_id)},
        {**good, "userid_list": ["ding-sup1"]},
        {**good, "userid_list": ",".join(f"u{i}" for i in range(101))},
        {**good, "useridList": "ding-sup1"},
        {**good, "msg": {"msgtype": "text", "text": {"content": " "}}},
        {**good, "msg": {"msgtype": "sampleText", "sampleText": {"content": "提醒"}}},
        {"agent_id": fake.agent_id, "msg": text},
    ]
    for body in bad:
        async with session.post(url, json=body) as resp:
            assert (await resp.json())["errcode"] != 0, body
    async with session.post(url.replace(token, "nope"), json=good) as resp:
        assert (await resp.json())["errcode"] == 40014
    async with session.post(url, json=good) as resp:
        answer = await resp.json()
    assert (answer["errcode"], answer["errmsg"]) == (0, "ok")
    assert isinstance(answer["task_id"], int)
    assert fake.notices_to("ding-sup1") == ["提醒"]
