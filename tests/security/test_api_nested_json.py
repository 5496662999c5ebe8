"""Deeply nested JSON is a 400 on every route that takes JSON, never a 500 with a traceback;
`/wecom/aibot` checks msg_signature before it parses anything."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import create_app
from handlers.clock import SystemClock
from integrations.dingtalk.signing import CARD_SIGN_HEADER, CARD_TIMESTAMP_HEADER, card_sign
from integrations.dingtalk.signing import sign as ding_sign
from integrations.kuaidi100.signing import sign as kuaidi100_sign
from integrations.wecom.crypto import CallbackCrypto
from integrations.wecom.fake import WeComCallbacks
from tests.support.app import SECRET
from tests.support.wecom import AES_KEY, TOKEN, wecom_settings

APP_SECRET = "nested-dingtalk-app-secret"
SALT = "nested-kuaidi100-salt"
DEPTH = 100_000  # far past Python's recursion limit; the body stays under 1 MiB


def nested(depth: int = DEPTH) -> str:
    return "[" * depth + "]" * depth


Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(aiohttp_client: Callable[..., Any], sqlite_url: str) -> Client:
    nowhere = "http://127.0.0.1:9"
    settings = wecom_settings(
        sqlite_url,
        groups=[
            {"id": "aftersales", "channel": "sandbox", "kinds": ["refund"]},
            {"id": "ops", "channel": "sandbox"},
            {"id": "bot", "channel": "wecom_aibot_http", "chat_id": "wrGROUP"},
            {"id": "ding", "channel": "dingtalk_http", "chat_id": "cidGROUP=="},
        ],
        wecom={"api_base": nowhere, "passive_wait_s": 0.2},
        dingtalk={
            "app_key": "dingnested",
            "corp_id": "dingcorpnested",
            "app_secret": APP_SECRET,
            "card_template_id": "t.schema",
            "api_base": nowhere,
            "oapi_base": nowhere,
        },
        carrier={"mode": "none", "kuaidi100_salt": SALT},
    )
    app = create_app(settings, clock=SystemClock(), workers=False)
    result: Client = await aiohttp_client(app)
    return result


def ingest_headers(body: bytes) -> dict[str, str]:
    ts = int(time.time())
    from integrations.signing import signed_headers

    return {"Content-Type": "application/json", **signed_headers(SECRET, ts, body)}


def ding_headers() -> dict[str, str]:
    ts = str(int(time.time() * 1000))
    return {"timestamp": ts, "sign": ding_sign(APP_SECRET, ts), "Content-Type": "application/json"}


def ding_card_headers() -> dict[str, str]:
    """Card callbacks are signed with the apiSecret refundops registers (its app secret)."""
    ts = str(int(time.time() * 1000))
    return {
        CARD_TIMESTAMP_HEADER: ts,
        CARD_SIGN_HEADER: card_sign(APP_SECRET, ts),
        "Content-Type": "application/json",
    }


def aibot() -> WeComCallbacks:
    return WeComCallbacks(CallbackCrypto(TOKEN, AES_KEY, ""))


async def status_of(client: Client, path: str, **kwargs: Any) -> tuple[int, str]:
    resp = await client.post(path, **kwargs)
    return resp.status, await resp.text()


def _event(inner: str) -> str:
    return (
        '{"id":"evt_deep","type":"refund.requested","occurred_at":"2026-11-23T10:00:00+08:00",'
        f'"data":{{"refund_id":"RF1","order_id":"T1","kind":"refund_only","amount":"1.00"}},'
        f'"vendor":{inner}}}'
    )


ROUTES: list[tuple[str, Callable[[], dict[str, Any]]]] = [
    (
        "/api/v1/events",
        lambda: {"data": nested().encode(), "headers": ingest_headers(nested().encode())},
    ),
    (
        "/api/v1/events",
        lambda: {
            "data": _event(nested()).encode(),
            "headers": ingest_headers(_event(nested()).encode()),
        },
    ),
    (
        "/api/v1/events",  # deep enough to be refused, shallow enough for the parser
        lambda: {
            "data": _event(nested(200)).encode(),
            "headers": ingest_headers(_event(nested(200)).encode()),
        },
    ),
    (
        "/api/v1/events/batch",
        lambda: {
            "data": f'{{"events":[{_event(nested())}]}}'.encode(),
            "headers": ingest_headers(f'{{"events":[{_event(nested())}]}}'.encode()),
        },
    ),
    ("/sandbox/api/groups/aftersales/say", lambda: {"data": nested().encode()}),
    (
        "/sandbox/api/groups/aftersales/click",
        lambda: {"data": f'{{"user":"sup1","message_id":{nested()},"key":"k"}}'.encode()},
    ),
    ("/dingtalk/robot", lambda: {"data": nested().encode(), "headers": ding_headers()}),
    ("/dingtalk/card", lambda: {"data": nested().encode(), "headers": ding_card_headers()}),
    (
        "/dingtalk/card",
        lambda: {
            "data": json.dumps(
                {"outTrackId": "refund-R1", "userId": "sup1", "content": nested()}
            ).encode(),
            "headers": ding_card_headers(),
        },
    ),
    (
        "/logistics/kuaidi100",
        lambda: {"data": {"param": nested(), "sign": kuaidi100_sign(nested(), SALT)}},
    ),
]


@pytest.mark.parametrize(("path", "request_kwargs"), ROUTES)
async def test_deeply_nested_json_is_a_400_everywhere(
    client: Client, path: str, request_kwargs: Callable[[], dict[str, Any]]
) -> None:
    status, text = await status_of(client, path, **request_kwargs())
    assert status == 400, text[:300]
    assert "Traceback" not in text


async def test_deeply_nested_json_in_a_signed_aibot_callback_is_a_400(client: Client) -> None:
    callbacks = aibot()
    encrypt = callbacks.crypto.encrypt(nested(1000))["encrypt"]
    query = urlencode(callbacks.query(encrypt))
    body = json.dumps({"encrypt": encrypt, "padding": json.loads(nested(500))}).encode()
    status, text = await status_of(client, f"/wecom/aibot?{query}", data=body)
    assert status == 400, text
    status, text = await status_of(
        client, f"/wecom/aibot?{query}", data=json.dumps({"encrypt": encrypt}).encode()
    )
    assert status == 400, text


@pytest.mark.parametrize("depth", [50, DEPTH])
async def test_an_unsigned_aibot_body_is_refused_before_it_is_parsed(
    client: Client, monkeypatch: pytest.MonkeyPatch, depth: int
) -> None:
    callbacks = aibot()
    genuine = callbacks.crypto.encrypt('{"msgtype":"text"}')["encrypt"]
    forged = callbacks.query(genuine)
    forged["msg_signature"] = "0" * 40
    escaped = genuine.replace("/", "\\/")  # as a JSON encoder may write it
    parsed: list[Any] = []
    real_loads = json.loads

    def spy(*args: Any, **kwargs: Any) -> Any:
        parsed.append(args[0])
        return real_loads(*args, **kwargs)

    monkeypatch.setattr(json, "loads", spy)
    for body, expected in (
        (f'{{"encrypt":"{genuine}","x":{nested(depth)}}}', 401),
        (f'{{"x":{nested(depth)},"encrypt":"{genuine}"}}', 401),
        (f'{{"x":{nested(depth)},"encrypt":"{escaped}"}}', 401),
        (nested(depth), 400),  # nothing that could be signed: malformed, and still not parsed
    ):
        status, text = await status_of(
            client, f"/wecom/aibot?{urlencode(forged)}", data=body.encode()
        )
        assert status == expected, text[:300]
    assert parsed == []


async def test_a_signed_aibot_body_with_escaped_slashes_is_verified(client: Client) -> None:
    callbacks = aibot()
    while "/" not in (encrypt := callbacks.crypto.encrypt('{"msgtype":"text"}')["encrypt"]):
        pass
    query = urlencode(callbacks.query(encrypt))
    escaped = encrypt.replace("/", "\\/")
    status, text = await status_of(
        client, f"/wecom/aibot?{query}", data=f'{{"encrypt": "{escaped}"}}'.encode()
    )
    assert status not in (401, 500), text
