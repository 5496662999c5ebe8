"""WeChat Pay 商家转账 (transfer-bills): the `wechatpay` payout provider, its notification and fake."""
