"""Two real `refundops demo --no-simulator --config` processes (the sandbox is demo-only) on one
PostgreSQL and one Redis: everything exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from integrations.commerce.fake import FakeCommerce
from integrations.signing import signed_headers
from tests.support.app import make_refund
from tests.support.db import in_thread, truncate
from tests.support.fakes import Served, serve
from tests.support.processes import assert_no_tracebacks, free_port, ready, start, stop

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
SECRET = "two-instances-secret-0123456789"
CONFIG = """
[database]
url = "{db}"
[redis]
url = "{redis}"
[bot]
admin_group = "aftersales"
[commerce]
mode = "webhook"
url = "{commerce}"
[dispatch]
poll_s = 0.2
[timers]
poll_s = 0.2
[digest]
enabled = false
[[groups]]
id = "aftersales"
channel = "sandbox"
[[staff]]
id = "sup1"
roles = ["supervisor"]
refund_limit = 2000
[[staff]]
id = "admin1"
roles = ["admin"]
"""


@pytest.fixture
async def commerce() -> AsyncIterator[Served[FakeCommerce]]:
    fake = FakeCommerce(secret="commerce-secret-two")
    async with serve(fake.app()) as base:
        yield Served(fake, base + "/refundops")


@pytest.fixture
async def instances(
    tmp_path: Path, pg_url: str, redis_url: str, commerce: Served[FakeCommerce]
) -> AsyncIterator[list[str]]:
    in_thread(lambda: truncate(pg_url))
    config = tmp_path / "refundops.toml"
    config.write_text(
        CONFIG.format(db=pg_url, redis=redis_url, commerce=commerce.url), encoding="utf-8"
    )
    env = {
        **os.environ,
        "REFUNDOPS_INGEST__SECRET": SECRET,
        "REFUNDOPS_COMMERCE__SECRET": commerce.fake.secret,
    }
    ports, logs = [free_port(), free_port()], [tmp_path / f"instance{n}.log" for n in range(2)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    argv = ("demo", "--no-simulator", "--config", str(config))
    procs = [await start(port, log, env, *argv) for port, log in zip(ports, logs, strict=True)]
    try:
        for url, proc, log in zip(urls, procs, logs, strict=True):
            await ready(url, proc, log)
        yield urls
    finally:
        await stop(*procs)
        assert_no_tracebacks(tmp_path)


async def group_messages(url: str) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/sandbox/api/groups/aftersales/messages") as resp,
    ):
        result: list[dict[str, Any]] = await resp.json()
        return result


async def post(session: aiohttp.ClientSession, url: str, event: dict[str, Any]) -> str:
    body = json.dumps(event, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", **signed_headers(SECRET, int(time.time()), body)}
    async with session.post(f"{url}/api/v1/events", data=body, headers=headers) as resp:
        assert resp.status == 202, await resp.text()
        return str((await resp.json())["status"])


async def test_two_instances_deliver_everything_exactly_once(
    instances: list[str], commerce: Served[FakeCommerce]
) -> None:
    fake, _ = commerce
    soon = (datetime.now(UTC) + timedelta(minutes=50)).isoformat()
    events = []
    for i in range(60):
        unshipped = i % 2 == 0
        events.append(
            make_refund(
                data_refund_id=f"RF2I{i:04d}",
                data_amount="30.00",
                data_order_amount="30.00",
                data_shipping={"status": "unshipped"} if unshipped else {"status": "delivered"},
                data_deadline_at=soon,
            )
        )
    async with aiohttp.ClientSession() as session:
        statuses = await asyncio.gather(
            *(post(session, instances[i % 2], e) for i, e in enumerate(events)),
            *(post(session, instances[(i + 1) % 2], e) for i, e in enumerate(events[:20])),
        )
        assert Counter(statuses) == {"accepted": 60, "duplicate": 20}
        for _ in range(300):
            async with session.get(
                f"{instances[0]}/sandbox/api/groups/aftersales/messages"
            ) as resp:
                messages = await resp.json()
            cards = [m for m in messages if m["kind"] == "card"]
            warnings = [
                m for m in messages if m["kind"] == "text" and "距平台自动同意还剩" in m["text"]
            ]
            settled = sum(c["state"] in ("refunded", "awaiting_review") for c in cards)
            if len(cards) == 60 and settled == 60 and len(warnings) >= 30:
                break
            await asyncio.sleep(0.2)
    assert Counter(c["case_id"] for c in cards) == {f"RF2I{i:04d}": 1 for i in range(60)}
    assert Counter(c["state"] for c in cards) == {"refunded": 30, "awaiting_review": 30}
    await asyncio.sleep(1.0)
    keys = Counter(r["idempotency_key"] for r in fake.requests)
    assert [k for k, n in keys.items() if n > 1] == []
    assert len(fake.performed("approve_refund")) == 30
    assert len(fake.performed("stop_shipment")) == 30
    messages = await group_messages(instances[1])
    warned = Counter(
        m["text"].split(" ⏳ ")[1].split("（")[0] for m in messages if "⏳" in m["text"]
    )
    assert len(warned) == 30
    assert set(warned.values()) == {1}
