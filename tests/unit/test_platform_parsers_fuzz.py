"""Platform parsers at the edge never crash: WeCom callback XML and JSON and their crypto,
DingTalk bodies, stream frames and signatures, 快递100 pushes, sandbox bodies and our own
request signature. Any input gives a value or the clean refusal the route turns into a 4xx.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from bot.routes.sandbox import ClickBody, SayBody
from handlers.schema import InvalidEventError, parse_event
from integrations import signing
from integrations.dingtalk import signing as ding_signing
from integrations.dingtalk.models import CardCallback, RobotMessage
from integrations.dingtalk.stream import _parse as parse_frame
from integrations.kuaidi100 import signing as kuaidi100_signing
from integrations.kuaidi100.models import Push
from integrations.wecom.crypto import CallbackCrypto, CallbackRejectedError, cdata, parse_xml
from integrations.wecom.models import AibotBody, AibotFrame, AppMessage
from tests.support.wecom import AES_KEY, CORP_ID, TOKEN

CRYPTO = CallbackCrypto(TOKEN, AES_KEY, CORP_ID)
EXAMPLES = settings(max_examples=120, deadline=None)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=16,
)
XML_PIECES = st.sampled_from(
    [
        "<xml>",
        "</xml>",
        "<Encrypt>",
        "</Encrypt>",
        "<MsgType>text</MsgType>",
        "<Content><a>b</a></Content>",
        "<![CDATA[",
        "]]>",
        "<!DOCTYPE xml [",
        '<!ENTITY lol "lol">',
        '<!ENTITY xxe SYSTEM "file:///etc/passwd">',
        "]>",
        "&lol;",
        "&xxe;",
        "&amp;",
        "&#0;",
        "<?xml version='1.0' encoding='gbk'?>",
        "<x a='1' a='2'/>",
        "\x00",
        "é",
    ]
)
XMLISH = st.lists(XML_PIECES | st.text(max_size=6), max_size=12).map("".join)
TAGS = st.sampled_from(
    [
        *AppMessage.model_fields,
        "ToUserName",
        "FromUserName",
        "MsgType",
        "Event",
        "EventKey",
        "TaskId",
        "ResponseCode",
        "CreateTime",
        "MsgId",
        "AgentID",
        "Content",
        "Other",
    ]
)


def refused(run: Any, *statuses: int) -> CallbackRejectedError | None:
    try:
        run()
    except CallbackRejectedError as exc:
        problem = exc
    else:
        return None
    assert problem.status in statuses, problem.reason
    return problem


def validates(model: type[BaseModel], raw: str | bytes) -> BaseModel | None:
    try:
        return model.model_validate_json(raw)
    except ValidationError:
        return None


# -- WeCom -------------------------------------------------------------------------------------


@EXAMPLES
@given(st.binary(max_size=300) | XMLISH.map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_wecom_xml_parses_or_is_refused(raw: bytes) -> None:
    result: dict[str, Any] = {}
    exc = refused(lambda: result.update(parse_xml(raw)), 400)
    if exc is None:
        assert b"<!doctype" not in raw.lower()
        assert b"<!entity" not in raw.lower()
        assert all(isinstance(k, str) for k in result)


# What XML 1.0 can carry as character data (no other control characters; "\r" is normalised).
XML_TEXT = st.text(
    st.characters(blacklist_categories=("Cc", "Cs")) | st.sampled_from("\n\t"), max_size=30
)


@EXAMPLES
@given(st.dictionaries(TAGS, XML_TEXT | st.integers().map(str), min_size=1, max_size=8))
def test_wecom_app_message_from_any_fields(fields: dict[str, str]) -> None:
    xml = "<xml>" + "".join(f"<{k}>{cdata(v)}</{k}>" for k, v in fields.items()) + "</xml>"
    parsed = parse_xml(xml)
    assert parsed == fields
    message = AppMessage.model_validate(parsed)
    assert isinstance(message.dedup, str)
    assert message.dedup


@EXAMPLES
@given(XMLISH)
def test_wecom_app_message_from_any_decrypted_xml(inner: str) -> None:
    with contextlib.suppress(CallbackRejectedError, ValidationError):
        AppMessage.model_validate(parse_xml(inner.encode("utf-8", "surrogatepass")))


@EXAMPLES
@given(st.text(max_size=200))
def test_wecom_crypto_round_trips_any_text(plain: str) -> None:
    sealed = CRYPTO.encrypt(plain, timestamp="1409659813", nonce="n1")
    opened = CRYPTO.decrypt(
        sealed["encrypt"], sealed["msgsignature"], sealed["timestamp"], sealed["nonce"], now=0
    )
    assert opened == plain


@EXAMPLES
@given(
    encrypt=st.text(max_size=80) | st.binary(max_size=60).map(lambda b: b.hex()),
    signature=st.text(max_size=45),
    timestamp=st.text(max_size=12) | st.integers().map(str),
    nonce=st.text(max_size=12),
)
def test_wecom_wrong_signatures_are_refused(
    encrypt: str, signature: str, timestamp: str, nonce: str
) -> None:
    assert refused(lambda: CRYPTO.decrypt(encrypt, signature, timestamp, nonce, now=0), 401)
    windowed = CallbackCrypto(TOKEN, AES_KEY, CORP_ID, max_skew_s=300)
    assert refused(lambda: windowed.decrypt(encrypt, signature, timestamp, nonce, now=0), 400, 401)
    assert refused(lambda: CRYPTO.verify_url(signature, timestamp, nonce, encrypt), 401)


@EXAMPLES
@given(encrypt=st.text(max_size=120), timestamp=st.text(max_size=12), nonce=st.text(max_size=12))
def test_wecom_signed_garbage_is_refused_as_malformed(
    encrypt: str, timestamp: str, nonce: str
) -> None:
    signature = CRYPTO.sign(timestamp, nonce, encrypt)
    assert refused(lambda: CRYPTO.decrypt(encrypt, signature, timestamp, nonce, now=0), 400, 403)


@EXAMPLES
@given(st.text(max_size=200))
def test_wecom_wrong_receive_id_is_forbidden(plain: str) -> None:
    sealed = CallbackCrypto(TOKEN, AES_KEY, "wwsomeoneelse").encrypt(plain)
    args = (sealed["encrypt"], sealed["msgsignature"], sealed["timestamp"], sealed["nonce"])
    assert refused(lambda: CRYPTO.decrypt(*args, now=0), 403)


AIBOT_ISH = st.fixed_dictionaries(
    {},
    optional={
        "msgid": JSON,
        "chatid": JSON,
        "chattype": st.sampled_from(["group", "single", ""]) | JSON,
        "from": st.fixed_dictionaries({}, optional={"userid": JSON}) | JSON,
        "msgtype": st.sampled_from(["text", "mixed", "event", "image"]) | JSON,
        "text": st.fixed_dictionaries({}, optional={"content": JSON}) | JSON,
        "mixed": st.fixed_dictionaries(
            {}, optional={"msg_item": st.lists(st.fixed_dictionaries({"text": JSON}), max_size=3)}
        )
        | JSON,
        "event": st.fixed_dictionaries(
            {},
            optional={
                "eventtype": st.sampled_from(["template_card_event", "enter_chat"]) | JSON,
                "template_card_event": st.dictionaries(
                    st.sampled_from(["card_type", "event_key", "task_id"]), JSON
                )
                | JSON,
            },
        )
        | JSON,
        "response_url": JSON,
    },
)


@EXAMPLES
@given(AIBOT_ISH | JSON)
def test_wecom_aibot_json_validates_or_is_refused(raw: Any) -> None:
    text = json.dumps(raw)
    body = validates(AibotBody, text)
    if isinstance(body, AibotBody):
        assert isinstance(body.content, str)
        assert isinstance(body.conversation, str)
        assert body.card_event is None or isinstance(body.card_event.event_key, str)
    frame = validates(AibotFrame, text)
    assert frame is None or (isinstance(frame, AibotFrame) and isinstance(frame.req_id, str))


@EXAMPLES
@given(st.binary(max_size=100))
def test_wecom_aibot_any_bytes(raw: bytes) -> None:
    validates(AibotBody, raw)
    validates(AibotFrame, raw)


# -- DingTalk ----------------------------------------------------------------------------------

ROBOT_ISH = st.fixed_dictionaries(
    {
        "msgtype": st.sampled_from(["text", "richText", "picture"]),
        "msgId": st.text(min_size=1, max_size=8),
        "conversationType": st.sampled_from(["1", "2"]),
        "conversationId": st.text(min_size=1, max_size=8),
    },
    optional={
        "text": st.none() | st.fixed_dictionaries({}, optional={"content": st.text(max_size=9)}),
        "content": st.fixed_dictionaries(
            {},
            optional={
                "richText": st.lists(
                    st.fixed_dictionaries({}, optional={"text": JSON}) | JSON, max_size=3
                )
                | JSON
            },
        )
        | JSON,
        "senderStaffId": st.text(max_size=8),
        "createAt": st.integers(min_value=0),
        "isInAtList": st.booleans(),
        "sessionWebhook": st.text(max_size=20),
        "sessionWebhookExpiredTime": st.integers(min_value=0),
    },
)
CARD_ISH = st.fixed_dictionaries(
    {"outTrackId": st.text(max_size=8) | JSON, "userId": st.text(max_size=8) | JSON},
    optional={
        "type": JSON,
        "content": st.one_of(
            JSON,
            st.text(max_size=40),
            JSON.map(json.dumps),
            st.fixed_dictionaries(
                {},
                optional={
                    "cardPrivateData": st.fixed_dictionaries(
                        {}, optional={"actionIds": JSON, "params": JSON}
                    )
                    | JSON
                },
            ).map(json.dumps),
        ),
    },
)


@EXAMPLES
@given(ROBOT_ISH | JSON)
def test_dingtalk_robot_message_validates_or_is_refused(raw: Any) -> None:
    message = validates(RobotMessage, json.dumps(raw))
    if isinstance(message, RobotMessage):
        assert isinstance(message.command_text, str)
        assert message.is_group == (message.conversation_type == "2")


@EXAMPLES
@given(CARD_ISH | JSON)
def test_dingtalk_card_callback_validates_or_is_refused(raw: Any) -> None:
    callback = validates(CardCallback, json.dumps(raw))
    if isinstance(callback, CardCallback):
        assert isinstance(callback.action, str)
        assert isinstance(callback.case_ref, str)


@EXAMPLES
@given(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["CALLBACK", "SYSTEM", "EVENT"]) | JSON},
        optional={
            "specVersion": JSON,
            "headers": st.dictionaries(
                st.sampled_from(["topic", "messageId", "contentType", "time"]), JSON
            )
            | JSON,
            "data": (ROBOT_ISH | CARD_ISH).map(json.dumps) | JSON,
        },
    ).map(json.dumps)
    | st.text(max_size=60)
)
def test_dingtalk_stream_frames_parse_or_are_skipped(raw: str) -> None:
    frame = parse_frame(raw)
    if frame is not None:
        validates(RobotMessage, frame.data)
        validates(CardCallback, frame.data)


@EXAMPLES
@given(
    secret=st.text(max_size=20),
    timestamp=st.none() | st.text(max_size=20) | st.integers().map(str),
    sign=st.none() | st.text(max_size=50),
)
def test_dingtalk_callback_signature_check_answers(
    secret: str, timestamp: str | None, sign: str | None
) -> None:
    problem = ding_signing.verify(
        secret, timestamp, sign, now_ms=1_700_000_000_000, max_skew_s=3600
    )
    assert problem is None or isinstance(problem, str)
    if problem is None:
        assert sign == ding_signing.sign(secret, str(timestamp))


# -- 快递100, sandbox, ingest signature ---------------------------------------------------------

TIME = st.sampled_from(["2026-11-23 10:00:00", "2026-02-30 10:00:00", "yesterday", ""]) | JSON
PUSH_ISH = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["polling", "shutdown", "abort"]) | JSON,
        "message": JSON,
        "lastResult": st.fixed_dictionaries(
            {"com": st.sampled_from(["shunfeng", "zhongtong", ""]) | JSON, "nu": JSON},
            optional={
                "state": st.sampled_from(["0", "3", "14", "1002", "203", "x"]) | JSON,
                "data": st.lists(
                    st.fixed_dictionaries(
                        {"context": JSON, "time": TIME},
                        optional={"ftime": TIME, "status": JSON, "statusCode": JSON},
                    ),
                    max_size=3,
                )
                | JSON,
            },
        )
        | JSON,
    },
)


@EXAMPLES
@given(PUSH_ISH | JSON, st.text(max_size=10))
def test_kuaidi100_push_becomes_an_event_or_a_clean_refusal(raw: Any, order_id: str) -> None:
    """What `POST /logistics/kuaidi100` does with `param` once the signature holds."""
    try:
        tracking = Push.model_validate_json(json.dumps(raw)).tracking(order_id=order_id)
        if tracking is not None:
            parse_event(tracking)
    except (ValidationError, ValueError, InvalidEventError):
        pass


@EXAMPLES
@given(param=st.text(max_size=40), salt=st.text(max_size=10), sign=st.text(max_size=40))
def test_kuaidi100_signature_check_answers(param: str, salt: str, sign: str) -> None:
    ok = kuaidi100_signing.verify(param, salt, sign)
    assert ok == (bool(salt) and sign.strip().upper() == kuaidi100_signing.sign(param, salt))


@EXAMPLES
@given(
    JSON
    | st.fixed_dictionaries(
        {}, optional={"user": JSON, "text": JSON, "message_id": JSON, "key": JSON, "extra": JSON}
    )
)
def test_sandbox_bodies_validate_or_are_refused(raw: Any) -> None:
    validates(SayBody, json.dumps(raw))
    validates(ClickBody, json.dumps(raw))


@EXAMPLES
@given(
    timestamp=st.none() | st.text(max_size=20) | st.integers().map(str),
    signature=st.none() | st.text(max_size=80),
    body=st.binary(max_size=40),
)
def test_ingest_signature_check_answers(
    timestamp: str | None, signature: str | None, body: bytes
) -> None:
    problem = signing.verify("secret", timestamp, signature, body, now=1e9, max_skew_s=300)
    assert problem is None or isinstance(problem, str)
    if problem is None:
        assert signature is not None
        assert signature.strip() == signing.sign("secret", str(timestamp), body)
