"""Chaos: two `refundops demo --no-simulator --config` instances (the sandbox group is demo-only)
on PostgreSQL + Redis, flaky platforms, SIGKILL mid-run.

Signed events (20% resent, 5% malformed) go to both instances while FakeCommerce and
FakeCarrier answer 30% of calls with a 5xx, the WeCom group robot with 45009 and the
DingTalk custom robot with 130101. Stops go to 聚水潭 (`[warehouse] connector = "jushuitan"`,
a new app: the first instance to need it gets the token) whose 订单转异常 answers 30% 5xx and
loses 15% of its answers after acting; its after-sale list is pulled as well. Payouts go
through WeChat Pay 商家转账 (`[payout] provider = "wechatpay"`), where the first create of a
bill answers 5xx (30%) or acts and loses its answer (30%); supervisors approve and finance confirms in chat
while buyers confirm, refuse or leave the transfer waiting, and WeChat Pay notifies (some
twice). One instance is killed with SIGKILL twice and restarted. Once the outbox has drained:
no card lost or doubled, no refund, stop, intercept or transfer performed twice, every payout
paid, failed or visibly waiting for its buyer, every malformed input a 4xx, no 5xx. The
figures are printed. `REFUNDOPS_CHAOS_EVENTS=10000` runs the full form; the default is CI's
short form.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from integrations.carrier.fake import PATH as CARRIER_PATH
from integrations.carrier.fake import FakeCarrier
from integrations.commerce.fake import FakeCommerce
from integrations.dingtalk.fake import FakeDingtalk
from integrations.jushuitan.client import QUESTIONS
from integrations.jushuitan.fake import FakeJushuitan
from integrations.signing import signed_headers
from integrations.wechatpay.client import out_bill_no
from integrations.wechatpay.fake import BASE as TRANSFER_BILLS
from integrations.wechatpay.fake import FakeWechatPay
from integrations.wecom.fake import FakeWeComAPI
from tests.support import processes, wechatpay
from tests.support.app import make_refund
from tests.support.db import in_thread, truncate
from tests.support.fakes import serve
from tests.support.payout import make_payout
from tests.support.processes import assert_no_tracebacks, free_port

pytestmark = [pytest.mark.chaos, pytest.mark.postgres, pytest.mark.redis]

EVENTS = int(os.environ.get("REFUNDOPS_CHAOS_EVENTS", "160"))
PAYOUTS = max(10, EVENTS // 16)
ERP_AFTER_SALES = max(6, EVENTS // 20)
FAIL_RATE = 0.3
LOSE_RATE = 0.15
DUPLICATE_RATE = 0.2
MALFORMED_RATE = 0.05
SEED = int(os.environ.get("REFUNDOPS_CHAOS_SEED", "20261123"))
SECRET = "chaos-ingest-secret-0123456789"
ROBOT_SECRET = "SECchaos0123456789abcdef0123456789abcdef0123456789abcdef01234567"
SETTLE_S = max(90.0, EVENTS * 0.06)
HANDLE = re.compile(r"(?<![A-Za-z0-9])([RXP]\d+)(?!\d)")
# A case's own card opens with its title ("退款 R12 · ¥128.00"); batch cards and follow-up
# lines open otherwise.
WECOM_CARD = re.compile(r"^\*\*\S+ ([RX]\d+) · ")
DING_CARD = re.compile(r"^### \S+ ([RX]\d+) · ")
# Shop → group; the sandbox group takes most, each limited robot group a share.
SHOPS = {"flagship": 0.7, "wecom-shop": 0.15, "ding-shop": 0.15}
# The ERP's shop (its after-sales come by the pull) and the WeChat Pay buyer.
ERP_SHOP = 10077
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
WAITING_LINE = "等买家在微信里确认收款"
# What each buyer does with a transfer: confirm, refuse, or leave it waiting.
BUYERS = {"confirm": 0.6, "refuse": 0.15, "wait": 0.25}

CONFIG = """
[database]
url = "{db}"
[redis]
url = "{redis}"
[bot]
admin_group = "ops"
[commerce]
mode = "webhook"
url = "{commerce}"
[carrier]
mode = "webhook"
url = "{carrier}"
[warehouse]
connector = "jushuitan"
api_base = "{jst}"
app_key = "{jst_app_key}"
batch_window_s = 0.2
timeout_s = 2.0
pull_after_sales = true
pull_interval_s = 2.0
shops = {{ "{erp_shop}" = "erp-shop" }}
[payout]
provider = "wechatpay"
[payout.wechatpay]
mchid = "{mchid}"
appid = "{appid}"
cert_serial_no = "{serial}"
public_key = '''{wechatpay_public_key}'''
public_key_id = "{wechatpay_public_key_id}"
api_base = "{wechatpay}"
notify_url = "https://refundops.example.com/payout/wechatpay/notify"
timeout_s = 2.0
[wecom]
throttle_wait_s = 1.0
[dingtalk]
robot_mute_s = 1.0
[dispatch]
poll_s = 0.2
lease_s = 6.0
backoff_base_s = 0.2
backoff_max_s = 2.0
max_attempts = 12
[timers]
poll_s = 0.5
[digest]
enabled = false
[[groups]]
id = "finance"
channel = "sandbox"
kinds = ["payout"]
[[groups]]
id = "aftersales"
channel = "sandbox"
shops = ["flagship", "erp-shop"]
[[groups]]
id = "wecom"
channel = "wecom_webhook"
webhook_url = "{wecom_hook}"
shops = ["wecom-shop"]
[[groups]]
id = "ding"
channel = "dingtalk_webhook"
webhook_url = "{ding_hook}"
shops = ["ding-shop"]
[[groups]]
id = "ops"
channel = "sandbox"
shops = ["-"]
[[staff]]
id = "agent1"
roles = ["agent"]
refund_limit = 50
wecom_userid = "agent1"
dingtalk_staff_id = "staff-agent1"
[[staff]]
id = "sup1"
roles = ["supervisor"]
refund_limit = 2000
wecom_userid = "sup1"
dingtalk_staff_id = "staff-sup1"
[[staff]]
id = "fin1"
roles = ["finance"]
[[staff]]
id = "admin1"
roles = ["admin"]
"""
SECRETS = """
[[groups]]
id = "ding"
webhook_secret = "{robot}"
[warehouse]
app_secret = "{jst}"
[payout.wechatpay]
private_key = '''{private_key}'''
apiv3_key = "{apiv3_key}"
"""


# -- faults ----------------------------------------------------------------------------------


@dataclass
class Flaky:
    """Answers `rate` of the calls to `path` with the platform's failure, before the fake sees them."""

    path: str
    rate: float
    rng: random.Random
    answer: Callable[[], web.Response]
    calls: int = 0
    injected: int = 0

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path != self.path:
            return await handler(request)
        self.calls += 1
        if self.rng.random() < self.rate:
            await request.read()
            self.injected += 1
            return self.answer()
        return await handler(request)


