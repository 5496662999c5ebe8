"""The demo's shop on a platform: `refundops demo --via douyin|taobao` turns the simulator's
refund requests into after-sales of an in-process FakeDouyin / FakeTaobao, so that they reach
refundops the way a real shop's do — 抖店 signed pushes, 淘宝 TMC messages — and decisions and
intercepts go back through the real connector code. What a platform does not carry (payouts,
tracking scans, buyer chat on 抖店) still comes through the signed ingest API.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from handlers.money import yuan_to_fen
from integrations.douyin.fake import FakeDouyin
from integrations.simulator.feed import Event, Send
from integrations.taobao.fake import FakeTaobao

log = logging.getLogger(__name__)

Via = Literal["douyin", "taobao"]
DEMO_APP_KEY = {"douyin": "7000000000000000001", "taobao": "12345678"}
DEMO_APP_SECRET = "demo-platform-secret-0123456789"
DEMO_TOKEN = "demo-session-0123"
DEMO_SHOP = {"douyin": "dy-demo", "taobao": "tb-demo"}
FAKE_PATH = "/_fake"
# 抖店 company codes for the simulator's carriers.
DOUYIN_COMPANY = {
    "SF": "shunfeng",
    "ZTO": "zhongtong",
    "YTO": "yuantong",
    "YD": "yunda",
    "JD": "jd",
    "STO": "shentong",
}
TAOBAO_COMPANY = {
    "SF": "顺丰速运",
    "ZTO": "中通快递",
    "YTO": "圆通速递",
    "YD": "韵达快递",
    "JD": "京东快递",
    "STO": "申通快递",
}
# Seconds after the platform accepted an intercept until the parcel turns back.
INTERCEPT_TAKES_S = 20.0


def demo_shop(via: Via, base_url: str) -> dict[str, Any]:
    """The `[[shops]]` entry of the demo's platform shop, pointing at the in-process fake."""
    fake = f"{base_url.rstrip('/')}{FAKE_PATH}/{via}"
    shop: dict[str, Any] = {
        "id": DEMO_SHOP[via],
        "name": "演示抖店" if via == "douyin" else "演示淘宝店",
        "platform": via,
        "connector": via,
        "app_key": DEMO_APP_KEY[via],
        "app_secret": DEMO_APP_SECRET,
        "pull_interval_s": 15.0,
    }
    if via == "douyin":
        return shop | {"api_base": fake, "shop_id": "123456", "return_address_id": 1}
    ws = fake.replace("http://", "ws://").replace("https://", "wss://")
    return shop | {
        "api_base": f"{fake}/router/rest",
        "tmc_url": f"{ws}/tmc",
        "access_token": DEMO_TOKEN,
        "seller_nick": "演示淘宝店",
        "tmc_pull_s": 1.0,
    }


def make_fake(via: Via, now: Any) -> FakeDouyin | FakeTaobao:
    if via == "douyin":
        return FakeDouyin(DEMO_APP_KEY[via], DEMO_APP_SECRET, now=now)
    fake = FakeTaobao(DEMO_APP_KEY[via], DEMO_APP_SECRET, now, seller_nick="演示淘宝店")
    fake.grant(DEMO_TOKEN)
    return fake


