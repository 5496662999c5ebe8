"""The app under test: settings builders, a refund event builder, and `Bot`, a driver for one
app (signed requests, the sandbox groups, draining the loops on the test clock)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.keys import DISPATCHER, PROCESSOR, SCHEDULER, SERVICES
from bot.settings import Settings
from handlers.clock import FakeClock
from integrations.signing import signed_get_headers, signed_headers

SECRET = "test-ingest-secret"

STAFF = [
    {"id": "agent1", "roles": ["agent"], "refund_limit": "50"},
    {"id": "agent2", "roles": ["agent"], "refund_limit": "50"},
    {"id": "sup1", "roles": ["supervisor"], "refund_limit": "2000"},
    {"id": "sup2", "roles": ["supervisor"], "refund_limit": "2000"},
    {"id": "fin1", "roles": ["finance"]},
    {"id": "admin1", "roles": ["admin"]},
]


def make_settings(db_url: str, **overrides: Any) -> Settings:
    """Demo settings (the sandbox groups and the carrier simulator); `demo=False` for a
    production-like app, whose groups must then use real channels."""
    data: dict[str, Any] = {
        "demo": True,
        "database": {"url": db_url},
        "ingest": {"secret": SECRET},
        "bot": {"admin_group": "ops"},
        "commerce": {"mode": "none"},
        "carrier": {"mode": "simulator"},
        "groups": [
            {"id": "aftersales", "name": "售后一组", "channel": "sandbox", "kinds": ["refund"]},
            {"id": "ops", "name": "管理群", "channel": "sandbox"},
        ],
        "staff": STAFF,
        "dispatch": {"backoff_base_s": 1.0, "max_attempts": 4},
    }
    for key, value in overrides.items():
        data[key] = {**data[key], **value} if isinstance(data.get(key), dict) else value
    return Settings(**data)


def production_settings(db_url: str, **overrides: Any) -> Settings:
    """Settings as `refundops serve` runs them: no demo, groups on real (webhook) channels."""
    robot = "http://127.0.0.1:9/cgi-bin/webhook/send?key="
    groups = [
        {"id": "aftersales", "channel": "wecom_webhook", "webhook_url": robot + "a"},
        {"id": "ops", "channel": "wecom_webhook", "webhook_url": robot + "o"},
    ]
    data: dict[str, Any] = {"demo": False, "groups": groups, "carrier": {"mode": "none"}}
    return make_settings(db_url, **(data | overrides))


def make_refund(**overrides: Any) -> dict[str, Any]:
    """A refund.requested envelope; `data_*` keys override fields of `data`."""
    data: dict[str, Any] = {
        "refund_id": f"RF{uuid.uuid4().hex[:10].upper()}",
        "order_id": "T88001",
        "kind": "refund_only",
        "amount": "128.00",
        "order_amount": "128.00",
        "reason": "尺码不合适",
        "shipping": {"status": "delivered", "carrier": "SF", "tracking_no": "SF1234567890"},
        "buyer": {"nick": "t**1"},
        "deadline_at": "2026-11-24T22:00:00+08:00",
    }
    return make_event("refund.requested", data, **overrides)


def make_event(type_: str, data: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """An envelope of `type_` around `data`; `data_*` keys override fields of `data`, others
    fields of the envelope."""
    envelope: dict[str, Any] = {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": type_,
        "occurred_at": "2026-11-23T10:00:00+08:00",
        "shop": "flagship",
        "platform": "taobao",
    }
    for key, value in overrides.items():
        if key.startswith("data_"):
            data[key[5:]] = value
        else:
            envelope[key] = value
    envelope["data"] = {**data}
    return envelope


class Bot:
    """A test client for one app, with signed requests, the sandbox and draining."""

    def __init__(self, client: TestClient[web.Request, web.Application], clock: FakeClock) -> None:
        self.client = client
        self.clock = clock

    @property
    def app(self) -> web.Application:
        app = self.client.app
        assert app is not None
        return app

    @property
    def svc(self) -> Any:
        return self.app[SERVICES]

    def headers(self, body: bytes, secret: str = SECRET, skew: int = 0) -> dict[str, str]:
        ts = int(self.clock.now().timestamp()) + skew
        return {"Content-Type": "application/json", **signed_headers(secret, ts, body)}

    async def post_event(self, event: Any, path: str = "/api/v1/events") -> tuple[int, Any]:
        body = json.dumps(event, ensure_ascii=False).encode()
        resp = await self.client.post(path, data=body, headers=self.headers(body))
        return resp.status, await resp.json()

    def get_headers(self, path: str, secret: str = SECRET, skew: int = 0) -> dict[str, str]:
        """Signed headers for `GET path` (path and query as sent)."""
        return signed_get_headers(secret, int(self.clock.now().timestamp()) + skew, path)

    async def get_case(self, ref: str) -> tuple[int, Any]:
        path = f"/api/v1/cases/{ref}"
        resp = await self.client.get(path, headers=self.get_headers(path))
        return resp.status, await resp.json()

    async def drain(self, rounds: int = 50) -> None:
        """Run processor, scheduler and dispatcher until none has anything due."""
        for _ in range(rounds):
            busy = await self.app[PROCESSOR].run_once()
            busy += await self.app[SCHEDULER].run_once()
            busy += await self.app[DISPATCHER].run_once()
            if not busy:
                return
        raise AssertionError("still busy after draining")

    async def later(self, **delta: float) -> list[str]:
        """Advance the clock, run what falls due, and return the group's new lines."""
        before = len(await self.texts())
        self.clock.advance(timedelta(**delta))
        await self.drain()
        return (await self.texts())[before:]

    async def messages(self, group: str = "aftersales", view: str = "") -> list[dict[str, Any]]:
        """The group as the sandbox shows it, or as `view` (wecom, dingtalk, all) would."""
        query = f"?view={view}" if view else ""
        resp = await self.client.get(f"/sandbox/api/groups/{group}/messages{query}")
        assert resp.status == 200
        result: list[dict[str, Any]] = await resp.json()
        return result

    async def cards(self, group: str = "aftersales") -> list[dict[str, Any]]:
        """The group's case cards (not digests or batch cards)."""
        return [m for m in await self.messages(group) if m["kind"] == "card" and m["case_id"]]

    async def notices(self, group: str = "aftersales") -> list[dict[str, Any]]:
        """The group's standalone cards: digests, batch cards."""
        return [m for m in await self.messages(group) if m["kind"] == "card" and not m["case_id"]]

    async def texts(self, group: str = "aftersales") -> list[str]:
        return [m["text"] for m in await self.messages(group) if m["kind"] == "text"]

    async def say(self, user: str, text: str, group: str = "aftersales") -> dict[str, Any]:
        resp = await self.client.post(
            f"/sandbox/api/groups/{group}/say", json={"user": user, "text": text}
        )
        assert resp.status == 200, await resp.text()
        result: dict[str, Any] = await resp.json()
        return result

    async def click(self, user: str, message_id: int, key: str, group: str = "aftersales") -> Any:
        resp = await self.client.post(
            f"/sandbox/api/groups/{group}/click",
            json={"user": user, "message_id": message_id, "key": key},
        )
        return resp.status, await resp.json()

    async def refund(self, **overrides: Any) -> dict[str, Any]:
        """Post a refund request, drain, and return its card message."""
        event = make_refund(**overrides)
        status, _ = await self.post_event(event)
        assert status == 202
        await self.drain()
        refund_id = event["data"]["refund_id"]
        return next(c for c in await self.cards() if c["case_id"] == refund_id)


BotFactory = Callable[..., Awaitable[Bot]]
