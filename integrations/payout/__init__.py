"""Payout providers: `manual` (finance pays outside and confirms) and `alipay` (fund transfer)."""
