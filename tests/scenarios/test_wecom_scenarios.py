"""WeCom end to end: signed events in, cards on the fakes, people typing and tapping in WeCom."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import create_app
from bot.keys import METRICS
from bot.wecom import Bridge
from handlers.clock import FakeClock
from integrations.wecom.channel import webhook_budget
from integrations.wecom.crypto import CallbackCrypto
from integrations.wecom.fake import FakeWeComAIBot, FakeWeComAPI, WeComCallbacks
from integrations.wecom.models import Inbound
from storage.models import AuditEntry, Case
from tests.support.app import Bot, BotFactory, make_refund
from tests.support.fakes import Served, serve
from tests.support.wecom import (
    AES_KEY,
    AIBOT_CHAT,
    CORP_ID,
    TOKEN,
    WECOM_STAFF,
    aibot_group,
    coordination,
    markdowns,
    userid,
    wecom_settings,
)

CHAT = AIBOT_CHAT
MANUAL = "已通过 · 待手动退款"  # no shop system is connected: nothing was sent


@pytest.fixture
async def api(clock: FakeClock) -> AsyncIterator[FakeWeComAPI]:
    fake = FakeWeComAPI(corp_id=CORP_ID, now=lambda: clock.now().timestamp())
    fake.webhook_keys |= {"ops-key", "http-key"}
    async with serve(fake.app()) as fake.base_url:
        yield fake


@pytest.fixture
async def aibot() -> AsyncIterator[Served[FakeWeComAIBot]]:
    fake = FakeWeComAIBot(chats={CHAT})
    async with serve(fake.app()) as base:
        yield Served(fake, base + "/")


@pytest.fixture
def callbacks(clock: FakeClock) -> WeComCallbacks:
    return WeComCallbacks(
        CallbackCrypto(TOKEN, AES_KEY, CORP_ID), CORP_ID, 1000002, lambda: clock.now().timestamp()
    )


async def count(bot: Bot, *where: Any) -> int:
    async with bot.svc.tx() as tx:
        return int(
            await tx.session.scalar(select(func.count()).select_from(AuditEntry).where(*where))
        )


async def case_row(bot: Bot, handle: str = "R1") -> Case:
    async with bot.svc.tx() as tx:
        case: Case | None = await tx.cases.find(handle)
    assert case is not None
    return case


async def new_refund(bot: Bot, **overrides: Any) -> None:
    status, _ = await bot.post_event(make_refund(**overrides))
    assert status == 202
    await bot.drain()


# -- the AI bot in a group (websocket mode) ---------------------------------------------------


def group_card(fake: FakeWeComAIBot) -> tuple[str, dict[str, Any]]:
    ((task_id, card),) = fake.cards[CHAT].items()
    return task_id, card


async def test_typed_approval_then_a_stale_tap_shows_everyone_who_won(
    make_bot: BotFactory,
    sqlite_url: str,
    clock: FakeClock,
    api: FakeWeComAPI,
    aibot: Served[FakeWeComAIBot],
) -> None:
    fake, ws_url = aibot
    async with aibot_group(make_bot, sqlite_url, clock, api, ws_url) as bot:
        await new_refund(bot)
        task_id, card = group_card(fake)
        assert card["main_title"] == {"title": "仅退款 R1 · ¥128.00", "desc": "待审核"}
        version = (await case_row(bot)).version
        assert [b["key"] for b in card["button_list"]] == [
            f"approve:R1:{version}",
            f"reject:R1:{version}",
            f"claim:R1:{version}",
            f"templates:R1:{version}",
        ]

        typed = await fake.push_text(userid("sup1"), "@refundops 通过 R1", chatid=CHAT)
        await fake.wait_for(lambda: fake.replies.get(typed))
        assert fake.replies[typed][0]["stream"]["content"].startswith("✅ 已通过 R1")

        tapped = await fake.click(userid("sup2"), CHAT, task_id, f"approve:R1:{version}")
        await fake.wait_for(lambda: fake.updates and markdowns(fake))
        ((req_id, _),) = fake.updates
        assert req_id == tapped
        assert fake.card(CHAT, task_id)["main_title"]["desc"] == "已通过"
        assert fake.button_keys(CHAT, task_id) == [f"templates:R1:{version + 1}"]
        (loser,) = markdowns(fake)
        assert loser.startswith(f"<@{userid('sup2')}> R1 现在是「已通过 · 退款提交中」（SUP1 通过")
        assert "不能再通过" in loser
        assert await count(bot, AuditEntry.action == "approve") == 1

        await bot.drain()
        clock.advance(seconds=10)
        await bot.drain()
        assert (await case_row(bot)).state == "manual_refund"
        follow_ups = [m for m in markdowns(fake) if m.startswith("📌")]
        assert follow_ups == [f"📌 R1 更新：{MANUAL}（系统 转手动退款 · 11-23 10:00）"]
        assert len(fake.cards[CHAT]) == 1, "one card per case"


async def test_stranger_click_refused_and_duplicates_ignored_and_escalation_mentions(
    make_bot: BotFactory,
    sqlite_url: str,
    clock: FakeClock,
    api: FakeWeComAPI,
    aibot: Served[FakeWeComAIBot],
) -> None:
    fake, ws_url = aibot
    async with aibot_group(make_bot, sqlite_url, clock, api, ws_url) as bot:
        await new_refund(bot)
        task_id, _ = group_card(fake)
        version = (await case_row(bot)).version

        await fake.click("wx_stranger", CHAT, task_id, f"approve:R1:{version}")
        await fake.wait_for(lambda: markdowns(fake))
        (refusal,) = markdowns(fake)
        assert refusal.startswith("<@wx_stranger> 你不在售后名单中，不能通过退款")
        assert "ADMIN1" in refusal
        assert (await case_row(bot)).state == "awaiting_review"

        for _ in range(3):
            await fake.push_text(
                userid("agent1"), "@refundops 备注 R1 已电话联系", chatid=CHAT, msgid="dup-1"
            )
        await fake.wait_for(lambda: len(fake.replies) == 1)
        await asyncio.sleep(0.05)
        assert len(fake.replies) == 1
        assert len((await case_row(bot)).data["notes"]) == 1

        await fake.click(userid("agent1"), CHAT, task_id, f"approve:R1:{version}")
        await fake.wait_for(lambda: len(markdowns(fake)) == 2)
        escalated = markdowns(fake)[-1]
        assert escalated == (
            f"<@{userid('agent1')}> R1 ¥128.00 超出你的权限（¥50.00），已升级给主管：SUP1、SUP2、ADMIN1 "
            + " ".join(f"<@{userid(s)}>" for s in ("sup1", "sup2", "admin1"))
        )
        assert fake.card(CHAT, task_id)["main_title"]["desc"] == "待主管审批"


async def test_the_running_app_connects_the_ai_bot_itself(
    aibot: Served[FakeWeComAIBot], api: FakeWeComAPI, sqlite_url: str, clock: FakeClock
) -> None:
    fake, ws_url = aibot
    settings = wecom_settings(
        sqlite_url,
        [
            {"id": "aftersales", "channel": "wecom_aibot", "chat_id": CHAT},
            {"id": "ops", "channel": "wecom_webhook", "webhook_url": api.webhook_url("ops-key")},
        ],
        wecom={"aibot": {"ws_url": ws_url}},
    )
    app = create_app(settings, clock=clock, workers=True)
    async with serve(app):
        await fake.wait_for(lambda: fake.subscribed == 1)
        req_id = await fake.push_text(userid("agent1"), "帮助", chatid=CHAT)
        await fake.wait_for(lambda: fake.replies.get(req_id))
        assert "可用命令" in fake.replies[req_id][0]["stream"]["content"]


# -- the self-built app: approvals by DM --------------------------------------------------------


def app_settings(sqlite_url: str, api: FakeWeComAPI, **wecom: Any) -> Any:
    # The DM list names the supervisors; agents act on the group's cases by DM as its members.
    staff = [{**s, "groups": ["approvals"]} if s["roles"] == ["agent"] else s for s in WECOM_STAFF]
    return wecom_settings(
        sqlite_url,
        [
            {
                "id": "approvals",
                "channel": "wecom_app",
                "chat_id": "sup1|sup2",
                "kinds": ["refund"],
            },
            {"id": "ops", "channel": "wecom_webhook", "webhook_url": api.webhook_url("ops-key")},
        ],
        wecom={"api_base": api.base_url, **wecom},
        staff=staff,
    )


async def post_callback(bot: Bot, query: str, body: bytes) -> tuple[int, bytes]:
    resp = await bot.client.post(f"/wecom/callback?{query}", data=body)
    return resp.status, await resp.read()


async def test_supervisor_approves_a_dmd_card_and_retries_never_act_twice(
    make_bot: BotFactory,
    sqlite_url: str,
    clock: FakeClock,
    api: FakeWeComAPI,
    callbacks: WeComCallbacks,
) -> None:
    bot = await make_bot(app_settings(sqlite_url, api), coord=coordination(clock))
    await new_refund(bot)
    ((task_id, card),) = api.cards.items()
    assert api.recipients[task_id] == [userid("sup1"), userid("sup2")]
    assert card["main_title"]["desc"] == "待审核"
    version = (await case_row(bot)).version

    click = callbacks.app_click(
        userid("sup1"), task_id, f"approve:R1:{version}", api.click_code(task_id)
    )
    assert await post_callback(bot, *click) == (200, b"")
    assert api.cards[task_id]["main_title"]["desc"] == "已通过"
    updates = api.app_calls("/cgi-bin/message/update_template_card")
    assert [c.errcode for c in updates] == [0]
    assert await post_callback(bot, *click) == (200, b""), "WeCom retries the same callback"
    assert len(api.app_calls("/cgi-bin/message/update_template_card")) == 1
    assert await count(bot, AuditEntry.action == "approve") == 1

    late = callbacks.app_click(
        userid("sup2"), task_id, f"approve:R1:{version}", api.click_code(task_id)
    )
    assert await post_callback(bot, *late) == (200, b"")
    await api.wait_for(lambda: api.texts)
    ((to, told),) = api.texts
    assert to == userid("sup2")
    assert "SUP1 通过" in told
    assert "不能再通过" in told

    api.expire_tokens()
    await bot.drain()
    clock.advance(seconds=30)
    await bot.drain()
    assert api.cards[task_id]["main_title"]["desc"] == MANUAL, "sup2's click code redraws it"
    assert api.tokens_issued == 2

    closed = {
        "id": "evt_closed_1",
        "type": "refund.closed",
        "occurred_at": "2026-11-23T11:00:00+08:00",
        "shop": "flagship",
        "platform": "taobao",
        "data": {"refund_id": (await case_row(bot)).case_id, "status": "refunded"},
    }
    assert (await bot.post_event(closed))[0] == 202
    await bot.drain()
    assert api.cards[task_id]["main_title"]["desc"] == MANUAL, "no code left to spend"
    follow = [t for u, t in api.texts if t.startswith("📌")]
    assert follow == ["📌 R1 更新：已退款（平台 确认退款 · 11-23 10:00）"] * 2


async def test_dm_commands_answer_passively_or_by_message_when_slow(
    make_bot: BotFactory,
    sqlite_url: str,
    clock: FakeClock,
    api: FakeWeComAPI,
    callbacks: WeComCallbacks,
) -> None:
    bot = await make_bot(app_settings(sqlite_url, api), coord=coordination(clock))
    await new_refund(bot)
    status, body = await post_callback(bot, *callbacks.app_text(userid("agent1"), "查 R1"))
    assert status == 200
    answer = callbacks.open_xml(body)
    assert answer["ToUserName"] == userid("agent1")
    assert answer["FromUserName"] == CORP_ID
    assert answer["Content"].startswith("【仅退款 R1 · ¥128.00】待审核")
    assert api.texts == []

    slow = await make_bot(
        app_settings(sqlite_url, api, passive_wait_s=0), coord=coordination(clock)
    )
    status, body = await post_callback(slow, *callbacks.app_text(userid("agent2"), "查 R1"))
    assert (status, body) == (200, b"")
    await api.wait_for(lambda: api.texts)
    ((to, text),) = api.texts
    assert to == userid("agent2")
    assert text.startswith("【仅退款 R1 · ¥128.00】待审核")


async def test_untrusted_ip_is_explained_to_the_admin_group(
    make_bot: BotFactory, sqlite_url: str, clock: FakeClock, api: FakeWeComAPI
) -> None:
    bot = await make_bot(app_settings(sqlite_url, api), coord=coordination(clock))
    api.untrusted_ip = True
    await new_refund(bot)
    (notice,) = [m["content"] for m in api.webhook_messages["ops-key"]]
    assert "R1 的卡片发送失败（不会再试）" in notice
    assert "企业可信IP" in notice
    assert f"<@{userid('admin1')}>" in notice


# -- the AI bot in HTTP mode --------------------------------------------------------------------


async def test_http_mode_answers_and_redraws_in_the_response(
    make_bot: BotFactory,
    sqlite_url: str,
    clock: FakeClock,
    api: FakeWeComAPI,
) -> None:
    settings = wecom_settings(
        sqlite_url,
        [
            {
                "id": "aftersales",
                "channel": "wecom_aibot_http",
                "chat_id": "wrkHTTP",
                "webhook_url": api.webhook_url("http-key"),
                "kinds": ["refund"],
            },
            {"id": "ops", "channel": "wecom_webhook", "webhook_url": api.webhook_url("ops-key")},
        ],
        wecom={"api_base": api.base_url},
    )
    bot = await make_bot(settings, coord=coordination(clock))
    bot_crypto = WeComCallbacks(
        CallbackCrypto(TOKEN, AES_KEY, ""), "", 0, lambda: clock.now().timestamp()
    )
    await new_refund(bot)
    (notice,) = api.webhook_messages["http-key"]
    assert notice["content"].startswith("**仅退款 R1 · ¥128.00**")
    assert "在群里 @机器人 查 R1 可以直接处理" in notice["content"]

    sent = iter(range(1000))

    def message(user: str, **fields: Any) -> dict[str, Any]:
        return {
            "msgid": f"m-{user}-{next(sent)}",
            "aibotid": "aibot-fake",
            "chatid": "wrkHTTP",
            "chattype": "group",
            "from": {"userid": user},
            "response_url": api.response_url(),
            **fields,
        }

    shown = message(userid("sup1"), msgtype="text", text={"content": "@refundops 查 R1"})
    query, body = bot_crypto.aibot(shown)
    resp = await bot.client.post(f"/wecom/aibot?{query}", data=body)
    assert resp.status == 200
    reply = bot_crypto.open_json(await resp.read())
    assert reply["msgtype"] == "stream_with_template_card"
    assert reply["stream"]["content"].startswith("【仅退款 R1 · ¥128.00】待审核")
    task_id = reply["template_card"]["task_id"]
    key = reply["template_card"]["button_list"][0]["key"]

    tap = message(
        userid("sup1"),
        msgtype="event",
        event={
            "eventtype": "template_card_event",
            "template_card_event": {
                "card_type": "button_interaction",
                "event_key": key,
                "task_id": task_id,
            },
        },
    )
    query, body = bot_crypto.aibot(tap)
    resp = await bot.client.post(f"/wecom/aibot?{query}", data=body)
    update = bot_crypto.open_json(await resp.read())
    assert update["response_type"] == "update_template_card"
    assert update["template_card"]["task_id"] == task_id
    assert update["template_card"]["main_title"]["desc"] == "已通过"
    again = await bot.client.post(f"/wecom/aibot?{query}", data=body)
    assert (again.status, await again.read()) == (200, b"")

    other = {
        **message(userid("sup1"), msgtype="text", text={"content": "帮助"}),
        "chatid": "wrkOTHER",
    }
    query, body = bot_crypto.aibot(other)
    resp = await bot.client.post(f"/wecom/aibot?{query}", data=body)
    content = bot_crypto.open_json(await resp.read())["stream"]["content"]
    # The setup hint comes first, so a long help text never cuts it off.
    assert content.startswith("本群还没有接入 refundops，本群的 chat_id 是：wrkOTHER")
    assert '\nchannel = "wecom_aibot_http"\nchat_id = "wrkOTHER"' in content

    stranger = {
        **tap,
        "msgid": "m-stranger",
        "from": {"userid": "wx_stranger"},
        "response_url": api.response_url(),
    }
    query, body = bot_crypto.aibot(stranger)
    resp = await bot.client.post(f"/wecom/aibot?{query}", data=body)
    assert resp.status == 200
    await api.wait_for(lambda: api.response_posts)
    (told,) = api.response_posts
    assert told["markdown"]["content"].startswith("你不在售后名单中")
    assert await count(bot, AuditEntry.action == "approve") == 1


# -- webhook groups ------------------------------------------------------------------------------


async def test_a_burst_reaches_a_webhook_group_without_exceeding_twenty_a_minute(
    make_bot: BotFactory, sqlite_url: str, clock: FakeClock, api: FakeWeComAPI
) -> None:
    settings = wecom_settings(
        sqlite_url,
        [
            {
                "id": "notices",
                "channel": "wecom_webhook",
                "webhook_url": api.webhook_url(),
                "kinds": ["refund"],
            },
            {"id": "ops", "channel": "wecom_webhook", "webhook_url": api.webhook_url("ops-key")},
        ],
    )
    bot = await make_bot(settings, coord=coordination(clock))
    for _ in range(45):
        assert (await bot.post_event(make_refund()))[0] == 202
    for _ in range(60):
        await bot.drain()
        clock.advance(seconds=5)
    sent = api.webhook_messages["robot-key"]
    # A burst folds into batch cards; every case is named, in a card or a batch card.
    text = "\n".join(m["content"] for m in sent)
    assert {f"R{i}" for i in range(1, 46)} <= set(re.findall(r"R\d+", text))
    assert any(m["content"].startswith("### ⚡") for m in sent)
    assert api.max_per_minute("robot-key") <= 20
    assert not [c for c in api.calls if c.errcode == 45009]


async def test_two_supervisors_tap_at_once_and_exactly_one_approval_lands(
    make_bot: BotFactory,
    db_url: str,
    clock: FakeClock,
    api: FakeWeComAPI,
    callbacks: WeComCallbacks,
) -> None:
    bot = await make_bot(app_settings(db_url, api), coord=coordination(clock))
    await new_refund(bot)
    ((task_id, _),) = api.cards.items()
    key = f"approve:R1:{(await case_row(bot)).version}"
    taps = [
        callbacks.app_click(userid(who), task_id, key, api.click_code(task_id))
        for who in ("sup1", "sup2")
    ]
    answers = await asyncio.gather(*(post_callback(bot, *tap) for tap in taps))
    assert answers == [(200, b""), (200, b"")]
    assert await count(bot, AuditEntry.action == "approve") == 1
    winner = (await case_row(bot)).last_actor
    loser = "sup2" if winner == "sup1" else "sup1"
    await api.wait_for(lambda: api.texts)
    assert len(api.texts) == 1, (api.texts, [(c.path, c.errcode) for c in api.calls])
    ((to, told),) = api.texts
    assert to == userid(loser)
    assert f"{winner.upper()} 通过" in told
    assert api.cards[task_id]["main_title"]["desc"] == "已通过"


async def test_a_click_redraws_a_card_left_stale_and_late_clicks_answer_by_dm(
    make_bot: BotFactory,
    sqlite_url: str,
    clock: FakeClock,
    api: FakeWeComAPI,
    callbacks: WeComCallbacks,
) -> None:
    bot = await make_bot(app_settings(sqlite_url, api, passive_wait_s=0), coord=coordination(clock))
    await new_refund(bot)
    ((task_id, _),) = api.cards.items()
    version = (await case_row(bot)).version
    assert await post_callback(bot, *callbacks.app_text(userid("agent1"), "认领 R1")) == (200, b"")
    await api.wait_for(lambda: api.texts)
    await bot.drain()
    assert api.cards[task_id]["main_title"]["desc"] == "待审核"
    assert "AGENT1 认领" in api.cards[task_id]["sub_title_text"], "the send's own code redrew it"

    await bot.post_event(
        make_refund(
            data_refund_id=(await case_row(bot)).case_id, type="refund.closed", data_status="closed"
        )
    )
    await bot.drain()
    assert api.cards[task_id]["main_title"]["desc"] == "待审核", "no response code left"
    assert [t for _, t in api.texts if t.startswith("📌")] == [
        "📌 R1 更新：平台已关闭（平台 关闭 · 11-23 10:00）"
    ] * 2

    texts = len(api.texts)
    tap = callbacks.app_click(
        userid("agent2"), task_id, f"claim:R1:{version}", api.click_code(task_id)
    )
    assert await post_callback(bot, *tap) == (200, b"")
    await api.wait_for(lambda: len(api.texts) > texts)
    assert api.cards[task_id]["main_title"]["desc"] == "平台已关闭", (
        "the click's fresh code redraws it"
    )
    assert api.texts[-1] == (userid("agent2"), "R1 已经是「平台已关闭」，无需认领")


async def test_an_input_left_behind_by_a_stopped_instance_is_finished_by_the_dispatcher(
    make_bot: BotFactory, sqlite_url: str, clock: FakeClock, api: FakeWeComAPI
) -> None:
    bot = await make_bot(app_settings(sqlite_url, api), coord=coordination(clock))
    await new_refund(bot)
    inbound = Inbound(channel="wecom_app", user=userid("sup1"), dedup="msg:42", text="通过 R1")
    bridge = Bridge(bot.svc, bot.app[METRICS])
    assert await bridge.accept(inbound) is not None
    assert await bridge.accept(inbound) is None
    await bot.drain()
    assert (await case_row(bot)).state == "awaiting_review", "its callback may still be working"
    clock.advance(seconds=bot.svc.settings.dispatch.lease_s + 1)
    await bot.drain()
    assert await count(bot, AuditEntry.action == "approve") == 1
    assert (userid("sup1"), "✅ 已通过 R1（¥128.00），正在提交退款") in api.texts


async def test_a_click_redraws_the_card_even_when_the_group_has_no_sends_left(
    make_bot: BotFactory,
    sqlite_url: str,
    clock: FakeClock,
    api: FakeWeComAPI,
    callbacks: WeComCallbacks,
) -> None:
    """update_template_card edits a card already sent: it spends none of message/send's budget."""
    coord = coordination(clock)
    bot = await make_bot(app_settings(sqlite_url, api), coord=coord)
    await new_refund(bot)
    ((task_id, _),) = api.cards.items()
    budget = webhook_budget(30)
    while await coord.take("wecom_app:approvals", budget.per_minute, budget.burst) == 0:
        pass
    version = (await case_row(bot)).version
    click = callbacks.app_click(
        userid("sup1"), task_id, f"approve:R1:{version}", api.click_code(task_id)
    )
    assert await post_callback(bot, *click) == (200, b"")
    assert api.cards[task_id]["main_title"]["desc"] == "已通过"
    assert await coord.take("wecom_app:approvals", budget.per_minute, budget.burst) > 0, (
        "the redraw took nothing from the bucket"
    )


