"""Callback crypto (doc 90238/91144) through wechatpy, and XML that never expands entities.

Every refusal is a `CallbackRejectedError` carrying the HTTP status the route answers with:
400 malformed, 401 bad signature or outside the replay window, 403 wrong receive id.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import time
from typing import Any
from xml.parsers import expat

from wechatpy.crypto import _get_signature
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException

# A DOCTYPE is how entity expansion (billion laughs, external entities) gets in; callbacks
# never carry one, so its mere presence is a refusal before any parser runs.
FORBIDDEN_XML = (b"<!doctype", b"<!entity")
ENCODING_AES_KEY_LENGTH = 43
# The `encrypt` member of an AI-bot callback body, read from the raw bytes: msg_signature
# covers it, so it is checked before anything parses what the sender wrote. A JSON
# encoder may write "/" as "\/"; base64 has no other character that JSON escapes.
JSON_ENCRYPT = re.compile(rb'"encrypt"\s*:\s*"((?:[A-Za-z0-9+=/]|\\/)*)"')


class CallbackRejectedError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def parse_xml(data: bytes | str) -> dict[str, Any]:
    """The children of a `<xml>` root as a dict; refuses DTDs, entities and anything malformed.

    Leaves are strings; an element with children is a dict; a repeated element is a list.
    """
    raw = data.encode() if isinstance(data, str) else data
    if any(marker in raw.lower() for marker in FORBIDDEN_XML):
        raise CallbackRejectedError(400, "XML with a DOCTYPE or entity declaration")
    stack: list[tuple[str, dict[str, Any], list[str]]] = []
    roots: list[tuple[str, Any]] = []

    def start(name: str, _attrs: dict[str, str]) -> None:
        stack.append((name, {}, []))

    def end(_name: str) -> None:
        tag, children, text = stack.pop()
        value: Any = children or "".join(text)
        if not stack:
            roots.append((tag, value))
            return
        siblings = stack[-1][1]
        if tag not in siblings:
            siblings[tag] = value
        elif isinstance(siblings[tag], list):
            siblings[tag].append(value)
        else:
            siblings[tag] = [siblings[tag], value]

    def text(chunk: str) -> None:
        if stack:
            stack[-1][2].append(chunk)

    def refuse(*_args: Any) -> None:
        raise CallbackRejectedError(400, "XML with a DOCTYPE or entity declaration")

    parser = expat.ParserCreate("utf-8")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    try:
        parser.Parse(raw, True)
    except expat.ExpatError as exc:
        raise CallbackRejectedError(400, f"malformed XML ({exc})") from None
    if len(roots) != 1 or roots[0][0] != "xml" or not isinstance(roots[0][1], dict):
        raise CallbackRejectedError(400, "the XML root is not <xml> with children")
    root: dict[str, Any] = roots[0][1]
    return root


def cdata(value: str) -> str:
    """`value` as CDATA; a `]]>` inside is split across two sections."""
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def valid_aes_key(key: str) -> bool:
    try:
        WeChatCrypto("t", key, "")
    except (ValueError, AssertionError, TypeError):
        return False
    return len(key) == ENCODING_AES_KEY_LENGTH


class CallbackCrypto:
    """One callback endpoint's token, EncodingAESKey and receive id (corp id, or "" for an AI bot)."""

    def __init__(
        self, token: str, encoding_aes_key: str, receive_id: str, *, max_skew_s: int = 0
    ) -> None:
        self.token = token
        self.receive_id = receive_id
        self.max_skew_s = max_skew_s
        self._crypto = WeChatCrypto(token, encoding_aes_key, receive_id)

    def sign(self, timestamp: str, nonce: str, encrypt: str) -> str:
        return str(_get_signature(self.token, timestamp, nonce, encrypt))

    def signed_json_encrypt(self, body: bytes, signature: str, timestamp: str, nonce: str) -> str:
        """The `encrypt` of a JSON callback body that `signature` covers, found without
        parsing the body: 400 when the body has no `encrypt` string, 401 when none is signed."""
        given = signature.encode(errors="replace")
        found = [m.group(1).replace(b"\\/", b"/").decode() for m in JSON_ENCRYPT.finditer(body)]
        if not found:
            raise CallbackRejectedError(400, "no encrypt in the body")
        for encrypt in found:
            if hmac.compare_digest(self.sign(timestamp, nonce, encrypt).encode(), given):
                return encrypt
        raise CallbackRejectedError(401, "bad msg_signature")

    def verify_url(self, signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """The decrypted echostr of a GET URL check; the replay window never applies here."""
        return self._decrypt(
            lambda: self._crypto.check_signature(signature, timestamp, nonce, echostr)
        )

    def decrypt(
        self, encrypt: str, signature: str, timestamp: str, nonce: str, *, now: float
    ) -> str:
        """The plaintext of a POSTed `Encrypt`, once signature, window and receive id check out."""
        if self.max_skew_s:
            try:
                skew = abs(now - int(timestamp))
            except ValueError:
                raise CallbackRejectedError(400, "timestamp is not a number") from None
            if skew > self.max_skew_s:
                raise CallbackRejectedError(401, f"timestamp is {skew:.0f} s away from now")
        return self._decrypt(
            lambda: self._crypto.decrypt_message({"Encrypt": encrypt}, signature, timestamp, nonce)
        )

    def _decrypt(self, run: Any) -> str:
        try:
            return str(run())
        except InvalidSignatureException:
            raise CallbackRejectedError(401, "bad msg_signature") from None
        except InvalidCorpIdException:
            raise CallbackRejectedError(403, "wrong receive id") from None
        except Exception as exc:
            # Garbage that passed the signature check (the sender knows the token) fails
            # inside base64, AES, the padding or UTF-8: still the sender's fault.
            raise CallbackRejectedError(400, f"cannot decrypt ({type(exc).__name__})") from None

    def encrypt(self, plaintext: str, *, timestamp: str = "", nonce: str = "") -> dict[str, str]:
        """Encrypt and sign `plaintext`: {"encrypt", "msgsignature", "timestamp", "nonce"}."""
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or secrets.token_hex(8)
        envelope = parse_xml(self._crypto.encrypt_message(plaintext, nonce, timestamp))
        encrypt = str(envelope["Encrypt"])
        return {
            "encrypt": encrypt,
            "msgsignature": self.sign(timestamp, nonce, encrypt),
            "timestamp": timestamp,
            "nonce": nonce,
        }

    def encrypt_xml(self, plaintext: str, *, timestamp: str = "", nonce: str = "") -> str:
        """A passive reply for an app callback: `<xml><Encrypt/><MsgSignature/>…</xml>`."""
        sealed = self.encrypt(plaintext, timestamp=timestamp, nonce=nonce)
        return (
            f"<xml><Encrypt>{cdata(sealed['encrypt'])}</Encrypt>"
            f"<MsgSignature>{cdata(sealed['msgsignature'])}</MsgSignature>"
            f"<TimeStamp>{sealed['timestamp']}</TimeStamp>"
            f"<Nonce>{cdata(sealed['nonce'])}</Nonce></xml>"
        )

    def encrypt_json(self, payload: dict[str, Any], *, timestamp: str = "", nonce: str = "") -> str:
        """A passive reply for an AI bot callback, as the JSON body to answer with."""
        plaintext = json.dumps(payload, ensure_ascii=False)
        return json.dumps(self.encrypt(plaintext, timestamp=timestamp, nonce=nonce))
