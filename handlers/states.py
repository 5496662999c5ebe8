"""What every case's state machine shares: the step a trigger makes, and the refusal."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from handlers.errors import ConflictError

St = TypeVar("St", bound=StrEnum)
Tr = TypeVar("Tr", bound=StrEnum)


class IllegalTransitionError(ConflictError):
    """The current state does not allow the trigger; the message names the state."""


@dataclass(frozen=True)
class Machine(Generic[St, Tr]):
    """A transition table with the words its refusals are made of."""

    what: str  # 这个退款, 这笔打款 …
    states: Callable[[str], St]
    table: Mapping[tuple[St, Tr], St]
    state_text: Mapping[str, str]
    trigger_text: Mapping[str, str]

    def status(self, state: str) -> str:
        return self.state_text.get(state, state)

    def verb(self, trigger: Tr) -> str:
        return self.trigger_text.get(trigger, trigger.value)

    def advance(self, state: str, trigger: Tr) -> St:
        """The next state, or IllegalTransitionError naming the current one."""
        try:
            return self.table[(self.states(state), trigger)]
        except (KeyError, ValueError):
            raise IllegalTransitionError(
                f"{self.what}现在是「{self.status(state)}」，不能{self.verb(trigger)}"
            ) from None

    def ensure(self, handle: str, state: str, trigger: Tr, footer: str) -> St:
        """Like `advance`, but the refusal says who moved the case last and when (`footer`)."""
        try:
            return self.advance(state, trigger)
        except IllegalTransitionError:
            raise ConflictError(
                f"{handle} 现在是「{self.status(state)}」（{footer}），不能再{self.verb(trigger)}"
            ) from None
