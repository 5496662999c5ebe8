"""The demo's simulated shop speaks the real contract and covers every path."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.cli import demo_base
from bot.keys import DISPATCHER
from bot.settings import load_settings
from handlers.clock import FakeClock
from handlers.schema import ShipmentTracking, parse_event
from integrations.carrier.simulator import SimulatedCarrier
from integrations.simulator.feed import TROUBLE, ShopSimulator
from storage.coordination import InProcessCoordination
from storage.enums import CaseKind
from tests.support.app import SECRET, Bot, BotFactory


def test_every_simulated_event_is_valid_and_all_kinds_appear() -> None:
    clock = FakeClock()
    sim = ShopSimulator(clock, seed=3)
    events = sim.opening()
    for _ in range(200):
        events += sim.tick()
        clock.advance(seconds=10)
        events += sim.due()
    clock.advance(hours=1)
    events += sim.due()
    for event in events:
        parse_event(event)
    types = {e["type"] for e in events}
    assert types == {
        "refund.requested",
        "refund.updated",
        "refund.cancelled",
        "shipment.tracking",
        "intercept.result",
        "payout.requested",
        "buyer.message",
    }
    refunds = [e["data"] for e in events if e["type"] == "refund.requested"]
    assert {(r["kind"], r["shipping"]["status"]) for r in refunds} >= {
        ("refund_only", "unshipped"),
        ("refund_only", "shipped"),
        ("refund_only", "delivered"),
        ("return_refund", "delivered"),
        ("price_diff", "delivered"),
    }
    assert len({e["id"] for e in events}) == len(events)


def test_simulator_is_repeatable_with_a_seed() -> None:
    first = ShopSimulator(FakeClock(), seed=11).opening()
    second = ShopSimulator(FakeClock(), seed=11).opening()
    assert [e["data"] for e in first] == [e["data"] for e in second]


async def test_opening_backlog_lands_as_cards_on_every_path(bot: Bot) -> None:
    sim = ShopSimulator(bot.clock, seed=5)
    for event in sim.opening():
        assert (await bot.post_event(event))[0] == 202
    bot.clock.advance(timedelta(minutes=5))
    for event in sim.due():
        assert (await bot.post_event(event))[0] == 202
    await bot.drain()
    cards = await bot.cards()
    states = {c["state"] for c in cards}
    # path 1 and price differences were approved by rule, to be refunded by hand (no ERP),
    # path 3 waits for a person, path 4's return has arrived; path 2's parcel was
    # intercepted at once and the feed, standing in for the carrier, has answered.
    assert {"manual_refund", "awaiting_review", "inspecting"} <= states
    assert len(cards) == 8
    (intercept,) = [c for c in await bot.cards("ops") if c["handle"].startswith("X")]
    (shipped,) = [c for c in cards if any(f["label"] == "拦截" for f in c["card"]["fields"])]
    expected = {"intercepted": "manual_refund", "intercept_failed": "waiting_return"}
    assert shipped["state"] == expected[intercept["state"]]


def test_troubled_parcels_arrive_with_old_scans() -> None:
    clock = FakeClock()
    sim = ShopSimulator(clock, seed=9)
    for scenario in TROUBLE:
        events = sim.troubled_parcel(scenario)
        scans = [parse_event(e)[1] for e in events]
        assert all(isinstance(s, ShipmentTracking) for s in scans), scenario
        statuses = [s.status for s in scans if isinstance(s, ShipmentTracking)]
        assert statuses == [status for status, _ in TROUBLE[scenario]]
        assert (
            len({(s.carrier, s.tracking_no) for s in scans if isinstance(s, ShipmentTracking)}) == 1
        )
    newest = max(e["data"]["at"] for e in sim.troubled_parcel("lost"))
    assert clock.now() - datetime.fromisoformat(newest) > timedelta(days=5)
    clock.advance(minutes=5)
    (recovery,) = sim.due()
    assert recovery["data"]["status"] == "delivering"


async def test_the_demo_shows_anomalies_and_intercept_results(bot: Bot) -> None:
    carrier = bot.app[DISPATCHER].carrier
    assert isinstance(carrier, SimulatedCarrier)
    sim = ShopSimulator(bot.clock, seed=5, carrier=carrier)
    for event in sim.opening():
        assert (await bot.post_event(event))[0] == 202
    await bot.drain()
    for _ in range(20):
        bot.clock.advance(seconds=15)
        for event in sim.due():
            assert event["type"] != "intercept.result" or event["data"]["tracking_no"]
            assert (await bot.post_event(event))[0] == 202
        await bot.drain()
    ops = await bot.cards("ops")
    (intercept,) = [c for c in ops if c["handle"].startswith("X")]
    assert intercept["state"] in ("intercepted", "intercept_failed")
    kinds = {c["case_id"].rsplit(":", 1)[1] for c in ops if c["handle"].startswith("A")}
    assert kinds == {"stuck", "exception"}


def test_an_intercepted_parcel_comes_back_and_a_missed_one_is_delivered() -> None:
    clock = FakeClock()
    sim = ShopSimulator(clock, seed=4, pace=60)
    refunds = [sim.refund(2) for _ in range(12)]
    clock.advance(days=2)
    events = sim.due()
    results = {
        e["data"]["tracking_no"]: e["data"]["result"]
        for e in events
        if e["type"] == "intercept.result"
    }
    assert set(results) == {r["data"]["shipping"]["tracking_no"] for r in refunds}
    assert set(results.values()) >= {"intercepted", "failed"}
    for tracking, result in results.items():
        scans = [
            e["data"]
            for e in events
            if e["type"] == "shipment.tracking" and e["data"]["tracking_no"] == tracking
        ]
        journey = [s["status"] for s in sorted(scans, key=lambda s: s["at"])]
        # Every parcel's story ends: none is left to look lost or stuck.
        assert journey[-1] == "delivered", (result, journey)
        assert ("returned" in journey) == (result != "failed"), (result, journey)


async def test_a_rush_folds_into_one_batch_card_in_the_demo_group(
    make_bot: BotFactory, sqlite_url: str, clock: FakeClock
) -> None:
    settings = load_settings(
        None,
        base=demo_base(),
        overrides={
            "database": {"url": sqlite_url},
            "ingest": {"secret": SECRET},
            "simulator": {"enabled": False, "history_days": 0},
        },
        demo=True,
    )
    bot = await make_bot(
        settings, coord=InProcessCoordination(monotonic=lambda: clock.now().timestamp())
    )
    rush = ShopSimulator(clock, seed=2).rush()
    assert len(rush) == 12
    for event in rush:
        assert (await bot.post_event(event))[0] == 202
    await bot.drain()
    messages = await bot.messages()
    folds = [m for m in messages if m["card"] and m["card"]["title"].startswith("⚡")]
    # More than a group robot may post in a minute: the rush arrives as a batch card
    # naming every case (and their next changes, still within the rush, as another).
    assert folds
    assert folds[0]["card"]["title"].startswith("⚡ 12 ")
    listed = " · ".join(folds[0]["card"]["lines"])
    async with bot.svc.tx() as tx:
        for event in rush:
            case = await tx.cases.by_case_id(CaseKind.REFUND, event["data"]["refund_id"])
            assert case is not None
            assert f"{case.handle} " in listed, (case.handle, listed)
