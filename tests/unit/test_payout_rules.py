"""The payout and batch transition tables, masking, and the ids Alipay deduplicates on."""

from __future__ import annotations

import pytest

from bot.registry import commands
from handlers.masking import mask_account, mask_name
from handlers.payout.identity import command_payout_id, out_biz_no
from handlers.payout.machine import (
    BATCH_TRANSITIONS,
    TERMINAL,
    TRANSITIONS,
    BatchState,
    BatchTrigger,
    PayoutState,
    Trigger,
    advance,
    advance_batch,
)
from handlers.states import IllegalTransitionError

ROUTER = commands()

S, T = PayoutState, Trigger


@pytest.mark.parametrize(
    ("state", "trigger", "expected"),
    [
        (S.REQUESTED, T.APPROVE, S.APPROVED),
        (S.REQUESTED, T.REJECT, S.REJECTED),
        (S.APPROVED, T.REJECT, S.REJECTED),
        (S.APPROVED, T.PAID, S.PAID),
        (S.APPROVED, T.CONFIRM, S.PAYING),
        (S.PAYING, T.PAID, S.PAID),
        (S.PAYING, T.FAIL, S.FAILED),
        (S.FAILED, T.RETRY, S.PAYING),
        (S.FAILED, T.PAID, S.PAID),
        (S.FAILED, T.REJECT, S.REJECTED),
    ],
)
def test_advance_legal_moves(state: PayoutState, trigger: Trigger, expected: PayoutState) -> None:
    assert advance(state.value, trigger) is expected


@pytest.mark.parametrize(
    ("state", "trigger"),
    [
        (S.REQUESTED, T.PAID),
        (S.REQUESTED, T.CONFIRM),
        (S.APPROVED, T.APPROVE),
        (S.PAYING, T.REJECT),
        (S.PAYING, T.CONFIRM),
        (S.PAID, T.PAID),
        (S.PAID, T.REJECT),
        (S.REJECTED, T.APPROVE),
    ],
)
def test_advance_illegal_moves_raise_naming_the_state(state: PayoutState, trigger: Trigger) -> None:
    with pytest.raises(IllegalTransitionError, match="这笔打款现在是"):
        advance(state.value, trigger)


def test_money_never_moves_without_an_approval() -> None:
    # Every way into PAYING or PAID starts from a state that only approval reaches.
    into_money = {s for (s, _), to in TRANSITIONS.items() if to in (S.PAYING, S.PAID)}
    assert S.REQUESTED not in into_money
    reachable_unapproved = {S.REQUESTED} | {
        to for (s, t), to in TRANSITIONS.items() if s is S.REQUESTED and t is not T.APPROVE
    }
    assert reachable_unapproved == {S.REQUESTED, S.REJECTED}


def test_terminal_states_have_no_way_out_and_every_state_can_end() -> None:
    assert not [key for key in TRANSITIONS if key[0] in TERMINAL]
    for state in S:
        seen, frontier = {state}, [state]
        while frontier:
            current = frontier.pop()
            for (s, _), to in TRANSITIONS.items():
                if s is current and to not in seen:
                    seen.add(to)
                    frontier.append(to)
        assert seen & TERMINAL, state


def test_batch_table() -> None:
    assert advance_batch("open", BatchTrigger.CONFIRM) is BatchState.CONFIRMED
    assert advance_batch("confirmed", BatchTrigger.SETTLE) is BatchState.SETTLED
    assert advance_batch("open", BatchTrigger.CANCEL) is BatchState.CANCELLED
    for state in ("confirmed", "settled", "cancelled"):
        with pytest.raises(IllegalTransitionError, match="这个批次现在是"):
            advance_batch(state, BatchTrigger.CONFIRM)
    assert len(BATCH_TRANSITIONS) == 3


@pytest.mark.parametrize(
    ("account", "masked"),
    [
        ("13800138000", "138****8000"),
        ("2088102122524333", "208****4333"),
        ("zhangsan@example.com", "zha****@example.com"),
        ("ab@x.cn", "a****@x.cn"),
        ("a@x.cn", "****@x.cn"),
        ("6222021234567890123", "622****0123"),
        ("wxid_1", "w****1"),
        ("12", "****"),
        (" 13800138000 ", "138****8000"),
    ],
)
def test_mask_account(account: str, masked: str) -> None:
    assert mask_account(account) == masked


def test_mask_account_never_shows_the_middle() -> None:
    for account in ("13812345678", "someone.long@example.com", "2088000011112222"):
        masked = mask_account(account)
        assert account not in masked
        assert "****" in masked


def test_mask_name() -> None:
    assert mask_name("王小明") == "王**"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("王*") == "王*"
    assert mask_name("李") == "李"
    assert mask_name("") == ""


def test_out_biz_no_is_the_payout_id_then_numbered_retries() -> None:
    assert out_biz_no("PO26112300001", 1) == "PO26112300001"
    assert out_biz_no("PO26112300001", 2) == "PO26112300001_2"
    odd = out_biz_no("订单/返现:1", 1)
    assert odd == out_biz_no("订单/返现:1", 1)
    assert odd.startswith("PO")
    assert len(odd) == 32
    assert out_biz_no("x" * 80, 3).endswith("_3")


def test_command_payout_id_is_stable_per_message() -> None:
    assert command_payout_id("sandbox-7") == command_payout_id("sandbox-7")
    assert command_payout_id("sandbox-7") != command_payout_id("sandbox-8")
    assert command_payout_id("") != command_payout_id("")


def test_payout_command_has_a_generated_positional_usage() -> None:
    command = ROUTER.lookup("打款")
    assert command is not None
    assert command is ROUTER.lookup("payout")
    assert command.usage("打款") == (
        "打款 <类型:活动返现|补差价|补偿> <订单号(无则写-)> <金额> <收款账号> <收款人> <原因>"
    )
    assert ROUTER.split("@bot 打款确认P7 2026112322001") == ("打款确认", "P7 2026112322001")
    paid = ROUTER.lookup("paid")
    assert paid is not None
    assert paid.usage("paid") == "paid <单号> [流水号]"
