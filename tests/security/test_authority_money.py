"""Nobody makes a refund move above their own limit, on any path that ends in a commerce approve.

Every way into a paying refund state is listed in `PATHS` and named by whose authority
applies. Each path a person can drive is then tried by agent1 (limit ¥50) on a ¥1,800
refund: no money moves, the case waits, and the people who may approve it are @-mentioned.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from handlers.cards import build_card
from handlers.clock import FakeClock
from handlers.message import Card
from handlers.refund import machine as refund_machine
from integrations.carrier.fake import FakeCarrier
from integrations.commerce.fake import FakeCommerce
from storage.coordination import InProcessCoordination
from storage.enums import CaseKind, OutboxState
from storage.models import OutboxItem
from tests.support.app import Bot, BotFactory, make_refund, make_settings
from tests.support.fakes import Served
from tests.support.payout import GROUPS, make_payout

BIG = "1800.00"
SHIPPED = {"status": "shipped", "carrier": "SF", "tracking_no": "SF1234567890"}
APPROVERS = {"sup1", "sup2", "admin1"}  # who may approve ¥1,800 (tests/support/app.py STAFF)
ATTACKER = "agent1"
MENTION = re.compile(r"@(\S+)")

S, T = refund_machine.S, refund_machine.T

# Every transition into a state that queues `commerce.approve_refund`, and the paths
# that take it. "person" paths check the acting person's refund limit in the handler;
# the others act on the merchant's configured rules or on a signed event.
PATHS: dict[tuple[str, str], dict[str, str]] = {
    (S.NEW, T.AUTO_APPROVE): {"rule_auto_approve": "rule (its max_amount)"},
    (S.INSPECTING, T.AUTO_APPROVE): {"warehouse_qc_passed_event": "signed refund.updated"},
    (S.WAITING_INTERCEPT, T.INTERCEPTED): {
        "carrier_api_answer": "carrier API",
        "intercept_result_event": "signed intercept.result",
        "intercepted_recorded_by_command": "person",
        "intercepted_recorded_by_button": "person",
        "intercepted_recorded_on_the_refund": "person",
        "intercepted_via_anomaly_recorded_by_hand": "person",
        "refund_linked_after_a_hand_recorded_intercept": "person who recorded it",
        "carrier_confirms_after_a_hand_record": "signed intercept.result",
    },
    (S.AWAITING_REVIEW, T.APPROVE): {
        "approve_command": "person",
        "approve_all_on_batch_card": "person",
    },
    (S.ESCALATED, T.APPROVE): {
        "approve_escalated": "person (supervisor)",
        "carrier_confirms_after_a_hand_record": "signed intercept.result",
    },
    (S.WAITING_INTERCEPT, T.APPROVE): {"approve_without_waiting_for_intercept": "person"},
    (S.INSPECTING, T.APPROVE): {"qc_passed_button": "person"},
    (S.FAILED, T.RETRY): {
        "retry_failed_refund": "person",
        "revived_approve_item": "dispatcher: only the current attempt of an approved refund",
    },
}


def test_authority_every_way_into_a_paying_state_is_listed() -> None:
    paying = {S.APPROVED, S.AUTO_APPROVED}
    into = {(a.value, t.value) for (a, t), b in refund_machine.TRANSITIONS.items() if b in paying}
    assert into == {(str(a), str(t)) for a, t in PATHS}


@dataclass
class Env:
    make_bot: BotFactory
    sqlite_url: str
    clock: FakeClock
    carrier: FakeCarrier
    carrier_url: str
    commerce: FakeCommerce
    commerce_url: str

    async def bot(self, **overrides: Any) -> Bot:
        settings = make_settings(
            self.sqlite_url,
            carrier={"mode": "webhook", "url": self.carrier_url, "secret": self.carrier.secret},
            commerce={"mode": "webhook", "url": self.commerce_url, "secret": self.commerce.secret},
            **overrides,
        )
        return await self.make_bot(settings)


@pytest.fixture
def env(
    make_bot: BotFactory,
    sqlite_url: str,
    clock: FakeClock,
    fake_carrier: Served[FakeCarrier],
    fake_commerce: Served[FakeCommerce],
) -> Env:
    return Env(make_bot, sqlite_url, clock, *fake_carrier, *fake_commerce)


@dataclass
class Attempt:
    """What the attacker's move left: the bot, the big refund's id, and the answer they got."""

    bot: Bot
    refund_id: str
    answer: str


async def post(bot: Bot, event: dict[str, Any]) -> None:
    assert (await bot.post_event(event))[0] == 202
    await bot.drain()


async def big_refund(bot: Bot, **overrides: Any) -> str:
    event = make_refund(data_amount=BIG, data_order_amount=BIG, **overrides)
    await post(bot, event)
    return str(event["data"]["refund_id"])


async def say(bot: Bot, user: str, text: str, group: str = "aftersales") -> str:
    answer = await bot.say(user, text, group)
    await bot.drain()
    return str(answer["reply"]["text"])


async def click(bot: Bot, user: str, handle: str, key: str, group: str) -> str:
    message = next(m for m in await bot.cards(group) if m["handle"] == handle)
    status, answer = await bot.click(user, message["id"], key, group)
    assert status == 200, answer
    await bot.drain()
    return str(answer["reply"]["text"])


async def case_state(bot: Bot, refund_id: str) -> str:
    return (await drawn(bot, refund_id)).state


async def drawn(bot: Bot, refund_id: str) -> Card:
    """The refund's card as it is drawn now (a folded case has no message of its own)."""
    async with bot.svc.tx() as tx:
        case = await tx.cases.by_case_id(CaseKind.REFUND, refund_id)
        assert case is not None
        return build_card(case, tx.view)