@dataclass
class Lossy:
    """Lets `rate` of the calls to `path` reach the fake and act, then drops the answer (the
    connection closes before it is read): the caller cannot know whether it was done."""

    path: str
    rate: float
    rng: random.Random
    calls: int = 0
    lost: int = 0

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path != self.path:
            return await handler(request)
        self.calls += 1
        response = await handler(request)
        if self.rng.random() < self.rate:
            self.lost += 1
            assert request.transport is not None
            request.transport.close()
        return response


@dataclass
class FirstCreate:
    """The first create of each bill fails as `fates` weigh it — `5xx` before WeChat Pay acts,
    `lose`: it acts and the answer is lost — or passes; later calls pass. (A failed transfer
    is asked about again 30 s later: a rate on every call would make the run minutes long.)"""

    path: str
    rng: random.Random
    fates: dict[str, float]
    dealt: Counter[str] = field(default_factory=Counter)
    seen: set[str] = field(default_factory=set)

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path != self.path or request.method != "POST":
            return await handler(request)
        bill = str(json.loads(await request.read()).get("out_bill_no", ""))
        if bill in self.seen:
            return await handler(request)
        self.seen.add(bill)
        fate = self.rng.choices(list(self.fates), weights=list(self.fates.values()))[0]
        self.dealt[fate] += 1
        if fate == "5xx":
            return http_error()
        response = await handler(request)
        if fate == "lose":
            assert request.transport is not None
            request.transport.close()
        return response

    def said(self) -> str:
        return f"{self.path} first create: " + ", ".join(
            f"{k} {v}" for k, v in sorted(self.dealt.items())
        )


def http_error() -> web.Response:
    return web.json_response({"error": "injected failure"}, status=random.choice([500, 502, 503]))


def wecom_limit() -> web.Response:
    return web.json_response({"errcode": 45009, "errmsg": "api freq out of limit"})


def ding_limit() -> web.Response:
    return web.json_response({"errcode": 130101, "errmsg": "send too fast"})


@dataclass
class Platforms:
    commerce: FakeCommerce
    carrier: FakeCarrier
    wecom: FakeWeComAPI
    ding: FakeDingtalk
    jst: FakeJushuitan
    wechatpay: FakeWechatPay
    urls: dict[str, str]
    faults: list[Flaky | Lossy | FirstCreate]


