"""DingTalk without I/O: the signature vector, callback verification, card data, size limits."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import pytest

from handlers.message import Button, ButtonStyle, Card, Field, Mention, Tone
from handlers.refund.card import refund_buttons
from handlers.refund.machine import RefundState
from integrations.dingtalk.models import CardCallback, RobotMessage
from integrations.dingtalk.render import (
    BUTTONS,
    CUT,
    MSG_PARAM_MAX_BYTES,
    ROBOT_MAX_BYTES,
    Who,
    card_markdown,
    card_params,
    encode,
    group_message,
    new_out_track_id,
    robot_markdown,
    robot_text,
)
from integrations.dingtalk.signing import robot_query, sign, verify

# protocols/dingtalk.md, checked there with openssl.
VECTOR_SECRET = "SEC1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcd"
VECTOR_TS = 1700000000000
VECTOR_BASE64 = "TFTdAQatcUBwmt/Qla4qejjk5jK9m+uCWfch4Lgkji0="
VECTOR_SIGN = "TFTdAQatcUBwmt%2FQla4qejjk5jK9m%2BuCWfch4Lgkji0%3D"


def make_card(**overrides: Any) -> Card:
    values: dict[str, Any] = {
        "case_pk": 12,
        "case_id": "RF20261123001",
        "handle": "R12",
        "kind": "refund",
        "state": "awaiting_review",
        "version": 3,
        "title": "仅退款 R12 · ¥128.00",
        "status": "待审核",
        "tone": Tone.WARNING,
        "fields": (Field("金额", "¥128.00"), Field("原因", "尺码不合适")),
        "buttons": (Button("approve", "通过", ButtonStyle.PRIMARY), Button("claim", "认领")),
        "lines": ("📝 agent1：买家说明天再联系",),
        "footer": "agent1 备注 · 11-23 10:03",
        "mentions": (Mention("sup1", "张主管"),),
    }
    return Card(**(values | overrides))


def template() -> dict[str, Any]:
    raw = resources.files("integrations").joinpath("dingtalk/templates/refund_card.json")
    editor: dict[str, Any] = json.loads(json.loads(raw.read_text("utf-8"))["editorData"])
    return editor


def template_buttons() -> list[dict[str, Any]]:
    (root,) = template()["schema"]["componentsTree"]
    block = next(c for c in root["children"] if c["componentName"] == "ButtonBlock")
    buttons: list[dict[str, Any]] = block["props"]["buttons"]
    return buttons


def test_signing_reproduces_the_protocol_vector() -> None:
    assert sign(VECTOR_SECRET, VECTOR_TS) == VECTOR_BASE64
    assert robot_query(VECTOR_SECRET, VECTOR_TS) == f"timestamp={VECTOR_TS}&sign={VECTOR_SIGN}"


def test_callback_verification_checks_window_and_sign() -> None:
    def check(ts: Any, signature: str | None, now_ms: int = VECTOR_TS) -> str | None:
        return verify(VECTOR_SECRET, ts, signature, now_ms=now_ms, max_skew_s=3600)

    assert check(str(VECTOR_TS), VECTOR_BASE64) is None
    assert check(str(VECTOR_TS), VECTOR_BASE64, now_ms=VECTOR_TS + 3_600_000) is None
    stale = check(str(VECTOR_TS), VECTOR_BASE64, now_ms=VECTOR_TS + 3_600_001)
    assert stale is not None
    assert "away from the server clock" in stale
    assert check(str(VECTOR_TS), VECTOR_SIGN) == "sign does not match"
    assert check(str(VECTOR_TS + 1), VECTOR_BASE64) == "sign does not match"
    assert check(str(VECTOR_TS), "签名") == "sign does not match"
    assert check(None, VECTOR_BASE64) is not None
    assert check("yesterday", VECTOR_BASE64) == "timestamp must be unix milliseconds"


def test_card_params_are_all_strings_named_as_the_template_declares() -> None:
    params = card_params(make_card())
    assert all(isinstance(v, str) for v in params.values())
    declared = {v["name"] for v in template()["variableList"]}
    assert set(params) == declared
    assert params["title"] == "仅退款 R12 · ¥128.00"
    assert params["status"] == "待审核"
    assert params["tag_color"] == "orange"
    assert json.loads(params["fields"]) == [
        {"label": "金额", "value": "¥128.00"},
        {"label": "原因", "value": "尺码不合适"},
    ]
    assert "**金额**：¥128.00" in params["markdown"]
    assert "📝 agent1：买家说明天再联系" in params["markdown"]
    assert (params["approve_visible"], params["approve_text"]) == ("true", "通过")
    assert (params["reject_visible"], params["reject_text"]) == ("false", "")
    assert params["version"] == "3"
    first, second = new_out_track_id(make_card()), new_out_track_id(make_card())
    assert first.startswith("refund-R12-")
    assert len(first) == len("refund-R12-") + 16
    assert first != second


def test_template_buttons_call_back_with_action_and_case() -> None:
    buttons = template_buttons()
    assert [b["id"] for b in buttons] == list(BUTTONS)
    for button in buttons:
        key = button["id"]
        assert button["actionType"] == "request"
        assert button["actionId"]["content"] == key
        params = {p["name"]: p for p in button["params"]}
        assert params["action"]["value"] == key
        assert params["case"]["variable"] == "handle"
        condition = button["visible"]["condition"]["conditions"][0]
        assert condition["variable"] == f"{key}_visible"
    for state in RefundState:
        assert {b.key for b in refund_buttons(state)} <= set(BUTTONS), state


def test_the_template_has_every_button_a_case_card_can_carry() -> None:
    cards = resources.files("handlers")
    emitted = {
        key
        for flow in ("refund", "payout", "intercept", "logistics")
        for key in re.findall(
            r'Button\(\s*"([a-z_]+)"', cards.joinpath(f"{flow}/card.py").read_text()
        )
    }
    assert {"approve", "reject", "intercept", "templates", "paid", "ignore"} <= emitted
    assert emitted <= set(BUTTONS), emitted - set(BUTTONS)
    declared = {v["name"] for v in template()["variableList"]}
    assert {f"{k}_{part}" for k in BUTTONS for part in ("visible", "text")} <= declared


def test_card_params_show_exactly_the_cards_buttons_with_their_words() -> None:
    card = make_card(
        buttons=(
            Button("paid", "已打款 · 填流水号", ButtonStyle.PRIMARY),
            Button("reject", "拒绝", ButtonStyle.DANGER),
            Button("templates", "常用回复"),
        )
    )
    params = card_params(card)
    shown = [k for k in BUTTONS if params[f"{k}_visible"] == "true"]
    assert shown == ["reject", "templates", "paid"]
    assert params["paid_text"] == "已打款 · 填流水号"
    assert params["approve_text"] == ""


def test_robot_text_mentions_by_staff_id_then_mobile_then_name() -> None:
    message = robot_text(
        "R12 待主管审批",
        (Who("张主管", user_id="ding-sup1"), Who("李财务", mobile="13800138000"), Who("王五")),
    )
    body = message.dump()
    assert body["text"]["content"] == "@ding-sup1 @13800138000 @王五 R12 待主管审批"
    assert body["at"] == {
        "atUserIds": ["ding-sup1"],
        "atMobiles": ["13800138000"],
        "isAtAll": False,
    }


@pytest.mark.parametrize("size", [15_000, 25_000, 80_000])
def test_robot_messages_fit_the_20000_byte_limit(size: int) -> None:
    long = "退款" * (size // 6) + '"\\\n' * 50
    for message in (
        robot_text(long, (Who("张主管", user_id="ding-sup1"),)),
        robot_markdown(card_markdown(make_card(lines=(long,)), ())),
    ):
        assert len(encode(message.dump())) <= ROBOT_MAX_BYTES
        sent = message.text.content if message.text else message.markdown.text  # type: ignore[union-attr]
        assert sent.endswith(CUT) is (size > ROBOT_MAX_BYTES)


def test_short_robot_messages_are_sent_as_written() -> None:
    message = robot_markdown(card_markdown(make_card(), (Who("张主管", user_id="ding-sup1"),)))
    assert message.markdown is not None
    assert CUT not in message.markdown.text
    assert message.markdown.text.startswith("### 仅退款 R12 · ¥128.00\n\n**待审核**")
    assert message.markdown.text.endswith("@ding-sup1")


def test_group_message_param_stays_under_15000_bytes() -> None:
    key, param = group_message('说明"\n' * 5_000)
    assert key == "sampleText"
    assert len(param.encode()) <= MSG_PARAM_MAX_BYTES
    assert json.loads(param)["content"].endswith(CUT)


def test_inbound_models_read_the_documented_payloads() -> None:
    message = RobotMessage.model_validate(
        {
            "msgtype": "text",
            "text": {"content": " 通过 R12"},
            "msgId": "msgXXX",
            "createAt": 1700000000000,
            "conversationType": "2",
            "conversationId": "cidXXXX==",
            "senderStaffId": "staff001",
            "sessionWebhook": "https://oapi.dingtalk.com/robot/sendBySession?session=x",
            "sessionWebhookExpiredTime": 1700005400000,
            "somethingNew": {"kept": False},
        }
    )
    assert message.command_text == "通过 R12"
    assert message.is_group
    click = CardCallback.model_validate(
        {
            "type": "actionCallback",
            "outTrackId": "refund-R12",
            "userId": "staff001",
            "spaceType": "IM_GROUP",
            "spaceId": "cidXXXX==",
            "content": '{"cardPrivateData":{"actionIds":["approve"],"params":{"action":"approve","case":"R12"}}}',
        }
    )
    assert (click.action, click.case_ref) == ("approve", "R12")
    bare = CardCallback.model_validate(
        {
            "outTrackId": "t",
            "userId": "u",
            "content": '{"cardPrivateData":{"actionIds":["reject"]}}',
        }
    )
    assert (bare.action, bare.case_ref) == ("reject", "")
