"""Parsers at the edge never crash: any input gives a value or a clean, typed error."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.registry import commands
from handlers.errors import UsageError
from handlers.schema import DATA_MODELS, InvalidEventError, parse_event

ROUTER = commands()

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = st.sampled_from(
    [
        "id",
        "type",
        "occurred_at",
        "shop",
        "platform",
        "data",
        "refund_id",
        "order_id",
        "kind",
        "amount",
        "order_amount",
        "shipping",
        "status",
        "deadline_at",
        "payee",
        "account",
        "carrier",
        "tracking_no",
        "text",
    ]
)
VALUES = st.one_of(
    JSON,
    st.sampled_from(list(DATA_MODELS)),
    st.sampled_from(
        ["128.00", "-1", "1e400", "0.001", "2026-11-23T10:00:00+08:00", "2026-13-45", ""]
    ),
)
ENVELOPE_ISH = st.fixed_dictionaries(
    {
        "id": VALUES,
        "type": st.sampled_from([*DATA_MODELS, "nope"]),
        "occurred_at": VALUES,
        "data": st.dictionaries(FIELDS, VALUES, max_size=8),
    },
    optional={"shop": VALUES, "platform": VALUES, "extra": JSON},
)


def clean(raw: Any) -> None:
    errors: list[dict[str, str]] = []
    try:
        parse_event(raw)
    except InvalidEventError as exc:
        errors = exc.errors or [{}]
    assert all(set(e) == {"field", "message"} for e in errors)


@settings(max_examples=300, deadline=None)
@given(ENVELOPE_ISH)
def test_envelopes_parse_or_name_their_fields(raw: dict[str, Any]) -> None:
    clean(raw)


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_any_json_value(raw: Any) -> None:
    clean(raw if isinstance(raw, dict) else {"events": raw})
    clean(json.dumps(raw, allow_nan=True).encode())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes(raw: bytes) -> None:
    clean(raw)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_chat_text_gives_a_command_or_usage(text: str) -> None:
    name, rest = ROUTER.split(text)
    command = ROUTER.lookup(name)
    if command is None:
        return
    problem = ""
    try:
        ROUTER.parse(command, name, rest)
    except UsageError as exc:
        problem = exc.message or "<empty>"
    assert problem != "<empty>"
