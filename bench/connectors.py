"""A 抖店 shop through its connector: `python -m bench.connectors [--rate 10] [--seconds 20]
[--catchup 10000]`.

Starts `refundops demo --no-simulator` with one sandbox group and a `[[shops]]` entry whose
connector points at a FakeDouyin in this process. Two measurements, each beside the same work
sent through the signed ingest API in the same run (the reference):

- push → card: after-sales arrive at a steady rate; each is pushed at once (signed, as 抖店
  does); the time from the push to its card in the group. The connector acknowledges, then
  reads the after-sale's detail and reject reasons from the platform before the event exists.
- catch-up: `--catchup` after-sales the bot never heard of, spread over the last 20 hours; the
  pull pages through `afterSale/List` from its first cursor. Time until every one is an event,
  and until every card is in the group; the reference posts the same number of events in
  batches of 500.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import time
import uuid
from datetime import UTC, datetime

import aiohttp
from aiohttp.test_utils import TestServer

from bench.server import BASE_CONFIG, ONE_GROUP, quantile, refund_requested, serve, signed
from integrations.douyin.fake import FakeDouyin

APP_KEY = "7000000000000000001"
APP_SECRET = "bench-douyin-secret-0123456789"
SHOP = """
[[shops]]
id = "dy"
platform = "douyin"
connector = "douyin"
app_key = "%s"
shop_id = "123456"
api_base = "%s"
pull_interval_s = %s
"""
SECRETS = {"REFUNDOPS_SHOP_DY__APP_SECRET": APP_SECRET}


async def card_ids(session: aiohttp.ClientSession, url: str) -> set[str]:
    async with session.get(f"{url}/sandbox/api/groups/aftersales/messages") as resp:
        messages = await resp.json()
    return {m["case_id"] for m in messages if m["kind"] == "card" and m["case_id"]}


async def until_cards(
    session: aiohttp.ClientSession,
    url: str,
    wanted: dict[str, float],
    poll_s: float,
    limit_s: float,
    total: int,
) -> dict[str, float]:
    """When each of `wanted` (case id → start; `total` of them, some still being sent) first
    showed as a card; polls the group."""
    seen: dict[str, float] = {}
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(limit_s):
            while len(seen) < total:
                now = time.perf_counter()
                for case_id in await card_ids(session, url) & set(wanted):
                    seen.setdefault(case_id, now)
                await asyncio.sleep(poll_s)
    return {case_id: seen[case_id] - start for case_id, start in wanted.items() if case_id in seen}


def figures(latencies: dict[str, float], total: int) -> dict[str, float]:
    values = list(latencies.values())
    return {
        "cards": len(values),
        "of": total,
        "p50": statistics.median(values) if values else 0.0,
        "p99": quantile(values, 99),
        "max": max(values, default=0.0),
    }


async def push_to_card(rate: float, seconds: float) -> tuple[dict[str, float], dict[str, float]]:
    fake = FakeDouyin(APP_KEY, APP_SECRET)
    endpoint = TestServer(fake.app())
    await endpoint.start_server()
    config = BASE_CONFIG + ONE_GROUP + SHOP % (APP_KEY, endpoint.make_url(""), 3600.0)
    total = int(rate * seconds)
    try:
        async with serve(config, secrets=SECRETS) as served, aiohttp.ClientSession() as session:
            push_url = f"{served.url}/connectors/douyin/dy"
            pushed: dict[str, float] = {}
            started = time.perf_counter()
            watcher = asyncio.create_task(
                until_cards(session, served.url, pushed, 0.05, seconds + 120, total)
            )
            for i in range(total):
                await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
                aftersale = fake.new_aftersale(aftersale_type=1, amount=12800, delivered=True)
                pushed[aftersale] = time.perf_counter()
                await fake.flush(push_url, attempts=3, session=session)
            via_push = figures(await watcher, total)
            # The reference: the same refunds as signed events to the ingest API.
            posted: dict[str, float] = {}
            run = uuid.uuid4().hex[:6].upper()
            started = time.perf_counter()
            watcher = asyncio.create_task(
                until_cards(session, served.url, posted, 0.05, seconds + 120, total)
            )
            for i in range(total):
                await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
                refund_id = f"RFP{run}{i:06d}"
                body = refund_requested(refund_id)
                posted[refund_id] = time.perf_counter()
                async with session.post(
                    f"{served.url}/api/v1/events", data=body, headers=signed(body)
                ) as resp:
                    await resp.read()
            via_api = figures(await watcher, total)
    finally:
        await endpoint.close()
    return via_push, via_api


async def metric(session: aiohttp.ClientSession, url: str, name: str, *labels: str) -> float:
    """The sum of a Prometheus metric's samples that carry every one of `labels`."""
    async with session.get(f"{url}/metrics") as resp:
        text = await resp.text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and all(label in line for label in labels)
    )