@pytest.fixture
async def platforms() -> AsyncIterator[Platforms]:
    rng = random.Random(SEED)
    commerce, carrier = FakeCommerce(secret="chaos-commerce"), FakeCarrier(secret="chaos-carrier")
    wecom, ding = FakeWeComAPI(webhook_keys={"chaos-robot"}), FakeDingtalk()
    # A new 聚水潭 app: no token issued yet.
    jst = FakeJushuitan(
        app_key="chaos-jst-app", app_secret="chaos-jst-secret", access_token="", refresh_token=""
    )
    pay = FakeWechatPay(
        mchid=wechatpay.MCHID,
        appid=wechatpay.APPID,
        merchant_public_key=wechatpay.merchant_key().public_key(),
        merchant_serial_no=wechatpay.SERIAL,
        apiv3_key=wechatpay.apiv3_key(),
        platform_key=wechatpay.platform_key(),
    )
    faults: list[list[Flaky | Lossy | FirstCreate]] = [
        [Flaky("/refundops", FAIL_RATE, rng, http_error)],
        [Flaky(CARRIER_PATH, FAIL_RATE, rng, http_error)],
        [Flaky("/cgi-bin/webhook/send", FAIL_RATE, rng, wecom_limit)],
        [Flaky("/robot/send", FAIL_RATE, rng, ding_limit)],
        [Flaky(QUESTIONS, FAIL_RATE, rng, http_error), Lossy(QUESTIONS, LOSE_RATE, rng)],
        [FirstCreate(TRANSFER_BILLS, rng, {"5xx": 0.3, "lose": 0.3, "ok": 0.4})],
    ]
    apps = [commerce.app(), carrier.app(), wecom.app(), ding.app(), jst.app(), pay.app()]
    for app, app_faults in zip(apps, faults, strict=True):
        app.middlewares.extend(fault.middleware for fault in app_faults)
    async with contextlib.AsyncExitStack() as servers:
        bases = [await servers.enter_async_context(serve(app)) for app in apps]
        wecom.base_url, ding.base_url = bases[2], bases[3]
        urls = {
            "commerce": bases[0] + "/refundops",
            "carrier": bases[1] + CARRIER_PATH,
            "wecom_hook": wecom.webhook_url("chaos-robot"),
            "ding_hook": ding.add_robot(ROBOT_SECRET),
            "jst": bases[4],
            "wechatpay": bases[5],
        }
        yield Platforms(
            commerce, carrier, wecom, ding, jst, pay, urls, [f for fs in faults for f in fs]
        )


# -- the instances ---------------------------------------------------------------------------


@dataclass
class Instance:
    """One `refundops serve` process slot: started, killed and restarted on the same port."""

    name: str
    port: int
    config: Path
    secrets: Path
    env: dict[str, str]
    logs: Path
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0
    kills: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.starts += 1
        log = self.logs / f"instance-{self.name}-{self.starts}.log"
        argv = (
            "demo",
            "--no-simulator",
            "--config",
            str(self.config),
            "--secrets",
            str(self.secrets),
        )
        self.proc = await processes.start(self.port, log, self.env, *argv)
        await processes.ready(self.url, self.proc, log, within=30.0, step=0.05)

    async def kill(self) -> None:
        assert self.proc is not None
        await processes.kill(self.proc)
        self.kills += 1

    async def stop(self) -> None:
        if self.proc is not None:
            await processes.stop(self.proc)


@pytest.fixture
async def instances(
    tmp_path: Path, pg_url: str, redis_url: str, platforms: Platforms
) -> AsyncIterator[list[Instance]]:
    in_thread(lambda: truncate(pg_url))
    config = tmp_path / "refundops.toml"
    pay = platforms.wechatpay
    config.write_text(
        CONFIG.format(
            db=pg_url,
            redis=redis_url,
            jst_app_key=platforms.jst.app_key,
            erp_shop=ERP_SHOP,
            mchid=wechatpay.MCHID,
            appid=wechatpay.APPID,
            serial=wechatpay.SERIAL,
            wechatpay_public_key=pay.public_key_pem,
            wechatpay_public_key_id=pay.public_key_id,
            **platforms.urls,
        ),
        "utf-8",
    )
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        SECRETS.format(
            robot=ROBOT_SECRET,
            jst=platforms.jst.app_secret,
            private_key=wechatpay.pem(wechatpay.merchant_key()),
            apiv3_key=wechatpay.apiv3_key(),
        ),
        "utf-8",
    )
    env = {
        **os.environ,
        "REFUNDOPS_INGEST__SECRET": SECRET,
        "REFUNDOPS_COMMERCE__SECRET": platforms.commerce.secret,
        "REFUNDOPS_CARRIER__SECRET": platforms.carrier.secret,
    }
    slots = [Instance(n, free_port(), config, secrets, env, tmp_path) for n in ("a", "b")]
    try:
        await asyncio.gather(*(i.start() for i in slots))
        # The first after-sale pull gets 聚水潭's first token; the run starts once it is kept.
        await until(lambda: stored_tokens(pg_url), within=20.0)
        yield slots
    finally:
        for slot in slots:
            await slot.stop()
    assert_no_tracebacks(tmp_path)


