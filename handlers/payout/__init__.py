"""Payouts (cashback, price difference, compensation) under the two-person rule, and batches."""
