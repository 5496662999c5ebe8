"""Outbox ids as values: the string forms stored ids already have, and what a card id says."""

from __future__ import annotations

from handlers.outbox import CardKey, EffectKey, InputKey, NoticeKey, TextKey


def test_outbox_key_string_forms_are_the_stored_ones() -> None:
    assert str(CardKey(7, 3)) == "card:7:3"
    assert str(CardKey(7, 3, "timer:deadline:7")) == "card:7:3:timer:deadline:7"
    assert str(TextKey("g1", "dead:card:7:3")) == "text:g1:dead:card:7:3"
    assert str(NoticeKey("g1", "digest:2026-11-23")) == "notice:g1:digest:2026-11-23"
    assert str(EffectKey("commerce.approve_refund", "refund", "RF-1", 2)) == (
        "commerce.approve_refund:refund:RF-1:2"
    )
    assert (
        str(InputKey("wecom.input", "wecom_app", "x" * 300))
        == (f"wecom.input:wecom_app:{'x' * 300}"[:255])
    )


def test_outbox_key_card_parse_reads_the_refresh_with_its_colons() -> None:
    assert CardKey.parse("card:7:3") == CardKey(7, 3)
    assert not CardKey.parse("card:7:3").refresh
    refreshed = CardKey.parse("card:7:3:timer:deadline:7")
    assert refreshed == CardKey(7, 3, "timer:deadline:7")
    assert str(refreshed) == "card:7:3:timer:deadline:7"
