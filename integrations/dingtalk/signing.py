"""DingTalk's HMAC-SHA256 signatures: custom robot sends (加签), app robot HTTP callbacks, and
card callbacks in HTTP mode; and what binds a signed robot message to its body.

The robot signatures sign `f"{timestamp_ms}\\n{secret}"` with the secret as key; the robot
send puts the url-encoded base64 into the query string, the callback sends it bare in a
`sign` header. A card callback signs only `f"{timestamp}"` with the apiSecret registered by
`/v1.0/card/callbacks/register` (`x-ddpaas-signature-timestamp`, `x-ddpaas-signature`).
None of them covers the body, so a signed timestamp is accepted once (the caller remembers
it for `replay_ttl_s`) and a robot message must come from our corp and robot and have been
created when it was signed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from urllib.parse import quote_plus

from integrations.dingtalk.models import RobotMessage

TIMESTAMP_HEADER = "timestamp"
SIGN_HEADER = "sign"
CARD_TIMESTAMP_HEADER = "x-ddpaas-signature-timestamp"
CARD_SIGN_HEADER = "x-ddpaas-signature"
DIGITS = re.compile(r"0|[1-9][0-9]{0,15}")
# DingTalk does not say whether the card callback timestamp is in seconds or milliseconds;
# anything below this is read as seconds (10^11 ms is March 1973).
SECONDS_BELOW = 10**11


def sign(secret: str, timestamp_ms: int | str) -> str:
    """base64(HMAC-SHA256(secret, "<timestamp>\\n<secret>"))."""
    return _mac(secret, f"{timestamp_ms}\n{secret}")


def card_sign(secret: str, timestamp: int | str) -> str:
    """base64(HMAC-SHA256(apiSecret, "<timestamp>")): a card callback's `x-ddpaas-signature`."""
    return _mac(secret, str(timestamp))


def _mac(secret: str, message: str) -> str:
    mac = hmac.new(secret.encode(), message.encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def robot_query(secret: str, timestamp_ms: int) -> str:
    """The `timestamp=…&sign=…` a custom robot send appends to its webhook URL."""
    return f"timestamp={timestamp_ms}&sign={quote_plus(sign(secret, timestamp_ms))}"


def replay_ttl_s(max_skew_s: int) -> int:
    """How long a used signature must be remembered: it stays acceptable from `max_skew_s`
    before its timestamp to `max_skew_s` after it."""
    return 2 * max_skew_s + 1


def signed_ms(timestamp: str) -> int:
    """The unix milliseconds of a verified callback's timestamp header (ms, or seconds for
    a card callback that sends seconds)."""
    ts = int(timestamp)
    return ts * 1000 if ts < SECONDS_BELOW else ts


def verify(
    secret: str, timestamp: str | None, signature: str | None, *, now_ms: int, max_skew_s: int
) -> str | None:
    """None when a robot callback's `timestamp`/`sign` headers are valid, else the reason."""
    if not timestamp or not signature:
        return f"missing {TIMESTAMP_HEADER} or {SIGN_HEADER} header"
    if not DIGITS.fullmatch(timestamp):
        return f"{TIMESTAMP_HEADER} must be unix milliseconds"
    ts = int(timestamp)
    if abs(now_ms - ts) > max_skew_s * 1000:
        return f"{TIMESTAMP_HEADER} is more than {max_skew_s} s away from the server clock"
    if not secret or not hmac.compare_digest(sign(secret, ts).encode(), _ascii(signature)):
        return "sign does not match"
    return None


def verify_card(
    secret: str, timestamp: str | None, signature: str | None, *, now_ms: int, max_skew_s: int
) -> str | None:
    """None when a card callback's `x-ddpaas-signature-*` headers are valid, else the reason."""
    if not timestamp or not signature:
        return f"missing {CARD_TIMESTAMP_HEADER} or {CARD_SIGN_HEADER} header"
    if not DIGITS.fullmatch(timestamp):
        return f"{CARD_TIMESTAMP_HEADER} must be a unix time"
    if abs(now_ms - signed_ms(timestamp)) > max_skew_s * 1000:
        return f"{CARD_TIMESTAMP_HEADER} is more than {max_skew_s} s away from the server clock"
    expected = card_sign(secret, int(timestamp)).encode()
    if not secret or not hmac.compare_digest(expected, _ascii(signature)):
        return f"{CARD_SIGN_HEADER} does not match"
    return None


def robot_message_problem(
    message: RobotMessage, signed_at_ms: int, *, robot_code: str, corp_id: str, max_skew_s: int
) -> str | None:
    """Why a signed robot message's body cannot be the one DingTalk signed, or None.

    The body must come from our corp (`chatbotCorpId`, and `senderCorpId` when DingTalk
    sends it), name our robot when it names one (HTTP bodies usually carry no `robotCode`),
    and have been created (`createAt`) within `max_skew_s` of the signed timestamp.
    """
    if not corp_id:
        return "dingtalk.corp_id is not configured: robot messages cannot be checked"
    if message.chatbot_corp_id != corp_id:
        return "chatbotCorpId is not this organisation's corp id"
    if message.sender_corp_id and message.sender_corp_id != corp_id:
        return "senderCorpId is not this organisation's corp id"
    if message.robot_code and message.robot_code != robot_code:
        return "robotCode is not this app's robot"
    if abs(message.create_at - signed_at_ms) > max_skew_s * 1000:
        return f"createAt is more than {max_skew_s} s away from the signed timestamp"
    return None


def _ascii(text: str) -> bytes:
    return text.encode("ascii", errors="replace")