# -- the traffic -----------------------------------------------------------------------------


@dataclass
class Send:
    body: bytes
    kind: str  # "event", "duplicate", "malformed", "unsigned"
    event_id: str = ""
    path: str = "/api/v1/events"


@dataclass
class Tally:
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    results: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    reconnects: int = 0
    sent: int = 0
    wrong: list[str] = field(default_factory=list)


def plan(rng: random.Random) -> tuple[list[Send], dict[str, dict[str, Any]]]:
    """The run's requests in order, and the valid events by id."""
    deadline = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    sends: list[Send] = []
    valid: dict[str, dict[str, Any]] = {}
    # Payouts come in the first half, so that most are confirmed while instances are killed.
    payouts = {n * EVENTS // (2 * PAYOUTS): n for n in range(PAYOUTS)}
    for n in range(EVENTS):
        if n in payouts:
            event = payout_event(rng, payouts[n])
            valid[event["id"]] = event
            sends.append(Send(encode(event), "event", event["id"]))
        roll = rng.random()
        if roll < MALFORMED_RATE:
            sends.append(malformed(rng, n))
        elif roll < MALFORMED_RATE + DUPLICATE_RATE and valid:
            again = valid[rng.choice(list(valid))]
            sends.append(Send(encode(again), "duplicate", again["id"]))
        else:
            event = refund_event(rng, n, deadline)
            valid[event["id"]] = event
            sends.append(Send(encode(event), "event", event["id"]))
    return sends, valid


def payout_event(rng: random.Random, k: int) -> dict[str, Any]:
    kind, reason = rng.choice(
        [("cashback", "活动返现"), ("price_diff", "补差价"), ("compensation", "破损补偿")]
    )
    return make_payout(
        id=f"evt_chaos_pay_{k:05d}",
        shop="flagship",
        data_payout_id=f"POC{k:05d}",
        data_kind=kind,
        data_order_id=f"TP{k:06d}",
        data_amount=f"{rng.randint(5, 300)}.{rng.randint(0, 99):02d}",
        data_payee={"name": "王小明", "account": OPENID},
        data_reason=reason,
        data_requested_by="agent1",
    )


def refund_event(rng: random.Random, n: int, deadline: str) -> dict[str, Any]:
    shop = rng.choices(list(SHOPS), weights=list(SHOPS.values()))[0]
    path = rng.choices([1, 2, 3, 4], weights=[35, 25, 30, 10])[0]
    amount = f"{rng.randint(20, 400)}.{rng.randint(0, 99):02d}"
    shipping: dict[str, Any] = {
        1: {"status": "unshipped"},
        2: {"status": "shipped", "carrier": "SF", "tracking_no": f"SFC{SEED}{n:06d}"},
        3: {"status": "delivered", "carrier": "YTO", "tracking_no": f"YT{n:08d}"},
        4: {"status": "delivered", "carrier": "ZTO", "tracking_no": f"ZT{n:08d}"},
    }[path]
    return make_refund(
        id=f"evt_chaos_{n:06d}",
        shop=shop,
        data_refund_id=f"RFC{n:06d}",
        data_order_id=f"TC{n:06d}",
        data_kind="return_refund" if path == 4 else "refund_only",
        data_amount=amount,
        data_order_amount=amount,
        data_shipping=shipping,
        data_deadline_at=deadline,
    )


def malformed(rng: random.Random, n: int) -> Send:
    good = make_refund(id=f"evt_bad_{n:06d}")
    variants: list[tuple[str, bytes]] = [
        ("malformed", b'{"id": "evt_' + str(n).encode() + b'", "type": '),
        ("malformed", b"\xff\xfe\x00garbage"),
        ("malformed", encode([good])),
        ("malformed", encode({**good, "type": "refund.exploded"})),
        ("malformed", encode({**good, "data": {**good["data"], "amount": "12,80"}})),
        ("malformed", encode({**good, "data": {**good["data"], "shipping": {"status": 7}}})),
        ("malformed", encode({k: v for k, v in good.items() if k != "occurred_at"})),
        ("malformed", encode({**good, "data": "RF1"})),
        ("unsigned", encode(good)),
    ]
    kind, body = rng.choice(variants)
    return Send(body, kind, good["id"])


def encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


async def deliver(
    session: aiohttp.ClientSession,
    slots: list[Instance],
    send: Send,
    tally: Tally,
    rng: random.Random,
) -> None:
    """Post one request like a shop system would: another instance when one is unreachable."""
    headers = {"Content-Type": "application/json"}
    if send.kind != "unsigned":
        headers |= signed_headers(SECRET, int(time.time()), send.body)
    for attempt in range(100):
        slot = rng.choice(slots)
        try:
            async with session.post(f"{slot.url}{send.path}", data=send.body, headers=headers) as r:
                status = r.status
                answer = await r.json(content_type=None)
        except (TimeoutError, aiohttp.ClientConnectionError):
            tally.reconnects += 1
            await asyncio.sleep(0.05 * min(attempt + 1, 10))
            continue
        tally.statuses[(send.kind, status)] += 1
        if send.kind in ("event", "duplicate"):
            if status != 202:
                tally.wrong.append(f"{send.event_id}: {status} {answer}")
            else:
                tally.results[send.event_id][str(answer["status"])] += 1
        elif not 400 <= status < 500:
            tally.wrong.append(f"{send.kind} {send.body[:60]!r}: {status} {answer}")
        return
    raise AssertionError(f"no instance answered {send.event_id}")


async def traffic(slots: list[Instance], sends: list[Send], rng: random.Random) -> Tally:
    """Send everything at a steady pace from 16 clients; kill slot a at 30% and 65%."""
    tally = Tally()
    queue: asyncio.Queue[Send] = asyncio.Queue()
    for send in sends:
        queue.put_nowait(send)
    rate = max(25.0, len(sends) / 30)
    started = time.monotonic()
    progress = asyncio.Event()

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            send = queue.get_nowait()
            due = started + tally.sent / rate
            tally.sent += 1
            progress.set()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await deliver(session, slots, send, tally, rng)

    async def chaos() -> None:
        victim = slots[0]
        for share in (0.3, 0.65):
            while tally.sent < share * len(sends):
                progress.clear()
                await progress.wait()
            await victim.kill()
            await asyncio.sleep(0.3)
            await victim.start()

    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(chaos(), *(client(session) for _ in range(16)))
    return tally


async def post_anywhere(
    slots: list[Instance],
    rng: random.Random,
    tally: Tally,
    send: Callable[[Instance], Awaitable[int]],
    expect: int,
    what: str,
) -> None:
    """One request to whichever instance answers (a killed one does not)."""
    for attempt in range(100):
        slot = rng.choice(slots)
        try:
            status = await send(slot)
        except (TimeoutError, aiohttp.ClientConnectionError):
            tally.reconnects += 1
            await asyncio.sleep(0.05 * min(attempt + 1, 10))
            continue
        if status != expect:
            tally.wrong.append(f"{what}: {status}")
        return
    raise AssertionError(f"no instance answered {what}")


async def finance(
    url: str,
    slots: list[Instance],
    payout_ids: set[str],
    rng: random.Random,
    tally: Tally,
    sending: Sending,
) -> int:
    """A supervisor approves and finance confirms every payout in chat, as each comes in;
    the number of commands said."""
    said = 0
    states: dict[str, str] = {}
    before: dict[str, str] = {}
    engine = create_async_engine(url)
    timeout = aiohttp.ClientTimeout(total=20)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not sending.overdue():
                async with engine.connect() as conn:
                    found = await conn.execute(
                        text("SELECT case_id, state FROM cases WHERE kind = 'payout'")
                    )
                    states = {str(case_id): str(state) for case_id, state in found.all()}
                if all(states.get(p) in ("paying", "paid", "failed") for p in payout_ids):
                    return said
                if states != before:
                    sending.progress()
                    before = states
                lines = [
                    ("sup1", f"通过 {p}") if states[p] == "requested" else ("fin1", f"打款确认 {p}")
                    for p in sorted(payout_ids)
                    if states.get(p) in ("requested", "approved")
                ]

                async def say(user: str, line: str) -> None:
                    async def post(slot: Instance) -> int:
                        async with session.post(
                            f"{slot.url}/sandbox/api/groups/finance/say",
                            json={"user": user, "text": line},
                        ) as resp:
                            await resp.read()
                            return resp.status

                    await post_anywhere(slots, rng, tally, post, 200, line)

                # People in a finance group act on different payouts at once.
                await asyncio.gather(*(say(user, line) for user, line in lines))
                said += len(lines)
                await asyncio.sleep(0.5)
    finally:
        await engine.dispose()
    raise AssertionError(f"payouts not all confirmed {SETTLE_S:.0f} s after sending: {states}")


@dataclass
class Sending:
    """When the signed traffic ended: the chat and buyer loops give up once nothing has moved
    for SETTLE_S after it."""

    ended: float | None = None
    moved: float = field(default_factory=time.monotonic)

    def progress(self) -> None:
        self.moved = time.monotonic()

    def overdue(self) -> bool:
        if self.ended is None:
            return False
        return time.monotonic() - max(self.ended, self.moved) > SETTLE_S


async def buyers(
    slots: list[Instance],
    pay: FakeWechatPay,
    payouts: int,
    rng: random.Random,
    tally: Tally,
    sending: Sending,
) -> dict[str, str]:
    """Each buyer confirms, refuses or leaves waiting the transfer they are offered; WeChat
    Pay notifies an instance of each ending (some twice). What each buyer did, by bill."""
    decided: dict[str, str] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        while len(decided) < payouts:
            if sending.overdue():
                raise AssertionError(f"only {len(pay.bills)} of {payouts} transfers were made")
            for no, bill in list(pay.bills.items()):
                if no in decided or bill.state != "WAIT_USER_CONFIRM":
                    continue
                choice = rng.choices(list(BUYERS), weights=list(BUYERS.values()))[0]
                decided[no] = choice
                sending.progress()
                if choice == "wait":
                    continue
                (pay.confirm if choice == "confirm" else pay.refuse)(no)

                async def notify(slot: Instance, no: str = no) -> int:
                    return await pay.notify(session, f"{slot.url}/payout/wechatpay/notify", no)

                for _ in range(2 if rng.random() < DUPLICATE_RATE else 1):
                    await post_anywhere(slots, rng, tally, notify, 204, f"notify {no}")
            await asyncio.sleep(0.2)
    return decided


# -- what the platforms and the database show ------------------------------------------------


async def until(check: Callable[[], Awaitable[bool]], within: float) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not so after {within:.0f} s")
        await asyncio.sleep(0.2)


async def stored_tokens(url: str) -> bool:
    rows = await query(url, "SELECT name FROM connector_state WHERE name = 'tokens:warehouse'")
    return bool(rows)


async def query(url: str, sql: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql))).all())
    finally:
        await engine.dispose()


