"""Auto rule → carrier intercept request: `python -m bench.intercept [--db sqlite|postgres]
[--rates 10,50] [--seconds 20]`.

Starts `refundops serve` with the default rules and the carrier adapter pointed at a fake
carrier endpoint (which checks the signature, as the merchant's would). Refunds of shipped
parcels arrive at a steady rate (open loop); the `shipped-intercept` rule asks the carrier
to intercept each. Measures, per parcel, the time from sending the event to the carrier
receiving the intercept request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from bench.server import (
    BASE_CONFIG,
    ONE_GROUP,
    open_loop,
    quantile,
    refund_requested,
    serve,
    signed,
)
from integrations.carrier.fake import PATH, FakeCarrier

CARRIER = """
[carrier]
mode = "webhook"
url = "%s"
"""


class TimedCarrier:
    """The fake carrier, noting when each tracking number's first request arrived."""

    def __init__(self) -> None:
        self.fake = FakeCarrier(secret="bench-carrier-secret")
        self.arrived: dict[str, float] = {}
        self.arrival = asyncio.Event()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(PATH, self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        at = time.perf_counter()
        call = json.loads(await request.read())  # aiohttp keeps the body for the fake
        self.arrived.setdefault(call["data"]["tracking_no"], at)
        self.arrival.set()
        return await self.fake.handle(request)


async def one_rate(
    url: str, carrier: TimedCarrier, rate: float, seconds: float
) -> dict[str, float]:
    """Send `rate` events/s for `seconds`; wait for the intercepts; the latency figures."""
    sent: dict[str, float] = {}
    errors = 0
    run = uuid.uuid4().hex[:6].upper()
    total = int(rate * seconds)

    async def send(session: aiohttp.ClientSession, i: int) -> None:
        nonlocal errors
        tracking_no = f"ZT{run}{i:06d}"
        body = refund_requested(
            f"RFI{tracking_no}",
            amount="89.00",
            order_amount="89.00",
            reason="不想要了",
            shipping={"status": "in_transit", "carrier": "ZTO", "tracking_no": tracking_no},
        )
        sent[tracking_no] = time.perf_counter()
        async with session.post(f"{url}/api/v1/events", data=body, headers=signed(body)) as resp:
            await resp.read()
            if resp.status != 202:
                errors += 1

    await open_loop(rate, total, send)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(60):
            while not set(sent) <= set(carrier.arrived):
                carrier.arrival.clear()
                await carrier.arrival.wait()
    latencies = [carrier.arrived[t] - s for t, s in sent.items() if t in carrier.arrived]
    return {
        "rate": rate,
        "events": total,
        "intercepts": len(latencies),
        "p50": statistics.median(latencies) if latencies else 0.0,
        "p99": quantile(latencies, 99),
        "max": max(latencies, default=0.0),
        "errors": errors,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rates", default="10,50", help="events per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    carrier = TimedCarrier()
    endpoint = TestServer(carrier.app())
    await endpoint.start_server()
    config = BASE_CONFIG + CARRIER % endpoint.make_url(PATH) + ONE_GROUP
    secrets = {"REFUNDOPS_CARRIER__SECRET": carrier.fake.secret}
    db_url = None
    if args.db == "postgres":
        from bench.digest import fresh_database

        with tempfile.TemporaryDirectory() as workdir:
            db_url = await fresh_database("postgres", Path(workdir))
    results = []
    try:
        async with serve(config, db_url=db_url, secrets=secrets) as served:
            for rate in (float(r) for r in args.rates.split(",")):
                results.append(await one_rate(served.url, carrier, rate, args.seconds))
    finally:
        await endpoint.close()
    print(f"refundops ({args.db}), {args.seconds:.0f} s per rate")
    print("| events/s | events | intercept requests | p50 | p99 | max | ingest errors |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['rate']:.0f} | {r['events']:.0f} | {r['intercepts']:.0f} "
            f"| {r['p50'] * 1000:.0f} ms | {r['p99'] * 1000:.0f} ms | {r['max'] * 1000:.0f} ms "
            f"| {r['errors']:.0f} |"
        )
    duplicates = len(carrier.fake.requests) - len(carrier.arrived)
    print(f"carrier requests repeated (same parcel twice): {duplicates}")


if __name__ == "__main__":
    asyncio.run(main())
