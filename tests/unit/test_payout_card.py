"""The payout and batch cards, drawn from hand-made case rows and a hand-made card context."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from handlers.config import DomainSettings
from handlers.message import Button, ButtonStyle, Field, Mention, Tone
from handlers.payout.card import batch_card, payout_card
from handlers.view import CardContext
from storage.models import Case

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
REQUESTED_AT = "2026-03-02T01:00:00+00:00"
APPROVED_AT = "2026-03-02T01:30:00+00:00"
PAID_AT = "2026-03-02T01:45:00+00:00"
STAFF: list[dict[str, Any]] = [
    {"id": "agent1", "name": "小王", "roles": ["agent"], "refund_limit": "50"},
    {"id": "sup1", "name": "老李", "roles": ["supervisor"], "refund_limit": "2000"},
    {"id": "fin1", "name": "财务张", "roles": ["finance"]},
    {"id": "fin2", "name": "财务赵", "roles": ["finance"]},
    {"id": "admin1", "name": "老板", "roles": ["admin"]},
]
REQUESTED = {
    "payout": {
        "kind": "cashback",
        "payee_name": "王**",
        "payee": "138****8000",
        "requested_by": "agent1",
        "requested_at": REQUESTED_AT,
    }
}
APPROVED = {**REQUESTED, "approval": {"by": "admin1", "at": APPROVED_AT}}
REJECT = Button("reject", "拒绝", ButtonStyle.DANGER, ask="原因")


def context(*, provider: str = "manual", two_person: bool = True) -> CardContext:
    settings = DomainSettings(
        staff=STAFF,
        payout={"provider": provider, "two_person_rule": two_person},
    )
    return CardContext.of(settings, NOW)


def payout(state: str, data: dict[str, Any], **row: Any) -> Case:
    values: dict[str, Any] = {
        "id": 7,
        "kind": "payout",
        "case_id": "PO7",
        "handle": "P7",
        "state": state,
        "version": 3,
        "shop": "旗舰店",
        "platform": "taobao",
        "order_id": "T1001",
        "amount_fen": 1250,
        "group_id": "finance",
        "reason": "活动返现",
        "data": data,
        "created_at": NOW,
        "updated_at": NOW,
        "last_actor": "agent1",
        "last_action": "created",
    }
    return Case(**(values | row))


def mentions(*ids: str) -> tuple[Mention, ...]:
    names = {s["id"]: s["name"] for s in STAFF}
    return tuple(Mention(i, names[i]) for i in ids)


def test_payout_card_requested_asks_approvers_other_than_the_requester() -> None:
    card = payout_card(payout("requested", REQUESTED), context())
    assert (card.case_pk, card.case_id, card.handle, card.kind) == (7, "PO7", "P7", "payout")
    assert (card.state, card.version) == ("requested", 3)
    assert card.title == "活动返现 P7 · ¥12.50"
    assert (card.status, card.tone) == ("待审批", Tone.WARNING)
    assert card.fields == (
        Field("订单", "T1001"),
        Field("平台", "淘宝 · 旗舰店"),
        Field("金额", "¥12.50"),
        Field("收款", "王** · 138****8000"),
        Field("原因", "活动返现"),
        Field("申请", "小王 · 03-02 09:00"),
        Field("渠道", "财务线下打款"),
    )
    assert card.buttons == (Button("approve", "通过", ButtonStyle.PRIMARY), REJECT)
    assert card.lines == ()
    assert card.footer == "小王 提交打款申请 · 03-02 10:00"
    assert card.mentions == mentions("sup1", "admin1")


def test_payout_card_requested_without_the_two_person_rule_asks_the_requester_too() -> None:
    card = payout_card(payout("requested", REQUESTED), context(two_person=False))
    assert card.mentions == mentions("agent1", "sup1", "admin1")


def test_payout_card_from_the_platform_without_order_or_shop() -> None:
    data = {"payout": {**REQUESTED["payout"], "kind": "compensation", "requested_by": "platform"}}
    case = payout("requested", data, order_id="", shop="", platform="", reason="")
    card = payout_card(case, context())
    assert card.title == "补偿 P7 · ¥12.50"
    assert card.fields[:4] == (
        Field("订单", "—"),
        Field("金额", "¥12.50"),
        Field("收款", "王** · 138****8000"),
        Field("原因", "—"),
    )
    assert card.fields[4] == Field("申请", "店铺系统 · 03-02 09:00")


@pytest.mark.parametrize(
    ("provider", "text", "channel", "ask"),
    [
        ("manual", "已打款 · 填流水号", "财务线下打款", "流水号"),
        ("alipay", "确认打款", "支付宝转账", ""),
    ],
)
def test_payout_card_approved_asks_finance_other_than_the_approver(
    provider: str, text: str, channel: str, ask: str
) -> None:
    case = payout("approved", APPROVED, last_actor="admin1", last_action="approve")
    card = payout_card(case, context(provider=provider))
    assert (card.status, card.tone) == ("已审批 · 待财务打款", Tone.WARNING)
    assert card.fields[-2:] == (Field("审批", "老板 · 03-02 09:30"), Field("渠道", channel))
    assert card.buttons == (Button("paid", text, ButtonStyle.PRIMARY, ask=ask), REJECT)
    assert card.footer == "老板 审批通过 · 03-02 10:00"
    assert card.mentions == mentions("fin1", "fin2")


def test_payout_card_approved_without_the_two_person_rule_asks_the_approver_too() -> None:
    card = payout_card(payout("approved", APPROVED), context(two_person=False))
    assert card.mentions == mentions("fin1", "fin2", "admin1")


def test_payout_card_approved_in_a_batch_names_it_and_leaves_finance_to_the_batch() -> None:
    data = {**APPROVED, "batch": {"pk": 9, "handle": "B9"}}
    card = payout_card(payout("approved", data), context())
    assert card.fields[-2:] == (Field("渠道", "财务线下打款"), Field("批次", "B9"))
    assert card.mentions == ()


def test_payout_card_paying_while_alipay_deals() -> None:
    data = {
        **APPROVED,
        "confirm": {"by": "fin1", "at": PAID_AT},
        "transfer": {"attempt": 1, "out_biz_no": "PO7", "status": "DEALING", "detail": ""},
        "channel": "alipay",
    }
    card = payout_card(payout("paying", data), context(provider="alipay"))
    assert (card.status, card.tone) == ("已确认 · 转账中", Tone.INFO)
    assert card.fields[-3:] == (
        Field("审批", "老板 · 03-02 09:30"),
        Field("打款", "财务张 · 03-02 09:45"),
        Field("渠道", "支付宝转账"),
    )
    assert card.lines == ("⏳ 支付宝处理中，到账后卡片会更新",)
    assert card.buttons == ()
    assert card.mentions == ()


def test_payout_card_paying_with_an_unknown_outcome_offers_the_recheck() -> None:
    transfer = {"attempt": 1, "out_biz_no": "PO7", "unknown": True, "detail": "网络超时"}
    data = {**APPROVED, "transfer": transfer, "channel": "alipay"}
    card = payout_card(payout("paying", data), context(provider="alipay"))
    assert card.lines == (
        "⚠ 支付宝转账结果未知（网络超时）。请在支付宝核对：核对 P7，或已到账时 打款确认 P7 <流水号>",
    )
    assert card.buttons == (Button("recheck", "核对转账", ButtonStyle.PRIMARY),)


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        ({"buyer_notified": PAID_AT}, "已通知买家"),
        ({"buyer_notify_error": "店铺系统 502"}, "⚠ 未能通知买家：店铺系统 502"),
        (
            {"buyer_notify_manual": PAID_AT},
            "⚠ 未接店铺系统，没有通知买家：请在平台后台告知买家已打款",
        ),
    ],
)
def test_payout_card_paid_by_finance_says_whether_the_buyer_knows(
    extra: dict[str, Any], line: str
) -> None:
    data = {
        **APPROVED,
        "confirm": {"by": "fin1", "at": PAID_AT},
        "reference": "LS20260302",
        "channel": "manual",
        **extra,
    }
    case = payout("paid", data, last_actor="fin1", last_action="paid")
    card = payout_card(case, context(provider="alipay"))
    assert (card.status, card.tone) == ("已打款", Tone.SUCCESS)
    assert card.fields[-3:] == (
        Field("打款", "财务张 · 03-02 09:45"),
        Field("流水号", "LS20260302"),
        Field("渠道", "财务线下打款"),
    )
    assert card.lines == (line,)
    assert card.buttons == ()
    assert card.footer == "财务张 打款确认 · 03-02 10:00"


def test_payout_card_rejected_with_reason_and_notes() -> None:
    notes = [{"by": "sup1", "at": APPROVED_AT, "text": f"第{n}条"} for n in range(1, 5)]
    data = {
        **REQUESTED,
        "notes": notes,
        "reject": {"by": "sup1", "at": APPROVED_AT, "reason": "重复申请"},
    }
    card = payout_card(payout("rejected", data), context())
    assert (card.status, card.tone) == ("已拒绝", Tone.MUTED)
    assert card.lines == (
        "📝 老李：第2条",
        "📝 老李：第3条",
        "📝 老李：第4条",
        "拒绝原因：重复申请（老李）",
    )
    assert card.buttons == ()
    assert card.mentions == ()


@pytest.mark.parametrize(
    ("provider", "button"),
    [
        ("alipay", Button("repay", "重新打款", ButtonStyle.PRIMARY)),
        ("manual", Button("paid", "已打款 · 填流水号", ButtonStyle.PRIMARY, ask="流水号")),
    ],
)
def test_payout_card_failed_shows_the_reason(provider: str, button: Button) -> None:
    data = {
        **APPROVED,
        "transfer": {"attempt": 1, "out_biz_no": "PO7", "status": "FAIL", "detail": "账户不存在"},
        "channel": "alipay",
        "error": "收款账户不存在",
    }
    card = payout_card(
        payout("failed", data, last_actor="alipay", last_action="fail"), context(provider=provider)
    )
    assert (card.status, card.tone) == ("打款失败", Tone.DANGER)
    assert card.fields[-1] == Field("渠道", "支付宝转账")
    assert card.lines == ("⚠ 失败原因：收款账户不存在",)
    assert card.buttons == (button, REJECT)
    assert card.footer == "支付宝 打款失败 · 03-02 10:00"


# -- batches --------------------------------------------------------------------------------


def item(pk: int, state: str, amount_fen: int, **extra: Any) -> dict[str, Any]:
    return {
        "pk": pk,
        "handle": f"P{pk}",
        "amount_fen": amount_fen,
        "payee": "王** 138****8000",
        "state": state,
        "note": "",
        **extra,
    }


def batch(state: str, data: dict[str, Any], **row: Any) -> Case:
    values: dict[str, Any] = {
        "id": 9,
        "kind": "payout_batch",
        "case_id": "PB9",
        "handle": "B9",
        "state": state,
        "version": 2,
        "amount_fen": 3000,
        "group_id": "finance",
        "data": data,
        "created_at": datetime(2026, 3, 2, 1, 0, tzinfo=UTC),
        "updated_at": NOW,
        "last_actor": "fin1",
        "last_action": "batch",
    }
    return Case(**(values | row))


def test_batch_card_open_counts_only_what_is_still_approved() -> None:
    data = {
        "created_by": "fin1",
        "items": [item(1, "approved", 1000), item(2, "approved", 2000), item(3, "rejected", 500)],
    }
    card = batch_card(batch("open", data), context())
    assert card.title == "批量打款 B9 · 2 笔 · ¥30.00"
    assert (card.status, card.tone) == ("待财务确认", Tone.WARNING)
    assert card.fields == (
        Field("笔数", "2"),
        Field("合计", "¥30.00"),
        Field("发起", "财务张 · 03-02 09:00"),
    )
    assert card.lines == (
        "P1 ¥10.00 王** 138****8000 · 待确认",
        "P2 ¥20.00 王** 138****8000 · 待确认",
        "P3 ¥5.00 王** 138****8000 · 已拒绝",
    )
    assert card.buttons == (
        Button("paid", "全部确认打款（2 笔 ¥30.00）", ButtonStyle.PRIMARY, ask="流水号"),
        Button("unbatch", "取消批次"),
    )
    assert card.footer == "财务张 放入批次 · 03-02 10:00"
    assert card.mentions == mentions("fin1", "fin2", "admin1")


def test_batch_card_open_lists_thirty_lines_and_counts_the_rest() -> None:
    data = {"created_by": "fin1", "items": [item(n, "approved", 100) for n in range(1, 33)]}
    card = batch_card(batch("open", data), context())
    assert len(card.lines) == 31
    assert card.lines[-1] == "…另有 2 笔"


def test_batch_card_confirmed_with_a_reference_and_a_skipped_payout() -> None:
    data = {
        "created_by": "fin1",
        "items": [
            item(1, "paid", 1000, skipped=""),
            item(2, "approved", 2000, skipped="由你审批，需其他财务确认（双人复核）"),
            item(3, "paying", 500, skipped=""),
        ],
        "confirm": {"by": "fin2", "at": PAID_AT, "ref": "LS88"},
    }
    case = batch("confirmed", data, last_actor="fin2", last_action="confirm")
    card = batch_card(case, context())
    assert card.title == "批量打款 B9 · 2 笔 · ¥15.00"
    assert (card.status, card.tone) == ("已确认 · 处理中", Tone.INFO)
    assert card.fields[-2:] == (
        Field("确认", "财务赵 · 03-02 09:45 · 流水号 LS88"),
        Field("结果", "已打款 1 笔 ¥10.00 · 转账中 1 笔 ¥5.00 · 跳过 1 笔"),
    )
    assert card.lines == (
        "P1 ¥10.00 王** 138****8000 · ✓ 已打款",
        "P2 ¥20.00 王** 138****8000 · 跳过：由你审批，需其他财务确认（双人复核）",
        "P3 ¥5.00 王** 138****8000 · 转账中",
    )
    assert card.buttons == ()
    assert card.mentions == ()


def test_batch_card_settled_with_a_failure_is_red() -> None:
    data = {
        "created_by": "fin1",
        "items": [
            item(1, "paid", 1000, skipped=""),
            item(2, "failed", 2000, skipped="", note="收款账户不存在"),
        ],
        "confirm": {"by": "fin2", "at": PAID_AT, "ref": ""},
    }
    card = batch_card(batch("settled", data, last_actor="system", last_action="settle"), context())
    assert (card.status, card.tone) == ("已完成", Tone.DANGER)
    assert card.fields[-2:] == (
        Field("确认", "财务赵 · 03-02 09:45"),
        Field("结果", "已打款 1 笔 ¥10.00 · 失败 1 笔 ¥20.00"),
    )
    assert card.lines[-1] == "P2 ¥20.00 王** 138****8000 · ✗ 失败：收款账户不存在"
    assert card.footer == "系统 批次完成 · 03-02 10:00"


def test_batch_card_settled_all_paid_is_green() -> None:
    data = {"created_by": "fin1", "items": [item(1, "paid", 1000, skipped="")]}
    card = batch_card(batch("settled", data), context())
    assert card.tone == Tone.SUCCESS


def test_batch_card_cancelled_with_the_reason() -> None:
    data = {
        "created_by": "fin1",
        "items": [item(1, "approved", 1000)],
        "cancel_reason": "金额有误",
    }
    card = batch_card(batch("cancelled", data, last_action="cancel"), context())
    assert (card.status, card.tone) == ("已取消", Tone.MUTED)
    assert card.lines == ("P1 ¥10.00 王** 138****8000 · 待确认", "取消原因：金额有误")
    assert card.buttons == ()
    assert card.mentions == ()
