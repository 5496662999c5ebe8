"""The intercept card, drawn from hand-made rows and a hand-made card context: every state,
the carrier's answer and result, late feedback, the phone call in manual mode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handlers.config import DomainSettings
from handlers.intercept.card import intercept_card
from handlers.intercept.machine import InterceptState
from handlers.message import Button, ButtonStyle, Field, Mention, Tone
from handlers.view import CardContext
from storage.models import Case

S = InterceptState
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
AT = (NOW - timedelta(hours=1)).isoformat()  # 09:00 in Shanghai
SUPERVISOR = (Mention("sup1", "张主管"),)
CONFIRM = ["intercepted", "intercept_failed"]


def context(*, feedback_h: float = 2.0) -> CardContext:
    settings = DomainSettings(
        staff=[
            {"id": "agent1", "name": "小王", "roles": ["agent"], "refund_limit": "50"},
            {"id": "sup1", "name": "张主管", "roles": ["supervisor"], "refund_limit": "2000"},
        ],
        timers={"intercept_feedback_h": feedback_h},
    )
    return CardContext.of(settings, NOW)


def make_case(state: InterceptState, data: dict[str, Any] | None = None, **columns: Any) -> Case:
    stored = {
        "carrier": "SF",
        "tracking_no": "SF1234567890",
        "source": "rule",
        "requested_by": "rule:ship-intercept",
        "attempt": 1,
        "refunds": [{"pk": 12, "handle": "R12", "case_id": "RF1", "amount_fen": 5000}],
        "anomalies": [],
    }
    values: dict[str, Any] = {
        "id": 30,
        "kind": "intercept",
        "case_id": "SF:SF1234567890",
        "handle": "X3",
        "state": state.value,
        "version": 2,
        "shop": "旗舰店",
        "platform": "taobao",
        "order_id": "4012345678901234567",
        "amount_fen": 5000,
        "group_id": "aftersales",
        "reason": "规则",
        "data": stored | (data or {}),
        "created_at": NOW - timedelta(days=1),
        "updated_at": NOW - timedelta(minutes=30),
        "last_actor": "rule:ship-intercept",
        "last_action": "requested",
    }
    return Case(**(values | columns))


def keys(buttons: tuple[Button, ...]) -> list[str]:
    return [b.key for b in buttons]


@pytest.mark.parametrize(
    ("state", "status", "tone", "buttons", "mentions"),
    [
        (S.REQUESTED, "已申请 · 提交快递中", Tone.INFO, CONFIRM, ()),
        (S.SENT, "快递已受理 · 等待拦截结果", Tone.INFO, CONFIRM, ()),
        (S.MANUAL, "未接快递系统 · 请电话联系快递拦截", Tone.INFO, CONFIRM, ()),
        (S.OVERDUE, "快递超时未反馈 · 已升级主管", Tone.DANGER, CONFIRM, SUPERVISOR),
        (S.INTERCEPTED, "拦截成功", Tone.SUCCESS, [], ()),
        (S.FAILED, "拦截失败", Tone.MUTED, [], ()),
        (S.ERROR, "未能提交给快递", Tone.DANGER, ["intercept", *CONFIRM], SUPERVISOR),
    ],
)
def test_intercept_card_status_tone_buttons_and_mentions_per_state(
    state: InterceptState,
    status: str,
    tone: Tone,
    buttons: list[str],
    mentions: tuple[Mention, ...],
) -> None:
    card = intercept_card(make_case(state), context())
    assert (card.status, card.tone, keys(card.buttons), card.mentions) == (
        status,
        tone,
        buttons,
        mentions,
    )
    assert (card.case_pk, card.handle, card.kind, card.state, card.version) == (
        30,
        "X3",
        "intercept",
        state.value,
        2,
    )
    assert card.title == "拦截 X3 · 顺丰 SF1234567890"
    assert card.footer == "规则 ship-intercept 申请拦截 · 11-23 09:30"


def test_intercept_card_requested_by_a_rule_fields() -> None:
    card = intercept_card(make_case(S.REQUESTED), context())
    assert card.fields == (
        Field("运单", "顺丰 SF1234567890"),
        Field("订单", "4012345678901234567"),
        Field("关联退款", "R12 · ¥50.00"),
        Field("申请", "规则 ship-intercept · 11-22 10:00"),
        Field("快递电话", "顺丰 95338"),
    )
    assert card.lines == ()
    assert card.buttons == (
        Button("intercepted", "拦截成功", ButtonStyle.PRIMARY),
        Button("intercept_failed", "拦截失败", ButtonStyle.DANGER),
    )


def test_intercept_card_requested_by_a_person_for_an_anomaly() -> None:
    data = {
        "carrier": "XYZ",
        "source": "anomaly",
        "requested_by": "agent1",
        "refunds": [],
        "anomalies": [{"pk": 8, "handle": "A3", "case_id": "XYZ:1"}],
    }
    card = intercept_card(make_case(S.SENT, data, order_id="", amount_fen=0), context())
    assert card.fields == (
        Field("运单", "XYZ SF1234567890"),
        Field("订单", "—"),
        Field("关联异常", "A3"),
        Field("申请", "小王（物流异常） · 11-22 10:00"),
    )


def test_intercept_card_shows_the_carriers_acceptance_but_not_a_manual_answer() -> None:
    accepted = {"status": "accepted", "detail": "已受理，单号 K1", "at": AT}
    card = intercept_card(make_case(S.SENT, {"carrier_answer": accepted, "error": ""}), context())
    assert Field("快递受理", "已受理，单号 K1") in card.fields
    manual = accepted | {"status": "manual", "detail": "未接快递系统"}
    card = intercept_card(make_case(S.MANUAL, {"carrier_answer": manual}), context())
    assert all(f.label != "快递受理" for f in card.fields)


def test_intercept_card_manual_mode_asks_for_a_phone_call() -> None:
    card = intercept_card(make_case(S.MANUAL), context())
    assert card.lines == (
        "☎ 未接快递系统，拦截申请没有发出：请电话联系快递拦截（顺丰 95338），"
        "再点「拦截成功 / 拦截失败」或输入「拦截成功 X3」「拦截失败 X3 原因」登记结果",
    )


def test_intercept_card_overdue_counts_twice_the_feedback_window() -> None:
    card = intercept_card(make_case(S.OVERDUE), context(feedback_h=1.5))
    assert card.lines == ("🔺 3 小时没有快递反馈，请主管联系快递确认",)


def test_intercept_card_submit_error_with_and_without_a_reason() -> None:
    card = intercept_card(make_case(S.ERROR, {"error": "HTTP 502"}), context())
    assert card.lines == ("⚠ 未能提交给快递：HTTP 502",)
    card = intercept_card(make_case(S.ERROR), context())
    assert card.lines == ("⚠ 未能提交给快递：接口多次失败",)
    assert card.buttons[0] == Button("intercept", "重新提交", ButtonStyle.PRIMARY)


def test_intercept_card_intercepted_on_the_carriers_word() -> None:
    result = {"result": "intercepted", "detail": "", "by": "carrier", "at": AT}
    card = intercept_card(
        make_case(S.INTERCEPTED, {"outcome": "intercepted", "result": result}), context()
    )
    assert Field("结果", "拦截成功（快递 · 11-23 09:00）") in card.fields
    assert card.lines == ("✅ 快件退回中，挽回 ¥50.00，退款自动继续",)


def test_intercept_card_intercepted_on_a_persons_word_then_confirmed() -> None:
    result = {"result": "intercepted", "detail": "电话确认", "by": "agent1", "at": AT}
    data = {"outcome": "intercepted", "result": result}
    card = intercept_card(make_case(S.INTERCEPTED, data), context())
    assert Field("结果", "电话确认（小王 · 11-23 09:00）") in card.fields
    assert card.lines == ("✅ 快件退回中，挽回 ¥50.00，退款在登记人的权限内继续，超出的等主管审批",)
    confirmed = {"result": "intercepted", "detail": "", "at": AT}
    card = intercept_card(
        make_case(S.INTERCEPTED, data | {"carrier_confirmed": confirmed}), context()
    )
    assert card.lines == ("✅ 快件退回中，挽回 ¥50.00，退款自动继续",)


def test_intercept_card_failed_sends_refunds_to_the_return_and_shows_late_feedback() -> None:
    result = {"result": "failed", "detail": "已派送", "by": "carrier", "at": AT}
    late = [
        {"result": "returned", "detail": "", "at": AT},
        {"result": "intercepted", "detail": "已拦回", "at": AT},
    ]
    data = {"outcome": "failed", "result": result, "late_results": late}
    card = intercept_card(make_case(S.FAILED, data), context())
    assert Field("结果", "已派送（快递 · 11-23 09:00）") in card.fields
    assert card.lines == ("退款已转入退货流程：等买家寄回", "⚠ 迟到的快递反馈：intercepted 已拦回")