async def settle(url: str) -> tuple[float, Counter[str]]:
    """Wait until every event is applied and the outbox has nothing due (a transfer waiting
    for its buyer is asked about again minutes later); the wait and the states."""
    started = time.monotonic()
    while True:
        events = await query(url, "SELECT state, count(*) FROM events GROUP BY state")
        outbox = await query(url, "SELECT state, count(*) FROM outbox GROUP BY state")
        due = await query(
            url,
            "SELECT count(*) FROM outbox WHERE state = 'pending'"
            " AND next_attempt_at < now() + interval '30 seconds'",
        )
        states = Counter(
            {f"event {s}": n for s, n in events} | {f"outbox {s}": n for s, n in outbox}
        )
        if not states["event pending"] and not due[0][0]:
            return time.monotonic() - started, states
        if time.monotonic() - started > SETTLE_S:
            raise AssertionError(f"not settled after {SETTLE_S:.0f} s: {dict(states)}")
        await asyncio.sleep(0.5)


@dataclass
class Shown:
    """Per group: handles with a card of their own (how many), and handles in batch cards."""

    own: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    batched: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    batch_cards: Counter[str] = field(default_factory=Counter)


async def shown(url: str, platforms: Platforms) -> Shown:
    seen = Shown()
    # The sandbox platform keeps its messages in the database; read them all from there.
    rows = await query(url, "SELECT group_id, card FROM sandbox_messages WHERE kind = 'card'")
    for group, raw in rows:
        card = json.loads(raw) if isinstance(raw, str) else raw
        if card.get("handle"):
            seen.own[group][card["handle"]] += 1
        elif str(card["title"]).startswith("⚡"):
            seen.batch_cards[group] += 1
            seen.batched[group] |= set(HANDLE.findall(" ".join(card["lines"])))
    for message in platforms.wecom.webhook_messages["chaos-robot"]:
        collect(seen, "wecom", str(message["content"]), WECOM_CARD)
    for message in platforms.ding.robot_messages:
        if message.get("msgtype") == "markdown":
            collect(seen, "ding", str(message["markdown"]["text"]), DING_CARD)
    return seen


