"""Refund cases: the transition table, the typed data, the card and every way a refund moves."""