async def timed(
    session: aiohttp.ClientSession, url: str, count: int, started: float, limit_s: float
) -> tuple[float, float]:
    """Seconds from `started` until `count` refunds are applied, and until every card they
    made is delivered (nothing left in the outbox)."""
    applied_s = carded_s = float("nan")
    requested = 'type="refund.requested"'
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(limit_s):
            while await metric(session, url, "refundops_events_applied_total", requested) < count:  # noqa: ASYNC110 - polled over HTTP
                await asyncio.sleep(0.5)
            applied_s = time.perf_counter() - started
            while await metric(session, url, "refundops_outbox_depth", 'state="pending"') > 0:  # noqa: ASYNC110 - polled over HTTP
                await asyncio.sleep(0.5)
            carded_s = time.perf_counter() - started
    return applied_s, carded_s


async def catch_up(count: int) -> dict[str, float]:
    fake = FakeDouyin(APP_KEY, APP_SECRET)
    now = int(datetime.now(UTC).timestamp())
    spread = 20 * 3600
    for i in range(count):
        fake.new_aftersale(
            aftersale_type=1,
            amount=12800,
            delivered=True,
            update_time=now - spread + i * spread // count,
            message=False,
        )
    endpoint = TestServer(fake.app())
    await endpoint.start_server()
    config = BASE_CONFIG + ONE_GROUP + SHOP % (APP_KEY, endpoint.make_url(""), 1.0)
    limit_s = 3600.0
    found: dict[str, float] = {}
    try:
        started = time.perf_counter()
        async with serve(config, secrets=SECRETS) as served, aiohttp.ClientSession() as session:
            listed = asyncio.create_task(_listed(fake, started, limit_s))
            found["pull_applied"], found["pull_carded"] = await timed(
                session, served.url, count, started, limit_s
            )
            found["pull_listed"] = await listed
            found["list_calls"] = len(fake.calls("afterSale/List"))
            found["detail_calls"] = len(fake.calls("afterSale/Detail"))
        # The reference: the same number of events, in signed batches of 500, to a fresh bot
        # without the shop (nothing else to pull).
        async with serve(BASE_CONFIG + ONE_GROUP) as served, aiohttp.ClientSession() as session:
            run = uuid.uuid4().hex[:6].upper()
            started = time.perf_counter()
            for first in range(0, count, 500):
                events = [
                    json.loads(refund_requested(f"RFC{run}{i:06d}"))
                    for i in range(first, min(first + 500, count))
                ]
                body = json.dumps({"events": events}, ensure_ascii=False).encode()
                async with session.post(
                    f"{served.url}/api/v1/events/batch", data=body, headers=signed(body)
                ) as resp:
                    await resp.read()
            found["api_posted"] = time.perf_counter() - started
            found["api_applied"], found["api_carded"] = await timed(
                session, served.url, count, started, limit_s
            )
    finally:
        await endpoint.close()
    return found


async def _listed(fake: FakeDouyin, started: float, limit_s: float) -> float:
    """Seconds until the pull has listed every after-sale (the events then exist)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(limit_s):
            while not _caught_up(fake):  # noqa: ASYNC110 - the fake only records its calls
                await asyncio.sleep(0.2)
            return time.perf_counter() - started
    return float("nan")


def _caught_up(fake: FakeDouyin) -> bool:
    """The pull asked for a window that ends now: it has gone through every older one."""
    calls = fake.calls("afterSale/List")
    if not calls:
        return False
    last = calls[-1]
    return int(last.get("update_end_time", 0)) >= int(time.time()) - 5


def row(name: str, r: dict[str, float]) -> str:
    return (
        f"| {name} | {r['cards']:.0f}/{r['of']:.0f} | {r['p50'] * 1000:.0f} ms "
        f"| {r['p99'] * 1000:.0f} ms | {r['max'] * 1000:.0f} ms |"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=10.0, help="after-sales pushed per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--catchup", type=int, default=10000, help="after-sales to catch up")
    args = parser.parse_args()
    if args.rate * args.seconds > 450:
        parser.error("at most 450 after-sales per run: the sandbox lists a group's newest 500")
    via_push, via_api = await push_to_card(args.rate, args.seconds)
    print(f"push → card, {args.rate:.0f}/s for {args.seconds:.0f} s (SQLite)")
    print("| path | cards | p50 | p99 | max |")
    print("| --- | --- | --- | --- | --- |")
    print(row("抖店 push → connector", via_push))
    print(row("signed ingest API (reference)", via_api))
    ratio = via_push["p99"] / via_api["p99"] if via_api["p99"] else float("nan")
    print(f"push p99 / API p99: {ratio:.2f}")
    if args.catchup:
        found = await catch_up(args.catchup)
        print(f"\ncatch-up of {args.catchup} after-sales (SQLite)")
        print("| path | all fetched | all applied | all carded | API calls |")
        print("| --- | --- | --- | --- | --- |")
        print(
            f"| pull (afterSale/List) | {found['pull_listed']:.1f} s "
            f"| {found['pull_applied']:.1f} s | {found['pull_carded']:.0f} s "
            f"| {found['list_calls']:.0f} List, {found['detail_calls']:.0f} Detail |"
        )
        print(
            f"| signed batches of 500 (reference) | {found['api_posted']:.1f} s "
            f"| {found['api_applied']:.1f} s | {found['api_carded']:.0f} s | — |"
        )
        print(
            f"pull / reference: applied {found['pull_applied'] / found['api_applied']:.2f}, "
            f"carded {found['pull_carded'] / found['api_carded']:.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
