"""The refund card, drawn from hand-made rows and a hand-made card context: every state, and
what the card says about escalations, failures, manual mode, amounts and the conversation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handlers.config import DomainSettings
from handlers.message import Button, ButtonStyle, Field, Mention, Tone
from handlers.refund.card import refund_card
from handlers.refund.machine import RefundState
from handlers.view import CardContext
from integrations.wecom import render
from storage.models import Case

S = RefundState
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
AT = (NOW - timedelta(hours=1)).isoformat()  # 09:00 in Shanghai
STAFF = [
    {"id": "agent1", "name": "小王", "roles": ["agent"], "refund_limit": "50"},
    {"id": "sup1", "name": "张主管", "roles": ["supervisor"], "refund_limit": "2000"},
]


def context(*, commerce: str = "none", templates: bool = True) -> CardContext:
    settings = DomainSettings(
        staff=STAFF,
        commerce={"mode": commerce},
        replies={"builtin_templates": templates},
    )
    return CardContext.of(settings, NOW)


def make_case(state: RefundState, data: dict[str, Any] | None = None, **columns: Any) -> Case:
    request = {
        "refund_id": "RF20261123001",
        "order_id": "4012345678901234567",
        "kind": "refund_only",
        "reason": "尺码不合适",
        "shipping": {"status": "unshipped", "carrier": "", "tracking_no": ""},
        "buyer": {"nick": "t**1"},
        "deadline_at": None,
    }
    values: dict[str, Any] = {
        "id": 12,
        "kind": "refund",
        "case_id": "RF20261123001",
        "handle": "R12",
        "state": state.value,
        "version": 3,
        "shop": "旗舰店",
        "platform": "taobao",
        "order_id": "4012345678901234567",
        "amount_fen": 12800,
        "group_id": "aftersales",
        "assignee": "",
        "path": 1,
        "reason": "尺码不合适",
        "deadline_at": None,
        "data": {"refund": request, "order_amount_fen": 12800} | (data or {}),
        "created_at": NOW - timedelta(days=1),
        "updated_at": NOW - timedelta(minutes=30),
        "last_actor": "platform",
        "last_action": "created",
    }
    return Case(**(values | columns))


def keys(buttons: tuple[Button, ...]) -> list[str]:
    return [b.key for b in buttons]


REVIEW = ["approve", "reject", "claim", "templates"]


@pytest.mark.parametrize(
    ("state", "status", "tone", "buttons"),
    [
        (S.NEW, "新申请", Tone.INFO, ["templates"]),
        (S.AWAITING_REVIEW, "待审核", Tone.WARNING, REVIEW),
        (S.ESCALATED, "待主管审批", Tone.DANGER, REVIEW),
        (S.APPROVED, "已通过", Tone.INFO, ["templates"]),
        (S.AUTO_APPROVED, "自动通过", Tone.INFO, ["templates"]),
        (S.SUBMITTED, "已提交 · 等待平台退款", Tone.INFO, ["templates"]),
        (S.MANUAL, "已通过 · 待手动退款", Tone.WARNING, ["refunded", "claim", "templates"]),
        (S.REFUNDED, "已退款", Tone.SUCCESS, []),
        (S.REJECTED, "已拒绝", Tone.MUTED, []),
        (
            S.WAITING_INTERCEPT,
            "已发货 · 等待拦截结果",
            Tone.INFO,
            ["approve", "claim", "templates"],
        ),
        (S.WAITING_RETURN, "等待买家寄回", Tone.INFO, ["reject", "claim", "templates"]),
        (S.RETURNING, "退货在途", Tone.INFO, ["reject", "claim", "templates"]),
        (S.INSPECTING, "仓库已签收 · 待质检", Tone.WARNING, REVIEW),
        (S.CANCELLED, "买家已撤销", Tone.MUTED, []),
        (S.CLOSED_BY_PLATFORM, "平台已关闭", Tone.MUTED, []),
        (S.FAILED, "退款失败", Tone.DANGER, ["retry", "claim", "templates"]),
    ],
)
def test_refund_card_status_tone_and_buttons_per_state(
    state: RefundState, status: str, tone: Tone, buttons: list[str]
) -> None:
    card = refund_card(make_case(state), context())
    assert (card.status, card.tone, keys(card.buttons)) == (status, tone, buttons)
    assert (card.case_pk, card.handle, card.kind, card.state, card.version) == (
        12,
        "R12",
        "refund",
        state.value,
        3,
    )
    assert card.title == "仅退款 R12 · ¥128.00"
    supervisors = (Mention("sup1", "张主管"),) if state is S.ESCALATED else ()
    assert card.mentions == supervisors


def test_refund_card_awaiting_review_fields_and_footer() -> None:
    case = make_case(
        S.AWAITING_REVIEW,
        {"rule": "default-review", "review_role": "agent"},
        deadline_at=NOW + timedelta(hours=5),
        assignee="agent1",
        last_actor="agent1",
        last_action="claim",
    )
    card = refund_card(case, context())
    assert card.fields == (
        Field("订单", "4012345678901234567"),
        Field("平台", "淘宝 · 旗舰店"),
        Field("金额", "¥128.00"),
        Field("平台时限", "11-23 15:00（剩 5 小时）"),
        Field("原因", "尺码不合适"),
        Field("物流", "未发货"),
        Field("买家", "t**1"),
        Field("处理人", "小王"),
        Field("规则", "default-review"),
    )
    assert card.lines == ()
    assert card.footer == "小王 认领 · 11-23 09:30"
    assert card.buttons[0] == Button("approve", "通过", ButtonStyle.PRIMARY)
    assert card.buttons[1] == Button("reject", "拒绝", ButtonStyle.DANGER, ask="原因")


def test_refund_card_deadline_counts_minutes_then_says_overdue() -> None:
    soon = refund_card(
        make_case(S.AWAITING_REVIEW, deadline_at=NOW + timedelta(minutes=40)), context()
    )
    assert Field("平台时限", "11-23 10:40（剩 40 分钟）") in soon.fields
    late = refund_card(
        make_case(S.AWAITING_REVIEW, deadline_at=NOW - timedelta(hours=1)), context()
    )
    assert Field("平台时限", "11-23 09:00（已超时）") in late.fields
    done = refund_card(make_case(S.REFUNDED, deadline_at=NOW + timedelta(hours=1)), context())
    assert all(f.label != "平台时限" for f in done.fields)


def test_refund_card_escalated_names_who_asked_and_mentions_supervisors() -> None:
    escalation = {"by": "agent1", "limit": "¥50.00", "at": AT}
    decision = {"by": "agent1", "action": "escalate", "at": AT}
    card = refund_card(
        make_case(S.ESCALATED, {"escalation": escalation, "decision": decision}), context()
    )
    assert card.lines == ("⬆ 小王 建议通过，超出其权限 ¥50.00，请主管审批",)
    assert card.mentions == (Mention("sup1", "张主管"),)
    assert Field("决定", "小王 升级主管 · 11-23 09:00") in card.fields


def test_refund_card_escalated_by_a_recorded_intercept() -> None:
    escalation = {"by": "agent1", "limit": "¥50.00", "at": AT, "intercept": "X3"}
    shown = {"handle": "X3", "text": "拦截成功"}
    card = refund_card(
        make_case(S.ESCALATED, {"escalation": escalation, "intercept": shown}), context()
    )
    assert card.lines == ("⬆ 小王 登记 X3 拦截成功，退款超出其权限 ¥50.00，请主管审批",)
    assert Field("拦截", "X3 · 拦截成功") in card.fields


def test_refund_card_status_says_submitting_only_with_a_shop_system() -> None:
    assert refund_card(make_case(S.APPROVED), context(commerce="none")).status == "已通过"
    connected = context(commerce="simulator")
    assert refund_card(make_case(S.APPROVED), connected).status == "已通过 · 退款提交中"
    assert refund_card(make_case(S.AUTO_APPROVED), connected).status == "自动通过 · 退款提交中"


def test_refund_card_manual_mode_asks_for_the_approved_amount_by_hand() -> None:
    approved = {"amount_fen": 9900, "by": "sup1", "at": AT, "key": "k"}
    card = refund_card(make_case(S.MANUAL, {"approved": approved}), context())
    assert Field("批准金额", "¥99.00") in card.fields
    assert card.lines == (
        "⚠ 未接店铺系统，退款没有发出：请在店铺后台手动退款 ¥99.00，"
        "完成后点「已手动退款」或输入「已退款 R12」",
    )
    assert card.buttons[0] == Button("refunded", "已手动退款", ButtonStyle.PRIMARY)


def test_refund_card_failed_shows_the_error_and_a_retry() -> None:
    card = refund_card(
        make_case(S.FAILED, {"commerce": {"attempt": 2, "error": "超时"}}), context()
    )
    assert card.lines == ("⚠ 失败原因：超时",)
    assert card.buttons[0] == Button("retry", "重新提交", ButtonStyle.PRIMARY)


def test_refund_card_rejected_by_hand_and_with_a_reason() -> None:
    data = {"commerce": {"reject": "manual"}, "reject_reason": "已超过售后期"}
    card = refund_card(make_case(S.REJECTED, data), context())
    assert card.lines == (
        "⚠ 未接店铺系统，拒绝没有提交到平台：请在店铺后台手动拒绝",
        "拒绝原因：已超过售后期",
    )


def test_refund_card_inspecting_after_a_failed_qc() -> None:
    qc = {"result": "failed", "detail": "吊牌已拆", "at": AT}
    card = refund_card(make_case(S.INSPECTING, {"qc": qc}), context())
    assert card.lines == ("⚠ 仓库质检不通过 吊牌已拆",)
    assert card.buttons[0] == Button("approve", "质检通过 · 退款", ButtonStyle.PRIMARY)


@pytest.mark.parametrize("state", [S.CANCELLED, S.CLOSED_BY_PLATFORM])
def test_refund_card_ended_by_the_platform_says_how(state: RefundState) -> None:
    card = refund_card(make_case(state, {"end_detail": "买家主动撤销"}), context())
    assert card.lines == ("平台：买家主动撤销",)


def test_refund_card_shipped_parcel_offers_an_intercept_until_one_is_shown() -> None:
    shipping = {"status": "in_transit", "carrier": "SF", "tracking_no": "SF1234567890"}
    request = {"kind": "refund_only", "shipping": shipping}
    card = refund_card(make_case(S.WAITING_INTERCEPT, {"refund": request}), context())
    assert Field("物流", "运输中 · SF SF1234567890") in card.fields
    assert keys(card.buttons) == ["approve", "claim", "intercept", "templates"]
    shown = {"handle": "X3", "text": "拦截中 · 等快递结果"}
    after = refund_card(
        make_case(S.WAITING_INTERCEPT, {"refund": request, "intercept": shown}), context()
    )
    assert keys(after.buttons) == ["approve", "claim", "templates"]


def test_refund_card_stop_shipment_field() -> None:
    card = refund_card(make_case(S.AUTO_APPROVED, {"stop_shipment": "manual"}), context())
    assert Field("截单", "❗ 未接仓库/ERP，没有通知仓库：请手动截单") in card.fields
    failed = refund_card(make_case(S.AUTO_APPROVED, {"stop_shipment": "failed: 超时"}), context())
    assert Field("截单", "❌ 截单失败：超时") in failed.fields


def test_refund_card_partial_refund_and_amount_changes() -> None:
    change = {
        "from": 12800,
        "to": 9900,
        "order_from": 12800,
        "order_to": 12800,
        "approved": 12800,
        "outcome": "flagged",
        "at": AT,
    }
    approved = {"amount_fen": 12800, "by": "sup1", "at": AT, "key": "k"}
    data = {"amount_change": change, "approved": approved}
    card = refund_card(make_case(S.SUBMITTED, data, amount_fen=9900), context())
    assert Field("金额", "¥99.00（订单 ¥128.00，部分退款）") in card.fields
    assert Field("批准金额", "¥128.00") in card.fields
    assert card.lines == (
        "⚠ 金额已变更 ¥128.00 → ¥99.00：退款已按 ¥128.00 提交，不会再次提交，请人工核对",
    )
    reopened = refund_card(
        make_case(S.AWAITING_REVIEW, {"amount_change": change | {"outcome": "reopened"}}),
        context(),
    )
    assert reopened.lines == ("⚠ 金额已变更 ¥128.00 → ¥99.00，原审批已撤回，需重新审核",)
    refused = {"amount_fen": 20000, "order_amount_fen": None, "why": "超过订单金额", "at": AT}
    flagged = refund_card(make_case(S.AWAITING_REVIEW, {"amount_refused": refused}), context())
    assert flagged.lines == ("⚠ 平台推送的金额变更未采用：超过订单金额，请人工核对",)


def test_refund_card_shows_the_last_three_notes_and_the_conversation() -> None:
    notes = [{"by": "agent1", "at": AT, "text": f"第{n}条"} for n in range(1, 5)]
    message = {"n": 1, "text": "什么时候退款？", "at": (NOW - timedelta(minutes=20)).isoformat()}
    reply = {
        "n": 1,
        "by": "agent1",
        "at": (NOW - timedelta(minutes=10)).isoformat(),
        "text": "今天处理",
        "template": "",
        "key": "k1",
        "status": "failed",
        "detail": "买家已离线",
    }
    data = {"notes": notes, "buyer_message": message, "replies": [reply]}
    data["awaiting_reply"] = {"n": 1, "since": message["at"]}
    card = refund_card(make_case(S.AWAITING_REVIEW, data), context())
    assert card.lines == (
        "📝 小王：第2条",
        "📝 小王：第3条",
        "📝 小王：第4条",
        "🗨 买家 11-23 09:40：什么时候退款？（待回复）",
        "💬 小王 11-23 09:50 回复买家：今天处理 · 未送达",
        "⚠ 11-23 09:50 给买家的回复未送达：买家已离线",
    )


def test_refund_card_without_templates_offers_no_replies() -> None:
    card = refund_card(make_case(S.AWAITING_REVIEW), context(templates=False))
    assert keys(card.buttons) == ["approve", "reject", "claim"]


def test_refund_card_kind_in_the_title() -> None:
    request = {"kind": "return_refund", "shipping": {"status": "delivered"}}
    card = refund_card(make_case(S.WAITING_RETURN, {"refund": request}), context())
    assert card.title == "退货退款 R12 · ¥128.00"
    assert Field("物流", "已签收") in card.fields


def test_refund_card_on_wecom_keeps_the_deadline_among_the_six_fields_it_shows() -> None:
    escalation = {"by": "agent1", "limit": "¥50.00", "at": AT, "intercept": "X3"}
    decision = {"by": "agent1", "action": "escalate", "at": AT}
    data = {
        "escalation": escalation,
        "decision": decision,
        "intercept": {"handle": "X3", "text": "拦截成功"},
        "stop_shipment": "manual",
        "rule": "default-review",
        "approved_fen": 9900,
    }
    case = make_case(S.ESCALATED, data, deadline_at=NOW + timedelta(hours=5), assignee="agent1")
    card = refund_card(case, context())
    assert len(card.fields) > render.MAX_FIELDS
    shown = render.template_card(card, "t1")["horizontal_content_list"]
    assert len(shown) == render.MAX_FIELDS
    assert {"keyname": "平台时限", "value": "11-23 15:00（剩 5 小时）"} in shown
    assert "规则：default-review" in render.template_card(card, "t1")["sub_title_text"]
