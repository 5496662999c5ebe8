"""Buyer text cannot write markup into WeCom or DingTalk messages: no phishing link behind
friendly words, no bold "主管已审批" line of its own, no `<@userid>` / `<at>` ping, no `@all`,
no `<font>` or heading; the mentions we make on purpose still work."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from handlers.clock import FakeClock
from handlers.message import Card, Field, Mention, Notice, Tone
from integrations.dingtalk import render as ding_render
from integrations.wecom import render as wecom_render
from integrations.wecom.fake import FakeWeComAPI
from tests.support.app import Bot, BotFactory, make_refund
from tests.support.dingtalk import ding_settings, running_fake
from tests.support.fakes import serve
from tests.support.wecom import CORP_ID, wecom_settings

LINK = "[点此领取退款](http://evil.example/pay)"
FAKE_LINE = "\n**主管已审批，请财务打款**"
PINGS = '<@ceo> <at user_id="ding-ceo"></at> @all @所有人'
TAGS = '<font color="info">已通过</font> <a href="http://evil.example">核对</a>'
REASON = f"{LINK}{FAKE_LINE} {PINGS} {TAGS}\n# 系统通知\n> 已审批"
NICK = "<@ceo>**买家**"


def harmless(content: str) -> None:
    """What a platform would read as markup in `content` came from us, not from the buyer."""
    assert "](" not in content
    assert "http://evil" not in content
    assert "https://evil" not in content
    assert "**主管已审批" not in content
    assert not re.search(r"^\W*主管已审批", content, re.MULTILINE)  # no line of its own
    assert "<@ceo>" not in content
    assert "<at " not in content
    assert '<font color="info">已通过' not in content
    assert "<a href" not in content
    assert "@all" not in content
    assert "@所有人" not in content
    assert not re.search(r"^\s*# 系统通知", content, re.MULTILINE)
    assert not re.search(r"^\s*> 已审批", content, re.MULTILINE)
    assert "主管已审批" in content  # still shown, as the buyer's words


@pytest.fixture
async def wecom_api(clock: FakeClock) -> AsyncIterator[FakeWeComAPI]:
    fake = FakeWeComAPI(corp_id=CORP_ID, now=lambda: clock.now().timestamp())
    fake.webhook_keys |= {"after-key"}
    async with serve(fake.app()) as fake.base_url:
        yield fake


async def post(bot: Bot, event: dict[str, Any]) -> None:
    status, _ = await bot.post_event(event)
    assert status == 202
    await bot.drain()


async def test_wecom_webhook_card_and_lines_render_buyer_text_harmless(
    make_bot: BotFactory, sqlite_url: str, wecom_api: FakeWeComAPI
) -> None:
    settings = wecom_settings(
        sqlite_url,
        [
            {
                "id": "aftersales",
                "channel": "wecom_webhook",
                "webhook_url": wecom_api.webhook_url("after-key"),
                "kinds": ["refund"],
            },
            {"id": "ops", "channel": "sandbox"},
        ],
    )
    bot = await make_bot(settings)
    event = make_refund(data_reason=REASON, data_buyer={"nick": NICK})
    await post(bot, event)
    message = {
        "id": "evt_buyer_markup",
        "type": "buyer.message",
        "occurred_at": "2026-11-23T10:05:00+08:00",
        "shop": "flagship",
        "platform": "taobao",
        "data": {"refund_id": event["data"]["refund_id"], "text": REASON},
    }
    await post(bot, message)
    card, line = (m["content"] for m in wecom_api.webhook_messages["after-key"][:2])
    for content in (card, line):
        harmless(content)
    assert card.startswith("**仅退款 R1 · ¥128.00**\n> 状态：<font color=")
    assert "<@" not in card + line  # nobody is due a mention yet


async def test_dingtalk_robot_markdown_renders_buyer_text_harmless(
    make_bot: BotFactory, sqlite_url: str, clock: FakeClock
) -> None:
    async with running_fake(clock) as fake:
        bot = await make_bot(ding_settings(sqlite_url, fake, channel="dingtalk_webhook"))
        event = make_refund(data_reason=REASON, data_buyer={"nick": NICK})
        await post(bot, event)
        (sent,) = fake.robot_messages
    text = sent["markdown"]["text"]
    harmless(text)
    assert text.startswith("### 仅退款 R1 · ¥128.00\n\n**待审核**")
    assert not sent["at"].get("isAtAll")
    assert not sent["at"].get("atUserIds")
    assert "@" not in text


async def test_dingtalk_card_markdown_renders_buyer_text_harmless(
    make_bot: BotFactory, sqlite_url: str, clock: FakeClock
) -> None:
    async with running_fake(clock) as fake:
        bot = await make_bot(ding_settings(sqlite_url, fake, channel="dingtalk_http"))
        await post(bot, make_refund(data_reason=REASON, data_buyer={"nick": NICK}))
        (card,) = fake.cards.values()
    harmless(card.params["markdown"])
    assert "**原因**：" in card.params["markdown"]
    assert card.at_user_ids == {}


def hostile_card() -> Card:
    return Card(
        case_pk=1,
        case_id="RF1",
        handle="R1",
        kind="refund",
        state="awaiting_review",
        version=1,
        title="仅退款 R1 · ¥128.00",
        status="待审核",
        tone=Tone.WARNING,
        fields=(Field("原因", REASON), Field("买家", NICK)),
        lines=(f"🗨 买家：{REASON}",),
        footer=REASON,
    )


@pytest.mark.parametrize(
    "rendered",
    [
        lambda: wecom_render.markdown_card(hostile_card(), {}),
        lambda: wecom_render.markdown_notice(
            Notice(
                "k", REASON, REASON, fields=(Field("原因", REASON),), lines=(REASON,), footer=REASON
            )
        ),
        lambda: ding_render.card_markdown(hostile_card(), ()).text,
        lambda: ding_render.change_markdown(hostile_card(), ()).text,
        lambda: ding_render.body_markdown(hostile_card()),
        lambda: (
            ding_render.notice_markdown(
                Notice(
                    "k",
                    REASON,
                    REASON,
                    fields=(Field("原因", REASON),),
                    lines=(REASON,),
                    footer=REASON,
                )
            ).text
        ),
    ],
)
def test_every_markdown_renderer_escapes_outside_strings(rendered: Any) -> None:
    harmless(rendered())


def test_the_mentions_we_make_still_work() -> None:
    card = replace(hostile_card(), mentions=(Mention("sup1", "SUP1"),))
    wecom = wecom_render.markdown_card(card, {"sup1": "wx_sup1"})
    assert wecom.endswith("\n<@wx_sup1>")
    assert wecom.count("<@") == 1
    text = wecom_render.markdown_text(
        REASON.replace("\n", " "), card.mentions, {"sup1": "wx_sup1"}, asker="wx_agent1"
    )
    assert text.startswith("<@wx_agent1> ")
    assert text.endswith(" <@wx_sup1>")
    assert text.count("<@") == 2
    who = (ding_render.Who("SUP1", user_id="ding-sup1"),)
    markdown = ding_render.card_markdown(card, who).text
    assert markdown.endswith("@ding-sup1")
    assert re.findall(r"(?<![＠\w])@[\w-]+", markdown) == ["@ding-sup1"]
    robot = ding_render.robot_markdown(ding_render.card_markdown(card, who), who)
    assert robot.at is not None
    assert robot.at.at_user_ids == ["ding-sup1"]


def test_plain_text_messages_carry_no_link_tag_or_ping() -> None:
    wecom = wecom_render.plain_text(f"买家：{TAGS} http://evil.example")
    assert "<a href" not in wecom
    assert "http://evil" not in wecom
    ding = ding_render.robot_text(f"买家：{PINGS} http://evil.example").text
    assert ding is not None
    assert "@all" not in ding.content
    assert "http://evil" not in ding.content


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/fxg.jinritemai.com",
        "http://fxg.jinritemai.com/ffa/maftersale/aftersale/detail-v3?aftersale_id=1",
        "https://fxg.jinritemai.com/a)[x](https://evil.example",
        "https://fxg.jinritemai.com.evil.example/x",
        "javascript:alert(1)",
    ],
)
async def test_a_back_office_link_is_only_one_of_the_seller_backends(bot: Bot, url: str) -> None:
    """An event may carry `back_office_url` (the connectors set it); a card links only to a
    seller back office over https, never to where an event points."""
    card = await bot.refund(data_back_office_url=url, data_reason="x")
    assert all("url" not in f for f in card["card"]["fields"])
    assert all(f["label"] != "后台" for f in card["card"]["fields"])


def test_a_field_link_renders_as_a_link_and_nothing_else() -> None:
    url = "https://refund2.taobao.com/dispute/detail.htm?disputeId=1"
    card = replace(hostile_card(), fields=(Field("后台", "在淘宝后台打开", url=url),))
    wecom = wecom_render.template_card(card, "t1")
    assert wecom["horizontal_content_list"][0] == {
        "keyname": "后台",
        "value": "在淘宝后台打开",
        "type": 1,
        "url": url,
    }
    assert f"[在淘宝后台打开]({url})" in wecom_render.markdown_card(card, {})
    assert f"[在淘宝后台打开]({url})" in ding_render.body_markdown(card)
    with pytest.raises(ValueError, match="not a link refundops makes"):
        Field("后台", "x", url="https://refund2.taobao.com/a b")
