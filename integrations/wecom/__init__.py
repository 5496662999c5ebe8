"""WeCom (企业微信): the AI bot (websocket and HTTP mode), the self-built app and group webhooks."""
