"""The TMC (Taobao Message Channel) binary frames and a consumer that pulls, stores, then confirms.

Frame layout, little-endian, as tmc.js lib/message.js writes and reads it:
    int8 protocolVersion (2), int8 messageType (0 CONNECT, 1 CONNECTACK, 2 SEND, 3 SENDACK),
    then headers `int16 type; payload` until type 0 (EndOfHeaders):
    2 StatusCode int32 · 3 StatusPhrase counted string · 4 Flag int32 · 5 Token counted string ·
    1 Custom: counted-string key, int8 value format, value.
A counted string is int32 byte length + UTF-8 (length 0 reads as null). Value formats
(lib/value-format.js): 0 Void, 1 CountedString, 2 Byte, 3 Int16, 4 Int32, 5 Int64, 6 Date
(int64 ms), 7 ByteArray (int32 length + bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from handlers.clock import Clock
from integrations.shop.connector import PlatformMessage
from integrations.taobao.signing import tmc_sign

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 2
CONNECT, CONNECTACK, SEND, SENDACK = 0, 1, 2, 3
END_OF_HEADERS, CUSTOM, STATUS_CODE, STATUS_PHRASE, FLAG, TOKEN = 0, 1, 2, 3, 4, 5
VOID, COUNTED_STRING, BYTE, INT16, INT32, INT64, DATE, BYTE_ARRAY = 0, 1, 2, 3, 4, 5, 6, 7
# `__kind` (lib/message-kind.js)
KIND = "__kind"
PULL_REQUEST, CONFIRM, DATA, FAILED = 1, 2, 3, 20
SDK_NAME = "refundops"


class FrameError(ValueError):
    """Bytes that are not a whole TMC frame."""


class Int64(int):
    """An integer always written as Int64 (a message id echoed in a Confirm)."""


@dataclass
class Frame:
    type: int
    status_code: int | None = None
    status_phrase: str | None = None
    flag: int | None = None
    token: str | None = None
    content: dict[str, Any] = field(default_factory=dict)


def _counted(text: str | None) -> bytes:
    data = text.encode() if text else b""
    return struct.pack("<i", len(data)) + data


def _value(value: Any) -> bytes:
    if value is None or isinstance(value, bool):
        return bytes([VOID])
    if isinstance(value, Int64):
        return bytes([INT64]) + struct.pack("<q", value)
    if isinstance(value, int):
        if -(2**7) <= value < 2**7:
            return bytes([BYTE]) + struct.pack("<b", value)
        if -(2**15) <= value < 2**15:
            return bytes([INT16]) + struct.pack("<h", value)
        if -(2**31) <= value < 2**31:
            return bytes([INT32]) + struct.pack("<i", value)
        return bytes([INT64]) + struct.pack("<q", value)
    if isinstance(value, str):
        return bytes([COUNTED_STRING]) + _counted(value)
    if isinstance(value, datetime):
        return bytes([DATE]) + struct.pack("<q", int(value.timestamp() * 1000))
    if isinstance(value, bytes | bytearray):
        return bytes([BYTE_ARRAY]) + struct.pack("<i", len(value)) + bytes(value)
    return bytes([VOID])


def encode(frame: Frame) -> bytes:
    out = bytearray([PROTOCOL_VERSION, frame.type])
    # tmc.js writes the status code as int16 but reads it as int32; the reader is what the
    # server's frames are checked against, so int32 it is.
    if frame.status_code:
        out += struct.pack("<hi", STATUS_CODE, frame.status_code)
    if frame.status_phrase:
        out += struct.pack("<h", STATUS_PHRASE) + _counted(frame.status_phrase)
    if frame.flag:
        out += struct.pack("<hi", FLAG, frame.flag)
    if frame.token:
        out += struct.pack("<h", TOKEN) + _counted(frame.token)
    for key, value in frame.content.items():
        out += struct.pack("<h", CUSTOM) + _counted(key) + _value(value)
    out += struct.pack("<h", END_OF_HEADERS)
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.at + size > len(self.data):
            raise FrameError("frame ends early")
        (value,) = struct.unpack_from(fmt, self.data, self.at)
        self.at += size
        return value

    def raw(self, size: int) -> bytes:
        if size < 0 or self.at + size > len(self.data):
            raise FrameError("frame ends early")
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def counted(self) -> str | None:
        size = self.take("<i")
        if size == 0:
            return None
        try:
            return self.raw(size).decode()
        except UnicodeDecodeError as exc:
            raise FrameError("string is not UTF-8") from exc

    def value(self) -> Any:
        kind = self.take("<b")
        if kind == VOID:
            return None
        if kind == COUNTED_STRING:
            return self.counted()
        if kind == BYTE:
            return self.take("<b")
        if kind == INT16:
            return self.take("<h")
        if kind == INT32:
            return self.take("<i")
        if kind == INT64:
            return Int64(self.take("<q"))
        if kind == DATE:
            return datetime.fromtimestamp(self.take("<q") / 1000, UTC)
        if kind == BYTE_ARRAY:
            return self.raw(self.take("<i")) or None
        raise FrameError(f"unknown value format {kind}")


def decode(data: bytes) -> Frame:
    reader = _Reader(data)
    reader.take("<b")  # protocol version: tmc.js does not check it either
    frame = Frame(type=reader.take("<b"))
    while True:
        header = reader.take("<h")
        if header == END_OF_HEADERS:
            return frame
        if header == CUSTOM:
            key = reader.counted()
            if key is None:
                raise FrameError("custom header without a name")
            frame.content[key] = reader.value()
        elif header == STATUS_CODE:
            frame.status_code = reader.take("<i")
        elif header == STATUS_PHRASE:
            frame.status_phrase = reader.counted()
        elif header == FLAG:
            frame.flag = reader.take("<i")
        elif header == TOKEN:
            frame.token = reader.counted()
        else:
            raise FrameError(f"unknown header type {header}")


def connect_frame(
    app_key: str,
    app_secret: str,
    group: str,
    timestamp_ms: int,
    *,
    sdk: str = SDK_NAME,
    intranet_ip: str = "",
) -> Frame:
    stamp = str(timestamp_ms)
    content: dict[str, Any] = {
        "app_key": app_key,
        "group_name": group,
        "timestamp": stamp,
        "sign": tmc_sign(app_key, group, stamp, app_secret),
        "sdk": sdk,
    }
    if intranet_ip:
        content["intranet_ip"] = intranet_ip
    return Frame(CONNECT, content=content)


def pull_frame(token: str) -> Frame:
    return Frame(SEND, token=token, content={KIND: PULL_REQUEST})


def confirm_frame(token: str, message_id: int) -> Frame:
    return Frame(SEND, token=token, content={KIND: CONFIRM, "id": Int64(message_id)})


def failed_frame(token: str, message_id: int, reason: str) -> Frame:
    return Frame(
        SENDACK, token=token, content={KIND: FAILED, "id": Int64(message_id), "msg": reason}
    )


def message_of(frame: Frame) -> PlatformMessage | None:
    """The platform message a data frame carries (None: not a data frame)."""
    content = frame.content
    if frame.type != SEND or content.get("topic") is None or content.get("id") is None:
        return None
    body: dict[str, Any] = {}
    for key, value in content.items():
        if key == KIND:
            continue
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, bytes):
            value = value.hex()
        elif isinstance(value, Int64):
            value = int(value)
        body[key] = value
    return PlatformMessage(id=str(content["id"]), topic=str(content["topic"]), body=body)


class ConnectRefusedError(Exception):
    """The server answered CONNECT with a non-zero status (bad sign, unknown app, kicked)."""


Handler = Callable[[PlatformMessage], Awaitable[None]]


class TmcConsumer:
    """One TMC connection for an app key and group: CONNECT, pull every `pull_interval_s`,
    hand each message to `handler` and confirm it only once the handler returned; a handler
    that raised gets a Failed (nack) so the server delivers it again. Reconnects with backoff."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        app_key: str,
        app_secret: str,
        group: str,
        clock: Clock,
        pull_interval_s: float = 5.0,
        *,
        min_backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
    ) -> None:
        self.session = session
        self.url = url
        self.app_key = app_key
        self.app_secret = app_secret
        self.group = group
        self.clock = clock
        self.pull_interval_s = pull_interval_s
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.connected = asyncio.Event()
        self.last_error = ""
        self.confirmed = 0
        self.failed = 0

    @property
    def is_connected(self) -> bool:
        return self.connected.is_set()

    async def run(self, handler: Handler) -> None:
        """Until cancelled."""
        backoff = self.min_backoff_s
        while True:
            try:
                await self._session(handler)
                backoff = self.min_backoff_s
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, OSError, FrameError, ConnectRefusedError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("tmc %s/%s: %s", self.app_key, self.group, self.last_error)
            finally:
                self.connected.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)

    async def _session(self, handler: Handler) -> None:
        async with self.session.ws_connect(self.url, autoping=True, heartbeat=30.0) as ws:
            stamp = int(self.clock.now().timestamp() * 1000)
            await ws.send_bytes(
                encode(connect_frame(self.app_key, self.app_secret, self.group, stamp))
            )
            ack = await ws.receive()
            if ack.type != aiohttp.WSMsgType.BINARY:
                raise ConnectRefusedError(f"no CONNECTACK ({ack.type.name})")
            answer = decode(ack.data)
            if answer.type != CONNECTACK or answer.status_code or not answer.token:
                raise ConnectRefusedError(
                    f"{answer.status_code or ''} {answer.status_phrase or 'no token'}".strip()
                )
            token = answer.token
            self.connected.set()
            self.last_error = ""
            puller = asyncio.create_task(self._pull(ws, token))
            try:
                async for received in ws:
                    if received.type != aiohttp.WSMsgType.BINARY:
                        continue
                    frame = decode(received.data)
                    message = message_of(frame)
                    if message is None:
                        continue
                    await self._deliver(ws, token, message, handler)
            finally:
                puller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await puller
        if ws.close_code is not None and ws.close_code != aiohttp.WSCloseCode.OK:
            raise aiohttp.ClientError(f"closed by server ({ws.close_code})")

    async def _pull(self, ws: aiohttp.ClientWebSocketResponse, token: str) -> None:
        while not ws.closed:
            await ws.send_bytes(encode(pull_frame(token)))
            await asyncio.sleep(self.pull_interval_s)

    async def _deliver(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        token: str,
        message: PlatformMessage,
        handler: Handler,
    ) -> None:
        message_id = int(message.id)
        try:
            await handler(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("tmc message %s (%s) not stored", message.id, message.topic)
            self.failed += 1
            reason = f"{type(exc).__name__}: {exc}"[:200]
            await ws.send_bytes(encode(failed_frame(token, message_id, reason)))
            return
        self.confirmed += 1
        await ws.send_bytes(encode(confirm_frame(token, message_id)))
