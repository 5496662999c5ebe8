"""Ingest throughput and latency: `python -m bench.ingest [--db sqlite|postgres] [--seconds 10]`.

Starts `refundops serve` (SQLite file or PostgreSQL, processor and dispatcher running) and,
in the same run, a bare aiohttp server whose handler only parses the JSON; then drives
each with pre-signed events: throughput at 64 concurrent clients, p99 of the 202 at 8.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

from integrations.signing import signed_headers

SECRET = "bench-secret-0123456789abcdef"
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
CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
[database]
url = "{url}"
[commerce]
mode = "none"
[[groups]]
id = "aftersales"
channel = "sandbox"
[[staff]]
id = "admin1"
roles = ["admin"]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def event(i: int) -> bytes:
    return json.dumps(
        {
            "id": f"bench_{uuid.uuid4().hex}",
            "type": "refund.requested",
            "occurred_at": "2026-11-23T10:00:00+08:00",
            "shop": "flagship",
            "platform": "taobao",
            "data": {
                "refund_id": f"RFB{i:08d}{uuid.uuid4().hex[:6]}",
                "order_id": f"T{i}",
                "kind": "refund_only",
                "amount": "128.00",
                "order_amount": "128.00",
                "reason": "尺码不合适",
                "shipping": {"status": "delivered", "carrier": "SF", "tracking_no": f"SF{i:010d}"},
                "buyer": {"nick": "t**1"},
                "deadline_at": "2026-11-25T22:00:00+08:00",
            },
        },
        ensure_ascii=False,
    ).encode()


async def wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.post(url, data=b"{}") as resp:
                    if resp.status in (202, 400, 401, 500):
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


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
            body = event(next(counter))
            headers = {
                "Content-Type": "application/json",
                **signed_headers(SECRET, int(time.time()), body),
            }
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status == 202:
                    ok += 1
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    return ok, latencies, errors


def p99(values: list[float]) -> float:
    return (
        statistics.quantiles(values, n=100)[98] if len(values) > 100 else max(values, default=0.0)
    )


async def measure(url: str, seconds: float) -> dict[str, float]:
    await drive(url, 8, 1.0)
    ok, _, errors = await drive(url, 64, seconds)
    _, latencies, errors8 = await drive(url, 8, seconds)
    return {
        "rps": ok / seconds,
        "p99_ms": p99(latencies) * 1000,
        "p50_ms": statistics.median(latencies) * 1000,
        "errors": errors + errors8,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    env = {**os.environ, "REFUNDOPS_INGEST__SECRET": SECRET}
    with tempfile.TemporaryDirectory() as workdir:
        if args.db == "sqlite":
            url = f"sqlite+aiosqlite:///{Path(workdir) / 'ingest.db'}"
        else:
            from bench.digest import fresh_database

            url = await fresh_database("postgres", Path(workdir))
            upgrade = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot.cli",
                "db",
                "upgrade",
                env={**env, "REFUNDOPS_DATABASE__URL": url},
                stdout=asyncio.subprocess.DEVNULL,
            )
            await upgrade.wait()
        port, bare_port = free_port(), free_port()
        config = Path(workdir) / "bench.toml"
        config.write_text(CONFIG.format(port=port, url=url), encoding="utf-8")
        server = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "serve",
            "--config",
            str(config),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        bare = await asyncio.create_subprocess_exec(sys.executable, "-c", BARE, str(bare_port))
        try:
            ours_url = f"http://127.0.0.1:{port}/api/v1/events"
            bare_url = f"http://127.0.0.1:{bare_port}/api/v1/events"
            await wait_up(ours_url)
            await wait_up(bare_url)
            baseline = await measure(bare_url, args.seconds)
            ours = await measure(ours_url, args.seconds)
        finally:
            server.terminate()
            bare.terminate()
            await server.wait()
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
