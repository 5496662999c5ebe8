"""Callback crypto against doc 91144's official vector, and every way a callback is refused."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest

from integrations.wecom.crypto import (
    CallbackCrypto,
    CallbackRejectedError,
    parse_xml,
    valid_aes_key,
)
from integrations.wecom.fake import WeComCallbacks
from tests.support.app import BotFactory
from tests.support.wecom import (
    AES_KEY,
    CORP_ID,
    MESSAGE,
    MESSAGE_ENCRYPT,
    TOKEN,
    URL_CHECK,
    URL_ECHO,
    wecom_settings,
)

BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
        for i in range(1, 10)
    )
    + b"]><xml><Encrypt>&lol9;</Encrypt></xml>"
)


def vector() -> CallbackCrypto:
    return CallbackCrypto(TOKEN, AES_KEY, CORP_ID)


def test_official_vector_url_check_and_message() -> None:
    crypto = vector()
    assert crypto.verify_url(**{k.replace("msg_", ""): v for k, v in URL_CHECK.items()}) == URL_ECHO
    plain = crypto.decrypt(
        MESSAGE_ENCRYPT, **{k.replace("msg_", ""): v for k, v in MESSAGE.items()}, now=0
    )
    message = parse_xml(plain)
    assert message["FromUserName"] == "mycreate"
    assert message["Content"] == "hello"
    assert message["MsgId"] == "4561255354251345929"
    assert message["AgentID"] == "218"


def test_replay_window_refuses_old_posts_only_when_set() -> None:
    args = {k.replace("msg_", ""): v for k, v in MESSAGE.items()}
    strict = CallbackCrypto(TOKEN, AES_KEY, CORP_ID, max_skew_s=300)
    with pytest.raises(CallbackRejectedError) as caught:
        strict.decrypt(MESSAGE_ENCRYPT, **args, now=time.time())
    assert caught.value.status == 401
    assert "hello" in strict.decrypt(MESSAGE_ENCRYPT, **args, now=int(MESSAGE["timestamp"]) + 299)
    url = {k.replace("msg_", ""): v for k, v in URL_CHECK.items()}
    assert strict.verify_url(**url) == URL_ECHO


@pytest.mark.parametrize(
    ("crypto", "signature", "status"),
    [
        (CallbackCrypto(TOKEN, AES_KEY, CORP_ID), "0" * 40, 401),
        (CallbackCrypto("other-token", AES_KEY, CORP_ID), MESSAGE["msg_signature"], 401),
        (CallbackCrypto(TOKEN, AES_KEY, "wwSomeOtherCorp"), MESSAGE["msg_signature"], 403),
        (CallbackCrypto(TOKEN, AES_KEY, ""), MESSAGE["msg_signature"], 403),
    ],
)
def test_bad_signature_and_wrong_receive_id(
    crypto: CallbackCrypto, signature: str, status: int
) -> None:
    with pytest.raises(CallbackRejectedError) as caught:
        crypto.decrypt(MESSAGE_ENCRYPT, signature, MESSAGE["timestamp"], MESSAGE["nonce"], now=0)
    assert caught.value.status == status


def test_signed_garbage_is_refused_not_crashed() -> None:
    crypto = vector()
    for garbage in ("AAAA", "not base64 at all!", "QUJD" * 8):
        signature = crypto.sign("1", "2", garbage)
        with pytest.raises(CallbackRejectedError) as caught:
            crypto.decrypt(garbage, signature, "1", "2", now=0)
        assert caught.value.status == 400


def test_encrypt_round_trips_for_the_ai_bot_receive_id() -> None:
    bot = CallbackCrypto(TOKEN, AES_KEY, "")
    sealed = json.loads(
        bot.encrypt_json({"msgtype": "stream", "x": "退款"}, timestamp="9", nonce="n")
    )
    assert sealed["msgsignature"] == bot.sign("9", "n", sealed["encrypt"])
    plain = bot.decrypt(sealed["encrypt"], sealed["msgsignature"], "9", "n", now=0)
    assert json.loads(plain) == {"msgtype": "stream", "x": "退款"}
    with pytest.raises(CallbackRejectedError):
        vector().decrypt(sealed["encrypt"], sealed["msgsignature"], "9", "n", now=0)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"<xml><Encrypt>abc</xml>",
        b"<root><Encrypt>abc</Encrypt></root>",
        b"<xml>text only</xml>",
        b"<xml><A>&undefined;</A></xml>",
        BILLION_LAUGHS,
        b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><A>&e;</A></xml>',
        b'<?xml version="1.0"?>\n<!doctype xml><xml><A>1</A></xml>',
    ],
)
def test_malformed_and_entity_xml_is_refused_fast(data: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(CallbackRejectedError) as caught:
        parse_xml(data)
    assert caught.value.status == 400
    assert time.perf_counter() - started < 0.05


def test_xml_shapes() -> None:
    parsed = parse_xml(b"<xml><A><![CDATA[x]]]]><![CDATA[>]]></A><B><C>1</C><C>2</C></B><D/></xml>")
    assert parsed == {"A": "x]]>", "B": {"C": ["1", "2"]}, "D": ""}
    assert valid_aes_key(AES_KEY)
    assert not valid_aes_key(AES_KEY[:-1])
    assert not valid_aes_key("!" * 43)


# -- through the routes ------------------------------------------------------------------------


GROUPS: list[dict[str, Any]] = [
    {"id": "approvals", "channel": "wecom_app", "chat_id": "sup1|sup2", "kinds": ["refund"]},
    {
        "id": "ops",
        "channel": "wecom_aibot_http",
        "chat_id": "wrkOPS",
        "webhook_url": "http://127.0.0.1:9/x",
    },
]


async def test_routes_answer_the_vector_and_refuse_bad_callbacks(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await make_bot(wecom_settings(sqlite_url, GROUPS, wecom={"callback_max_skew_s": 300}))
    for path in ("/wecom/callback",):
        resp = await bot.client.get(path, params=URL_CHECK)
        assert resp.status == 200
        assert await resp.read() == URL_ECHO.encode()
    # The AI bot's receive id is "", so the app's vector is someone else's callback there.
    resp = await bot.client.get("/wecom/aibot", params=URL_CHECK)
    assert resp.status == 403

    body = f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{MESSAGE_ENCRYPT}]]></Encrypt></xml>"
    resp = await bot.client.post(f"/wecom/callback?{urlencode(MESSAGE)}", data=body)
    assert resp.status == 401, "a 2014 timestamp is outside the 300 s replay window"

    cases: list[tuple[str, bytes, int]] = [
        (
            "/wecom/callback?" + urlencode({**MESSAGE, "msg_signature": "0" * 40}),
            body.encode(),
            401,
        ),
        ("/wecom/callback", body.encode(), 400),
        ("/wecom/callback?" + urlencode(MESSAGE), b"<xml><Encrypt>", 400),
        ("/wecom/callback?" + urlencode(MESSAGE), BILLION_LAUGHS, 400),
        ("/wecom/aibot?" + urlencode(MESSAGE), b"not json", 400),
        ("/wecom/aibot?" + urlencode(MESSAGE), b'{"encrypt": 5}', 400),
    ]
    for url, data, status in cases:
        started = time.perf_counter()
        resp = await bot.client.post(url, data=data)
        assert resp.status == status, (url, await resp.text())
        assert time.perf_counter() - started < 0.5


async def test_posted_vector_is_accepted_without_a_replay_window(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await make_bot(wecom_settings(sqlite_url, GROUPS))
    body = f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{MESSAGE_ENCRYPT}]]></Encrypt></xml>"
    resp = await bot.client.post(f"/wecom/callback?{urlencode(MESSAGE)}", data=body)
    assert resp.status == 200
    answer = WeComCallbacks(vector(), CORP_ID).open_xml(await resp.read())
    assert answer["ToUserName"] == "mycreate"
    assert answer["MsgType"] == "text"
    assert answer["Content"].startswith("没有「hello」这个命令"), answer["Content"]
    resp = await bot.client.post(f"/wecom/callback?{urlencode(MESSAGE)}", data=body)
    assert (resp.status, await resp.read()) == (200, b""), "WeCom's retry is answered, not redone"
