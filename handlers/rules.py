"""The team's rules: a decision table evaluated top-down; the first matching row decides.

The defaults are the four refund paths (DESIGN §1) plus auto-approval of price-difference
refunds within a tolerance. A `[[rules]]` table in the config replaces them as a whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from handlers.config import RuleSettings
from handlers.money import fen_to_yuan


class Action(StrEnum):
    AUTO_APPROVE = "auto_approve"
    REQUEST_INTERCEPT = "request_intercept"
    STOP_SHIPMENT = "stop_shipment"
    REQUIRE_REVIEW = "require_review"
    AWAIT_RETURN = "await_return"


# Of these, exactly one decides where the case goes next; stop_shipment rides along.
ROUTING_ACTIONS = frozenset(
    {Action.AUTO_APPROVE, Action.REQUEST_INTERCEPT, Action.REQUIRE_REVIEW, Action.AWAIT_RETURN}
)
SHIPPING = ("unshipped", "shipped", "in_transit", "delivered")
REFUND_KINDS = ("refund_only", "return_refund", "price_diff")

DEFAULT_RULES = (
    RuleSettings(
        name="price-diff-tolerance",
        kinds=["price_diff"],
        max_amount=Decimal("30"),
        actions=["auto_approve"],
    ),
    RuleSettings(
        name="unshipped-auto",
        shipping=["unshipped"],
        scope="full",
        max_amount=Decimal("500"),
        actions=["auto_approve", "stop_shipment"],
    ),
    RuleSettings(
        name="unshipped-review",
        shipping=["unshipped"],
        actions=["stop_shipment", "require_review"],
        review_role="supervisor",
    ),
    RuleSettings(
        name="shipped-intercept",
        shipping=["shipped", "in_transit"],
        scope="full",
        kinds=["refund_only", "return_refund"],
        actions=["request_intercept"],
    ),
    RuleSettings(name="return-and-refund", kinds=["return_refund"], actions=["await_return"]),
    RuleSettings(name="received-review", actions=["require_review"], review_role="agent"),
)
FALLBACK = RuleSettings(name="default-review", actions=["require_review"], review_role="agent")


@dataclass(frozen=True)
class RefundFacts:
    platform: str
    shop: str
    kind: str
    shipping: str
    amount_fen: int
    order_amount_fen: int | None
    reason: str

    @property
    def partial(self) -> bool:
        return self.order_amount_fen is not None and self.amount_fen < self.order_amount_fen


@dataclass(frozen=True)
class Decision:
    rule: str
    actions: frozenset[Action]
    review_role: str

    @property
    def route(self) -> Action:
        (action,) = self.actions & ROUTING_ACTIONS
        return action


def matches(rule: RuleSettings, facts: RefundFacts) -> bool:
    amount = fen_to_yuan(facts.amount_fen)
    return (
        (not rule.platforms or facts.platform in rule.platforms)
        and (not rule.shops or facts.shop in rule.shops)
        and (not rule.kinds or facts.kind in rule.kinds)
        and (not rule.shipping or facts.shipping in rule.shipping)
        and (rule.scope == "any" or (rule.scope == "partial") == facts.partial)
        and (rule.min_amount is None or amount >= rule.min_amount)
        and (rule.max_amount is None or amount <= rule.max_amount)
        and (not rule.reasons or any(r in facts.reason for r in rule.reasons))
    )


class RuleTable:
    def __init__(self, rules: Sequence[RuleSettings]) -> None:
        self.rules = list(rules)

    @classmethod
    def from_settings(cls, rules: Sequence[RuleSettings] | None) -> RuleTable:
        return cls(DEFAULT_RULES if rules is None else rules)

    def decide(self, facts: RefundFacts) -> Decision:
        rule = next((r for r in self.rules if matches(r, facts)), FALLBACK)
        return Decision(rule.name, frozenset(Action(a) for a in rule.actions), rule.review_role)

    def problems(self) -> list[str]:
        found: list[str] = []
        names: set[str] = set()
        for i, rule in enumerate(self.rules):
            where = f"rules[{i}] ({rule.name})"
            if rule.name in names:
                found.append(f"{where}: the name is used twice")
            names.add(rule.name)
            unknown = [a for a in rule.actions if a not in Action.__members__.values()]
            if unknown:
                found.append(
                    f"{where}: unknown action {', '.join(unknown)} "
                    f"(one of {', '.join(a.value for a in Action)})"
                )
                continue
            routing = set(rule.actions) & ROUTING_ACTIONS
            if len(routing) != 1:
                found.append(
                    f"{where}: needs exactly one of {', '.join(sorted(ROUTING_ACTIONS))}, "
                    f"has {', '.join(sorted(routing)) or 'none'}"
                )
            found += [
                f"{where}: unknown shipping status {s!r}"
                for s in rule.shipping
                if s not in SHIPPING
            ]
            found += [
                f"{where}: unknown refund kind {k!r}" for k in rule.kinds if k not in REFUND_KINDS
            ]
            if (
                rule.min_amount is not None
                and rule.max_amount is not None
                and rule.min_amount > rule.max_amount
            ):
                found.append(f"{where}: min_amount is above max_amount")
            if (
                Action.STOP_SHIPMENT in rule.actions
                and rule.shipping
                and "unshipped" not in rule.shipping
            ):
                found.append(f"{where}: stop_shipment only applies to unshipped orders")
        return found
