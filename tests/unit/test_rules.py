"""The default decision table: the four paths and price-difference tolerance."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from handlers.config import Role, RuleSettings
from handlers.rules import Action, RefundFacts, RuleTable


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
    problems = "\n".join(table.problems())
    assert "rules[0] (a): needs exactly one of" in problems
    assert "rules[1] (b): unknown action refund_everything" in problems
    assert "unknown shipping status 'teleported'" in problems
    assert "rules[3] (c): the name is used twice" in problems
    assert "min_amount is above max_amount" in problems
    assert "stop_shipment only applies to unshipped orders" in problems
    assert RuleTable.from_settings(None).problems() == []


def test_rule_review_role_is_one_of_the_roles() -> None:
    with pytest.raises(ValidationError, match="review_role"):
        RuleSettings(name="c", actions=["require_review"], review_role="boss")
    assert RuleSettings(name="c", review_role="finance").review_role is Role.FINANCE
