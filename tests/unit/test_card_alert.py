"""A refund past its platform deadline is an alert: the card turns red with a 已超时 pill, and
every channel shows it — the sandbox's JSON says so, WeCom and DingTalk mark the title in red
with ⛔. Complaints and overdue buyer messages are pills too."""

from __future__ import annotations

from datetime import timedelta

import pytest

from handlers.message import Card, Pill, Tone
from handlers.refund.card import refund_card
from handlers.refund.machine import RefundState
from integrations.dingtalk.render import card_markdown, card_params, change_markdown
from integrations.sandbox.render import render_card
from integrations.wecom.render import follow_up, markdown_card, template_card
from tests.unit.test_refund_card import AT, NOW, context, make_case

S = RefundState
LATE = NOW - timedelta(minutes=5)


def late_card(state: RefundState = S.AWAITING_REVIEW, **data: object) -> Card:
    return refund_card(make_case(state, dict(data), deadline_at=LATE), context())


@pytest.mark.parametrize(
    "state", [S.AWAITING_REVIEW, S.ESCALATED, S.INSPECTING, S.FAILED, S.WAITING_INTERCEPT]
)
def test_past_the_deadline_a_case_waiting_on_the_merchant_is_an_alert(state: RefundState) -> None:
    card = late_card(state)
    assert card.alert is True
    assert card.tone is Tone.DANGER
    assert card.pills == (Pill("已超时", Tone.DANGER),)


@pytest.mark.parametrize("state", [S.APPROVED, S.SUBMITTED, S.REFUNDED, S.WAITING_RETURN])
def test_a_decided_or_returning_case_is_no_alert_past_the_deadline(state: RefundState) -> None:
    card = late_card(state)
    assert (card.alert, card.pills) == (False, ())


def test_before_the_deadline_nothing_is_marked() -> None:
    case = make_case(S.AWAITING_REVIEW, deadline_at=NOW + timedelta(minutes=1))
    card = refund_card(case, context())
    assert (card.alert, card.pills, card.tone) == (False, (), Tone.WARNING)


def test_complaint_and_overdue_buyer_are_pills_after_the_alert() -> None:
    card = late_card(
        complaint={"n": 2, "word": "投诉", "at": AT},
        buyer_message={"n": 2, "text": "再不处理我投诉了", "at": AT},
        awaiting_reply={"n": 1, "since": AT, "overdue": NOW.isoformat()},
    )
    assert card.pills == (
        Pill("已超时", Tone.DANGER),
        Pill("⚠ 投诉风险", Tone.DANGER),
        Pill("买家待回复", Tone.WARNING),
    )
    assert ("投诉风险", "买家提到「投诉」· 11-23 09:00") in [
        (f.label, f.value) for f in card.fields
    ]
    assert card.lines[-1] == "🗨 买家 11-23 09:00：再不处理我投诉了（超时未回复）"
    assert card.marks == "【已超时】【⚠ 投诉风险】【买家待回复】"
    assert card.summary.startswith("⛔ 仅退款 R12 · ¥128.00 — 【已超时】")


def test_sandbox_json_carries_the_alert_and_the_pills() -> None:
    shown = render_card(late_card())
    assert shown["alert"] is True
    assert shown["tone"] == "danger"
    assert shown["pills"] == [{"text": "已超时", "tone": "danger"}]
    calm = render_card(refund_card(make_case(S.AWAITING_REVIEW), context()))
    assert (calm["alert"], calm["pills"]) == (False, [])


def test_wecom_marks_the_title_red() -> None:
    card = late_card()
    rendered = template_card(card, "t1")
    assert rendered["main_title"]["title"] == "⛔ 仅退款 R12 · ¥128.00"
    assert rendered["main_title"]["desc"] == "【已超时】待审核"
    assert rendered["source"]["desc_color"] == 2
    markdown = markdown_card(card, {})
    assert markdown.splitlines()[0] == (
        '<font color="warning">**⛔ 仅退款 R12 · ¥128.00**</font> <font color="warning">【已超时】</font>'
    )
    assert follow_up(card).startswith("📌 ⛔ R12 更新：【已超时】待审核")
    calm = markdown_card(refund_card(make_case(S.AWAITING_REVIEW), context()), {})
    assert calm.splitlines()[0] == "**仅退款 R12 · ¥128.00**"


def test_dingtalk_marks_the_title_red() -> None:
    card = late_card()
    params = card_params(card)
    assert params["title"] == "⛔ 仅退款 R12 · ¥128.00"
    assert params["tag_color"] == "red"
    assert params["markdown"].startswith("<font color=#D40000>【已超时】</font>")
    robot = card_markdown(card, ())
    assert robot.text.startswith("### <font color=#D40000>⛔ 仅退款 R12 · ¥128.00</font>")
    assert robot.title.startswith("⛔ ")
    assert "<font color=#D40000>⛔ 仅退款 R12" in change_markdown(card, ()).text
    calm = card_params(refund_card(make_case(S.AWAITING_REVIEW), context()))
    assert (calm["title"], calm["tag_color"]) == ("仅退款 R12 · ¥128.00", "orange")
