"""抖店 (Douyin Shop, op.jinritemai.com): the shop connector, its API client and its fake."""
