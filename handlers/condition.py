"""A rule row's conditions: each says its own boundary ("amount ≤ ¥30.00"), tests a refund, and
says what the refund has there, so a table and a refund's way through it can be shown."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from handlers.config import RuleSettings
from handlers.money import fen_to_yuan, format_fen
from handlers.platforms import label
from handlers.refund.machine import KIND_TEXT, SHIPPING_TEXT


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

    def summary(self) -> str:
        """The refund as the rules see it, in one line."""
        scope = "部分退款" if self.partial else "全额"
        parts = [
            _platform_text(self.platform),
            self.shop or "—",
            _labelled(KIND_TEXT, self.kind),
            _labelled(SHIPPING_TEXT, self.shipping),
            f"{format_fen(self.amount_fen)} {scope}",
        ]
        if self.reason:
            parts.append(f"原因「{self.reason}」")
        return " · ".join(parts)


@dataclass(frozen=True)
class Condition:
    """One condition of a row: its boundary in words, the test, and what a refund has there."""

    key: str
    text: str
    holds: Callable[[RefundFacts], bool]
    seen: Callable[[RefundFacts], str]

    def miss(self, facts: RefundFacts) -> str:
        return f"{self.text} — this refund: {self.seen(facts)}"


def conditions(rule: RuleSettings) -> tuple[Condition, ...]:
    """The row's conditions in the order they are written; none means any refund."""
    found: list[Condition] = []
    if rule.platforms:
        allowed = frozenset(rule.platforms)
        found.append(
            Condition(
                "platforms",
                f"platform {_either(_platforms_text(rule.platforms))}",
                lambda f: f.platform in allowed,
                lambda f: _platform_text(f.platform),
            )
        )
    if rule.shops:
        shops = frozenset(rule.shops)
        found.append(
            Condition("shops", f"shop {_either(rule.shops)}", lambda f: f.shop in shops, _shop_seen)
        )
    if rule.kinds:
        kinds = frozenset(rule.kinds)
        found.append(
            Condition(
                "kinds",
                f"kind {_either(_labelled(KIND_TEXT, k) for k in rule.kinds)}",
                lambda f: f.kind in kinds,
                lambda f: _labelled(KIND_TEXT, f.kind),
            )
        )
    if rule.shipping:
        shipping = frozenset(rule.shipping)
        found.append(
            Condition(
                "shipping",
                f"shipping {_either(_labelled(SHIPPING_TEXT, s) for s in rule.shipping)}",
                lambda f: f.shipping in shipping,
                lambda f: _labelled(SHIPPING_TEXT, f.shipping),
            )
        )
    if rule.scope == "full":
        found.append(
            Condition(
                "scope",
                "full refund (amount = order amount, or no order amount sent)",
                lambda f: not f.partial,
                _scope_seen,
            )
        )
    elif rule.scope == "partial":
        found.append(
            Condition(
                "scope",
                "partial refund (amount < order amount)",
                lambda f: f.partial,
                _scope_seen,
            )
        )
    if (low := rule.min_amount) is not None:
        found.append(
            Condition(
                "min_amount",
                f"amount ≥ {yuan_text(low)}",
                lambda f: fen_to_yuan(f.amount_fen) >= low,
                _amount_seen,
            )
        )
    if (high := rule.max_amount) is not None:
        found.append(
            Condition(
                "max_amount",
                f"amount ≤ {yuan_text(high)}",
                lambda f: fen_to_yuan(f.amount_fen) <= high,
                _amount_seen,
            )
        )
    if rule.reasons:
        reasons = tuple(rule.reasons)
        found.append(
            Condition(
                "reasons",
                f"reason contains {_either(f'「{r}」' for r in reasons)}",
                lambda f: any(r in f.reason for r in reasons),
                lambda f: f"「{f.reason}」" if f.reason else "no reason",
            )
        )
    return tuple(found)


def matches(rule: RuleSettings, facts: RefundFacts) -> bool:
    return all(c.holds(facts) for c in conditions(rule))


def yuan_text(amount: Decimal) -> str:
    """A configured amount in yuan, exactly as it bounds: ¥30.00, ¥0.005."""
    return f"¥{amount:,.2f}" if amount == amount.quantize(Decimal("0.01")) else f"¥{amount:,}"


def _platform_text(platform: str) -> str:
    shown = label(platform)
    return f"{shown} ({platform})" if shown != platform else platform


def _labelled(labels: dict[str, str], value: str) -> str:
    shown = labels.get(value)
    return f"{shown} ({value})" if shown else value


def _platforms_text(platforms: Iterable[str]) -> list[str]:
    """淘宝 (taobao), 视频号 (wechat, wechat_channels): one entry per name, its ids after it."""
    ids: dict[str, list[str]] = {}
    for platform in platforms:
        ids.setdefault(label(platform), []).append(platform)
    return [
        f"{shown} ({', '.join(same)})" if same != [shown] else shown for shown, same in ids.items()
    ]


def _either(values: Iterable[str]) -> str:
    return " or ".join(values)


def _shop_seen(facts: RefundFacts) -> str:
    return facts.shop or "no shop"


def _amount_seen(facts: RefundFacts) -> str:
    return format_fen(facts.amount_fen)


def _scope_seen(facts: RefundFacts) -> str:
    if facts.order_amount_fen is None:
        return f"full ({format_fen(facts.amount_fen)}, no order amount sent)"
    kind = "partial" if facts.partial else "full"
    return f"{kind} ({format_fen(facts.amount_fen)} of {format_fen(facts.order_amount_fen)})"
