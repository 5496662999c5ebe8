"""Random bodies, queries and headers through the real routes: a 4xx (or a 2xx), never a 5xx.

One app with every inbound surface switched on (ingest, sandbox, WeCom app and AI-bot
callbacks, DingTalk HTTP mode, 快递100 pushes), driven by hypothesis on one event loop.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import create_app
from handlers.clock import SystemClock
from integrations.dingtalk.signing import sign as ding_sign
from integrations.kuaidi100.signing import sign as kuaidi100_sign
from integrations.signing import signed_headers
from integrations.wecom.crypto import CallbackCrypto
from integrations.wecom.fake import WeComCallbacks
from tests.support.app import SECRET, make_refund
from tests.support.wecom import AES_KEY, CORP_ID, TOKEN, wecom_settings

APP_SECRET = "fuzz-dingtalk-app-secret"
SALT = "fuzz-kuaidi100-salt"
EXAMPLES = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, blacklist_categories=("Cs", "Cc")),
    max_size=40,
)
BODY = st.binary(max_size=120) | JSON.map(lambda v: json.dumps(v).encode())


class Edge:
    """The app on a loop of its own, so hypothesis can drive it from a plain function."""

    def __init__(self, tmp: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.statuses: list[int] = []
        nowhere = "http://127.0.0.1:9"
        self.settings = wecom_settings(
            f"sqlite+aiosqlite:///{tmp / 'edge.db'}",
            groups=[
                {"id": "aftersales", "channel": "sandbox", "kinds": ["refund"]},
                {"id": "ops", "channel": "sandbox"},
                {"id": "app", "channel": "wecom_app", "chat_id": "sup1"},
                {
                    "id": "bot",
                    "channel": "wecom_aibot_http",
                    "chat_id": "wrGROUP",
                    "webhook_url": f"{nowhere}/cgi-bin/webhook/send?key=k",
                },
                {"id": "ding", "channel": "dingtalk_http", "chat_id": "cidGROUP=="},
            ],
            wecom={"api_base": nowhere, "passive_wait_s": 0.2},
            dingtalk={
                "app_key": "dingfuzz",
                "app_secret": APP_SECRET,
                "card_template_id": "t.schema",
                "api_base": nowhere,
                "oapi_base": nowhere,
                "timeout_s": 0.5,
            },
            carrier={"mode": "none", "kuaidi100_salt": SALT},
            server={"public_base_url": "http://127.0.0.1:8080"},
        )

        async def start() -> TestClient[web.Request, web.Application]:
            app = create_app(self.settings, clock=SystemClock(), workers=False)
            client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
            await client.start_server()
            return client

        self.client = self.loop.run_until_complete(start())
        self.app_callbacks = WeComCallbacks(
            CallbackCrypto(TOKEN, AES_KEY, CORP_ID), CORP_ID, 1000002
        )
        self.aibot_callbacks = WeComCallbacks(CallbackCrypto(TOKEN, AES_KEY, ""))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()

    def status(self, method: str, path: str, **kwargs: Any) -> int:
        async def call() -> int:
            resp = await self.client.request(method, path, **kwargs)
            await resp.read()
            return resp.status

        status = self.loop.run_until_complete(call())
        self.statuses.append(status)
        assert status < 500, f"{method} {path} → {status}"
        return status


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[Edge]:
    driver = Edge(tmp_path)
    yield driver
    driver.close()


def ingest_headers(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", **signed_headers(SECRET, int(time.time()), body)}


def test_ingest_routes_answer_4xx_to_anything_malformed(edge: Edge) -> None:
    good = json.dumps(make_refund()).encode()

    @EXAMPLES
    @given(body=BODY, batch=st.booleans())
    def signed(body: bytes, batch: bool) -> None:
        path = "/api/v1/events/batch" if batch else "/api/v1/events"
        edge.status("POST", path, data=body, headers=ingest_headers(body))

    @EXAMPLES
    @given(timestamp=HEADER_TEXT, signature=HEADER_TEXT, ref=st.text(max_size=20))
    def forged(timestamp: str, signature: str, ref: str) -> None:
        headers = {"X-Refundops-Timestamp": timestamp, "X-Refundops-Signature": signature}
        assert edge.status("POST", "/api/v1/events", data=good, headers=headers) == 401
        assert edge.status("GET", f"/api/v1/cases/{ref.replace('/', '')}x", headers=headers) in (
            401,
            404,
        )

    signed()
    forged()
    assert any(400 <= s < 500 for s in edge.statuses)


def test_wecom_callbacks_answer_4xx_to_anything_forged_or_malformed(edge: Edge) -> None:
    @EXAMPLES
    @given(
        query=st.dictionaries(
            st.sampled_from(["msg_signature", "timestamp", "nonce", "echostr"]), HEADER_TEXT
        ),
        body=BODY
        | st.text(max_size=80).map(lambda t: f"<xml><Encrypt>{t}</Encrypt></xml>".encode()),
        path=st.sampled_from(["/wecom/callback", "/wecom/aibot"]),
        method=st.sampled_from(["GET", "POST"]),
    )
    def forged(query: dict[str, str], body: bytes, path: str, method: str) -> None:
        status = edge.status(method, f"{path}?{urlencode(query)}", data=body)
        assert 400 <= status < 500

    @EXAMPLES
    @given(inner=st.text(max_size=200) | JSON.map(json.dumps), aibot=st.booleans())
    def signed_garbage(inner: str, aibot: bool) -> None:
        callbacks = edge.aibot_callbacks if aibot else edge.app_callbacks
        encrypt = callbacks.crypto.encrypt(inner)["encrypt"]
        query = urlencode(callbacks.query(encrypt))
        if aibot:
            body = json.dumps({"encrypt": encrypt}).encode()
        else:
            body = f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()
        path = "/wecom/aibot" if aibot else "/wecom/callback"
        edge.status("POST", f"{path}?{query}", data=body)

    @EXAMPLES
    @given(
        fields=st.dictionaries(
            st.sampled_from(["MsgType", "Event", "EventKey", "TaskId", "Content", "MsgId"]),
            st.sampled_from(["text", "event", "template_card_event", "approve:R1:1", "查 R1"])
            | st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20),
        ),
        body=JSON,
    )
    def signed_messages(fields: dict[str, str], body: Any) -> None:
        query, xml = edge.app_callbacks.app({"FromUserName": "wx_sup1", **fields})
        edge.status("POST", f"/wecom/callback?{query}", data=xml)
        if isinstance(body, dict):
            query, data = edge.aibot_callbacks.aibot(
                body | {"msgtype": "text", "chattype": "group"}
            )
            edge.status("POST", f"/wecom/aibot?{query}", data=data)

    forged()
    signed_garbage()
    signed_messages()


def test_dingtalk_callbacks_answer_4xx_to_anything_forged_or_malformed(edge: Edge) -> None:
    def headers(ts: str) -> dict[str, str]:
        return {
            "timestamp": ts,
            "sign": ding_sign(APP_SECRET, ts),
            "Content-Type": "application/json",
        }

    @EXAMPLES
    @given(
        timestamp=HEADER_TEXT,
        signature=HEADER_TEXT,
        path=st.sampled_from(["/dingtalk/robot", "/dingtalk/card"]),
    )
    def forged(timestamp: str, signature: str, path: str) -> None:
        status = edge.status(
            "POST", path, data=b"{}", headers={"timestamp": timestamp, "sign": signature}
        )
        assert status == 401

    @EXAMPLES
    @given(body=BODY, path=st.sampled_from(["/dingtalk/robot", "/dingtalk/card"]))
    def signed_garbage(body: bytes, path: str) -> None:
        ts = str(int(time.time() * 1000))
        edge.status("POST", path, data=body, headers=headers(ts))

    @EXAMPLES
    @given(
        rich=JSON,
        action=st.sampled_from(["approve", "reject", "claim", ""]) | st.text(max_size=8),
        case=st.sampled_from(["R1", "X1", ""]) | st.text(max_size=8),
    )
    def signed_shapes(rich: Any, action: str, case: str) -> None:
        ts = str(int(time.time() * 1000))
        message = {
            "msgtype": "richText",
            "msgId": f"m{time.monotonic_ns()}",
            "conversationType": "2",
            "conversationId": "cidGROUP==",
            "senderStaffId": "nobody",
            "content": {"richText": rich},
        }
        edge.status("POST", "/dingtalk/robot", data=json.dumps(message), headers=headers(ts))
        private = {
            "cardPrivateData": {"actionIds": [action], "params": {"action": action, "case": case}}
        }
        click = {"outTrackId": f"refund-{case}", "userId": "nobody", "content": json.dumps(private)}
        edge.status("POST", "/dingtalk/card", data=json.dumps(click), headers=headers(ts))

    forged()
    signed_garbage()
    signed_shapes()


def test_kuaidi100_and_sandbox_answer_4xx_to_anything_malformed(edge: Edge) -> None:
    @EXAMPLES
    @given(
        param=st.text(max_size=80) | JSON.map(json.dumps),
        sign=st.none() | HEADER_TEXT,
        good=st.booleans(),
    )
    def pushes(param: str, sign: str | None, good: bool) -> None:
        form = {"param": param, "sign": kuaidi100_sign(param, SALT) if good else sign}
        edge.status(
            "POST", "/logistics/kuaidi100", data={k: v for k, v in form.items() if v is not None}
        )

    @EXAMPLES
    @given(
        body=BODY,
        action=st.sampled_from(["say", "click"]),
        group=st.sampled_from(["aftersales", "nope", "app"]),
        after=st.text(max_size=25) | st.integers().map(str),
        limit=st.text(max_size=25) | st.integers().map(str),
    )
    def sandbox(body: bytes, action: str, group: str, after: str, limit: str) -> None:
        edge.status("POST", f"/sandbox/api/groups/{group}/{action}", data=body)
        query = urlencode({"after": after, "limit": limit})
        edge.status("GET", f"/sandbox/api/groups/{group}/messages?{query}")

    @EXAMPLES
    @given(
        user=st.text(max_size=70),
        message_id=st.integers() | JSON,
        key=st.text(max_size=70),
        text=st.text(max_size=40),
    )
    def sandbox_shapes(user: str, message_id: Any, key: str, text: str) -> None:
        edge.status("POST", "/sandbox/api/groups/aftersales/say", json={"user": user, "text": text})
        click = {"user": user, "message_id": message_id, "key": key}
        edge.status("POST", "/sandbox/api/groups/aftersales/click", json=click)

    pushes()
    sandbox()
    sandbox_shapes()