def collect(seen: Shown, group: str, content: str, own: re.Pattern[str]) -> None:
    if match := own.match(content):
        seen.own[group][match.group(1)] += 1
    elif "⚡" in content.split("\n", 1)[0]:
        seen.batch_cards[group] += 1
        seen.batched[group] |= set(HANDLE.findall(content))


# -- the run ---------------------------------------------------------------------------------


def erp_after_sale(jst: FakeJushuitan, k: int) -> str:
    """An unshipped 仅退款 the ERP downloaded from a shop refundops has no other source for."""
    refund_id = f"ERP{k:05d}"
    jst.add_order(f"SOE{k:05d}", shop_id=ERP_SHOP)
    jst.add_refund(
        outer_as_id=refund_id,
        so_id=f"SOE{k:05d}",
        shop_id=ERP_SHOP,
        refund=f"{20 + k}.50",
        modified=datetime.now(UTC) - timedelta(seconds=5),
    )
    return refund_id


def transfer_requests(pay: FakeWechatPay) -> Counter[str]:
    """Create requests that reached WeChat Pay, by out_bill_no (refused ones included)."""
    return Counter(
        json.loads(body)["out_bill_no"]
        for method, path, body in pay.requests
        if method == "POST" and path == TRANSFER_BILLS
    )


