"""End-to-end processing: `python -m bench.drain [--db sqlite|postgres]
[--kind review|unshipped|shipped] [--events 2000] [--instances 1|2]`.

Starts `refundops demo --no-simulator` (the demo's simulated shop system, one sandbox group;
the carrier is a fake carrier endpoint in this process, reached through the signed carrier
webhook) and sends `--events` refund requests of one kind in signed batches of 500:

- review: received, refund only: one case awaiting review, one card;
- unshipped: auto-approved, the shop system told to refund and to stop the shipment (截单);
- shipped: in transit: the refund and an intercept case, two cards, the carrier asked.

It times until every event is applied and until the outbox is empty (every card delivered,
every call made and its answer shown), and prints events/s. In the same run the same server
takes signed single events from 64 clients for `--ingest-seconds` (bench.ingest's load): the
ratio of the two is the figure that holds on other machines. `--instances 2` (PostgreSQL +
Redis) runs one instance, then two on a fresh database, and prints the ratio.

`--rate 100 --seconds 20` sends single events at a steady rate instead (an open loop) and
prints, per event, the time to the carrier's intercept request and to the case's card in the
group (watched over the sandbox page's websocket).

`--profile` counts, in this process, the SQL statements and transactions one event of each
kind costs from ingest until its outbox is empty, and the CPU per event over `--events`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.ingest import drive
from bench.intercept import TimedCarrier
from bench.server import Served, open_loop, quantile, refund_requested, serve, signed
from integrations.carrier.fake import PATH as CARRIER_PATH

KINDS = ("review", "unshipped", "shipped")
BATCH = 500
SENDERS = 4
REDIS_URL = os.environ.get("REFUNDOPS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
# `demo --no-simulator` supplies the simulated shop system, the staff and the admin group.
CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
[database]
url = "{db}"
[digest]
enabled = false
[carrier]
mode = "webhook"
url = "%s"
[[groups]]
id = "aftersales"
channel = "sandbox"
"""
REDIS = """
[redis]
url = "%s"
"""


def event_of(kind: str, run: str, i: int) -> tuple[str, bytes]:
    """(refund id, signed-ready body) of the i-th refund request of `kind`."""
    refund_id = f"RFD{run}{i:07d}"
    if kind == "review":
        return refund_id, refund_requested(refund_id)
    if kind == "unshipped":
        return refund_id, refund_requested(
            refund_id, amount="89.00", order_amount="89.00", shipping={"status": "unshipped"}
        )
    return refund_id, refund_requested(
        refund_id,
        amount="89.00",
        order_amount="89.00",
        reason="不想要了",
        shipping={"status": "in_transit", "carrier": "ZTO", "tracking_no": f"ZT{run}{i:07d}"},
    )


# -- the servers -----------------------------------------------------------------------------


@dataclass
class Setup:
    db: str
    carrier: TimedCarrier
    carrier_url: str
    redis: bool = False


async def fresh_db(kind: str) -> str | None:
    """A fresh PostgreSQL database (None: each server makes its own SQLite file)."""
    if kind != "postgres":
        return None
    from bench.digest import fresh_database

    with tempfile.TemporaryDirectory() as workdir:
        return await fresh_database("postgres", Path(workdir))


def sqlite_url(served: Served) -> str:
    return f"sqlite+aiosqlite:///{served.workdir / 'refundops.db'}"


@contextlib.asynccontextmanager
async def servers(setup: Setup, count: int) -> AsyncIterator[tuple[list[Served], str]]:
    """`count` servers on one fresh database, and that database's URL."""
    db_url = await fresh_db(setup.db)
    if setup.redis:
        from redis.asyncio import Redis

        redis = Redis.from_url(REDIS_URL)
        await redis.flushdb()
        await redis.aclose()
    config = CONFIG % setup.carrier_url + (REDIS % REDIS_URL if setup.redis else "")
    secrets = {"REFUNDOPS_CARRIER__SECRET": setup.carrier.fake.secret}
    async with contextlib.AsyncExitStack() as stack:
        started = [
            await stack.enter_async_context(serve(config, db_url=db_url, secrets=secrets))
            for _ in range(count)
        ]
        yield started, db_url or sqlite_url(started[0])


class Progress:
    """How far the work is, read from the database the servers share."""

    def __init__(self, url: str) -> None:
        self.engine = create_async_engine(url)

    async def counts(self) -> tuple[int, int, int]:
        """(events stored, events pending, outbox items pending)."""
        async with self.engine.connect() as conn:
            stored = await conn.scalar(text("SELECT count(*) FROM events"))
            events = await conn.scalar(text("SELECT count(*) FROM events WHERE state = 'pending'"))
            outbox = await conn.scalar(text("SELECT count(*) FROM outbox WHERE state = 'pending'"))
        return int(stored or 0), int(events or 0), int(outbox or 0)

    async def close(self) -> None:
        await self.engine.dispose()


