"""A limited group out of budget: its waiting cards are put back together, not claimed one by one."""

from __future__ import annotations

from bot.keys import METRICS, PROCESSOR
from handlers.clock import FakeClock
from storage.coordination import InProcessCoordination
from tests.support.app import BotFactory, make_refund, make_settings


async def test_an_empty_bucket_puts_every_waiting_card_back_at_once(
    make_bot: BotFactory, sqlite_url: str, clock: FakeClock
) -> None:
    settings = make_settings(
        sqlite_url,
        dispatch={"fold_at": 3, "fold_max": 4},
        groups=[
            {"id": "aftersales", "channel": "sandbox", "kinds": ["refund"], "max_per_minute": 8},
            {"id": "ops", "channel": "sandbox"},
        ],
    )
    coord = InProcessCoordination(monotonic=lambda: clock.now().timestamp())
    bot = await make_bot(settings, coord=coord)
    for _ in range(200):
        await bot.post_event(make_refund())
    while await bot.app[PROCESSOR].run_once():
        pass
    await bot.drain()
    throttled = bot.app[METRICS].registry.get_sample_value(
        "refundops_dispatched_total", {"kind": "card", "result": "throttled"}
    )
    async with bot.svc.tx() as tx:
        waiting = await tx.outbox.pending_for_group("aftersales", "card", limit=1000)
    assert len(waiting) > 150
    assert all(w.next_attempt_at > clock.now() for w in waiting)
    # Only the batch claimed when the bucket ran dry is refused item by item.
    assert throttled is not None
    assert throttled < 50, f"{throttled} cards were claimed only to be refused"
