"""The sandbox's page API answers a script's mistakes with a clear refusal."""

from __future__ import annotations

from tests.support.app import Bot


async def test_a_tap_on_a_digest_card_is_refused_not_failed(bot: Bot) -> None:
    await bot.refund()
    await bot.say("sup1", "日报")
    await bot.drain()
    (digest,) = [m for m in await bot.notices() if m["card"]["title"].startswith("售后日报")]
    status, answer = await bot.click("sup1", digest["id"], "approve")
    assert status == 400
    assert answer == {"error": "the card has no button 'approve'", "buttons": []}
