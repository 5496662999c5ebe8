"""The decision table: the defaults (the four paths and price-difference tolerance), the
config's rows before them, each condition's boundary, and why a refund takes its row."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from handlers.condition import RefundFacts
from handlers.config import GroupSettings, Role, RuleSettings, RulesSettings
from handlers.rules import Action, RuleTable


def facts(**overrides: object) -> RefundFacts:
    values: dict[str, object] = {
        "platform": "taobao",
        "shop": "flagship",
        "kind": "refund_only",
        "shipping": "delivered",
        "amount_fen": 12800,
        "order_amount_fen": 12800,
        "reason": "尺码不合适",
    }
    values.update(overrides)
    return RefundFacts(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "rule", "actions"),
    [
        ({"shipping": "unshipped"}, "unshipped-auto", {Action.AUTO_APPROVE, Action.STOP_SHIPMENT}),
        (
            {"shipping": "unshipped", "amount_fen": 80000, "order_amount_fen": 80000},
            "unshipped-review",
            {Action.REQUIRE_REVIEW, Action.STOP_SHIPMENT},
        ),
        ({"shipping": "shipped"}, "shipped-intercept", {Action.REQUEST_INTERCEPT}),
        ({"shipping": "in_transit"}, "shipped-intercept", {Action.REQUEST_INTERCEPT}),
        (
            {"shipping": "in_transit", "amount_fen": 2000},
            "received-review",
            {Action.REQUIRE_REVIEW},
        ),
        ({}, "received-review", {Action.REQUIRE_REVIEW}),
        ({"kind": "return_refund"}, "return-and-refund", {Action.AWAIT_RETURN}),
        ({"kind": "price_diff", "amount_fen": 1500}, "price-diff-tolerance", {Action.AUTO_APPROVE}),
        ({"kind": "price_diff", "amount_fen": 5000}, "received-review", {Action.REQUIRE_REVIEW}),
    ],
)
def test_default_rules_follow_the_four_paths(
    overrides: dict[str, object], rule: str, actions: set[Action]
) -> None:
    decision = RuleTable.from_settings(None).decide(facts(**overrides))
    assert decision.rule == rule
    assert decision.actions == actions


def test_first_matching_rule_wins_and_fallback_reviews() -> None:
    table = RuleTable(
        [
            RuleSettings(
                name="pdd-small",
                platforms=["pinduoduo"],
                max_amount=Decimal("20"),
                actions=["auto_approve"],
            ),
            RuleSettings(
                name="quality",
                reasons=["质量"],
                actions=["require_review"],
                review_role="supervisor",
            ),
        ]
    )
    assert table.decide(facts(platform="pinduoduo", amount_fen=1000)).rule == "pdd-small"
    assert table.decide(facts(reason="质量问题")).review_role == "supervisor"
    fallback = table.decide(facts())
    assert fallback.rule == "default-review"
    assert fallback.route is Action.REQUIRE_REVIEW


def test_rule_table_problems_are_named() -> None:
    table = RuleTable(
        [
            RuleSettings(name="a", actions=["auto_approve", "require_review"]),
            RuleSettings(name="b", actions=["refund_everything"]),
            RuleSettings(name="c", shipping=["teleported"], actions=["auto_approve"]),
            RuleSettings(
                name="c", min_amount=Decimal(5), max_amount=Decimal(1), actions=["await_return"]
            ),
            RuleSettings(
                name="d", shipping=["delivered"], actions=["stop_shipment", "auto_approve"]
            ),
        ]
    )
    found = table.problems()
    problems = "\n".join(found)
    assert found[0].path == ("rules", "rows", 0, "actions")
    assert "rules[0] (a): needs exactly one of" in problems
    assert "rules[1] (b): unknown action refund_everything" in problems
    assert "unknown shipping status 'teleported'" in problems
    assert "rules[2] (c): unknown refund kind" not in problems
    assert "rules[3] (c): the name is used twice" in problems
    assert "min_amount is above max_amount" in problems
    assert "stop_shipment only applies to unshipped orders" in problems
    assert RuleTable.from_settings(None).problems() == []


def test_rule_review_role_is_one_of_the_roles() -> None:
    with pytest.raises(ValidationError, match="review_role"):
        RuleSettings(name="c", actions=["require_review"], review_role="boss")
    assert RuleSettings(name="c", review_role="finance").review_role is Role.FINANCE


def table(rows: list[dict[str, Any]], **policy: object) -> RuleTable:
    return RuleTable.from_settings(RulesSettings.model_validate({"rows": rows, **policy}))


DOUYIN_SMALL: dict[str, Any] = {
    "name": "douyin-small",
    "platforms": ["抖音"],
    "max_amount": "30",
    "actions": ["auto_approve"],
}


def test_a_rule_of_the_config_goes_before_the_defaults_and_keeps_them() -> None:
    rules = table([DOUYIN_SMALL])
    assert rules.decide(facts(platform="douyin", amount_fen=3000)).rule == "douyin-small"
    unshipped = rules.decide(facts(shipping="unshipped"))
    assert unshipped.rule == "unshipped-auto"
    assert Action.STOP_SHIPMENT in unshipped.actions
    assert [r.origin for r in rules.rows] == ["config"] + ["default"] * 6


def test_replace_defaults_leaves_the_config_rows_and_the_fallback() -> None:
    rules = table([DOUYIN_SMALL], replace_defaults=True)
    assert [r.rule.name for r in rules.rows] == ["douyin-small"]
    assert rules.decide(facts(shipping="unshipped")).rule == "default-review"


def test_a_config_row_with_a_defaults_name_replaces_that_default() -> None:
    rules = table(
        [
            {
                "name": "unshipped-auto",
                "shipping": ["unshipped"],
                "max_amount": "100",
                "actions": ["auto_approve", "stop_shipment"],
            }
        ]
    )
    names = [r.rule.name for r in rules.rows]
    assert names.count("unshipped-auto") == 1
    assert rules.rows[0].replaces_default
    assert rules.decide(facts(shipping="unshipped", amount_fen=12800)).rule == "unshipped-review"
    assert rules.problems() == []


def test_rules_take_platform_names_as_ids_and_name_an_unknown_one() -> None:
    assert RuleSettings(name="r", platforms=["抖音", "视频号"]).platforms == [
        "douyin",
        "wechat",
        "wechat_channels",
    ]
    with pytest.raises(
        ValidationError, match="`抖音x` is not a platform id; did you mean `douyin`"
    ):
        RuleSettings(name="r", platforms=["抖音x"])
    with pytest.raises(
        ValidationError, match="`pdd` is not a platform id; did you mean `pinduoduo`"
    ):
        GroupSettings(id="g", channel="wecom_webhook", platforms=["pdd"])
    assert GroupSettings(id="g", channel="wecom_webhook", platforms=["淘宝"]).platforms == [
        "taobao"
    ]


@pytest.mark.parametrize(
    ("amount_fen", "hit"), [(2999, True), (3000, True), (3001, False), (999, False), (1000, True)]
)
def test_amount_boundaries_are_inclusive_as_the_table_says(amount_fen: int, hit: bool) -> None:
    rules = table([{**DOUYIN_SMALL, "min_amount": "10"}], replace_defaults=True)
    assert (
        rules.decide(facts(platform="douyin", amount_fen=amount_fen)).rule == "douyin-small"
    ) is hit
    shown = "\n".join(rules.table_lines())
    assert "amount ≥ ¥10.00 · amount ≤ ¥30.00" in shown
    assert "platform 抖音 (douyin)" in shown


def test_the_table_shows_every_row_in_order_with_its_boundaries() -> None:
    lines = "\n".join(table([DOUYIN_SMALL], refund_before_stop_max="200").table_lines())
    order = [
        "1. douyin-small  ([[rules]] #1)",
        "2. price-diff-tolerance  (default)",
        "3. unshipped-auto  (default)",
        "7. received-review  (default)",
        "8. default-review  (fallback)",
    ]
    assert [lines.index(o) for o in order] == sorted(lines.index(o) for o in order)
    assert (
        "full refund (amount = order amount, or no order amount sent) · amount ≤ ¥500.00" in lines
    )
    assert "then require_review (人工审核) + stop_shipment (截单), reviewed by supervisor" in lines
    assert "unshipped and above ¥200.00 (refund_before_stop_max)" in lines


def test_explain_names_the_condition_each_earlier_row_failed() -> None:
    explained = table([DOUYIN_SMALL]).explain(
        facts(shipping="unshipped", amount_fen=12800, order_amount_fen=20000)
    )
    lines = explained.lines()
    assert explained.hit.rule.name == "unshipped-review"
    assert (
        "  ✗ douyin-small ([[rules]] #1): platform 抖音 (douyin) — this refund: 淘宝 (taobao); amount ≤ ¥30.00 — this refund: ¥128.00"
        in lines
    )
    assert any(
        line.startswith("  ✗ unshipped-auto (default): full refund")
        and "this refund: partial (¥128.00 of ¥200.00)" in line
        for line in lines
    )
    assert "  ✓ unshipped-review (default): shipping 未发货 (unshipped)" in lines


@pytest.mark.parametrize(
    ("overrides", "waits"),
    [
        ({"shipping": "unshipped", "amount_fen": 10000, "order_amount_fen": 10000}, False),
        ({"shipping": "unshipped", "amount_fen": 10001, "order_amount_fen": 10001}, True),
        ({"shipping": "delivered", "amount_fen": 10001, "order_amount_fen": 10001}, False),
        ({"shipping": "unshipped", "amount_fen": 80000, "order_amount_fen": 80000}, False),
    ],
)
def test_an_automatic_refund_above_the_threshold_waits_for_the_stop(
    overrides: dict[str, object], waits: bool
) -> None:
    rules = table([], refund_before_stop_max="100")
    refund = facts(**overrides)
    assert rules.waits_for_stop(rules.decide(refund), refund) is waits


def test_by_default_every_automatic_refund_of_an_unshipped_order_waits() -> None:
    rules = RuleTable.from_settings(None)
    refund = facts(shipping="unshipped", amount_fen=1, order_amount_fen=1)
    assert rules.waits_for_stop(rules.decide(refund), refund)
