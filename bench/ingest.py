"""Ingest throughput and latency: `python -m bench.ingest [--db sqlite|postgres] [--seconds 10]`.

Starts `refundops serve` (SQLite file or PostgreSQL, processor and dispatcher running) and,
in the same run, a bare aiohttp server whose handler only parses the JSON; then drives
each with pre-signed events: throughput at 64 concurrent clients, p99 of the 202 at 8.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

from bench.server import (
    BASE_CONFIG,
    ONE_GROUP,
    free_port,
    quantile,
    refund_requested,
    serve,
    signed,
    wait_up,
)

BARE = """
import json, sys
from aiohttp import web
async def handle(request):
    body = json.loads(await request.read())
    return web.json_response({"id": body.get("id"), "status": "accepted"}, status=202)
app = web.Application()
app.router.add_post("/api/v1/events", handle)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""
CONFIG = BASE_CONFIG + ONE_GROUP


async def drive(url: str, clients: int, seconds: float) -> tuple[int, list[float], int]:
    """Send signed events from `clients` loops for `seconds`; (ok count, latencies, errors)."""
    latencies: list[float] = []
    ok = errors = 0
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))
    connector = aiohttp.TCPConnector(limit=clients)

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal ok, errors
        while time.perf_counter() < deadline:
            i = next(counter)
            body = refund_requested(f"RFB{i:08d}{uuid.uuid4().hex[:6]}")
            started = time.perf_counter()
            async with session.post(url, data=body, headers=signed(body)) as resp:
                await resp.read()
                if resp.status == 202:
                    ok += 1
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    return ok, latencies, errors


async def measure(url: str, seconds: float) -> dict[str, float]:
    await drive(url, 8, 1.0)
    ok, _, errors = await drive(url, 64, seconds)
    _, latencies, errors8 = await drive(url, 8, seconds)
    return {
        "rps": ok / seconds,
        "p99_ms": quantile(latencies, 99) * 1000,
        "p50_ms": statistics.median(latencies) * 1000,
        "errors": errors + errors8,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    db_url = None
    if args.db == "postgres":
        from bench.digest import fresh_database

        with tempfile.TemporaryDirectory() as workdir:
            db_url = await fresh_database("postgres", Path(workdir))
    bare_port = free_port()
    bare = await asyncio.create_subprocess_exec(sys.executable, "-c", BARE, str(bare_port))
    try:
        bare_url = f"http://127.0.0.1:{bare_port}/api/v1/events"
        await wait_up(bare_url, proc=bare)
        baseline = await measure(bare_url, args.seconds)
        async with serve(CONFIG, db_url=db_url) as served:
            ours = await measure(f"{served.url}/api/v1/events", args.seconds)
    finally:
        bare.terminate()
        await bare.wait()
    print("| server | events/s at 64 clients | p50 / p99 at 8 clients | errors |")
    print("| --- | --- | --- | --- |")
    for name, r in (("bare aiohttp (JSON parse only)", baseline), (f"refundops ({args.db})", ours)):
        print(
            f"| {name} | {r['rps']:,.0f} | {r['p50_ms']:.1f} / {r['p99_ms']:.1f} ms | {r['errors']:.0f} |"
        )
    print(f"ratio refundops / bare: {ours['rps'] / baseline['rps']:.2f} (throughput)")


if __name__ == "__main__":
    asyncio.run(main())
