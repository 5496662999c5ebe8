"""Event → warehouse stop and event → carrier intercept through the real connectors:
`python -m bench.backoffice [--rate 10] [--seconds 20]`.

Starts `refundops serve` with `[warehouse] connector = "jushuitan"` and `[carrier] mode = "sf"`
pointed at a FakeJushuitan and a FakeSf in this process. Refunds arrive at a steady rate
(open loop), alternately unshipped (the `unshipped-review` rule asks the warehouse to stop
the order: 聚水潭 订单转异常) and in transit with 顺丰 (the `shipped-intercept` rule asks
丰桥 to intercept). Measures, per refund, the time from sending the event to the fake
receiving the stop (the order turned 异常) or the intercept request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
import uuid

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Handler

from bench.server import (
    BASE_CONFIG,
    ONE_GROUP,
    open_loop,
    quantile,
    refund_requested,
    serve,
    signed,
)
from integrations.jushuitan.fake import FakeJushuitan
from integrations.sf.fake import PATH, FakeSf

APP_KEY = "bench-jst-app"
APP_SECRET = "bench-jst-secret-0123456789"
BACKOFFICE = """
[warehouse]
connector = "jushuitan"
api_base = "%s"
app_key = "%s"
batch_window_s = 0.05
[carrier]
mode = "sf"
[carrier.sf]
api_base = "%s"
partner_id = "%s"
monthly_card = "%s"
[carrier.sf.return_address]
province = "广东省"
city = "深圳市"
county = "南山区"
address = "科技园1号"
contact = "仓库"
phone = "13800000000"
"""


class Timed:
    """Both fakes, noting when each order was stopped and each waybill's intercept arrived."""

    def __init__(self) -> None:
        self.jst = FakeJushuitan(app_key=APP_KEY, app_secret=APP_SECRET)
        self.sf = FakeSf()
        self.stopped: dict[str, float] = {}
        self.intercepted: dict[str, float] = {}
        self.arrival = asyncio.Event()

    @web.middleware
    async def stamp(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        answer = await handler(request)
        now = time.perf_counter()
        for o_id, _ in self.jst.question_log:
            order = self.jst.orders.get(o_id)
            if order is not None:
                self.stopped.setdefault(order.so_id, now)
        for waybill in self.sf.intercepted():
            self.intercepted.setdefault(waybill, now)
        self.arrival.set()
        return answer


async def one_rate(
    url: str, fakes: Timed, rate: float, seconds: float
) -> dict[str, dict[str, float]]:
    sent_stop: dict[str, float] = {}
    sent_intercept: dict[str, float] = {}
    run = uuid.uuid4().hex[:6].upper()
    total = int(rate * seconds)

    async def send(session: aiohttp.ClientSession, i: int) -> None:
        if i % 2:
            order = f"T{run}{i:06d}"
            fakes.jst.add_order(order, "WaitConfirm")
            body = refund_requested(
                f"RFS{run}{i:06d}",
                order_id=order,
                amount="800.00",
                order_amount="800.00",
                shipping={"status": "unshipped"},
            )
            sent_stop[order] = time.perf_counter()
        else:
            waybill = f"SF{run}{i:06d}"
            body = refund_requested(
                f"RFI{run}{i:06d}",
                amount="89.00",
                order_amount="89.00",
                shipping={"status": "in_transit", "carrier": "SF", "tracking_no": waybill},
            )
            sent_intercept[waybill] = time.perf_counter()
        async with session.post(f"{url}/api/v1/events", data=body, headers=signed(body)) as resp:
            await resp.read()

    await open_loop(rate, total, send)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(60):
            while not (
                set(sent_stop) <= set(fakes.stopped)
                and set(sent_intercept) <= set(fakes.intercepted)
            ):
                fakes.arrival.clear()
                await fakes.arrival.wait()
    return {
        "stop": _figures(sent_stop, fakes.stopped),
        "intercept": _figures(sent_intercept, fakes.intercepted),
    }


def _figures(sent: dict[str, float], arrived: dict[str, float]) -> dict[str, float]:
    latencies = [arrived[k] - s for k, s in sent.items() if k in arrived]
    return {
        "sent": len(sent),
        "arrived": len(latencies),
        "p50": statistics.median(latencies) if latencies else 0.0,
        "p99": quantile(latencies, 99),
        "max": max(latencies, default=0.0),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="10", help="refunds per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    fakes = Timed()
    jst_app = fakes.jst.app()
    jst_app.middlewares.append(fakes.stamp)
    sf_app = fakes.sf.app()
    sf_app.middlewares.append(fakes.stamp)
    jst, sf = TestServer(jst_app), TestServer(sf_app)
    await jst.start_server()
    await sf.start_server()
    config = (
        BASE_CONFIG
        + BACKOFFICE
        % (
            jst.make_url(""),
            APP_KEY,
            sf.make_url(PATH),
            fakes.sf.partner_id,
            fakes.sf.monthly_card,
        )
        + ONE_GROUP
    )
    secrets = {
        "REFUNDOPS_WAREHOUSE__APP_SECRET": APP_SECRET,
        "REFUNDOPS_WAREHOUSE__ACCESS_TOKEN": fakes.jst.access_token,
        "REFUNDOPS_WAREHOUSE__REFRESH_TOKEN": fakes.jst.refresh_token,
        "REFUNDOPS_CARRIER__SF__CHECKWORD": fakes.sf.checkword,
    }
    results = []
    try:
        async with serve(config, secrets=secrets) as served:
            for rate in (float(r) for r in args.rates.split(",")):
                results.append((rate, await one_rate(served.url, fakes, rate, args.seconds)))
    finally:
        await jst.close()
        await sf.close()
    print(f"refundops (SQLite), {args.seconds:.0f} s per rate, half stops and half intercepts")
    print("| refunds/s | request | sent | arrived | p50 | p99 | max |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for rate, found in results:
        for what, name in (("stop", "聚水潭 订单转异常"), ("intercept", "顺丰 丰桥 intercept")):
            r = found[what]
            print(
                f"| {rate:.0f} | {name} | {r['sent']:.0f} | {r['arrived']:.0f} "
                f"| {r['p50'] * 1000:.0f} ms | {r['p99'] * 1000:.0f} ms | {r['max'] * 1000:.0f} ms |"
            )


if __name__ == "__main__":
    asyncio.run(main())
