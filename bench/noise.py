"""Group messages per hour from the demo's simulated shop:
`python -m bench.noise [--hours 3] [--seed 7] [--post all,needs_action]`.

Runs the demo's own settings (bot/demo.toml: the sandbox group `aftersales`, the simulated
shop system and carrier, the logistics watch) on a fresh SQLite file and a simulated clock,
once per `post` mode of the group. The demo's simulator feeds its opening backlog, then a new
case every `[simulator] interval_s` and each follow-up when it falls due, through the signed
ingest API; nobody acts in the chat. Counts what the group receives: cards posted, text lines
and standalone cards (digests, batch cards) — a card edited in place is no new message — and
the @-mentions those lines carry.
The same seed gives the same events in every mode.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import create_app
from bot.cli import demo_base
from bot.keys import DISPATCHER, PROCESSOR, SCHEDULER, SERVICES
from bot.settings import load_settings
from handlers.clock import FakeClock
from integrations.carrier.simulator import SimulatedCarrier
from integrations.commerce.client import SimulatedCommerce
from integrations.sandbox.channel import BOT
from integrations.signing import signed_headers
from integrations.simulator.feed import ShopSimulator
from storage.models import Case, SandboxMessage

GROUP = "aftersales"
MENTIONS = re.compile(r"(?:@\S+ )*")


@dataclass
class Tally:
    post: str
    hours: float
    events: int
    cases: int
    cards: int
    texts: int
    notices: int
    mentions: int

    @property
    def messages(self) -> int:
        return self.cards + self.texts + self.notices

    def line(self) -> str:
        per = self.messages / self.hours
        return (
            f"| {self.post} | {self.hours:g} h | {self.events} events, {self.cases} cases "
            f"| {self.cards} cards · {self.texts} lines · {self.notices} other "
            f"| {self.messages} | **{per:.0f}/h** | {self.mentions / self.hours:.0f}/h |"
        )


async def drain(app: Any) -> None:
    for _ in range(200):
        busy = await app[PROCESSOR].run_once()
        busy += await app[SCHEDULER].run_once()
        busy += await app[DISPATCHER].run_once()
        if not busy:
            return


async def run(post: str, hours: float, seed: int, workdir: Path, *, verbose: bool) -> Tally:
    base = demo_base()
    if post != "all":  # the default, left unsaid
        base["groups"] = [{**g, "post": post} for g in base["groups"]]
    base["simulator"] = {**base["simulator"], "enabled": False, "seed": seed}
    base["database"] = {"url": f"sqlite+aiosqlite:///{workdir / f'noise-{post}.db'}"}
    settings = load_settings(base=base, demo=True)
    secret = settings.ingest.secret.get_secret_value()
    clock = FakeClock()
    # Seeded, so that the shop system's refusals (a stop that comes too late) repeat too.
    app = create_app(settings, clock=clock, workers=False, commerce=SimulatedCommerce(seed))
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        carrier = app[DISPATCHER].carrier
        sim = ShopSimulator(
            clock, seed, carrier=carrier if isinstance(carrier, SimulatedCarrier) else None
        )
        events = 0

        async def send(batch: list[dict[str, Any]]) -> None:
            nonlocal events
            for event in batch:
                body = json.dumps(event, ensure_ascii=False).encode()
                headers = {"Content-Type": "application/json"}
                headers |= signed_headers(secret, int(clock.now().timestamp()), body)
                resp = await client.post("/api/v1/events", data=body, headers=headers)
                assert resp.status == 202, await resp.text()
                events += 1
            await drain(app)

        step = settings.simulator.interval_s
        await send(sim.opening())
        for _ in range(int(hours * 3600 / step)):
            clock.advance(timedelta(seconds=step))
            await send(sim.tick() + sim.due())
        async with app[SERVICES].tx() as tx:
            rows = await tx.session.execute(
                select(SandboxMessage.kind, SandboxMessage.case_pk).where(
                    SandboxMessage.group_id == GROUP, SandboxMessage.author == BOT
                )
            )
            kinds = Counter(
                "card" if kind == "card" and pk else "notice" if kind == "card" else "text"
                for kind, pk in rows.all()
            )
            texts = list(
                await tx.session.scalars(
                    select(SandboxMessage.text).where(
                        SandboxMessage.group_id == GROUP,
                        SandboxMessage.kind == "text",
                        SandboxMessage.author == BOT,
                    )
                )
            )
            # A line's @-mentions lead it ("@sup1 @sup2 ⏰ R12 …").
            mentions = sum(len(lead.group().split()) for t in texts if (lead := MENTIONS.match(t)))
            for text in texts if verbose else ():
                print(f"  {post}: {text[:90]}")
            cases = int(await tx.session.scalar(select(func.count()).select_from(Case)) or 0)
    finally:
        await client.close()
    return Tally(
        post, hours, events, cases, kinds["card"], kinds["text"], kinds["notice"], mentions
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=float, default=3.0, help="simulated hours per mode")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--post", default="all,needs_action", help="modes, comma-separated")
    parser.add_argument("--lines", action="store_true", help="print every text line received")
    args = parser.parse_args()
    print("| post | simulated | fed | group received | messages | per hour | @-mentions |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as workdir:
        for post in args.post.split(","):
            tally = await run(
                post.strip(), args.hours, args.seed, Path(workdir), verbose=args.lines
            )
            print(tally.line(), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