async def settle(
    progress: Progress, total: int, started: float, limit_s: float
) -> tuple[float, float]:
    """Seconds from `started` until all `total` events are applied, and until the outbox is
    empty (nan when not within `limit_s`)."""
    applied = done = float("nan")
    deadline = started + limit_s
    while time.perf_counter() < deadline:
        stored, events, outbox = await progress.counts()
        now = time.perf_counter() - started
        if stored >= total and not events:
            if applied != applied:
                applied = now
            if not outbox:
                done = now
                break
        await asyncio.sleep(0.1)
    return applied, done


# -- drain: a backlog in batches -------------------------------------------------------------


async def post_batches(urls: list[str], bodies: list[bytes]) -> int:
    """Send `bodies` in signed batches from a few senders, round robin over `urls`; errors."""
    batches = [bodies[i : i + BATCH] for i in range(0, len(bodies), BATCH)]
    queue = list(enumerate(batches))
    errors = 0

    async def sender(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while queue:
            n, batch = queue.pop(0)
            events = ",".join(b.decode() for b in batch)
            body = f'{{"events":[{events}]}}'.encode()
            url = urls[n % len(urls)]
            async with session.post(
                f"{url}/api/v1/events/batch", data=body, headers=signed(body)
            ) as resp:
                await resp.read()
                if resp.status != 202:
                    errors += 1

    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(sender(session) for _ in range(SENDERS)))
    return errors


async def drain(setup: Setup, kind: str, total: int, count: int, ingest_s: float) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6].upper()
    bodies = [event_of(kind, run, i)[1] for i in range(total)]
    async with servers(setup, count) as (served, db_url):
        progress = Progress(db_url)
        try:
            started = time.perf_counter()
            errors = await post_batches([s.url for s in served], bodies)
            posted = time.perf_counter() - started
            applied, done = await settle(progress, total, started, limit_s=max(600, total))
        finally:
            await progress.close()
        ingest = 0.0
        if ingest_s:
            ok, _, _ = await drive(f"{served[0].url}/api/v1/events", 64, ingest_s)
            ingest = ok / ingest_s
    return {
        "kind": kind,
        "instances": count,
        "events": total,
        "posted_s": posted,
        "applied_s": applied,
        "done_s": done,
        "rate": total / done if done == done else 0.0,
        "ingest": ingest,
        "errors": errors,
        "repeats": len(setup.carrier.fake.requests) - len(setup.carrier.arrived),
    }


# -- sustained: an open loop -----------------------------------------------------------------


