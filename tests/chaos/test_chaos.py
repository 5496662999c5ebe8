"""Chaos: two `refundops demo --no-simulator --config` instances (the sandbox group is demo-only)
on PostgreSQL + Redis, flaky platforms, SIGKILL mid-run.

Signed events (20% resent, 5% malformed) go to both instances while FakeCommerce and
FakeCarrier answer 30% of calls with a 5xx, the WeCom group robot with 45009 and the
DingTalk custom robot with 130101; one instance is killed with SIGKILL twice and
restarted. Once the outbox has drained: no card lost or doubled, no refund, stop or
intercept performed twice, every malformed input a 4xx, no 5xx. The figures are printed.
`REFUNDOPS_CHAOS_EVENTS=10000` runs the full form; the default is CI's short form.
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
from integrations.signing import signed_headers
from integrations.wecom.fake import FakeWeComAPI
from tests.support import processes
from tests.support.app import make_refund
from tests.support.db import in_thread, truncate
from tests.support.fakes import serve
from tests.support.processes import assert_no_tracebacks, free_port

pytestmark = [pytest.mark.chaos, pytest.mark.postgres, pytest.mark.redis]

EVENTS = int(os.environ.get("REFUNDOPS_CHAOS_EVENTS", "160"))
FAIL_RATE = 0.3
DUPLICATE_RATE = 0.2
MALFORMED_RATE = 0.05
SEED = int(os.environ.get("REFUNDOPS_CHAOS_SEED", "20261123"))
SECRET = "chaos-ingest-secret-0123456789"
ROBOT_SECRET = "SECchaos0123456789abcdef0123456789abcdef0123456789abcdef01234567"
SETTLE_S = max(90.0, EVENTS * 0.06)
HANDLE = re.compile(r"(?<![A-Za-z0-9])([RX]\d+)(?!\d)")
# A case's own card opens with its title ("退款 R12 · ¥128.00"); batch cards and follow-up
# lines open otherwise.
WECOM_CARD = re.compile(r"^\*\*\S+ ([RX]\d+) · ")
DING_CARD = re.compile(r"^### \S+ ([RX]\d+) · ")
# Shop → group; the sandbox group takes most, each limited robot group a share.
SHOPS = {"flagship": 0.7, "wecom-shop": 0.15, "ding-shop": 0.15}

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
id = "aftersales"
channel = "sandbox"
shops = ["flagship"]
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
id = "admin1"
roles = ["admin"]
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
    urls: dict[str, str]
    faults: list[Flaky]


@pytest.fixture
async def platforms() -> AsyncIterator[Platforms]:
    rng = random.Random(SEED)
    commerce, carrier = FakeCommerce(secret="chaos-commerce"), FakeCarrier(secret="chaos-carrier")
    wecom, ding = FakeWeComAPI(webhook_keys={"chaos-robot"}), FakeDingtalk()
    faults = [
        Flaky("/refundops", FAIL_RATE, rng, http_error),
        Flaky(CARRIER_PATH, FAIL_RATE, rng, http_error),
        Flaky("/cgi-bin/webhook/send", FAIL_RATE, rng, wecom_limit),
        Flaky("/robot/send", FAIL_RATE, rng, ding_limit),
    ]
    apps = [commerce.app(), carrier.app(), wecom.app(), ding.app()]
    for app, fault in zip(apps, faults, strict=True):
        app.middlewares.append(fault.middleware)
    async with contextlib.AsyncExitStack() as servers:
        bases = [await servers.enter_async_context(serve(app)) for app in apps]
        wecom.base_url, ding.base_url = bases[2], bases[3]
        urls = {
            "commerce": bases[0] + "/refundops",
            "carrier": bases[1] + CARRIER_PATH,
            "wecom_hook": wecom.webhook_url("chaos-robot"),
            "ding_hook": ding.add_robot(ROBOT_SECRET),
        }
        yield Platforms(commerce, carrier, wecom, ding, urls, faults)


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
        await processes.ready(self.url, self.proc, log, within=15.0, step=0.05)

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
    config.write_text(CONFIG.format(db=pg_url, redis=redis_url, **platforms.urls), "utf-8")
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'[[groups]]\nid = "ding"\nwebhook_secret = "{ROBOT_SECRET}"\n', "utf-8")
    env = {
        **os.environ,
        "REFUNDOPS_INGEST__SECRET": SECRET,
        "REFUNDOPS_COMMERCE__SECRET": platforms.commerce.secret,
        "REFUNDOPS_CARRIER__SECRET": platforms.carrier.secret,
    }
    slots = [Instance(n, free_port(), config, secrets, env, tmp_path) for n in ("a", "b")]
    try:
        await asyncio.gather(*(i.start() for i in slots))
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
    for n in range(EVENTS):
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


# -- what the platforms and the database show ------------------------------------------------


async def query(url: str, sql: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql))).all())
    finally:
        await engine.dispose()


async def settle(url: str) -> tuple[float, Counter[str]]:
    """Wait until every event is applied and the outbox has nothing pending; the wait and states."""
    started = time.monotonic()
    while True:
        events = await query(url, "SELECT state, count(*) FROM events GROUP BY state")
        outbox = await query(url, "SELECT state, count(*) FROM outbox GROUP BY state")
        states = Counter(
            {f"event {s}": n for s, n in events} | {f"outbox {s}": n for s, n in outbox}
        )
        if not states["event pending"] and not states["outbox pending"]:
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


async def test_chaos_nothing_lost_nothing_twice(
    instances: list[Instance], platforms: Platforms, pg_url: str
) -> None:
    rng = random.Random(SEED)
    sends, valid = plan(rng)
    began = time.monotonic()
    tally = await traffic(instances, sends, rng)
    sending_s = time.monotonic() - began
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
    approvals = Counter(
        e["data"]["refund_id"] for e in platforms.commerce.performed("approve_refund")
    )
    stops = Counter(e["data"]["refund_id"] for e in platforms.commerce.performed("stop_shipment"))
    intercepts = Counter(platforms.carrier.intercepted())
    unshipped = {
        e["data"]["refund_id"]
        for e in valid.values()
        if e["data"]["shipping"]["status"] == "unshipped"
    }
    shipped = {
        e["data"]["shipping"]["tracking_no"]
        for e in valid.values()
        if e["data"]["shipping"]["status"] == "shipped"
    }
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
        ("  reconnects after a kill", tally.reconnects),
        (
            "instances killed (SIGKILL) / started",
            f"{sum(i.kills for i in instances)} / {sum(i.starts for i in instances)}",
        ),
        (
            "injected platform failures",
            ", ".join(f"{f.path} {f.injected}/{f.calls}" for f in platforms.faults),
        ),
        ("sending, settling (s)", f"{sending_s:.1f}, {settle_s:.1f}"),
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
            "shipments stopped / more than once",
            f"{len(stops)} / {sum(n > 1 for n in stops.values())}",
        ),
        (
            "intercepts / more than once",
            f"{len(intercepts)} / {sum(n > 1 for n in intercepts.values())}",
        ),
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
    assert five_xx == 0
    assert malformed_4xx == malformed
    assert accepted_twice == []
    assert unanswered == []
    assert stored >= set(valid)
    assert sorted(refunds) == sorted(e["data"]["refund_id"] for e in valid.values())
    assert set(refunds.values()) == {1}
    assert states["event failed"] == 0
    assert states["outbox dead"] == 0
    assert lost == {g: [] for g in by_group}
    assert all(v == [] for v in doubled.values()), doubled
    assert set(approvals) == unshipped
    assert set(approvals.values()) == {1}
    assert set(stops) == unshipped
    assert set(stops.values()) == {1}
    assert set(intercepts) == shipped
    assert set(intercepts.values()) == {1}
    assert wecom_limit_hit == []
    assert ding_limit_hit == []
    assert sum(i.kills for i in instances) == 2
