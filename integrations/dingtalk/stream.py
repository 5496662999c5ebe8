"""DingTalk Stream mode on aiohttp: one outbound websocket for @-messages and card clicks.

Open a connection (app key + secret → endpoint + single-use ticket), connect to
`endpoint?ticket=…`, answer SYSTEM pings by echoing their data, ack every frame
(`{"code","headers":{"messageId","contentType"},"message","data"}`), reconnect at once
when the gateway says `disconnect` and with exponential backoff after failures; a
cancelled `run()` closes the socket and returns by raising CancelledError.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import Any, Literal, Protocol
from urllib.parse import quote_plus

import aiohttp
from pydantic import ValidationError

from integrations.dingtalk.client import DingtalkClient
from integrations.dingtalk.models import (
    CARD_TOPIC,
    ROBOT_TOPIC,
    CardCallback,
    RobotMessage,
    StreamAck,
    StreamAckHeaders,
    StreamFrame,
)
from storage.coordination import Coordination, CoordinationError

log = logging.getLogger(__name__)

DEDUP_TTL_S = 2 * 3600
MAX_IN_FLIGHT = 32
HEARTBEAT_S = 60.0


class StreamHandler(Protocol):
    async def on_robot_message(self, message: RobotMessage) -> None: ...

    async def on_card_callback(self, callback: CardCallback) -> dict[str, Any] | None:
        """Handle a click; the answer (card data to show) goes back in the ack."""


class DingtalkStream:
    def __init__(
        self,
        client: DingtalkClient,
        handler: StreamHandler,
        coord: Coordination,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.handler = handler
        self.coord = coord
        self.rng = rng or random.Random()
        self.connections = 0
        self.connected = asyncio.Event()

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                ended = await self.connect_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                log.warning("dingtalk stream: connection failed (%d in a row): %s", failures, exc)
            else:
                # A gateway that accepts and at once drops us counts as failing, so backoff grows.
                failures = {"reconnect": 0, "dropped": 1}.get(ended, failures + 1)
            if failures:
                await asyncio.sleep(self.backoff(failures))

    def backoff(self, failures: int) -> float:
        settings = self.client.settings
        delay: float = settings.stream_backoff_base_s * 2.0 ** min(failures - 1, 16)
        return min(settings.stream_backoff_max_s, delay) * self.rng.uniform(0.5, 1.0)

    async def connect_once(self) -> Literal["reconnect", "dropped", "silent"]:
        """Serve one connection until it ends: the gateway asked us to reconnect, or the
        connection dropped after serving frames, or it dropped before any frame came."""
        conn = await self.client.open_connection()
        url = f"{conn.endpoint}?ticket={quote_plus(conn.ticket)}"
        ws = await asyncio.wait_for(
            self.client.session.ws_connect(url, heartbeat=HEARTBEAT_S),
            self.client.settings.timeout_s,
        )
        frames = 0
        async with ws:
            self.connections += 1
            self.connected.set()
            log.info("dingtalk stream: connected (%d)", self.connections)
            send_lock, slots = asyncio.Lock(), asyncio.Semaphore(MAX_IN_FLIGHT)
            try:
                async with asyncio.TaskGroup() as tasks:
                    async for msg in ws:
                        frame = _parse(msg.data) if msg.type is aiohttp.WSMsgType.TEXT else None
                        if frame is None:
                            continue
                        frames += 1
                        if frame.type == "SYSTEM":
                            await _ack(ws, send_lock, frame, frame.data)
                            if frame.headers.topic == "disconnect":
                                return "reconnect"
                            continue
                        await slots.acquire()
                        tasks.create_task(self._dispatch(ws, send_lock, frame, slots))
            finally:
                self.connected.clear()
        log.info("dingtalk stream: connection closed by the gateway after %d frames", frames)
        return "dropped" if frames else "silent"

    async def _dispatch(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        lock: asyncio.Lock,
        frame: StreamFrame,
        slots: asyncio.Semaphore,
    ) -> None:
        code, response = 200, None
        try:
            response = await self._handle(frame)
        except CoordinationError as exc:
            # Not known to be new, so not handled: left unacked, the gateway sends it again.
            log.warning(
                "dingtalk stream: frame %s left for redelivery: %s", frame.headers.message_id, exc
            )
            return
        except ValidationError as exc:
            code = 400
            log.warning("dingtalk stream: bad %s frame %s: %s", frame.headers.topic, frame, exc)
        except Exception:
            code = 500
            log.exception("dingtalk stream: frame %s failed", frame.headers.message_id)
        finally:
            slots.release()
        try:
            await _ack(ws, lock, frame, json.dumps({"response": response}), code=code)
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            log.warning("dingtalk stream: ack of %s lost: %s", frame.headers.message_id, exc)

    async def _handle(self, frame: StreamFrame) -> dict[str, Any] | None:
        message_id = frame.headers.message_id
        if message_id and not await self.coord.first_seen(
            f"dingtalk:frame:{message_id}", DEDUP_TTL_S
        ):
            log.info("dingtalk stream: frame %s again; acked, not handled", message_id)
            return None
        if frame.type != "CALLBACK":
            return None
        if frame.headers.topic == ROBOT_TOPIC:
            await self.handler.on_robot_message(RobotMessage.model_validate_json(frame.data))
            return None
        if frame.headers.topic == CARD_TOPIC:
            return await self.handler.on_card_callback(CardCallback.model_validate_json(frame.data))
        log.warning("dingtalk stream: unexpected topic %s", frame.headers.topic)
        return None


def _parse(raw: str) -> StreamFrame | None:
    try:
        return StreamFrame.model_validate_json(raw)
    except ValidationError:
        log.warning("dingtalk stream: not a frame: %.200s", raw)
        return None


async def _ack(
    ws: aiohttp.ClientWebSocketResponse,
    lock: asyncio.Lock,
    frame: StreamFrame,
    data: str,
    *,
    code: int = 200,
) -> None:
    ack = StreamAck(
        code=code,
        headers=StreamAckHeaders(message_id=frame.headers.message_id),
        message="OK" if code == 200 else "error",
        data=data,
    )
    async with lock:
        await ws.send_str(json.dumps(ack.dump(), ensure_ascii=False))