# -- the paths a person can drive ------------------------------------------------------------


async def intercepted_recorded_by_command(env: Env) -> Attempt:
    bot = await env.bot()
    refund_id = await big_refund(bot, data_shipping=SHIPPED)
    assert await case_state(bot, refund_id) == S.WAITING_INTERCEPT
    return Attempt(bot, refund_id, await say(bot, ATTACKER, "拦截成功 X1 电话确认", "ops"))


async def intercepted_recorded_by_button(env: Env) -> Attempt:
    bot = await env.bot()
    refund_id = await big_refund(bot, data_shipping=SHIPPED)
    return Attempt(bot, refund_id, await click(bot, ATTACKER, "X1", "intercepted", "ops"))


async def intercepted_recorded_on_the_refund(env: Env) -> Attempt:
    # The refund and its intercept in one group: typed there, the command may act on both.
    groups = [
        {"id": "aftersales", "channel": "sandbox", "kinds": ["refund", "intercept"]},
        {"id": "ops", "channel": "sandbox"},
    ]
    bot = await env.bot(groups=groups)
    refund_id = await big_refund(bot, data_shipping=SHIPPED)
    return Attempt(bot, refund_id, await say(bot, ATTACKER, "拦截成功 R1"))


async def intercepted_via_anomaly_recorded_by_hand(env: Env) -> Attempt:
    bot = await env.bot()
    # Shipped without a tracking number: the refund waits for an intercept nobody could ask for.
    refund_id = await big_refund(bot, data_shipping={"status": "shipped"})
    assert await case_state(bot, refund_id) == S.WAITING_INTERCEPT
    at = bot.clock.now()
    scan = {
        "id": "evt_scan_exception",
        "type": "shipment.tracking",
        "occurred_at": at.isoformat(),
        "shop": "flagship",
        "platform": "taobao",
        "data": {
            "carrier": "SF",
            "tracking_no": "SF555",
            "order_id": "T88001",
            "status": "exception",
            "at": at.isoformat(),
            "description": "快件异常",
        },
    }
    await post(bot, scan)
    assert "已申请拦截" in await say(bot, ATTACKER, "拦截 A1", "ops")
    return Attempt(bot, refund_id, await say(bot, ATTACKER, "拦截成功 X1", "ops"))


async def refund_linked_after_a_hand_recorded_intercept(env: Env) -> Attempt:
    bot = await env.bot()
    small = make_refund(data_amount="30.00", data_order_amount="30.00", data_shipping=SHIPPED)
    await post(bot, small)
    answer = await say(bot, ATTACKER, "拦截成功 X1", "ops")
    # ¥30 is within agent1's limit: that refund goes on.
    assert await case_state(bot, small["data"]["refund_id"]) == S.REFUNDED
    # A second refund on the same parcel is linked to the intercept agent1 recorded.
    refund_id = await big_refund(bot, data_shipping=SHIPPED)
    return Attempt(bot, refund_id, answer)


async def approve_command(env: Env) -> Attempt:
    bot = await env.bot()
    refund_id = await big_refund(bot)
    assert await case_state(bot, refund_id) == S.AWAITING_REVIEW
    return Attempt(bot, refund_id, await say(bot, ATTACKER, "通过 R1"))


async def approve_escalated(env: Env) -> Attempt:
    bot = await env.bot()
    refund_id = await big_refund(bot)
    await say(bot, "agent2", "通过 R1")
    assert await case_state(bot, refund_id) == S.ESCALATED
    return Attempt(bot, refund_id, await say(bot, ATTACKER, "通过 R1"))


