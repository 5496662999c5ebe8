"""Two real `refundops serve` processes with one WeCom AI bot: one connection at a time,
cards posted once whichever instance took the event, and after `kill -9` of the holder the
other one connects within seconds."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from integrations.signing import signed_headers
from integrations.wecom.fake import FakeWeComAIBot
from tests.support.app import make_refund
from tests.support.db import in_thread, truncate
from tests.support.fakes import Served, serve
from tests.support.processes import free_port, kill, ready, start, stop

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
SECRET = "aibot-failover-secret-0123456789"
CHAT = "wrkAFTERSALES"
LEASE_S = 1.5
CONFIG = """
[database]
url = "{db}"
[redis]
url = "{redis}"
[bot]
admin_group = "aftersales"
[dispatch]
poll_s = 0.2
# What the killed instance held when it died (a group's send lock, a claimed item) is
# taken over once this runs out.
lease_s = 5.0
[digest]
enabled = false
[wecom.aibot]
bot_id = "aibot-fake"
ws_url = "{ws}"
lease_s = {lease}
reconnect_base_s = 0.1
reconnect_max_s = 1.0
[[groups]]
id = "aftersales"
channel = "wecom_aibot"
chat_id = "{chat}"
[[staff]]
id = "admin1"
roles = ["admin"]
wecom_userid = "wx_admin1"
"""


class Instance:
    def __init__(self, proc: asyncio.subprocess.Process, url: str, log: Path) -> None:
        self.proc = proc
        self.url = url
        self.log = log

    @property
    def holds(self) -> bool:
        return "this instance holds the connection" in self.log.read_text(encoding="utf-8")


@pytest.fixture
async def wecom() -> AsyncIterator[Served[FakeWeComAIBot]]:
    fake = FakeWeComAIBot(chats={CHAT})
    async with serve(fake.app()) as base:
        yield Served(fake, base + "/")


@pytest.fixture
async def instances(
    tmp_path: Path, pg_url: str, redis_url: str, wecom: Served[FakeWeComAIBot]
) -> AsyncIterator[list[Instance]]:
    in_thread(lambda: truncate(pg_url))
    config = tmp_path / "refundops.toml"
    config.write_text(
        CONFIG.format(db=pg_url, redis=redis_url, ws=wecom.url, lease=LEASE_S, chat=CHAT),
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "REFUNDOPS_INGEST__SECRET": SECRET,
        "REFUNDOPS_WECOM__AIBOT__SECRET": wecom.fake.secret,
    }
    started: list[Instance] = []
    try:
        for n in range(2):
            port, log = free_port(), tmp_path / f"instance{n}.log"
            proc = await start(port, log, env, "serve", "--config", str(config))
            started.append(Instance(proc, f"http://127.0.0.1:{port}", log))
        for instance in started:
            await ready(instance.url, instance.proc, instance.log)
        yield started
    finally:
        await stop(*(instance.proc for instance in started))


async def post(session: aiohttp.ClientSession, url: str, event: dict[str, Any]) -> None:
    body = json.dumps(event, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", **signed_headers(SECRET, int(time.time()), body)}
    async with session.post(f"{url}/api/v1/events", data=body, headers=headers) as resp:
        assert resp.status == 202, await resp.text()


async def poll(check: Any, within: float) -> float:
    """Seconds until `check()` holds, polling; fails after `within`."""
    started = time.monotonic()
    for _ in range(int(within / 0.05)):
        if check():
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {within} s")


def cards(fake: FakeWeComAIBot) -> list[dict[str, Any]]:
    return [b for chat, b in fake.messages if chat == CHAT and b["msgtype"] == "template_card"]


async def test_aibot_one_connection_across_processes_and_failover_after_kill(
    instances: list[Instance], wecom: Served[FakeWeComAIBot]
) -> None:
    fake, _ = wecom
    await poll(lambda: fake.online and any(i.holds for i in instances), 10)
    await asyncio.sleep(LEASE_S * 2)
    assert (fake.subscribed, fake.kicked) == (1, 0)
    (holder,) = [i for i in instances if i.holds]
    (other,) = [i for i in instances if i is not holder]

    async with aiohttp.ClientSession() as session:
        # Few enough to stay within the group's sending budget (more would fold into one card).
        for n in range(2):
            await post(session, instances[n % 2].url, make_refund())
        await poll(lambda: len(cards(fake)) >= 2, 30)
        # Killed between a send and its record, the holder's card would be sent again by
        # the next holder (the AI bot takes no idempotency key): let the records land first.
        await asyncio.sleep(1.0)

        await kill(holder.proc)
        taken = await poll(lambda: fake.online and other.holds, LEASE_S * 4)
        assert taken < LEASE_S * 3
        assert fake.kicked == 0

        await post(session, other.url, make_refund())
        await poll(lambda: len(cards(fake)) >= 3, 30)
    await asyncio.sleep(1.0)
    titles = [c["template_card"]["main_title"]["title"] for c in cards(fake)]
    assert len(titles) == len(set(titles)) == 3
