"""The sandbox tells the truth about each platform: every message says which groups get it and
how WeCom and DingTalk draw it, made by those platforms' own renderers."""

from __future__ import annotations

from typing import Any

from bot.keys import SANDBOX
from handlers.clock import FakeClock
from integrations.dingtalk.render import BUTTONS
from integrations.sandbox.render import VIEWS
from integrations.wecom.render import MAX_FIELDS
from tests.support.app import Bot, BotFactory, make_refund, make_settings

REVIEW_KEYS = ["approve", "reject", "claim", "templates"]


def by_id(messages: list[dict[str, Any]], message_id: int) -> dict[str, Any]:
    return next(m for m in messages if m["id"] == message_id)


def wecom_title(message: dict[str, Any]) -> dict[str, str]:
    title: dict[str, str] = message["platform"]["wecom"]["template_card"]["main_title"]
    return title


async def test_a_card_as_wecom_and_dingtalk_draw_it(bot: Bot) -> None:
    card = await bot.refund()
    assert card["views"] == ["sandbox", "wecom", "dingtalk"]
    labels = [f["label"] for f in card["card"]["fields"]]
    assert len(labels) > MAX_FIELDS
    shown = card["platform"]["wecom"]["template_card"]
    assert len(shown["horizontal_content_list"]) == MAX_FIELDS
    assert "平台时限" in [row["keyname"] for row in shown["horizontal_content_list"]]
    assert [b["key"].split(":")[0] for b in shown["button_list"]] == [
        b["key"] for b in card["card"]["buttons"]
    ]
    ding = card["platform"]["dingtalk"]
    assert ding["status"] == "待审核"
    assert ding["tag_color"] == "orange"
    assert "**订单**：T88001" in ding["markdown"]
    # DingTalk draws the template's buttons, in the template's order and colours.
    assert [b["key"] for b in ding["buttons"]] == [k for k in BUTTONS if k in REVIEW_KEYS]
    assert {b["key"]: b["color"] for b in ding["buttons"]}["reject"] == "red"
    assert ding["left_out"] == []


async def test_a_tap_redraws_the_wecom_card_and_later_changes_follow_it_up(
    bot: Bot, clock: FakeClock
) -> None:
    card = await bot.refund()
    status, answer = await bot.click("sup1", card["id"], "approve")
    assert status == 200
    assert answer["reply"]["via"] == "tap"
    # The redrawn card was the whole answer on WeCom and DingTalk.
    assert answer["reply"]["views"] == ["sandbox"]
    assert wecom_title(answer["message"])["desc"] == "已通过"
    await bot.drain()
    clock.advance(seconds=10)
    await bot.drain()
    messages = await bot.messages(view="all")
    now = by_id(messages, card["id"])
    assert now["card"]["status"] == "已通过 · 待手动退款"
    assert now["platform"]["dingtalk"]["status"] == "已通过 · 待手动退款"
    assert wecom_title(now)["desc"] == "已通过"
    (follow_up,) = [m for m in messages if m["via"] == "wecom"]
    assert follow_up["text"] == "📌 R1 更新：已通过 · 待手动退款（系统 转手动退款 · 11-23 10:00）"
    assert follow_up["views"] == ["wecom"]
    assert follow_up["id"] > now["id"]


async def test_wecom_draws_in_place_only_within_the_window_after_a_tap(
    bot: Bot, clock: FakeClock
) -> None:
    card = await bot.refund()
    sandbox = bot.app[SANDBOX]
    sandbox.tapped(card["id"])
    clock.advance(seconds=3)
    await bot.say("agent1", "认领 R1")
    await bot.drain()
    claimed = by_id(await bot.messages(view="all"), card["id"])
    drawn = claimed["platform"]["wecom"]["version"]
    assert drawn == claimed["card"]["version"] > card["card"]["version"]

    sandbox.tapped(card["id"])
    clock.advance(seconds=6)
    await bot.say("sup1", "通过 R1")
    await bot.drain()
    sandbox.answered(card["id"])
    messages = await bot.messages(view="all")
    now = by_id(messages, card["id"])
    assert now["platform"]["wecom"]["version"] == drawn
    assert now["card"]["version"] > drawn
    follow_ups = [m["text"] for m in messages if m["via"] == "wecom"]
    assert follow_ups
    assert all(text.startswith("📌 R1 更新：已通过") for text in follow_ups)


