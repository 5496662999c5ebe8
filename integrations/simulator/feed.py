"""A simulated shop: realistic refund, logistics, payout and buyer events for the demo.

It behaves like a merchant's order system during a normal day (the situations of
../shared/domain): 仅退款 before and after shipping, returns, price-difference claims,
cashback payouts, parcels that move or stall, buyers who chase. Events go through the
real ingest API, signed, so the demo exercises the same contract a shop would.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from handlers.clock import Clock
from integrations.carrier.simulator import SimulatedCarrier
from integrations.signing import signed_headers

log = logging.getLogger(__name__)

Event = dict[str, Any]
Send = Callable[[Event], Awaitable[None]]

PLATFORMS = [
    ("taobao", 30, 48),
    ("tmall", 15, 48),
    ("pinduoduo", 25, 36),
    ("douyin", 15, 48),
    ("jd", 10, 48),
    ("wechat_channels", 5, 48),
]
SHOPS = ["flagship", "outlet"]
PRODUCTS = [
    ("纯棉短袖T恤", "59.00"),
    ("加绒连帽卫衣", "129.00"),
    ("高腰阔腿牛仔裤", "159.00"),
    ("羊毛混纺大衣", "699.00"),
    ("真皮短靴", "389.00"),
    ("保温杯 500ml", "79.00"),
    ("蓝牙耳机", "199.00"),
    ("儿童羽绒服", "259.00"),
    ("耳钉 3 副装", "10.00"),
    ("空气炸锅", "329.00"),
    ("蚕丝被 1.8m", "1299.00"),
]
CARRIERS = [
    ("SF", "SF", 13),
    ("ZTO", "7", 13),
    ("YTO", "YT", 13),
    ("YD", "43", 13),
    ("JD", "JDVA", 11),
    ("STO", "77", 12),
]
NICKS = ["t**1", "小**猫", "j**8", "阿**宝", "l**y", "晴**天", "m**2", "追**梦"]
REASONS = {
    1: ["不想要了", "拍错了/多拍了", "地址填错了", "协商一致退款", "发货太慢"],
    2: ["不想要了", "七天无理由", "快递一直不更新", "拍错了/多拍了"],
    3: ["质量问题", "少件/漏发", "与商品描述不符", "发错货", "包装破损", "尺码不合适"],
    4: ["尺码不合适", "不喜欢/效果不好", "质量问题", "与商品描述不符"],
    5: ["降价补差", "未享受到优惠", "价保申请"],
}
# What buyers write after asking for a refund, by path: a question, then follow-ups when
# nobody answers (the last ones getting impatient). Some carry a phone number or an
# account, as real buyers' messages do; the group sees them masked.
CONVERSATIONS: dict[int, list[list[str]]] = {
    1: [
        ["拍错了，还没发货的话直接退吧", "退款什么时候到账呀？"],
        ["地址填错了，麻烦别发了", "收到退款了，谢谢"],
        ["还没发货吧？不要了，退款退到支付宝 13912345678 就行", "怎么还没退？"],
    ],
    2: [
        ["快递能拦截吗？我已经不想要了", "拦截成功了吗？", "快递员打电话说要派送了，怎么办"],
        ["快递三天没动了，是不是丢了", "再不处理我就投诉了"],
    ],
    3: [
        [
            "东西收到了，袖口开线了，能退吗",
            "亲，什么时候处理呀？",
            "客服怎么不回消息？再不处理我投诉了",
        ],
        ["尺码偏小穿不上，能不能仅退款", "有问题可以打我电话 13812345678"],
        ["少发了一件，只收到一个", "照片已经拍好了，发哪里？"],
        ["和图片颜色差太多了", "今天能给个答复吗？"],
    ],
    4: [
        ["退货地址发我一下", "已经寄回了，单号发你了", "仓库收到了吗？什么时候退款"],
        ["吊牌剪了还能退吗？", "好的，已经寄出了"],
    ],
    5: [
        ["昨天买的今天就降价了，能补个差价吗", "差价什么时候到账？"],
        ["说好的保价，差价怎么还没退", "好的，谢谢"],
    ],
}
SCAN_TEXT = {
    "created": "商家已发货，等待快递揽收",
    "picked_up": "【{city}】快件已揽收",
    "in_transit": "快件到达【{city}转运中心】",
    "delivering": "【{city}】快递员正在派件",
    "delivered": "快件已签收，签收人：本人",
    "exception": "【{city}】快件异常：地址不详，联系不上收件人",
    "returned": "快件已退回发件人",
    "rejected": "收件人拒收",
}
CITIES = ["杭州", "广州", "义乌", "苏州", "成都", "武汉", "郑州", "深圳"]
# Troubled parcels arrive with scans from hours or days ago, so the anomaly watch finds
# them on its next scan: the scans each one arrives with, as (status, hours ago).
TROUBLE: dict[str, list[tuple[str, tuple[float, float]]]] = {
    "no_pickup": [("created", (25, 32))],
    "no_update": [("created", (60, 62)), ("picked_up", (49, 58))],
    "stuck": [("created", (80, 82)), ("picked_up", (75, 78)), ("in_transit", (49, 66))],
    "lost": [("created", (170, 172)), ("picked_up", (166, 168)), ("in_transit", (122, 150))],
    "exception": [("created", (40, 42)), ("picked_up", (36, 38)), ("exception", (0, 0.2))],
    "rejected": [("created", (70, 72)), ("in_transit", (40, 44)), ("rejected", (0, 0.2))],
    "returned": [("created", (90, 92)), ("in_transit", (60, 64)), ("returned", (0, 0.2))],
    "recovers": [("created", (80, 82)), ("picked_up", (75, 78)), ("in_transit", (49, 55))],
}

# A promotion opens this long after the start, and again every RUSH_EVERY_S: more refunds at
# once than a group robot may post, so they fold into one batch card.
RUSH_AFTER_S = 70.0
RUSH_EVERY_S = 1800.0
# The morning's backlog comes in one event this often: within what a group robot may post.
OPENING_GAP_S = 4.0


@dataclass(order=True)
class _Later:
    due: datetime
    seq: int
    event: Event = field(compare=False)


class ShopSimulator:
    """Generates the next events of a simulated shop; follow-ups are queued by time."""

    def __init__(
        self,
        clock: Clock,
        seed: int | None = None,
        carrier: SimulatedCarrier | None = None,
        *,
        pace: float = 1.0,
    ) -> None:
        self.clock = clock
        # Follow-ups (scans, returns, buyers chasing) come this many times slower: the live
        # demo compresses minutes into seconds, a month of history does not.
        self.pace = pace
        # With a simulated carrier attached, intercept results come from it (for whatever
        # the team intercepts); without one, the feed answers its shipped refunds itself.
        self.carrier = carrier
        self.random = random.Random(seed)
        self._later: list[_Later] = []
        self._seq = itertools.count(1)
        self._ids = itertools.count(1)
        # Shipped parcels being intercepted: tracking number → order id, until the result.
        self._orders: dict[str, str] = {}

    # -- the schedule ------------------------------------------------------------------------

    def due(self) -> list[Event]:
        """Queued follow-ups whose time has come."""
        now, ready = self.clock.now(), []
        while self._later and self._later[0].due <= now:
            ready.append(heapq.heappop(self._later).event)
        if self.carrier is not None:
            for r in self.carrier.due_results():
                ready.append(
                    self.envelope("intercept.result", r.data, shop=r.shop, platform=r.platform)
                )
                order_id = self._orders.pop(r.data["tracking_no"], "")
                self._conclude(r.data, order_id, shop=r.shop, platform=r.platform, after_s=0)
        return ready

    def next_due(self) -> datetime | None:
        """When the next queued follow-up or carrier result falls due."""
        due = [self._later[0].due] if self._later else []
        if self.carrier is not None:
            due += [p.due for p in self.carrier.planned]
        return min(due) if due else None

    def later(self, seconds: float, event: Event) -> None:
        heapq.heappush(
            self._later,
            _Later(
                self.clock.now() + timedelta(seconds=seconds * self.pace), next(self._seq), event
            ),
        )

    def opening(self) -> list[Event]:
        """A morning's backlog, so the group is not empty when someone opens the page."""
        events = [self.refund(path) for path in (1, 3, 2, 4, 3, 5, 1, 3)]
        events.append(self.payout())
        events += self.troubled_parcel("stuck") + self.troubled_parcel("exception")
        return events

    def rush(self, count: int = 12) -> list[Event]:
        """A promotion opens: `count` refunds within a minute, mostly orders not yet shipped
        and price-protection claims (more than a group robot may post: they fold)."""
        return [self.refund(self.random.choice([1, 1, 1, 5, 5, 3])) for _ in range(count)]

    def tick(self) -> list[Event]:
        """One more thing happens at the shop."""
        roll = self.random.random()
        if roll < 0.12:
            return [self.payout()]
        if roll < 0.24:
            return self.troubled_parcel()
        weights = [(1, 25), (2, 20), (3, 30), (4, 15), (5, 10)]
        path = self.random.choices([p for p, _ in weights], [w for _, w in weights])[0]
        return [self.refund(path)]

    # -- events ------------------------------------------------------------------------------

    def envelope(
        self,
        type_: str,
        data: dict[str, Any],
        *,
        shop: str,
        platform: str,
        at: datetime | None = None,
    ) -> Event:
        when = at or self.clock.now()
        return {
            "id": f"sim_{when:%Y%m%d%H%M%S}_{next(self._ids)}_{self.random.randrange(16**6):06x}",
            "type": type_,
            "occurred_at": when.isoformat(),
            "shop": shop,
            "platform": platform,
            "data": data,
        }

    def refund(self, path: int) -> Event:
        """A refund request on path 1–4 (5 = price difference), with its follow-ups queued."""
        rnd = self.random
        platform, _, hours = rnd.choices(PLATFORMS, [w for _, w, _ in PLATFORMS])[0]
        shop = rnd.choice(SHOPS)
        product, price = rnd.choice(PRODUCTS)
        quantity = rnd.choice([1, 1, 1, 2])
        order_fen = int(float(price) * 100) * quantity
        # Most requests are fresh; some have waited and sit inside the deadline's warning windows.
        age_h = (
            rnd.choice([0, 0, 0.2, 1, 3, hours - 5.5, hours - 0.8])
            if path == 3
            else rnd.choice([0, 0.1, 0.5])
        )
        occurred = self.clock.now() - timedelta(hours=age_h)
        refund_fen = order_fen
        kind = "return_refund" if path == 4 else "price_diff" if path == 5 else "refund_only"
        if path == 3 and rnd.random() < 0.45:
            refund_fen = max(100, int(order_fen * rnd.choice([0.1, 0.2, 0.3, 0.5])) // 100 * 100)
        if path == 5:
            refund_fen = min(rnd.choice([500, 1000, 1500, 2000, 4000]), order_fen // 2)
        shipping: dict[str, Any] = {"status": "unshipped"}
        carrier, tracking = self.parcel()
        if path == 2:
            shipping = {
                "status": rnd.choice(["shipped", "in_transit"]),
                "carrier": carrier,
                "tracking_no": tracking,
            }
        elif path in (3, 4, 5):
            shipping = {"status": "delivered", "carrier": carrier, "tracking_no": tracking}
        refund_id = f"RF{occurred:%y%m%d}{rnd.randrange(10**6):06d}"
        data = {
            "refund_id": refund_id,
            "order_id": self.order_id(platform),
            "kind": kind,
            "amount": _yuan(refund_fen),
            "order_amount": _yuan(order_fen),
            "reason": rnd.choice(REASONS[path]),
            "item": {"title": product, "quantity": quantity},
            "shipping": shipping,
            "buyer": {"nick": rnd.choice(NICKS)},
            "deadline_at": (occurred + timedelta(hours=hours)).isoformat(),
        }
        event = self.envelope("refund.requested", data, shop=shop, platform=platform, at=occurred)
        self._follow_up(path, event, carrier, tracking)
        return event

    def _follow_up(self, path: int, event: Event, carrier: str, tracking: str) -> None:
        rnd, data = self.random, event["data"]
        shop, platform, refund_id = event["shop"], event["platform"], data["refund_id"]

        def later(seconds: float, type_: str, payload: dict[str, Any]) -> None:
            self.later(seconds, self.envelope(type_, payload, shop=shop, platform=platform))

        if path == 2:
            later(
                rnd.uniform(20, 60),
                "shipment.tracking",
                self.scan(carrier, tracking, data["order_id"], "in_transit"),
            )
        if path == 2 and self.carrier is not None:
            self._orders[tracking] = data["order_id"]
        if path == 2 and self.carrier is None:
            result = rnd.choices(["intercepted", "failed", "returned"], [70, 20, 10])[0]
            detail = {
                "intercepted": "拦截成功，快件退回中",
                "failed": "快件已派送，拦截失败",
                "returned": "快件已退回发件人",
            }[result]
            answer = {
                "carrier": carrier,
                "tracking_no": tracking,
                "result": result,
                "detail": detail,
            }
            after = rnd.uniform(60, 120)
            later(after, "intercept.result", answer)
            self._conclude(answer, data["order_id"], shop=shop, platform=platform, after_s=after)
        if path == 4:
            back_carrier, back_no = self.parcel()
            later(
                rnd.uniform(30, 60),
                "refund.updated",
                {
                    "refund_id": refund_id,
                    "return_status": "shipped",
                    "return_tracking": {"carrier": back_carrier, "tracking_no": back_no},
                },
            )
            later(
                rnd.uniform(90, 150),
                "refund.updated",
                {"refund_id": refund_id, "return_status": "received"},
            )
        if rnd.random() < (0.7 if path in (3, 4) else 0.4):
            self._conversation(path, event)
        if path == 3 and rnd.random() < 0.08:
            later(
                rnd.uniform(60, 120),
                "refund.cancelled",
                {"refund_id": refund_id, "detail": "买家撤销了退款申请"},
            )

    def _conclude(
        self, answer: dict[str, str], order_id: str, *, shop: str, platform: str, after_s: float
    ) -> None:
        """The parcel's last scans once the carrier has answered: back at the shop's warehouse,
        or delivered to the buyer after all (so no parcel is left to look lost)."""
        rnd = self.random
        carrier, tracking = answer["carrier"], answer["tracking_no"]
        if answer["result"] == "failed":
            steps = [("delivering", 30, 90, ""), ("delivered", 120, 400, "")]
        else:
            steps = [("returned", 60, 180, ""), ("delivered", 600, 1500, "退回件已由商家仓库签收")]
        for status, low, high, text in steps:
            delay = after_s + rnd.uniform(low, high)
            at = self.clock.now() + timedelta(seconds=delay * self.pace)
            scan = self.scan(carrier, tracking, order_id, status, at=at)
            scan["description"] = text or scan["description"]
            self.later(
                delay, self.envelope("shipment.tracking", scan, shop=shop, platform=platform, at=at)
            )

    def _conversation(self, path: int, event: Event) -> None:
        """The buyer asks, then follows up now and then; each message is sent when written."""
        rnd = self.random
        messages = rnd.choice(CONVERSATIONS[path])
        count = rnd.randint(1, len(messages))
        delay = rnd.uniform(15, 45)
        for text in messages[:count]:
            at = self.clock.now() + timedelta(seconds=delay * self.pace)
            data = {"refund_id": event["data"]["refund_id"], "text": text, "at": at.isoformat()}
            message = self.envelope(
                "buyer.message", data, shop=event["shop"], platform=event["platform"], at=at
            )
            self.later(delay, message)
            delay += rnd.uniform(60, 180)

    def payout(self) -> Event:
        rnd = self.random
        platform = rnd.choice(["taobao", "pinduoduo", "douyin"])
        kind, reason, amount = rnd.choice(
            [
                ("cashback", "下单返现活动（满199返10）", rnd.choice([300, 500, 1000])),
                ("price_diff", "大促降价补差", rnd.choice([1000, 2000, 3500])),
                ("compensation", "发货延迟补偿", rnd.choice([500, 1000, 2000])),
            ]
        )
        account = f"1{rnd.choice('3578')}{rnd.randrange(10**9):09d}"
        data = {
            "payout_id": f"PO{self.clock.now():%y%m%d}{rnd.randrange(10**5):05d}",
            "kind": kind,
            "order_id": self.order_id(platform),
            "amount": _yuan(amount),
            "payee": {"name": rnd.choice(["王*", "李*", "张*", "陈*"]), "account": account},
            "reason": reason,
            "requested_by": rnd.choice(["agent1", "agent2"]),
        }
        return self.envelope("payout.requested", data, shop=rnd.choice(SHOPS), platform=platform)

    def troubled_parcel(self, scenario: str | None = None) -> list[Event]:
        """A parcel of an ordinary order that went wrong, with the scans it arrives with."""
        rnd = self.random
        scenario = scenario or rnd.choice(sorted(TROUBLE))
        platform, _, _ = rnd.choices(PLATFORMS, [w for _, w, _ in PLATFORMS])[0]
        shop, order_id = rnd.choice(SHOPS), self.order_id(platform)
        carrier, tracking = self.parcel()
        now = self.clock.now()
        events = []
        for status, (low, high) in TROUBLE[scenario]:
            at = now - timedelta(hours=rnd.uniform(low, high))
            scan = self.scan(carrier, tracking, order_id, status, at=at)
            events.append(
                self.envelope("shipment.tracking", scan, shop=shop, platform=platform, at=at)
            )
        if scenario == "recovers":
            self.later(
                rnd.uniform(60, 180),
                self.envelope(
                    "shipment.tracking",
                    self.scan(carrier, tracking, order_id, "delivering"),
                    shop=shop,
                    platform=platform,
                ),
            )
        return events

    def scan(
        self,
        carrier: str,
        tracking: str,
        order_id: str,
        status: str,
        *,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        text = SCAN_TEXT.get(status, "运输中").format(city=self.random.choice(CITIES))
        return {
            "carrier": carrier,
            "tracking_no": tracking,
            "order_id": order_id,
            "status": status,
            "at": (at or self.clock.now()).isoformat(),
            "description": text,
        }

    def parcel(self) -> tuple[str, str]:
        carrier, prefix, length = self.random.choice(CARRIERS)
        digits = length - len(prefix)
        return carrier, prefix + "".join(str(self.random.randrange(10)) for _ in range(digits))

    def order_id(self, platform: str) -> str:
        rnd = self.random
        if platform == "pinduoduo":
            return f"{self.clock.now():%y%m%d}-{rnd.randrange(10**15):015d}"
        if platform == "jd":
            return str(rnd.randrange(10**11, 10**12))
        return str(rnd.randrange(10**18, 10**19))


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


class SignedSender:
    """Posts events to a refundops ingest API exactly as a shop system would."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, secret: str, clock: Clock
    ) -> None:
        self.session = session
        self.url = base_url.rstrip("/") + "/api/v1/events"
        self.secret = secret
        self.clock = clock

    async def __call__(self, event: Event) -> None:
        body = json.dumps(event, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        headers |= signed_headers(self.secret, int(self.clock.now().timestamp()), body)
        async with self.session.post(self.url, data=body, headers=headers) as resp:
            if resp.status != 202:
                log.warning(
                    "simulated event %s refused: %s %s", event["id"], resp.status, await resp.text()
                )


async def run(
    sim: ShopSimulator,
    send: Send,
    interval_s: float,
    *,
    rush_after_s: float = RUSH_AFTER_S,
    rush_every_s: float = RUSH_EVERY_S,
) -> None:
    """Feed the opening backlog an event every OPENING_GAP_S, then follow-ups as they fall
    due, a new case every interval, and now and then a rush of refunds at once."""
    opening = sim.opening()
    backlog: list[Event] = []
    elapsed = since_tick = 0.0
    next_rush, next_opening = rush_after_s, 1.0
    while True:
        await asyncio.sleep(1.0)
        elapsed += 1.0
        since_tick += 1.0
        if opening and elapsed >= next_opening:
            backlog.append(opening.pop(0))
            next_opening += OPENING_GAP_S
        if since_tick >= interval_s:
            backlog += sim.tick()
            since_tick = 0.0
        if elapsed >= next_rush:
            backlog += sim.rush()
            next_rush += rush_every_s
        backlog += sim.due()
        while backlog:
            try:
                await send(backlog[0])
            except (aiohttp.ClientError, OSError) as exc:
                log.info("simulator waiting for the server: %s", exc)
                break
            backlog.pop(0)
