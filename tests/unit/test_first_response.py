"""The first-response rule: a person answering the buyer or deciding; nothing a rule or a
system does, and no claim, counts."""

from __future__ import annotations

import pytest

from handlers.response import is_person, is_response


@pytest.mark.parametrize(
    ("actor", "action", "counts"),
    [
        ("rule:unshipped-auto", "auto_approve", False),
        ("rule:shipped-intercept", "intercept", False),
        ("rule:received-review", "review", False),
        ("agent1", "claim", False),
        ("agent1", "note", False),
        ("agent1", "reply", True),
        ("agent1", "approve", True),
        ("sup1", "reject", True),
        ("agent2", "escalate", True),
        ("agent1", "intercept", True),
        ("fin1", "paid", True),
        ("warehouse", "auto_approve", False),
        ("carrier", "intercepted", False),
        ("commerce", "refunded", False),
        ("platform", "platform_close", False),
        ("system", "escalate", False),
        ("buyer", "reply", False),
        ("", "approve", False),
    ],
)
def test_first_response_is_a_person_replying_or_deciding(
    actor: str, action: str, counts: bool
) -> None:
    assert is_response(actor, action) is counts


def test_people_are_everyone_but_rules_systems_and_the_buyer() -> None:
    assert is_person("agent1")
    assert is_person("alice.wang")
    assert not any(
        is_person(a)
        for a in ("rule:x", "platform", "commerce", "system", "warehouse", "carrier", "buyer")
    )
