"""The anomaly card, drawn from a hand-made case and context: each state, each kind, the links."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from handlers.config import DomainSettings
from handlers.logistics.card import anomaly_card
from handlers.message import Button, ButtonStyle, Field, Mention, Tone
from handlers.view import CardContext
from storage.models import Case

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
SCAN_AT = "2026-11-18T09:30:00+00:00"
RAISED = datetime(2026, 11, 20, 7, 45, tzinfo=UTC)
DECISIONS = (
    Button("intercept", "拦截", ButtonStyle.PRIMARY),
    Button("reship", "补发"),
    Button("contact_carrier", "联系快递"),
    Button("ignore", "忽略", ButtonStyle.DANGER),
)


def context() -> CardContext:
    settings = DomainSettings(
        staff=[
            {"id": "agent1", "name": "小王", "roles": ["agent"]},
            {"id": "sup1", "name": "老李", "roles": ["supervisor"]},
            {"id": "fin1", "roles": ["finance"]},
        ],
    )
    return CardContext.of(settings, NOW)


def anomaly(
    state: str = "open",
    *,
    kind: str = "stuck",
    carrier: str = "SF",
    assignee: str = "",
    amount_fen: int = 0,
    last_actor: str = "system",
    last_action: str = "raised",
    **data: Any,
) -> Case:
    """An anomaly row as `raise_anomaly` leaves it; `data` keys replace or add to its data."""
    stored: dict[str, Any] = {
        "anomaly": kind,
        "carrier": carrier,
        "tracking_no": "SF100",
        "count": 1,
        "status": "in_transit",
        "detail": "运输中 46 小时没有物流更新（时限 48 小时）",
        "scan": {"at": SCAN_AT, "description": "【杭州】已发出"},
        "seen_at": RAISED.isoformat(),
    }
    return Case(
        id=7,
        kind="anomaly",
        case_id=f"{carrier}:SF100:{kind}",
        handle="A7",
        state=state,
        version=3,
        order_id="T1001",
        amount_fen=amount_fen,
        assignee=assignee,
        last_actor=last_actor,
        last_action=last_action,
        updated_at=RAISED,
        data={k: v for k, v in (stored | data).items() if v is not None},
    )


def fields(case: Case) -> dict[str, str]:
    return {f.label: f.value for f in anomaly_card(case, context()).fields}


def test_anomaly_card_open_names_the_parcel_the_risk_and_every_decision() -> None:
    card = anomaly_card(anomaly(), context())
    assert (card.case_pk, card.case_id, card.handle) == (7, "SF:SF100:stuck", "A7")
    assert (card.kind, card.state, card.version) == ("anomaly", "open", 3)
    assert card.title == "物流异常 A7 · 物流停滞"
    assert card.status == "待处理"
    assert card.tone is Tone.WARNING
    assert card.fields == (
        Field("运单", "顺丰 SF100"),
        Field("订单", "T1001"),
        Field("物流状态", "运输中"),
        Field("最后轨迹", "11-18 17:30 【杭州】已发出"),
        Field("异常", "运输中 46 小时没有物流更新（时限 48 小时）"),
        Field("快递电话", "顺丰 95338"),
    )
    assert card.buttons == DECISIONS
    assert card.lines == (
        "⚠ 物流停滞会被判定虚假发货（赔付 30%，5–500 元）；买家此时申请退款，平台可直接同意",
    )
    assert card.footer == "系统 发现异常 · 11-20 15:45"
    assert card.mentions == (Mention("agent1", "小王"),)


@pytest.mark.parametrize(
    ("kind", "title", "risk"),
    [
        ("no_pickup", "揽收超时", "揽收超时会被平台按订单金额罚款 30%，并拉低「24小时揽收及时率」"),
        (
            "no_update",
            "揽收后未更新",
            "揽收后长时间无更新会被判定虚假发货：买家投诉成立赔付 30%（5–500 元）",
        ),
        ("exception", "快件异常", "请联系快递核实地址和电话，必要时拦截退回"),
    ],
)
def test_anomaly_card_for_a_kind_that_can_wait_warns_the_agents(
    kind: str, title: str, risk: str
) -> None:
    card = anomaly_card(anomaly(kind=kind), context())
    assert card.title == f"物流异常 A7 · {title}"
    assert card.lines == (f"⚠ {risk}",)
    assert card.tone is Tone.WARNING
    assert card.mentions == (Mention("agent1", "小王"),)


@pytest.mark.parametrize(
    ("kind", "title", "risk"),
    [
        (
            "lost",
            "疑似丢件",
            "超过时限无走件按丢件处理：补发或退款，货损由快递承担，可请快递开具红章证明",
        ),
        ("returned", "快件退回", "快件正在退回：确认是否补发或给买家退款"),
        ("rejected", "收件人拒收", "收件人拒收，快件将退回：请联系买家确认退款或补发"),
    ],
)
def test_anomaly_card_for_a_severe_kind_is_red_and_calls_the_supervisors(
    kind: str, title: str, risk: str
) -> None:
    card = anomaly_card(anomaly(kind=kind), context())
    assert card.title == f"物流异常 A7 · {title}"
    assert card.lines == (f"⚠ {risk}",)
    assert card.tone is Tone.DANGER
    assert card.mentions == (Mention("agent1", "小王"), Mention("sup1", "老李"))


def test_anomaly_card_open_and_assigned_calls_only_the_assignee() -> None:
    card = anomaly_card(anomaly(kind="lost", assignee="sup1"), context())
    assert card.mentions == (Mention("sup1", "老李"),)
    assert Field("处理人", "老李") in card.fields


def test_anomaly_card_contacting_drops_the_contact_button_and_names_who_calls() -> None:
    case = anomaly(
        "contacting", assignee="agent1", last_actor="agent1", last_action="contact_carrier"
    )
    card = anomaly_card(case, context())
    assert card.status == "联系快递中"
    assert card.tone is Tone.WARNING
    assert card.buttons == (DECISIONS[0], DECISIONS[1], DECISIONS[3])
    assert card.lines[0].startswith("⚠ 物流停滞")
    assert card.mentions == ()
    assert card.footer == "小王 联系快递 · 11-20 15:45"
    assert fields(case)["处理人"] == "小王"


def test_anomaly_card_intercepting_shows_the_intercept_and_offers_nothing() -> None:
    case = anomaly(
        "intercepting",
        assignee="agent1",
        last_actor="agent1",
        last_action="intercept",
        intercept={"handle": "X3", "text": "拦截中 · 等快递结果"},
    )
    card = anomaly_card(case, context())
    assert card.status == "已转拦截"
    assert card.tone is Tone.INFO
    assert card.buttons == ()
    assert card.lines == ()
    assert card.mentions == ()
    assert fields(case)["拦截"] == "X3 · 拦截中 · 等快递结果"
    assert card.footer == "小王 转拦截 · 11-20 15:45"


def test_anomaly_card_reshipped_says_what_to_do_next() -> None:
    card = anomaly_card(anomaly("reshipped", assignee="agent1"), context())
    assert card.status == "已安排补发"
    assert card.tone is Tone.SUCCESS
    assert card.buttons == ()
    assert card.lines == ("已决定补发：请在 ERP 安排补发，原件货损可向快递索赔",)


def test_anomaly_card_ignored_shows_the_reason_when_there_is_one() -> None:
    with_reason = anomaly_card(anomaly("ignored", ignore_reason="买家已自提"), context())
    assert with_reason.status == "已忽略"
    assert with_reason.tone is Tone.MUTED
    assert with_reason.buttons == ()
    assert with_reason.lines == ("忽略原因：买家已自提",)
    assert anomaly_card(anomaly("ignored"), context()).lines == ()


def test_anomaly_card_recovered_shows_the_new_scan() -> None:
    recovered = {"at": "2026-11-20T07:50:00+00:00", "status": "delivering", "description": ""}
    case = anomaly("recovered", last_actor="carrier", last_action="recover", recovered=recovered)
    card = anomaly_card(case, context())
    assert card.status == "物流已恢复"
    assert card.tone is Tone.SUCCESS
    assert card.buttons == ()
    assert card.lines == ("✅ 11-20 15:50 有新轨迹：已更新",)
    assert card.footer == "物流 物流恢复 · 11-20 15:45"
    described = anomaly("recovered", recovered=recovered | {"description": "【上海】派件中"})
    assert anomaly_card(described, context()).lines == ("✅ 11-20 15:50 有新轨迹：【上海】派件中",)


def test_anomaly_card_links_the_orders_refund_with_its_amount() -> None:
    linked = {"pk": 12, "handle": "R12"}
    assert fields(anomaly(refund=linked, amount_fen=12800))["关联退款"] == "R12 · ¥128.00"
    assert fields(anomaly(refund=linked))["关联退款"] == "R12"
    assert "关联退款" not in fields(anomaly())


def test_anomaly_card_counts_a_recurring_problem() -> None:
    assert fields(anomaly(count=3))["次数"] == "第 3 次 · 最近 11-20 15:45"
    assert "次数" not in fields(anomaly())


def test_anomaly_card_falls_back_where_the_case_knows_little() -> None:
    case = anomaly(carrier="XYZ", status=None, detail=None, scan=None, last_action="")
    card = anomaly_card(case, context())
    assert card.fields == (
        Field("运单", "XYZ SF100"),
        Field("订单", "T1001"),
        Field("物流状态", "—"),
        Field("最后轨迹", "—"),
        Field("异常", "物流停滞"),
    )
    assert card.footer == ""