async def approve_without_waiting_for_intercept(env: Env) -> Attempt:
    bot = await env.bot()
    refund_id = await big_refund(bot, data_shipping=SHIPPED)
    return Attempt(bot, refund_id, await click(bot, ATTACKER, "R1", "approve", "aftersales"))


async def qc_passed_button(env: Env) -> Attempt:
    bot = await env.bot()
    refund_id = await big_refund(bot, data_kind="return_refund")
    received = {
        "id": "evt_return_received",
        "type": "refund.updated",
        "occurred_at": bot.clock.now().isoformat(),
        "data": {"refund_id": refund_id, "return_status": "received"},
    }
    await post(bot, received)
    assert await case_state(bot, refund_id) == S.INSPECTING
    return Attempt(bot, refund_id, await click(bot, ATTACKER, "R1", "approve", "aftersales"))


async def retry_failed_refund(env: Env) -> Attempt:
    bot = await env.bot()
    env.commerce.fail_next = 100  # the shop's system is down: every try gets a 500
    refund_id = await big_refund(bot)
    await say(bot, "sup1", "通过 R1")
    for _ in range(6):
        bot.clock.advance(timedelta(minutes=1))
        await bot.drain()
    assert await case_state(bot, refund_id) == S.FAILED
    env.commerce.fail_next = 0
    return Attempt(bot, refund_id, await say(bot, ATTACKER, "重试 R1"))


async def approve_all_on_batch_card(env: Env) -> Attempt:
    coord = InProcessCoordination(monotonic=lambda: env.clock.now().timestamp())
    settings = make_settings(
        env.sqlite_url,
        commerce={"mode": "webhook", "url": env.commerce_url, "secret": env.commerce.secret},
        groups=[
            {"id": "aftersales", "channel": "sandbox", "kinds": ["refund"], "max_per_minute": 20},
            {"id": "ops", "channel": "sandbox"},
        ],
    )
    bot = await env.make_bot(settings, coord=coord)
    events = [make_refund(data_amount=BIG, data_order_amount=BIG)]
    events += [make_refund(data_amount="40.00", data_order_amount="40.00") for _ in range(11)]
    for event in events:
        assert (await bot.post_event(event))[0] == 202
    await bot.drain()
    (fold,) = [m for m in await bot.notices() if m["card"]["title"].startswith("⚡")]
    status, answer = await bot.click(ATTACKER, fold["id"], "approve_all")
    assert status == 200, answer
    await bot.drain()
    return Attempt(bot, events[0]["data"]["refund_id"], str(answer["reply"]["text"]))


Path = Callable[[Env], Awaitable[Attempt]]
PERSON_PATHS: dict[str, Path] = {
    "intercepted_recorded_by_command": intercepted_recorded_by_command,
    "intercepted_recorded_by_button": intercepted_recorded_by_button,
    "intercepted_recorded_on_the_refund": intercepted_recorded_on_the_refund,
    "intercepted_via_anomaly_recorded_by_hand": intercepted_via_anomaly_recorded_by_hand,
    "refund_linked_after_a_hand_recorded_intercept": refund_linked_after_a_hand_recorded_intercept,
    "approve_command": approve_command,
    "approve_escalated": approve_escalated,
    "approve_without_waiting_for_intercept": approve_without_waiting_for_intercept,
    "qc_passed_button": qc_passed_button,
    "retry_failed_refund": retry_failed_refund,
    "approve_all_on_batch_card": approve_all_on_batch_card,
}


def test_authority_person_paths_are_the_listed_ones() -> None:
    person = {name for paths in PATHS.values() for name, who in paths.items() if "person" in who}
    assert person == set(PERSON_PATHS)


def paid_for(env: Env, refund_id: str) -> list[dict[str, Any]]:
    """The approvals the shop's system carried out for this refund."""
    return [
        c for c in env.commerce.performed("approve_refund") if c["data"]["refund_id"] == refund_id
    ]


async def mentioned(bot: Bot, refund_id: str, answer: str) -> set[str]:
    """Everyone @-mentioned in the attacker's answer or on the refund's card."""
    names = set(MENTION.findall(answer)) | {m.name for m in (await drawn(bot, refund_id)).mentions}
    return names - {ATTACKER}


