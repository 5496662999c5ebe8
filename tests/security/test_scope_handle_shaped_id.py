"""A refund id shaped like a handle (`R1`) never shadows, nor is shadowed by, the card handle
R1: chat refuses the bare reference and names both, `#R1` means the handle, the API prefers
the id and says so, and a button always acts on its own card's case."""

from __future__ import annotations

from tests.support.app import Bot, make_refund


async def two_refunds(bot: Bot) -> tuple[dict[str, object], dict[str, object]]:
    """R1 is refund RF-SMALL (¥20); the refund whose id is "R1" (¥1,800) gets handle R2."""
    small = await bot.refund(
        data_refund_id="RF-SMALL", data_amount="20.00", data_order_amount="20.00"
    )
    shaped = make_refund(data_refund_id="R1", data_amount="1800.00", data_order_amount="1800.00")
    assert (await bot.post_event(shaped))[0] == 202
    await bot.drain()
    (big,) = [c for c in await bot.cards() if c["case_id"] == "R1"]
    assert (small["handle"], big["handle"]) == ("R1", "R2")
    return small, big


async def states(bot: Bot) -> dict[str, str]:
    return {c["handle"]: c["state"] for c in await bot.cards()}


async def test_scope_a_bare_reference_naming_two_cases_is_refused(bot: Bot) -> None:
    await two_refunds(bot)
    for text in ("通过 R1", "approve r1", "拒绝 R1 重复申请", "查 R1"):
        reply = await bot.say("sup1", text)
        assert not reply["ok"], text
        assert (
            "」同时指向 卡片编号 R1（退款单 RF-SMALL）、退款单号 R1（卡片编号 R2）。"
            "请写 #R1（专指卡片编号 R1），或用卡片编号 R2"
        ) in reply["reply"]["text"], text
    await bot.drain()
    assert await states(bot) == {"R1": "awaiting_review", "R2": "awaiting_review"}


async def test_scope_a_marked_handle_and_the_other_handle_reach_each_case(bot: Bot) -> None:
    await two_refunds(bot)
    assert (await bot.say("sup1", "通过 #R1"))["ok"]
    await bot.drain()
    assert (await states(bot))["R1"] != "awaiting_review"
    assert (await states(bot))["R2"] == "awaiting_review"
    shown = await bot.say("sup1", "查 R2")
    assert shown["reply"]["text"].startswith("【仅退款 R2 · ¥1,800.00】")
    assert (await bot.say("sup1", "拒绝 ＃R2 买家已撤回"))["ok"]
    await bot.drain()
    assert (await states(bot))["R2"] == "rejected"


async def test_scope_the_api_prefers_the_id_and_says_the_handle_is_another_case(bot: Bot) -> None:
    await two_refunds(bot)
    status, by_id = await bot.get_case("R1")
    assert status == 200
    assert (by_id["handle"], by_id["case_id"]) == ("R2", "R1")
    assert by_id["also"] == "R1 is also the handle of refund RF-SMALL: ask for %23R1"
    status, by_handle = await bot.get_case("%23R1")
    assert status == 200
    assert (by_handle["handle"], by_handle["case_id"], "also" in by_handle) == (
        "R1",
        "RF-SMALL",
        False,
    )


async def test_scope_a_button_acts_on_its_own_card(bot: Bot) -> None:
    small, _ = await two_refunds(bot)
    status, answer = await bot.click("sup1", int(str(small["id"])), "approve")
    assert status == 200
    assert answer["ok"], answer
    await bot.drain()
    after = await states(bot)
    assert after["R1"] != "awaiting_review"
    assert after["R2"] == "awaiting_review"
