"""The refund transition table."""

from __future__ import annotations

import pytest

from handlers.refund.machine import (
    OPEN,
    TERMINAL,
    TRANSITIONS,
    RefundState,
    Trigger,
    advance,
)
from handlers.states import IllegalTransitionError

S, T = RefundState, Trigger


@pytest.mark.parametrize(
    ("state", "trigger", "expected"),
    [
        (S.NEW, T.REVIEW, S.AWAITING_REVIEW),
        (S.NEW, T.AUTO_APPROVE, S.AUTO_APPROVED),
        (S.NEW, T.INTERCEPT, S.WAITING_INTERCEPT),
        (S.NEW, T.AWAIT_RETURN, S.WAITING_RETURN),
        (S.AWAITING_REVIEW, T.APPROVE, S.APPROVED),
        (S.AWAITING_REVIEW, T.ESCALATE, S.ESCALATED),
        (S.ESCALATED, T.APPROVE, S.APPROVED),
        (S.ESCALATED, T.REJECT, S.REJECTED),
        (S.WAITING_INTERCEPT, T.INTERCEPTED, S.AUTO_APPROVED),
        (S.WAITING_INTERCEPT, T.INTERCEPT_FAILED, S.WAITING_RETURN),
        (S.WAITING_RETURN, T.RETURN_SHIPPED, S.RETURNING),
        (S.RETURNING, T.RETURN_RECEIVED, S.INSPECTING),
        (S.INSPECTING, T.APPROVE, S.APPROVED),
        (S.APPROVED, T.SUBMITTED, S.SUBMITTED),
        (S.SUBMITTED, T.REFUNDED, S.REFUNDED),
        (S.APPROVED, T.FAIL, S.FAILED),
        (S.FAILED, T.RETRY, S.APPROVED),
        (S.AWAITING_REVIEW, T.CANCEL, S.CANCELLED),
        (S.SUBMITTED, T.PLATFORM_CLOSE, S.CLOSED_BY_PLATFORM),
    ],
)
def test_advance_legal_moves(state: RefundState, trigger: Trigger, expected: RefundState) -> None:
    assert advance(state.value, trigger) is expected


@pytest.mark.parametrize(
    ("state", "trigger"),
    [
        (S.REFUNDED, T.APPROVE),
        (S.APPROVED, T.APPROVE),
        (S.REJECTED, T.APPROVE),
        (S.NEW, T.APPROVE),
        (S.AUTO_APPROVED, T.REJECT),
        (S.SUBMITTED, T.CANCEL),
        (S.WAITING_RETURN, T.INTERCEPTED),
    ],
)
def test_advance_illegal_moves_raise_naming_the_state(state: RefundState, trigger: Trigger) -> None:
    with pytest.raises(IllegalTransitionError, match="这个退款现在是"):
        advance(state.value, trigger)


def test_advance_rejects_unknown_state() -> None:
    with pytest.raises(IllegalTransitionError):
        advance("bogus", T.APPROVE)


def test_terminal_states_have_no_way_out() -> None:
    assert not [key for key in TRANSITIONS if key[0] in TERMINAL]


def test_every_state_is_reachable_from_new() -> None:
    seen, frontier = {S.NEW}, [S.NEW]
    while frontier:
        state = frontier.pop()
        for (src, _), dst in TRANSITIONS.items():
            if src is state and dst not in seen:
                seen.add(dst)
                frontier.append(dst)
    assert seen == set(S)


def test_every_open_state_can_reach_an_end() -> None:
    for start in OPEN:
        seen, frontier = {start}, [start]
        while frontier:
            state = frontier.pop()
            for (src, _), dst in TRANSITIONS.items():
                if src is state and dst not in seen:
                    seen.add(dst)
                    frontier.append(dst)
        assert seen & TERMINAL, start