@pytest.mark.parametrize("path", list(PERSON_PATHS), ids=list(PERSON_PATHS))
async def test_authority_an_agent_moves_no_money_above_their_limit(env: Env, path: str) -> None:
    attempt = await PERSON_PATHS[path](env)
    bot, refund_id = attempt.bot, attempt.refund_id
    paid = paid_for(env, refund_id)
    assert paid == []
    state = await case_state(bot, refund_id)
    assert state in refund_machine.NEEDS_PERSON, state
    assert "处理出错了" not in attempt.answer
    names = await mentioned(bot, refund_id, attempt.answer)
    # Escalated: the approvers are @-mentioned; refused: they are named (only the attacker @).
    named = {a for a in APPROVERS if a in attempt.answer}
    assert (names | named) & APPROVERS, (names, attempt.answer)
    assert names <= APPROVERS, names
    # It waits for someone who may approve it, and then goes through exactly once.
    verb = "重试" if state == S.FAILED else "通过"
    handle = (await drawn(bot, refund_id)).handle
    assert "处理出错了" not in await say(bot, "sup1", f"{verb} {handle}")
    await bot.drain()
    assert await case_state(bot, refund_id) == S.REFUNDED
    paid = paid_for(env, refund_id)
    assert len(paid) == 1


# -- the paths nobody in chat drives -----------------------------------------------------------


async def test_authority_the_carriers_word_still_moves_a_refund_held_for_approval(
    env: Env,
) -> None:
    attempt = await intercepted_recorded_by_command(env)
    bot = attempt.bot
    assert await case_state(bot, attempt.refund_id) == S.ESCALATED
    assert "R1 ¥1,800.00 超出 agent1 的退款权限（¥50.00）" in attempt.answer
    card = await drawn(bot, attempt.refund_id)
    assert "⬆ agent1 登记 X1 拦截成功，退款超出其权限 ¥50.00，请主管审批" in card.lines
    result = {
        "id": "evt_result_late",
        "type": "intercept.result",
        "occurred_at": bot.clock.now().isoformat(),
        "shop": "flagship",
        "platform": "taobao",
        "data": {"carrier": "SF", "tracking_no": "SF1234567890", "result": "intercepted"},
    }
    await post(bot, result)
    assert await case_state(bot, attempt.refund_id) == S.REFUNDED
    (paid,) = env.commerce.performed("approve_refund")
    assert paid["data"]["refund_id"] == attempt.refund_id
    async with bot.svc.tx() as tx:
        case = await tx.cases.by_case_id(CaseKind.REFUND, attempt.refund_id)
        assert case is not None
        assert case.decided_by == "carrier"


async def revive(bot: Bot, item_id: str) -> None:
    """What requeueing a dead outbox item does."""
    async with bot.svc.tx() as tx:
        await tx.session.execute(
            update(OutboxItem)
            .where(OutboxItem.id == item_id)
            .values(state=OutboxState.PENDING.value, attempts=0, next_attempt_at=tx.now)
        )


async def test_authority_a_revived_approve_item_pays_nothing_for_a_failed_refund(
    env: Env,
) -> None:
    attempt = await retry_failed_refund(env)
    bot = attempt.bot
    await revive(bot, f"commerce.approve_refund:refund:{attempt.refund_id}:1")
    await bot.drain()
    assert env.commerce.performed("approve_refund") == []
    assert await case_state(bot, attempt.refund_id) == S.FAILED


async def test_authority_a_revived_approve_item_never_pays_twice_after_a_retry(
    env: Env,
) -> None:
    attempt = await retry_failed_refund(env)
    bot = attempt.bot
    env.commerce.status = "pending"  # the shop accepted the retry; the platform pays later
    await say(bot, "sup1", "重试 R1")
    assert await case_state(bot, attempt.refund_id) == S.SUBMITTED
    await revive(bot, f"commerce.approve_refund:refund:{attempt.refund_id}:1")
    bot.clock.advance(timedelta(seconds=1))
    await bot.drain()
    (paid,) = env.commerce.performed("approve_refund")
    assert paid["idempotency_key"].endswith(":2")


async def test_authority_payouts_keep_their_own_limit_and_two_person_rule(env: Env) -> None:
    """Payouts never reach `approve_refund`; their approval is bounded the same way."""
    bot = await env.bot(groups=GROUPS)
    await post(bot, make_payout(data_amount=BIG, data_requested_by="agent2"))
    refused = await bot.say(ATTACKER, "通过 P1", "finance")
    assert not refused["ok"]
    assert "超出 agent1 的审批权限（¥50.00）" in refused["reply"]["text"]
    assert set(MENTION.findall(refused["reply"]["text"])) == {ATTACKER}
    assert all(a in refused["reply"]["text"] for a in APPROVERS)
    assert not (await bot.say("fin1", "打款确认 P1 LS001", "finance"))["ok"]
    assert (await bot.say("sup1", "通过 P1", "finance"))["ok"]
    assert not (await bot.say("sup1", "打款确认 P1 LS001", "finance"))["ok"]
    assert (await bot.say("fin1", "打款确认 P1 LS001", "finance"))["ok"]
    assert env.commerce.performed("approve_refund") == []
