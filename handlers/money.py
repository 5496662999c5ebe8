"""Money crosses the wire as a decimal string in yuan and lives as integer fen."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MAX_AMOUNT_FEN = 100_000_000 * 100


def yuan_to_fen(value: str | int | Decimal) -> int:
    """'128.00' → 12800; refuses more than two decimals, negatives and non-numbers."""
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"{value!r} is not a decimal amount") from exc
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not a decimal amount")
    if amount < 0:
        raise ValueError("amount must not be negative")
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise ValueError("amount has more than two decimals")
    return int(fen)


def fen_to_yuan(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(Decimal("0.01"))


def format_fen(fen: int) -> str:
    return f"¥{fen_to_yuan(fen):,}"


MAX_AMOUNT_FEN = 100_000_000 * 100
