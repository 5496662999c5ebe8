"""`refundops demo --via jushuitan`: the demo's warehouse is an in-process FakeJushuitan (every
截单 becomes 聚水潭 订单转异常, and now and then the warehouse has already shipped) and 顺丰
parcels are intercepted through an in-process FakeSf (丰桥), both reached through the real
connector code. The simulated refunds still arrive through the signed ingest API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from integrations.jushuitan.fake import FakeJushuitan
from integrations.sf.fake import PATH as SF_PATH
from integrations.sf.fake import FakeSf
from integrations.simulator.feed import Event, Send

APP_KEY = "demo-jushuitan-app"
APP_SECRET = "demo-jushuitan-secret-0123456789"
# One order in this many has already left the warehouse when its stop arrives.
SHIPPED_EVERY = 6


def demo_overrides(base_url: str, jst: FakeJushuitan, sf: FakeSf) -> dict[str, Any]:
    """The `[warehouse]` and `[carrier]` sections that point at the in-process fakes."""
    fake = f"{base_url.rstrip('/')}/_fake"
    return {
        "warehouse": {
            "connector": "jushuitan",
            "api_base": f"{fake}/jushuitan",
            "app_key": APP_KEY,
            "app_secret": APP_SECRET,
            "access_token": jst.access_token,
            "refresh_token": jst.refresh_token,
            "batch_window_s": 0.2,
        },
        # 顺丰 parcels through 丰桥 (only 顺丰 waybills can be intercepted there), the rest by
        # the demo's simulated carrier.
        "carrier": {
            "mode": "simulator",
            "routes": {"SF": "sf"},
            "sf": {
                "api_base": f"{fake}/sf{SF_PATH}",
                "partner_id": sf.partner_id,
                "checkword": sf.checkword,
                "monthly_card": sf.monthly_card,
                "return_address": {
                    "province": "浙江省",
                    "city": "杭州市",
                    "county": "余杭区",
                    "address": "演示仓库 1 号",
                    "contact": "仓库",
                    "phone": "13800000000",
                },
            },
        },
    }


def make_fakes(
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> tuple[FakeJushuitan, FakeSf]:
    return FakeJushuitan(app_key=APP_KEY, app_secret=APP_SECRET, now=now), FakeSf()


@dataclass
class WarehouseBridge:
    """A `Send` for the simulator: each refund's order exists in the fake ERP first (now and
    then already shipped), then the event goes to the ingest API as usual."""

    jst: FakeJushuitan
    ingest: Send
    seen: int = 0

    async def __call__(self, event: Event) -> None:
        if event["type"] == "refund.requested":
            order = str(event["data"].get("order_id", ""))
            if order and not self.jst.by_so_id(order):
                self.jst.add_order(order, "WaitConfirm")
                self.seen += 1
                if self.seen % SHIPPED_EVERY == 0:
                    self.jst.ship(order)
        await self.ingest(event)