async def test_finance_gets_the_payee_in_the_ai_bots_single_chat_and_the_group_never_does(
    make_bot: BotFactory,
    sqlite_url: str,
    clock: FakeClock,
    api: FakeWeComAPI,
    aibot: Served[FakeWeComAIBot],
) -> None:
    fake, ws_url = aibot
    kinds = ("refund", "payout")
    async with aibot_group(make_bot, sqlite_url, clock, api, ws_url, kinds) as bot:
        typed = "@refundops 打款 补偿 T88001 5 13800138000 王小明 快递破损补偿"
        asked = await fake.push_text(userid("agent1"), typed, chatid=CHAT)
        await fake.wait_for(lambda: fake.replies.get(asked))
        answer = fake.replies[asked][0]["stream"]["content"]
        # No bot can recall a person's WeCom message: the agent is asked to.
        assert "撤回" in answer
        assert "13800138000" not in answer
        await bot.drain()

        # WeCom lets the AI bot push to a single chat only after the person wrote there once.
        said = await fake.push_text(userid("fin1"), "帮助")
        await fake.wait_for(lambda: fake.replies.get(said))
        shown = await fake.push_text(userid("fin1"), "@refundops 收款 P1", chatid=CHAT)
        await fake.wait_for(lambda: fake.replies.get(shown))
        assert "已私信" in fake.replies[shown][0]["stream"]["content"]
        await bot.drain()
        direct = [body for chatid, body in fake.messages if chatid == userid("fin1")]
        assert len(direct) == 1
        assert "13800138000" in direct[0]["markdown"]["content"]
        group_side = [body for chatid, body in fake.messages if chatid == CHAT]
        group_side += [r for replies in fake.replies.values() for r in replies]
        assert "13800138000" not in repr(group_side)
        assert await count(bot, AuditEntry.action == "payee_revealed") == 1


async def test_a_tap_on_a_button_that_needs_a_reason_asks_for_the_command_to_type(
    make_bot: BotFactory,
    sqlite_url: str,
    clock: FakeClock,
    api: FakeWeComAPI,
    aibot: Served[FakeWeComAIBot],
) -> None:
    fake, ws_url = aibot
    async with aibot_group(make_bot, sqlite_url, clock, api, ws_url) as bot:
        await new_refund(bot)
        task_id, _ = group_card(fake)
        version = (await case_row(bot)).version
        await fake.click(userid("sup1"), CHAT, task_id, f"reject:R1:{version}")
        await fake.wait_for(lambda: markdowns(fake))
        (asked,) = markdowns(fake)
        assert asked == f"<@{userid('sup1')}> 请在群里输入：拒绝 R1 ＜原因＞"
        assert (await case_row(bot)).state == "awaiting_review"
        typed = await fake.push_text(userid("sup1"), "@refundops 拒绝 R1 照片显示完好", chatid=CHAT)
        await fake.wait_for(lambda: fake.replies.get(typed))
        assert (await case_row(bot)).state == "rejected"
