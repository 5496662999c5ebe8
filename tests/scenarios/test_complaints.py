"""A buyer who names a complaint (投诉, 12315, 差评 …) is escalated at once: the supervisors are
@-mentioned on the buyer's line, once per case, and the card is marked."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from handlers import digest
from handlers.config import EscalationSettings
from storage.models import AuditEntry
from tests.support.app import Bot, BotFactory, make_settings


async def buyer_says(bot: Bot, refund_id: str, text: str, n: int) -> None:
    at = bot.clock.now().isoformat()
    event = {
        "id": f"evt_msg_{refund_id}_{n}",
        "type": "buyer.message",
        "occurred_at": at,
        "data": {"refund_id": refund_id, "text": text, "at": at},
    }
    assert (await bot.post_event(event))[0] == 202
    await bot.drain()


async def card(bot: Bot, handle: str = "R1") -> dict[str, Any]:
    return next(c for c in await bot.cards() if c["handle"] == handle)


def field(message: dict[str, Any], label: str) -> str | None:
    return next((f["value"] for f in message["card"]["fields"] if f["label"] == label), None)


async def test_a_complaint_calls_the_supervisors_once_and_marks_the_card(bot: Bot) -> None:
    await bot.refund(data_refund_id="RFC")
    assert (await bot.say("agent1", "认领 R1"))["ok"]
    await buyer_says(bot, "RFC", "亲，什么时候处理？", 1)
    assert (await card(bot))["card"]["pills"] == []
    bot.clock.advance(minutes=2)
    await buyer_says(bot, "RFC", "再不处理我就投诉了", 2)
    assert (await bot.texts())[-1] == (
        "@agent1 @sup1 @sup2 🗨 R1 买家 t**1：再不处理我就投诉了"
        " · ⚠ 投诉风险（买家提到「投诉」），请主管跟进"
    )
    marked = await card(bot)
    assert {"text": "⚠ 投诉风险", "tone": "danger"} in marked["card"]["pills"]
    assert field(marked, "投诉风险") == "买家提到「投诉」· 11-23 10:02"

    bot.clock.advance(minutes=2)
    await buyer_says(bot, "RFC", "我要打１２３１５，还要给差评", 3)
    assert (await bot.texts())[-1] == "@agent1 🗨 R1 买家 t**1：我要打１２３１５，还要给差评"
    assert field(await card(bot), "投诉风险") == "买家提到「投诉」· 11-23 10:02"
    async with bot.svc.tx() as tx:
        complaints = await tx.session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "complaint")
        )
        fig = await digest.figures(tx, "aftersales", digest.span_for(bot.svc, "", tx.now))
    assert complaints == 1
    assert fig.complaints == 1


async def test_full_width_numbers_count_and_a_case_without_an_owner_calls_only_supervisors(
    bot: Bot,
) -> None:
    await bot.refund(data_refund_id="RFW")
    await buyer_says(bot, "RFW", "不退我就打１２３１５", 1)
    assert (await bot.texts())[-1] == (
        "@sup1 @sup2 🗨 R1 买家 t**1：不退我就打１２３１５ · ⚠ 投诉风险（买家提到「12315」），请主管跟进"
    )


async def test_the_complaint_words_are_configurable(make_bot: BotFactory, sqlite_url: str) -> None:
    bot = await make_bot(make_settings(sqlite_url, escalation={"complaint_words": ["曝光"]}))
    await bot.refund(data_refund_id="RFK")
    await buyer_says(bot, "RFK", "我要投诉", 1)
    assert (await card(bot))["card"]["pills"] == []
    await buyer_says(bot, "RFK", "我要去网上曝光你们", 2)
    assert "投诉风险（买家提到「曝光」）" in (await bot.texts())[-1]
    assert {"text": "⚠ 投诉风险", "tone": "danger"} in (await card(bot))["card"]["pills"]


def test_an_empty_complaint_word_is_refused() -> None:
    with pytest.raises(ValidationError, match="empty complaint word"):
        EscalationSettings(complaint_words=["投诉", " "])
