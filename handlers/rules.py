"""The team's rules: a decision table evaluated top-down; the first matching row decides.

The defaults are the four refund paths (DESIGN §1) plus auto-approval of price-difference
refunds within a tolerance. The config's own rows (`[[rules]]`) come first, then the defaults
(less any a row of the config's replaces by taking its name), unless `[rules] replace_defaults`.
Each row is a list of conditions that say their own boundary ("amount ≤ ¥30.00"), so the
table, and why a refund took the row it took, can be shown as they are evaluated.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from handlers.condition import Condition, RefundFacts, conditions
from handlers.config import ConfigProblem, RuleSettings, RulesSettings
from handlers.money import format_fen, yuan_to_fen
from handlers.platforms import suggest


class Action(StrEnum):
    AUTO_APPROVE = "auto_approve"
    REQUEST_INTERCEPT = "request_intercept"
    STOP_SHIPMENT = "stop_shipment"
    REQUIRE_REVIEW = "require_review"
    AWAIT_RETURN = "await_return"


ACTION_TEXT = {
    Action.AUTO_APPROVE: "自动通过",
    Action.REQUEST_INTERCEPT: "申请拦截",
    Action.STOP_SHIPMENT: "截单",
    Action.REQUIRE_REVIEW: "人工审核",
    Action.AWAIT_RETURN: "等待退货",
}


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
class Decision:
    rule: str
    actions: frozenset[Action]
    review_role: str

    @property
    def route(self) -> Action:
        (action,) = self.actions & ROUTING_ACTIONS
        return action


def actions_text(rule: RuleSettings) -> str:
    """What the row does, as the config spells it, with the words cards use."""
    parts = [
        f"{a} ({ACTION_TEXT[Action(a)]})" if a in ACTION_TEXT else a
        for a in sorted(rule.actions, key=lambda a: a == Action.STOP_SHIPMENT)
    ]
    text = " + ".join(parts) or "nothing"
    if Action.REQUIRE_REVIEW in rule.actions:
        text += f", reviewed by {rule.review_role.value}"
    return text


@dataclass(frozen=True)
class Row:
    """A row of the effective table and where it comes from: the config's `[[rules]]` (its
    index there), the defaults, or the fallback that catches what no row took."""

    rule: RuleSettings
    origin: Literal["config", "default", "fallback"]
    index: int
    replaces_default: bool = False
    conditions: tuple[Condition, ...] = field(default=(), compare=False)

    @classmethod
    def of(
        cls,
        rule: RuleSettings,
        origin: Literal["config", "default", "fallback"],
        index: int,
        *,
        replaces_default: bool = False,
    ) -> Row:
        return cls(rule, origin, index, replaces_default, conditions(rule))

    @property
    def source(self) -> str:
        if self.origin == "config":
            note = ", replaces the default" if self.replaces_default else ""
            return f"[[rules]] #{self.index + 1}{note}"
        return self.origin

    def when(self) -> str:
        return " · ".join(c.text for c in self.conditions) or "any refund"

    def failed(self, facts: RefundFacts) -> list[Condition]:
        return [c for c in self.conditions if not c.holds(facts)]


@dataclass(frozen=True)
class Explanation:
    """Which row a refund takes, and for each row before it, the conditions it failed."""

    facts: RefundFacts
    passed: tuple[tuple[Row, tuple[Condition, ...]], ...]
    hit: Row
    waits_for_stop: bool
    stop_max_fen: int

    def lines(self) -> list[str]:
        lines = [f"refund: {self.facts.summary()}"]
        for row, failed in self.passed:
            misses = "; ".join(c.miss(self.facts) for c in failed)
            lines.append(f"  ✗ {row.rule.name} ({row.source}): {misses}")
        hit = self.hit
        lines.append(f"  ✓ {hit.rule.name} ({hit.source}): {hit.when()}")
        lines.append(f"  → {actions_text(hit.rule)}")
        if self.waits_for_stop:
            lines.append(
                f"  → the refund is sent once 截单 succeeded ({format_fen(self.facts.amount_fen)} "
                f"is above [rules] refund_before_stop_max {format_fen(self.stop_max_fen)})"
            )
        elif _refunds_and_stops(hit.rule):
            lines.append(
                f"  → refund and 截单 go together ({format_fen(self.facts.amount_fen)} is within "
                f"[rules] refund_before_stop_max {format_fen(self.stop_max_fen)})"
            )
        return lines


class RuleTable:
    def __init__(
        self, rules: Sequence[RuleSettings | Row], *, refund_before_stop_max_fen: int = 0
    ) -> None:
        self.rows = [
            r if isinstance(r, Row) else Row.of(r, "config", i) for i, r in enumerate(rules)
        ]
        self.fallback = Row.of(FALLBACK, "fallback", 0)
        self.refund_before_stop_max_fen = refund_before_stop_max_fen

    @property
    def rules(self) -> list[RuleSettings]:
        return [r.rule for r in self.rows]

    @classmethod
    def from_settings(cls, settings: RulesSettings | None) -> RuleTable:
        """The effective table: the config's rows, then the defaults (none with
        `replace_defaults`) but those a config row replaces by taking its name."""
        settings = settings if settings is not None else RulesSettings()
        own = [r.name for r in settings.rows]
        defaults = {r.name for r in DEFAULT_RULES}
        rows = [
            Row.of(r, "config", i, replaces_default=r.name in defaults)
            for i, r in enumerate(settings.rows)
        ]
        if not settings.replace_defaults:
            rows += [
                Row.of(r, "default", i) for i, r in enumerate(DEFAULT_RULES) if r.name not in own
            ]
        return cls(rows, refund_before_stop_max_fen=yuan_to_fen(settings.refund_before_stop_max))

    def row_for(self, facts: RefundFacts) -> Row:
        return next(
            (r for r in self.rows if all(c.holds(facts) for c in r.conditions)), self.fallback
        )

    def decide(self, facts: RefundFacts) -> Decision:
        rule = self.row_for(facts).rule
        return Decision(rule.name, frozenset(Action(a) for a in rule.actions), rule.review_role)

    def waits_for_stop(self, decision: Decision, facts: RefundFacts) -> bool:
        """An automatic refund of an unshipped order above `[rules] refund_before_stop_max`
        is sent only once the warehouse has stopped the order (截单)."""
        return (
            decision.route is Action.AUTO_APPROVE
            and Action.STOP_SHIPMENT in decision.actions
            and facts.shipping == "unshipped"
            and facts.amount_fen > self.refund_before_stop_max_fen
        )

    def explain(self, facts: RefundFacts) -> Explanation:
        passed: list[tuple[Row, tuple[Condition, ...]]] = []
        for row in self.rows:
            failed = row.failed(facts)
            if not failed:
                break
            passed.append((row, tuple(failed)))
        hit = self.row_for(facts)
        decision = Decision(
            hit.rule.name, frozenset(Action(a) for a in hit.rule.actions), hit.rule.review_role
        )
        return Explanation(
            facts,
            tuple(passed),
            hit,
            self.waits_for_stop(decision, facts),
            self.refund_before_stop_max_fen,
        )

    def table_lines(self) -> list[str]:
        """The effective table in order, each row's conditions with their boundaries."""
        lines: list[str] = []
        for n, row in enumerate([*self.rows, self.fallback], 1):
            lines.append(f"{n}. {row.rule.name}  ({row.source})")
            lines.append(f"     when {row.when()}")
            lines.append(f"     then {actions_text(row.rule)}")
            if _refunds_and_stops(row.rule):
                limit = format_fen(self.refund_before_stop_max_fen)
                lines.append(
                    f"          unshipped and above {limit} (refund_before_stop_max): the refund "
                    "is sent only once 截单 succeeded"
                )
        return lines

    def problems(self) -> list[ConfigProblem]:
        """What is wrong with the config's own rows, each at its row and key."""
        found: list[ConfigProblem] = []
        names: set[str] = set()
        for row in self.rows:
            if row.origin != "config":
                continue
            rule = row.rule
            problem = functools.partial(_row_problem, found, row)
            if rule.name in names:
                problem("name", "the name is used twice", "give each row its own name")
            names.add(rule.name)
            unknown = [a for a in rule.actions if a not in Action.__members__.values()]
            if unknown:
                problem(
                    "actions",
                    f"unknown action {', '.join(unknown)}{_meant(unknown, list(Action))} "
                    f"(one of {', '.join(a.value for a in Action)})",
                )
                continue
            routing = set(rule.actions) & ROUTING_ACTIONS
            if len(routing) != 1:
                problem(
                    "actions",
                    f"needs exactly one of {', '.join(sorted(ROUTING_ACTIONS))}, "
                    f"has {', '.join(sorted(routing)) or 'none'}",
                    "keep one of them (stop_shipment may ride along)",
                )
            for status in rule.shipping:
                if status not in SHIPPING:
                    problem(
                        "shipping",
                        f"unknown shipping status {status!r}{_meant([status], SHIPPING)} "
                        f"(one of {', '.join(SHIPPING)})",
                    )
            for kind in rule.kinds:
                if kind not in REFUND_KINDS:
                    problem(
                        "kinds",
                        f"unknown refund kind {kind!r}{_meant([kind], REFUND_KINDS)} "
                        f"(one of {', '.join(REFUND_KINDS)})",
                    )
            if (
                rule.min_amount is not None
                and rule.max_amount is not None
                and rule.min_amount > rule.max_amount
            ):
                problem("min_amount", "min_amount is above max_amount", "swap or correct them")
            if (
                Action.STOP_SHIPMENT in rule.actions
                and rule.shipping
                and "unshipped" not in rule.shipping
            ):
                problem(
                    "actions",
                    "stop_shipment only applies to unshipped orders",
                    'remove stop_shipment, or add "unshipped" to shipping',
                )
        return found


def _row_problem(found: list[ConfigProblem], row: Row, key: str, text: str, fix: str = "") -> None:
    found.append(
        ConfigProblem(
            f"rules[{row.index}] ({row.rule.name}): {text}", ("rules", "rows", row.index, key), fix
        )
    )


def _refunds_and_stops(rule: RuleSettings) -> bool:
    return Action.AUTO_APPROVE in rule.actions and Action.STOP_SHIPMENT in rule.actions


def _meant(words: Sequence[str], known: Sequence[str]) -> str:
    guess = next((g for w in words if (g := suggest(w, known))), "")
    return f"; did you mean {guess!r}?" if guess else ""
