"""A burst into one limited group: `python -m bench.burst [--refunds 1000] [--over 60]`.

1,000 refunds arrive within a minute for a group on a DingTalk custom robot (20 messages a
minute, throttled for 10 minutes past that; the fake enforces both). Measures when every
case is visible in the group, how many messages were sent, and any rate-limit errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from bench.server import SECRET, refund_requested, signed
from bot.app import create_app
from bot.settings import Settings
from integrations.dingtalk.fake import FakeDingtalk

ROBOT_SECRET = "SEC" + "0123456789abcdef" * 4


def refund(i: int) -> bytes:
    """Every third not shipped yet (auto-approved), the others delivered (for review)."""
    if i % 3 == 0:
        return refund_requested(
            f"RFBURST{i:05d}",
            platform="pinduoduo",
            amount="39.00",
            order_amount="39.00",
            shipping={"status": "unshipped"},
        )
    return refund_requested(
        f"RFBURST{i:05d}", platform="pinduoduo", amount="129.00", order_amount="129.00"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--refunds", type=int, default=1000)
    parser.add_argument("--over", type=float, default=60.0, help="seconds the burst is spread over")
    args = parser.parse_args()
    fake = FakeDingtalk()
    robot = TestServer(fake.app())
    await robot.start_server()
    fake.base_url = str(robot.make_url(""))
    with tempfile.TemporaryDirectory() as workdir:
        settings = Settings(
            database={"url": f"sqlite+aiosqlite:///{Path(workdir) / 'burst.db'}"},
            ingest={"secret": SECRET},
            commerce={"mode": "none"},
            dispatch={"poll_s": 0.5},
            digest={"enabled": False},
            dingtalk={
                "oapi_base": fake.base_url.rstrip("/"),
                "api_base": fake.base_url.rstrip("/"),
            },
            groups=[
                {
                    "id": "aftersales",
                    "channel": "dingtalk_webhook",
                    "webhook_url": fake.add_robot(ROBOT_SECRET),
                    "webhook_secret": ROBOT_SECRET,
                }
            ],
            staff=[{"id": "admin1", "roles": ["admin"], "dingtalk_staff_id": "ding-admin1"}],
        )
        server = TestServer(create_app(settings))
        await server.start_server()
        url = str(server.make_url("/api/v1/events"))
        started = time.monotonic()
        seen_at: dict[str, float] = {}

        async def watch() -> None:
            while len(seen_at) < args.refunds:
                texts = " ".join(
                    m["markdown"]["text"] for m in fake.robot_messages if m.get("markdown")
                )
                for handle in set(re.findall(r"\bR\d+\b", texts)) - set(seen_at):
                    seen_at[handle] = time.monotonic() - started
                await asyncio.sleep(0.5)

        watcher = asyncio.create_task(watch())
        async with aiohttp.ClientSession() as session:
            for i in range(args.refunds):
                body = refund(i)
                async with session.post(url, data=body, headers=signed(body)) as resp:
                    assert resp.status == 202, await resp.text()
                await asyncio.sleep(
                    max(0.0, started + (i + 1) * args.over / args.refunds - time.monotonic())
                )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watcher, timeout=300)
        missing = sorted(
            {f"R{i}" for i in range(1, args.refunds + 1)} - set(seen_at), key=lambda h: int(h[1:])
        )
        await server.close()
    await robot.close()
    sent = [m["sent_at"] for m in fake.robot_messages]
    busiest = max((sum(1 for t in sent if s <= t < s + 60) for s in sent), default=0)
    print(
        "| refunds | over | all visible after | messages sent | busiest minute | rate-limit errors | lost |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {args.refunds:,} | {args.over:.0f} s | {max(seen_at.values(), default=0):.0f} s | {len(sent)} "
        f"| {busiest} | {len(fake.robot_errors)} | {len(missing)} |"
    )
    if missing:
        print("not visible:", " ".join(missing[:50]))


if __name__ == "__main__":
    asyncio.run(main())