async def test_chaos_nothing_lost_nothing_twice(
    instances: list[Instance], platforms: Platforms, pg_url: str
) -> None:
    rng = random.Random(SEED)
    sends, valid = plan(rng)
    jst, pay = platforms.jst, platforms.wechatpay
    refund_events = {i: e for i, e in valid.items() if e["type"] == "refund.requested"}
    payout_ids = {e["data"]["payout_id"] for e in valid.values() if e["type"] == "payout.requested"}
    unshipped = {
        e["data"]["refund_id"]: e["data"]["order_id"]
        for e in refund_events.values()
        if e["data"]["shipping"]["status"] == "unshipped"
    }
    for order_id in unshipped.values():
        jst.add_order(order_id)
    half = ERP_AFTER_SALES // 2
    from_erp = [erp_after_sale(jst, k) for k in range(half)]
    side = Tally()

    async def killed() -> bool:
        return any(i.kills for i in instances)

    async def later_after_sales() -> None:
        await until(killed, within=SETTLE_S)
        from_erp.extend(erp_after_sale(jst, k) for k in range(half, ERP_AFTER_SALES))

    sending = Sending()

    async def send_all() -> Tally:
        try:
            return await traffic(instances, sends, rng)
        finally:
            sending.ended = time.monotonic()

    began = time.monotonic()
    tally, said, bought, _ = await asyncio.gather(
        send_all(),
        finance(pg_url, instances, payout_ids, rng, side, sending),
        buyers(instances, pay, len(payout_ids), rng, side, sending),
        later_after_sales(),
    )
    sending_s = (sending.ended or began) - began
    deciding_s = time.monotonic() - began
    await until(lambda: pulled(pg_url, from_erp), within=SETTLE_S)
    settle_s, states = await settle(pg_url)
    seen = await shown(pg_url, platforms)

    cases = await query(pg_url, "SELECT handle, kind, group_id, case_id, state FROM cases")
    stored = {row[0] for row in await query(pg_url, "SELECT id FROM events")}
    by_group: dict[str, set[str]] = defaultdict(set)
    for handle, _kind, group, _case_id, _state in cases:
        by_group[group].add(handle)
    lost = {
        group: sorted(handles - set(seen.own[group]) - seen.batched[group])
        for group, handles in by_group.items()
    }
    doubled = {
        group: sorted(h for h, n in counts.items() if n > 1) for group, counts in seen.own.items()
    }
    refunds = Counter(row[3] for row in cases if row[1] == "refund")
    payouts = {row[3]: row[4] for row in cases if row[1] == "payout"}
    approvals = Counter(
        e["data"]["refund_id"] for e in platforms.commerce.performed("approve_refund")
    )
    orders = {o.o_id: o.so_id for o in jst.orders.values()}
    stops = Counter(orders[o_id] for o_id, _ in jst.question_log)
    to_stop = set(unshipped.values()) | {f"SOE{k:05d}" for k in range(ERP_AFTER_SALES)}
    intercepts = Counter(platforms.carrier.intercepted())
    shipped = {
        e["data"]["shipping"]["tracking_no"]
        for e in refund_events.values()
        if e["data"]["shipping"]["status"] == "shipped"
    }
    creates = transfer_requests(pay)
    bills = {p: pay.bills.get(out_bill_no(p)) for p in payout_ids}
    waiting_cards = await cards_saying(pg_url, WAITING_LINE)
    settled = {p: (payouts.get(p), bill.state if bill else None) for p, bill in bills.items()}
    mismatched = {
        p: pair
        for p, pair in settled.items()
        if pair not in (("paid", "SUCCESS"), ("failed", "FAIL"), ("paying", "WAIT_USER_CONFIRM"))
    }
    waiting_unshown = sorted(
        p for p, (state, _) in settled.items() if state == "paying" and p not in waiting_cards
    )
    accepted_twice = [i for i, r in tally.results.items() if r["accepted"] > 1]
    unanswered = [i for i in valid if not tally.results[i]]
    five_xx = sum(n for (_, status), n in tally.statuses.items() if status >= 500)
    malformed = sum(
        n for (kind, _), n in tally.statuses.items() if kind in ("malformed", "unsigned")
    )
    malformed_4xx = sum(
        n
        for (kind, s), n in tally.statuses.items()
        if kind in ("malformed", "unsigned") and 400 <= s < 500
    )
    wecom_limit_hit = [c for c in platforms.wecom.calls if c.errcode == 45009]
    ding_limit_hit = [e for e in platforms.ding.robot_errors if e == 130101]

    figures = [
        ("requests sent", len(sends)),
        ("  valid events (distinct)", len(valid)),
        ("  duplicates resent", sum(s.kind == "duplicate" for s in sends)),
        ("  malformed / unsigned", malformed),
        ("  answered 4xx of those", malformed_4xx),
        ("  answered 5xx (any)", five_xx),
        ("  reconnects after a kill", tally.reconnects + side.reconnects),
        ("chat commands (approve, confirm)", said),
        (
            "instances killed (SIGKILL) / started",
            f"{sum(i.kills for i in instances)} / {sum(i.starts for i in instances)}",
        ),
        (
            "injected platform failures",
            ", ".join(
                f"{f.path} {f.injected}/{f.calls}"
                if isinstance(f, Flaky)
                else f"{f.path} answer lost {f.lost}/{f.calls}"
                if isinstance(f, Lossy)
                else f.said()
                for f in platforms.faults
            ),
        ),
        (
            "sending, chat and buyers done, settling (s)",
            f"{sending_s:.1f}, {deciding_s:.1f}, {settle_s:.1f}",
        ),
        ("events stored / cases", f"{len(stored)} / {len(cases)}"),
        ("outbox", ", ".join(f"{k} {v}" for k, v in sorted(states.items()))),
        ("cards of their own by group", {g: len(c) for g, c in seen.own.items()}),
        ("batch cards by group", dict(seen.batch_cards)),
        ("lost cards", sum(len(v) for v in lost.values())),
        ("duplicate cards", sum(len(v) for v in doubled.values())),
        (
            "refunds approved / more than once",
            f"{len(approvals)} / {sum(n > 1 for n in approvals.values())}",
        ),
        (
            "聚水潭 stops / more than once / tokens granted",
            f"{len(stops)} / {sum(n > 1 for n in stops.values())} / {len(jst.grants)}",
        ),
        ("聚水潭 after-sales pulled into cases", sum(r in refunds for r in from_erp)),
        (
            "intercepts / more than once",
            f"{len(intercepts)} / {sum(n > 1 for n in intercepts.values())}",
        ),
        (
            "WeChat Pay bills / creates reaching it / more than once",
            f"{len(pay.bills)} / {sum(creates.values())} / {sum(n > 1 for n in creates.values())}",
        ),
        ("  buyers", dict(Counter(bought.values()))),
        ("  notifications sent", len(pay.notifications)),
        ("payouts by state", dict(Counter(payouts.values()))),
        (
            "platform limits provoked (45009, 130101)",
            f"{len(wecom_limit_hit)}, {len(ding_limit_hit)}",
        ),
    ]
    width = max(len(label) for label, _ in figures)
    print("\nchaos figures")
    for label, value in figures:
        print(f"  {label:<{width}}  {value}")

    assert tally.wrong == []
    assert side.wrong == []
    assert five_xx == 0
    assert malformed_4xx == malformed
    assert accepted_twice == []
    assert unanswered == []
    assert stored >= set(valid)
    expected_refunds = [e["data"]["refund_id"] for e in refund_events.values()] + from_erp
    assert sorted(refunds) == sorted(expected_refunds)
    assert set(refunds.values()) == {1}
    assert states["event failed"] == 0
    assert states["outbox dead"] == 0
    assert lost == {g: [] for g in by_group}
    assert all(v == [] for v in doubled.values()), doubled
    assert set(approvals) == set(unshipped) | set(from_erp)
    assert set(approvals.values()) == {1}
    assert platforms.commerce.performed("stop_shipment") == []
    assert set(stops) == to_stop
    assert set(stops.values()) == {1}
    assert jst.grants == ["getInitToken"]
    assert set(intercepts) == shipped
    assert set(intercepts.values()) == {1}
    assert sorted(payouts) == sorted(payout_ids)
    assert all(bill is not None for bill in bills.values())
    assert set(creates) == {out_bill_no(p) for p in payout_ids}
    assert set(creates.values()) == {1}
    amounts = {
        e["data"]["payout_id"]: e["data"]["amount"]
        for e in valid.values()
        if e["type"] == "payout.requested"
    }
    assert {
        p: f"{bill.params['transfer_amount'] / 100:.2f}" for p, bill in bills.items() if bill
    } == amounts
    assert mismatched == {}
    assert waiting_unshown == []
    assert wecom_limit_hit == []
    assert ding_limit_hit == []
    assert sum(i.kills for i in instances) == 2


async def pulled(url: str, refund_ids: list[str]) -> bool:
    rows = await query(url, "SELECT case_id FROM cases WHERE kind = 'refund'")
    return set(refund_ids) <= {row[0] for row in rows}


async def cards_saying(url: str, line: str) -> set[str]:
    """The cases whose card (in the sandbox group) has `line` among its lines."""
    rows = await query(
        url,
        "SELECT c.case_id, m.card FROM sandbox_messages m JOIN cases c ON c.id = m.case_pk"
        " WHERE m.kind = 'card'",
    )
    found = set()
    for case_id, raw in rows:
        card = json.loads(raw) if isinstance(raw, str) else raw
        if any(line in str(text) for text in card.get("lines", [])):
            found.add(case_id)
    return found