async def test_a_tap_that_calls_someone_is_a_line_dingtalk_cannot_at(bot: Bot) -> None:
    card = await bot.refund()
    _, answer = await bot.click("agent1", card["id"], "approve")
    reply = answer["reply"]
    assert "已升级给主管" in reply["text"]
    assert reply["views"] == ["sandbox", "wecom", "dingtalk"]
    assert reply["plain_at"] == ["dingtalk"]
    assert reply["notify"] == ["sup1", "sup2", "admin1"]
    await bot.say("sup1", "查 R1")
    answers = [m for m in await bot.messages(view="all") if m["via"] == "answer"]
    assert answers
    assert all(m["plain_at"] == [] and m["notify"] == [] for m in answers)


async def test_a_reminder_names_people_plainly_on_dingtalk_and_tells_them_apart(bot: Bot) -> None:
    await bot.refund()
    await bot.say("agent1", "认领 R1")
    await bot.drain()
    await bot.later(hours=30, minutes=1)
    (line,) = [m for m in await bot.messages(view="all") if "距平台自动同意还剩" in m["text"]]
    assert line["via"] == "line"
    assert line["text"].startswith("@agent1 ⏳ R1")
    assert line["plain_at"] == ["dingtalk"]
    assert line["notify"] == ["agent1"]
    assert line["views"] == ["sandbox", "wecom", "dingtalk"]


async def test_buttons_that_need_words_say_so(bot: Bot) -> None:
    card = await bot.refund()
    reject = next(b for b in card["card"]["buttons"] if b["key"] == "reject")
    assert reject["ask"] == "原因"
    assert all("ask" not in b for b in card["card"]["buttons"] if b["key"] != "reject")
    config = await (await bot.client.get("/sandbox/api/config")).json()
    assert config["commands"]["reject"] == "拒绝"
    assert config["commands"]["paid"] == "打款确认"
    # Tapped where no words can be typed (WeCom, DingTalk): the answer says what to type.
    _, answer = await bot.click("sup1", card["id"], "reject")
    assert not answer["ok"]
    assert "拒绝 R1 <原因>" in answer["reply"]["text"]
    assert answer["reply"]["views"] == ["sandbox", "wecom", "dingtalk"]


async def test_the_message_list_is_the_sandbox_group_unless_a_view_is_asked_for(
    bot: Bot, clock: FakeClock
) -> None:
    card = await bot.refund()
    await bot.click("sup1", card["id"], "approve")
    await bot.drain()
    clock.advance(seconds=10)
    await bot.drain()
    everything = await bot.messages(view="all")
    quiet = [m["id"] for m in everything if m["views"] == ["sandbox"]]
    wecom_only = [m["id"] for m in everything if m["views"] == ["wecom"]]
    assert quiet
    assert wecom_only
    ids = {view: [m["id"] for m in await bot.messages(view=view)] for view in VIEWS}
    assert [m["id"] for m in await bot.messages()] == ids["sandbox"]
    assert not set(wecom_only) & set(ids["sandbox"])
    assert set(wecom_only) <= set(ids["wecom"])
    assert not set(quiet) & (set(ids["wecom"]) | set(ids["dingtalk"]))
    resp = await bot.client.get("/sandbox/api/groups/aftersales/messages?view=feishu")
    assert resp.status == 400


async def test_a_batch_card_is_markdown_on_wecom_and_a_tappable_card_on_dingtalk(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    settings = make_settings(
        sqlite_url,
        groups=[
            {"id": "aftersales", "channel": "sandbox", "kinds": ["refund"], "max_per_minute": 20},
            {"id": "ops", "channel": "sandbox"},
        ],
    )
    bot = await make_bot(settings)
    for _ in range(12):
        await bot.post_event(make_refund())
    await bot.drain()
    (batch,) = await bot.notices()
    assert batch["handle"] == "F1"
    assert batch["platform"]["wecom"]["markdown"].startswith("### ⚡ ")
    ding = batch["platform"]["dingtalk"]
    assert ding["title"].startswith("⚡")
    assert [b["key"] for b in ding["buttons"]] == ["approve_all", "list"]