@dataclass
class PlatformBridge:
    """A `Send` for the simulator: refunds go to the platform fake, the rest to `ingest`."""

    via: Via
    fake: FakeDouyin | FakeTaobao
    ingest: Send
    session: aiohttp.ClientSession
    push_url: str = ""
    ids: dict[str, str] = field(default_factory=dict)
    intercepts_seen: int = 0
    turning: dict[str, float] = field(default_factory=dict)
    monotonic: Callable[[], float] = time.monotonic

    async def __call__(self, event: Event) -> None:
        data = event["data"]
        kind = event["type"]
        if kind == "refund.requested":
            self.ids[data["refund_id"]] = self._create(data)
        elif kind == "refund.cancelled" and data.get("refund_id") in self.ids:
            self._cancel(self.ids[data["refund_id"]])
        elif (
            kind == "refund.updated"
            and data.get("return_status") == "shipped"
            and data.get("refund_id") in self.ids
        ):
            self._returned(self.ids[data["refund_id"]], data.get("return_tracking") or {})
        else:
            await self.ingest(self._mapped(event))
        await self._platform_moves()

    def _mapped(self, event: Event) -> Event:
        """An event about one of the platform's refunds names it as the platform does."""
        refund_id = event["data"].get("refund_id")
        if refund_id not in self.ids:
            return event
        data = event["data"] | {"refund_id": self.ids[refund_id]}
        return event | {"shop": DEMO_SHOP[self.via], "platform": self.via, "data": data}

    def _create(self, data: dict[str, Any]) -> str:
        amount = yuan_to_fen(data["amount"])
        order = yuan_to_fen(data.get("order_amount") or data["amount"])
        shipping = data.get("shipping") or {}
        shipped = shipping.get("status", "unshipped") != "unshipped"
        delivered = shipping.get("status") == "delivered"
        carrier = str(shipping.get("carrier", ""))
        if isinstance(self.fake, FakeDouyin):
            kind = data["kind"]
            aftersale_type = (
                0 if kind == "return_refund" else 6 if kind == "price_diff" else 1 if shipped else 2
            )
            return self.fake.new_aftersale(
                aftersale_type=aftersale_type,
                amount=amount,
                pay_amount=order,
                reason=str(data.get("reason", "")),
                tracking_no=str(shipping.get("tracking_no", "")) if shipped else "",
                company_code=DOUYIN_COMPANY.get(carrier, carrier.lower()) if shipped else "",
                company_name=carrier,
                delivered=delivered,
            )
        bill = "return_bill" if data["kind"] == "return_refund" else "refund_bill"
        return self.fake.new_refund(
            amount_fen=amount,
            order_fen=max(order, amount),
            bill_type=bill,
            shipped=shipped,
            received=delivered,
            buyer_nick=str((data.get("buyer") or {}).get("nick", "t**1")),
            reason=str(data.get("reason", "")),
        )

    def _cancel(self, platform_id: str) -> None:
        if isinstance(self.fake, FakeDouyin):
            self.fake.close(platform_id, by_buyer=True)
        else:
            self.fake.close(platform_id)

    def _returned(self, platform_id: str, tracking: dict[str, Any]) -> None:
        carrier = str(tracking.get("carrier", "ZTO"))
        number = str(tracking.get("tracking_no", "ZT0000000000"))
        if isinstance(self.fake, FakeDouyin):
            if self.fake.aftersales[platform_id].status == 7:
                self.fake.buyer_returns(
                    platform_id,
                    tracking_no=number,
                    company_code=DOUYIN_COMPANY.get(carrier, carrier.lower()),
                )
        elif self.fake.refunds[int(platform_id)].status == "WAIT_BUYER_RETURN_GOODS":
            self.fake.buyer_returns_goods(platform_id, TAOBAO_COMPANY.get(carrier, carrier), number)

    async def _platform_moves(self) -> None:
        """What the platform does by itself meanwhile: 抖店 pushes what happened, and a parcel
        whose intercept the platform accepted turns back a little later."""
        if not isinstance(self.fake, FakeDouyin):
            return
        asked = self.fake.calls("afterSale/applyLogisticsIntercept")
        now = self.monotonic()
        for call in asked[self.intercepts_seen :]:
            self.turning[str(call.get("after_sale_id", ""))] = now
        self.intercepts_seen = len(asked)
        for aftersale_id, since in list(self.turning.items()):
            if now - since >= INTERCEPT_TAKES_S and aftersale_id in self.fake.aftersales:
                self.fake.parcel_returning(aftersale_id)
                del self.turning[aftersale_id]
        if self.fake.pending_messages() and not await self.fake.flush(
            self.push_url, attempts=1, session=self.session
        ):
            log.info("the demo's 抖店 push was not taken yet; it is sent again")
