"""The intercept and anomaly transition tables."""

from __future__ import annotations

import pytest

from handlers.errors import ConflictError
from handlers.intercept.machine import (
    DONE,
    OPEN,
    TRANSITIONS,
    InterceptState,
    InterceptTrigger,
    advance,
)
from handlers.logistics.machine import (
    ACTIVE,
    ANOMALY_TRANSITIONS,
    AnomalyState,
    AnomalyTrigger,
    advance_anomaly,
)

S, T = InterceptState, InterceptTrigger
A, AT = AnomalyState, AnomalyTrigger


@pytest.mark.parametrize(
    ("state", "trigger", "expected"),
    [
        (S.REQUESTED, T.SENT, S.SENT),
        (S.REQUESTED, T.INTERCEPTED, S.INTERCEPTED),
        (S.SENT, T.INTERCEPTED, S.INTERCEPTED),
        (S.SENT, T.FAIL, S.FAILED),
        (S.SENT, T.ESCALATE, S.OVERDUE),
        (S.OVERDUE, T.INTERCEPTED, S.INTERCEPTED),
        (S.OVERDUE, T.FAIL, S.FAILED),
        (S.REQUESTED, T.ERROR, S.ERROR),
        (S.ERROR, T.RETRY, S.REQUESTED),
        (S.ERROR, T.INTERCEPTED, S.INTERCEPTED),
    ],
)
def test_intercept_legal_moves(
    state: InterceptState, trigger: InterceptTrigger, expected: InterceptState
) -> None:
    assert advance(state.value, trigger) is expected


@pytest.mark.parametrize(
    ("state", "trigger"),
    [
        (S.INTERCEPTED, T.FAIL),
        (S.FAILED, T.INTERCEPTED),
        (S.FAILED, T.RETRY),
        (S.SENT, T.SENT),
        (S.SENT, T.ERROR),
        (S.OVERDUE, T.ESCALATE),
        (S.INTERCEPTED, T.RETRY),
    ],
)
def test_intercept_illegal_moves_raise_naming_the_state(
    state: InterceptState, trigger: InterceptTrigger
) -> None:
    with pytest.raises(ConflictError) as caught:
        advance(state.value, trigger)
    assert "这个拦截现在是" in caught.value.message


def test_settled_intercepts_never_move_again() -> None:
    assert not [key for key in TRANSITIONS if key[0] in DONE]
    assert {state for state, _ in TRANSITIONS} == set(OPEN)


@pytest.mark.parametrize(
    ("state", "trigger", "expected"),
    [
        (A.OPEN, AT.CONTACT, A.CONTACTING),
        (A.OPEN, AT.INTERCEPT, A.INTERCEPTING),
        (A.CONTACTING, AT.INTERCEPT, A.INTERCEPTING),
        (A.CONTACTING, AT.RESHIP, A.RESHIPPED),
        (A.OPEN, AT.IGNORE, A.IGNORED),
        (A.OPEN, AT.RECOVER, A.RECOVERED),
        (A.RECOVERED, AT.REOPEN, A.OPEN),
        (A.INTERCEPTING, AT.REOPEN, A.OPEN),
    ],
)
def test_anomaly_legal_moves(
    state: AnomalyState, trigger: AnomalyTrigger, expected: AnomalyState
) -> None:
    assert advance_anomaly(state.value, trigger) is expected


@pytest.mark.parametrize(
    ("state", "trigger"),
    [
        (A.CONTACTING, AT.CONTACT),
        (A.IGNORED, AT.INTERCEPT),
        (A.RESHIPPED, AT.IGNORE),
        (A.INTERCEPTING, AT.RESHIP),
        (A.OPEN, AT.REOPEN),
        (A.IGNORED, AT.REOPEN),
    ],
)
def test_anomaly_illegal_moves_raise(state: AnomalyState, trigger: AnomalyTrigger) -> None:
    with pytest.raises(ConflictError) as caught:
        advance_anomaly(state.value, trigger)
    assert "这个物流异常现在是" in caught.value.message


def test_only_active_anomalies_take_decisions() -> None:
    deciders = {AT.CONTACT, AT.INTERCEPT, AT.RESHIP, AT.IGNORE}
    assert {s for s, t in ANOMALY_TRANSITIONS if t in deciders} == set(ACTIVE)