async def watch_cards(url: str, seen: dict[str, float], ready: asyncio.Event) -> None:
    """Note when each case's card first shows in the group (the sandbox page's websocket)."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{url}/sandbox/ws?group=aftersales") as ws,
    ):
        ready.set()
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            message = json.loads(msg.data)
            if message.get("kind") == "card" and message.get("case_id"):
                seen.setdefault(message["case_id"], time.perf_counter())


async def sustained(
    setup: Setup, kind: str, rate: float, seconds: float, count: int
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6].upper()
    total = int(rate * seconds)
    events = [event_of(kind, run, i) for i in range(total)]
    sent: dict[str, float] = {}
    cards: dict[str, float] = {}
    errors = 0
    async with servers(setup, count) as (served, _db_url):
        ready = asyncio.Event()
        watcher = asyncio.create_task(watch_cards(served[0].url, cards, ready))
        await ready.wait()

        async def send(session: aiohttp.ClientSession, i: int) -> None:
            nonlocal errors
            refund_id, body = events[i]
            url = served[i % len(served)].url
            sent[refund_id] = time.perf_counter()
            async with session.post(
                f"{url}/api/v1/events", data=body, headers=signed(body)
            ) as resp:
                await resp.read()
                if resp.status != 202:
                    errors += 1

        await open_loop(rate, total, send)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(120):
                while not set(sent) <= set(cards):  # noqa: ASYNC110 - the watcher fills `cards`
                    await asyncio.sleep(0.1)
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
            await watcher
    tracking = {
        refund_id: json.loads(body)["data"]["shipping"].get("tracking_no", "")
        for refund_id, body in events
    }
    to_card = [cards[r] - s for r, s in sent.items() if r in cards]
    arrived = setup.carrier.arrived
    to_carrier = [arrived[tracking[r]] - s for r, s in sent.items() if tracking[r] in arrived]
    return {
        "kind": kind,
        "rate": rate,
        "events": total,
        "errors": errors,
        "card": figures(to_card),
        "carrier": figures(to_carrier),
    }


def figures(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": statistics.median(values) if values else 0.0,
        "p99": quantile(values, 99),
        "max": max(values, default=0.0),
    }


# -- profile: statements and transactions per event ------------------------------------------


@dataclass
class Tally:
    """SQL statements by verb and table, and transactions, seen on one engine."""

    statements: Counter[str] = field(default_factory=Counter)
    transactions: int = 0
    savepoints: int = 0

    def attach(self, engine: Any) -> None:
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "savepoint", self._savepoint)

    def _statement(self, *args: Any) -> None:
        words = str(args[2]).split()
        verb = words[0].upper() if words else "?"
        if verb in ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"):
            return
        table = next(
            (
                words[i + 1].strip('"').split("(")[0]
                for i, w in enumerate(words[:-1])
                if w.upper() in ("FROM", "INTO", "UPDATE")
            ),
            "?",
        )
        self.statements[f"{verb} {table}"] += 1

    def _begin(self, *_args: Any) -> None:
        self.transactions += 1

    def _savepoint(self, *_args: Any) -> None:
        self.savepoints += 1

    def add(self, other: Tally) -> None:
        self.statements.update(other.statements)
        self.transactions += other.transactions
        self.savepoints += other.savepoints

    def reset(self) -> Tally:
        taken = Tally(Counter(self.statements), self.transactions, self.savepoints)
        self.statements.clear()
        self.transactions = self.savepoints = 0
        return taken

    @property
    def total(self) -> int:
        return sum(self.statements.values())


async def profile(db: str, events: int) -> None:
    from aiohttp.test_utils import TestClient

    from bot.app import create_app
    from bot.keys import DISPATCHER, PROCESSOR, SERVICES
    from bot.settings import Settings
    from integrations.carrier.fake import FakeCarrier
    from integrations.commerce.fake import FakeCommerce

    commerce, carrier = FakeCommerce(secret="bench-commerce"), FakeCarrier(secret="bench-carrier")
    fakes = [TestServer(commerce.app()), TestServer(carrier.app())]
    for fake in fakes:
        await fake.start_server()
    with tempfile.TemporaryDirectory() as workdir:
        db_url = await fresh_db(db) or f"sqlite+aiosqlite:///{Path(workdir) / 'profile.db'}"
        if db == "postgres":
            from storage import migrate
            from storage.db import Database

            schema = Database(db_url)
            await migrate.upgrade(schema)
            await schema.dispose()
        data: dict[str, Any] = {
            "demo": True,
            "database": {"url": db_url},
            "ingest": {"secret": "bench-secret"},
            "commerce": {
                "mode": "webhook",
                "url": str(fakes[0].make_url(commerce.PATH)),
                "secret": commerce.secret,
            },
            "carrier": {
                "mode": "webhook",
                "url": str(fakes[1].make_url(CARRIER_PATH)),
                "secret": carrier.secret,
            },
            "digest": {"enabled": False},
            "groups": [{"id": "aftersales", "channel": "sandbox"}],
            "staff": [{"id": "admin1", "roles": ["admin"]}],
            "bot": {"admin_group": "aftersales"},
        }
        settings = Settings(**data)
        client = TestClient(TestServer(create_app(settings, workers=False)))
        await client.start_server()
        try:
            app = client.app
            assert app is not None
            tally = Tally()
            tally.attach(app[SERVICES].db.engine.sync_engine)
            processor, dispatcher = app[PROCESSOR], app[DISPATCHER]

            async def post(bodies: list[bytes]) -> None:
                for first in range(0, len(bodies), BATCH):
                    batch = ",".join(b.decode() for b in bodies[first : first + BATCH])
                    body = f'{{"events":[{batch}]}}'.encode()
                    headers = {
                        "Content-Type": "application/json",
                        **_signed_with("bench-secret", body),
                    }
                    resp = await client.post("/api/v1/events/batch", data=body, headers=headers)
                    assert resp.status == 202, await resp.text()

            async def until_idle(run_once: Callable[[], Any]) -> Tally:
                """Run rounds until one finds nothing; what the rounds that worked cost."""
                worked = Tally()
                while True:
                    tally.reset()
                    if not await run_once():
                        tally.reset()
                        return worked
                    worked.add(tally.reset())

            rows = []
            for kind in KINDS:
                run = uuid.uuid4().hex[:6].upper()
                tally.reset()
                await post([event_of(kind, run, 0)[1]])
                ingest = tally.reset()
                apply = await until_idle(processor.run_once)
                dispatch = await until_idle(dispatcher.run_once)
                bodies = [event_of(kind, run, i)[1] for i in range(1, events + 1)]
                await post(bodies)
                cpu = time.process_time()
                await until_idle(processor.run_once)
                cpu_apply = time.process_time() - cpu
                cpu = time.process_time()
                await until_idle(dispatcher.run_once)
                cpu_dispatch = time.process_time() - cpu
                rows.append(
                    (kind, ingest, apply, dispatch, cpu_apply / events, cpu_dispatch / events)
                )
        finally:
            await client.close()
            for fake in fakes:
                await fake.close()
    print(f"one event's path ({db}): SQL statements / transactions (savepoints)")
    print("| kind | ingest | apply | dispatch | total | CPU per event (apply + dispatch) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for kind, ingest, apply, dispatch, cpu_a, cpu_d in rows:
        cells = [
            f"{t.total} / {t.transactions} ({t.savepoints})" for t in (ingest, apply, dispatch)
        ]
        statements = ingest.total + apply.total + dispatch.total
        transactions = ingest.transactions + apply.transactions + dispatch.transactions
        print(
            f"| {kind} | {' | '.join(cells)} | {statements} / {transactions} "
            f"| {cpu_a * 1000:.1f} + {cpu_d * 1000:.1f} ms |"
        )
    for kind, _ingest, apply, dispatch, _a, _d in rows:
        print(f"\n{kind}, apply: " + _breakdown(apply))
        print(f"{kind}, dispatch: " + _breakdown(dispatch))


def _breakdown(tally: Tally) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(tally.statements.items()))


def _signed_with(secret: str, body: bytes) -> dict[str, str]:
    from integrations.signing import signed_headers

    return signed_headers(secret, int(time.time()), body)


# -- the report ------------------------------------------------------------------------------


def drain_row(r: dict[str, Any]) -> str:
    ratio = r["rate"] / r["ingest"] if r["ingest"] else float("nan")
    return (
        f"| {r['kind']} | {r['instances']} | {r['events']} | {r['posted_s']:.1f} s "
        f"| {r['applied_s']:.1f} s | {r['done_s']:.1f} s | {r['rate']:,.0f} "
        f"| {r['ingest']:,.0f} | {ratio:.2f} | {r['errors']} |"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--kind", choices=KINDS, default="review")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--instances", type=int, choices=[1, 2], default=1)
    parser.add_argument("--ingest-seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=0.0, help="sustained events/s instead")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.profile:
        await profile(args.db, args.events)
        return
    if args.instances == 2 and args.db != "postgres":
        parser.error("--instances 2 runs on PostgreSQL (+ Redis)")
    carrier = TimedCarrier()
    endpoint = TestServer(carrier.app())
    await endpoint.start_server()
    setup = Setup(args.db, carrier, str(endpoint.make_url(CARRIER_PATH)), redis=args.instances > 1)
    try:
        if args.rate:
            r = await sustained(setup, args.kind, args.rate, args.seconds, args.instances)
            print(
                f"refundops ({args.db}, {args.instances} instance(s)), {r['kind']} at "
                f"{r['rate']:.0f}/s for {args.seconds:.0f} s: {r['events']} events, "
                f"{r['errors']} ingest errors"
            )
            print("| from the event to | arrived | p50 | p99 | max |")
            print("| --- | --- | --- | --- | --- |")
            for name, f in (
                ("its card in the group", r["card"]),
                ("the carrier's request", r["carrier"]),
            ):
                if f["n"]:
                    print(
                        f"| {name} | {f['n']:.0f} | {f['p50'] * 1000:.0f} ms "
                        f"| {f['p99'] * 1000:.0f} ms | {f['max'] * 1000:.0f} ms |"
                    )
            return
        results = []
        for count in sorted({1, args.instances}):
            carrier.arrived.clear()
            carrier.fake.requests.clear()
            results.append(await drain(setup, args.kind, args.events, count, args.ingest_seconds))
    finally:
        await endpoint.close()
    print(f"refundops ({args.db}), {args.events} {args.kind} refunds in batches of {BATCH}")
    print(
        "| kind | instances | events | posted | applied | outbox empty | events/s "
        "| ingest events/s (same run) | ratio | errors |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(drain_row(r))
    if len(results) == 2:
        print(f"two instances / one: {results[1]['rate'] / results[0]['rate']:.2f}")
    repeats = sum(r["repeats"] for r in results)
    if args.kind == "shipped":
        print(f"carrier requests repeated (same parcel twice): {repeats}")


if __name__ == "__main__":
    asyncio.run(main())
