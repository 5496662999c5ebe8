"""查 finds a case by what people have at hand — the order number, a tracking number (the
parcel's, the return's, or one only the parcel records know), the buyer's nick, the refund id
— listing several matches compactly and showing one as 查 R12 does; the case API finds the
cases of an order."""

from __future__ import annotations

from typing import Any

from tests.support.app import Bot, BotFactory, make_event, make_refund, make_settings
from tests.support.payout import make_payout

GROUPS: list[dict[str, Any]] = [
    {"id": "aftersales", "name": "售后一组", "channel": "sandbox", "shops": ["flagship"]},
    {"id": "outlet", "name": "奥莱群", "channel": "sandbox", "shops": ["outlet"]},
    {"id": "ops", "name": "管理群", "channel": "sandbox", "shops": ["-"]},
]


async def post(bot: Bot, *events: dict[str, Any]) -> None:
    for event in events:
        assert (await bot.post_event(event))[0] == 202
    await bot.drain()


async def shop(make_bot: BotFactory, sqlite_url: str) -> Bot:
    """R1 and R2 on order T1001 (R1 shipped as SF100, bought by 小明同学), P1 on the same order,
    R3 of 奥莱群 bought by 小明同学 too."""
    bot = await make_bot(make_settings(sqlite_url, groups=GROUPS))
    await post(
        bot,
        make_refund(
            data_refund_id="RF1",
            data_order_id="T1001",
            data_buyer={"nick": "小明同学"},
            data_shipping={"status": "delivered", "carrier": "SF", "tracking_no": "SF100"},
        ),
        make_refund(data_refund_id="RF2", data_order_id="T1001", data_amount="20.00"),
        make_payout(data_order_id="T1001", data_amount="5.00"),
        make_refund(
            data_refund_id="RF3",
            data_order_id="T2002",
            data_buyer={"nick": "小明同学"},
            shop="outlet",
        ),
    )
    return bot


async def find(bot: Bot, text: str, group: str = "aftersales", user: str = "agent1") -> str:
    answer = await bot.say(user, f"查 {text}", group=group)
    return str(answer["reply"]["text"])


async def test_find_by_order_lists_every_case_of_the_order(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await shop(make_bot, sqlite_url)
    text = await find(bot, "T1001")
    lines = text.splitlines()
    assert lines[0] == "「T1001」找到 3 件："
    assert lines[1].startswith("P1 打款 ¥5.00 待审批 · 订单 T1001 · 11-23")
    assert lines[2].startswith("R2 退款 ¥20.00 待审核 · 订单 T1001")
    assert lines[3].startswith("R1 退款 ¥128.00 待审核 · 订单 T1001")
    assert lines[-1] == "看详情：查 <编号>，如 查 P1"


async def test_one_match_shows_the_case_as_by_its_handle(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await shop(make_bot, sqlite_url)
    by_handle = await find(bot, "R1")
    assert by_handle.startswith("【仅退款 R1 · ¥128.00】待审核")
    for typed in ("SF100", "sf 100", "ＳＦ１００", "小明同学", "RF1"):
        assert await find(bot, typed) == by_handle, typed


async def test_find_by_a_tracking_number_the_case_learns_later(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await shop(make_bot, sqlite_url)
    # The buyer's return parcel, sent after the request.
    await post(
        bot,
        make_event(
            "refund.updated",
            {"refund_id": "RF2", "return_tracking": {"carrier": "YTO", "tracking_no": "YT555"}},
        ),
    )
    assert (await find(bot, "yt555")).startswith("【仅退款 R2 · ¥20.00】")
    # A parcel the carrier reports for the order, a number no case holds itself.
    await post(
        bot,
        make_event(
            "shipment.tracking",
            {
                "carrier": "JD",
                "tracking_no": "JD777",
                "order_id": "T2002",
                "status": "in_transit",
                "at": "2026-11-23T09:00:00+08:00",
            },
        ),
    )
    assert (await find(bot, "JD777", group="outlet")).startswith("【仅退款 R3 · ¥128.00】")


async def test_find_says_what_it_can_be_asked_by(make_bot: BotFactory, sqlite_url: str) -> None:
    bot = await shop(make_bot, sqlite_url)
    answer = await bot.say("agent1", "查 不存在的单")
    assert not answer["ok"]
    assert answer["reply"]["text"] == (
        "找不到 不存在的单：可以用卡片编号（R12）、订单号、运单号、买家昵称或退款单号查"
    )
    assert (await bot.say("agent1", "查"))["reply"]["text"] == (
        "用法：查 <单号|订单号|运单号|昵称>"
    )


async def test_case_api_by_order_id(make_bot: BotFactory, sqlite_url: str) -> None:
    bot = await shop(make_bot, sqlite_url)

    async def get(path: str) -> tuple[int, Any]:
        resp = await bot.client.get(path, headers=bot.get_headers(path))
        return resp.status, await resp.json()

    status, body = await get("/api/v1/cases?order_id=T1001")
    assert status == 200
    assert [(c["handle"], c["kind"], c["state"]) for c in body["cases"]] == [
        ("R1", "refund", "awaiting_review"),
        ("R2", "refund", "awaiting_review"),
        ("P1", "payout", "requested"),
    ]
    assert body["cases"][2]["status_text"] == "待审批"
    assert "history" not in body["cases"][0]
    assert await get("/api/v1/cases?order_id=T404") == (200, {"cases": []})
    status, body = await get("/api/v1/cases")
    assert (status, body["fields"]) == (400, [{"field": "order_id", "message": "required"}])
    status, body = await get("/api/v1/cases?order_id=" + "x" * 129)
    assert status == 400
    status, body = await get("/api/v1/cases?order=T1001")
    assert status == 400
    assert body["fields"][0]["field"] == "order"
    assert (await bot.client.get("/api/v1/cases?order_id=T1001")).status == 401
