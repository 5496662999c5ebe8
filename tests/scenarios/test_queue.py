"""待办 is one queue for every kind of work: refunds, anomalies, payouts to approve or pay,
intercepts waiting on the carrier and unanswered buyers, nearest due first, with filters by kind,
lateness and person, a compact form for long lists, and only the cases of the place it is asked in."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

import commands.case
from bot.registry import commands as all_commands
from bot.settings import Settings
from commands import ChatInput
from handlers.message import Reply
from tests.support.app import Bot, BotFactory, make_event, make_refund, make_settings
from tests.support.payout import make_payout

ROUTER = all_commands()
GROUPS: list[dict[str, Any]] = [
    {"id": "aftersales", "name": "售后一组", "channel": "sandbox", "shops": ["flagship"]},
    {"id": "outlet", "name": "奥莱群", "channel": "sandbox", "shops": ["outlet"]},
    {"id": "ops", "name": "管理群", "channel": "sandbox", "shops": ["-"]},
]


def settings(db_url: str) -> Settings:
    # No carrier system: an intercept waits for a person to phone the carrier.
    return make_settings(db_url, groups=GROUPS, carrier={"mode": "none"})


def scan(tracking_no: str, status: str, order_id: str) -> dict[str, Any]:
    at = "2026-11-23T09:30:00+08:00"
    return make_event(
        "shipment.tracking",
        {
            "carrier": "SF",
            "tracking_no": tracking_no,
            "order_id": order_id,
            "status": status,
            "at": at,
            "description": "派送异常",
        },
        occurred_at=at,
    )


def buyer_message(refund_id: str, at: str) -> dict[str, Any]:
    return make_event("buyer.message", {"refund_id": refund_id, "text": "怎么还没处理", "at": at})


async def post(bot: Bot, *events: dict[str, Any]) -> None:
    for event in events:
        assert (await bot.post_event(event))[0] == 202
    await bot.drain()


async def lived_in(bot: Bot) -> None:
    """R1 ¥30 and R2 ¥500 to review, R3 shipped (X1 waits on the carrier) with a buyer waiting,
    P1 ¥20 asked for by agent1, A1 a parcel exception; R4 in 奥莱群."""
    await post(
        bot,
        make_refund(data_refund_id="RF1", data_amount="30.00", data_order_amount="30.00"),
        make_refund(
            data_refund_id="RF2",
            data_amount="500.00",
            data_order_amount="500.00",
            data_deadline_at="2026-11-23T20:00:00+08:00",
        ),
        make_refund(
            data_refund_id="RF3",
            data_order_id="T3",
            data_shipping={"status": "shipped", "carrier": "SF", "tracking_no": "SF333"},
        ),
        buyer_message("RF3", "2026-11-23T10:00:00+08:00"),
        make_payout(data_amount="20.00", data_requested_by="agent1"),
        scan("SF999", "exception", "T9"),
        make_refund(data_refund_id="RF4", shop="outlet"),
    )


def handles(text: str) -> list[str]:
    return re.findall(r"^\s*([RPXA][0-9]+) ", text, re.MULTILINE)


async def todo(bot: Bot, user: str, text: str = "待办", group: str = "aftersales") -> Any:
    return await bot.say(user, text, group=group)


async def test_queue_lists_every_kind_nearest_due_first(make_bot: BotFactory, db_url: str) -> None:
    bot = await make_bot(settings(db_url))
    await lived_in(bot)
    answer = await todo(bot, "sup1")
    text = answer["reply"]["text"]
    assert text.startswith("sup1 的待办（6）：")
    # The buyer waits since 10:00 (due 10:30), the carrier since the intercept (12:00), R2's
    # platform deadline is 20:00, R1's tomorrow; payouts and anomalies have no deadline.
    assert handles(text) == ["R3", "X1", "R2", "R1", "P1", "A1"]
    lines = text.splitlines()
    r3 = next(line for line in lines if line.startswith("R3 "))
    assert "🗨买家待回复" in r3
    assert "时限 11-23 10:30" in r3
    assert "[拦截]" in next(line for line in lines if line.startswith("X1 "))
    assert "[打款] ¥20.00 待审批" in next(line for line in lines if line.startswith("P1 "))
    assert "[异常]" in next(line for line in lines if line.startswith("A1 "))
    assert "R4" not in text, "奥莱群's refund is not this group's work"


async def test_queue_is_each_persons_own(make_bot: BotFactory, sqlite_url: str) -> None:
    bot = await make_bot(settings(sqlite_url))
    await lived_in(bot)
    # agent1 may approve ¥30 only, and may not approve the payout they asked for.
    mine = (await todo(bot, "agent1"))["reply"]["text"]
    assert handles(mine) == ["R3", "X1", "R1", "A1"]
    # Finance has nothing until a payout is approved; then it is theirs to pay.
    assert (await todo(bot, "fin1"))["reply"]["text"] == "🎉 没有待办"
    assert (await bot.say("sup1", "通过 P1"))["ok"]
    assert handles((await todo(bot, "fin1"))["reply"]["text"]) == ["P1"]
    assert "P1" not in (await todo(bot, "sup1"))["reply"]["text"]


async def test_queue_filters_by_kind_lateness_and_person_combined(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await make_bot(settings(sqlite_url))
    await lived_in(bot)
    assert handles((await todo(bot, "sup1", "待办 打款"))["reply"]["text"]) == ["P1"]
    assert handles((await todo(bot, "sup1", "todo intercept"))["reply"]["text"]) == ["X1"]
    assert handles((await todo(bot, "sup1", "待办 买家"))["reply"]["text"]) == ["R3"]
    assert handles((await todo(bot, "sup1", "待办 退款 异常"))["reply"]["text"]) == [
        "R2",
        "R1",
        "A1",
    ]
    assert "没有待办（超时）" in (await todo(bot, "sup1", "待办 超时"))["reply"]["text"]
    bot.clock.set(datetime(2026, 11, 23, 13, 0, tzinfo=UTC))  # 21:00 in Shanghai
    late = (await todo(bot, "sup1", "待办 超时"))["reply"]["text"]
    assert late.startswith("sup1 的待办（3） · 超时：")
    assert handles(late) == ["R3", "X1", "R2"]
    assert "⛔已超时 11-23 20:00" in late
    assert handles((await todo(bot, "sup1", "待办 超时 拦截"))["reply"]["text"]) == ["X1"]
    # A supervisor looks at someone else's queue; combined with a kind and lateness.
    theirs = (await todo(bot, "sup1", "待办 agent1 退款"))["reply"]["text"]
    assert theirs.startswith("agent1 的待办（1） · 退款：")
    assert handles(theirs) == ["R1"]
    assert handles((await todo(bot, "agent1", "待办 agent1 超时"))["reply"]["text"]) == [
        "R3",
        "X1",
    ]


async def test_queue_refuses_what_it_cannot_read(make_bot: BotFactory, sqlite_url: str) -> None:
    bot = await make_bot(settings(sqlite_url))
    await lived_in(bot)
    other = await todo(bot, "agent2", "待办 agent1")
    assert not other["ok"]
    assert "没有查看别人的待办的权限" in other["reply"]["text"]
    everyone = await todo(bot, "agent2", "待办 all")
    assert not everyone["ok"]
    assert "没有查看全部待办的权限" in everyone["reply"]["text"]
    unknown = await todo(bot, "sup1", "待办 明天")
    assert not unknown["ok"]
    assert "不认识「明天」" in unknown["reply"]["text"]
    assert "待办 [all|人] [退款|异常|打款|拦截|买家] [超时]" in unknown["reply"]["text"]
    both = await todo(bot, "sup1", "待办 all agent1")
    assert not both["ok"]


async def test_queue_everyone_view_groups_by_whose_it_is(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await make_bot(settings(sqlite_url))
    await lived_in(bot)
    assert (await bot.say("agent1", "认领 A1"))["ok"]
    everyone = (await todo(bot, "sup1", "待办 all"))["reply"]["text"]
    assert everyone.startswith("全部待办（6）：")
    assert "【agent1】1 件\n  A1 " in everyone
    assert "【打款审批】1 件\n  P1 " in everyone
    assert "【未认领】4 件" in everyone
    assert "R4" not in everyone


async def chat(bot: Bot, user: str, text: str, **where: Any) -> Reply:
    return await ROUTER.handle(
        bot.svc, ChatInput(channel="sandbox", platform="sandbox", user=user, text=text, **where)
    )


async def test_queue_in_a_direct_message_shows_the_persons_groups(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    staff = [
        {"id": "sup1", "roles": ["supervisor"], "refund_limit": "2000", "groups": ["outlet"]},
        {"id": "agent1", "roles": ["agent"], "refund_limit": "50"},
        {"id": "admin1", "roles": ["admin"]},
    ]
    bot = await make_bot(
        make_settings(sqlite_url, groups=GROUPS, carrier={"mode": "none"}, staff=staff)
    )
    await lived_in(bot)
    direct = await chat(bot, "sup1", "待办", direct=True)
    assert handles(direct.text) == ["R4"]
    assert (await chat(bot, "agent1", "待办", direct=True)).text == "🎉 没有待办"
    assert "R4" in (await chat(bot, "admin1", "待办 all", direct=True)).text
    assert "R1" in (await chat(bot, "admin1", "待办 all", direct=True)).text


async def test_a_long_queue_is_compact_beyond_ten_with_a_count_and_the_filters(
    make_bot: BotFactory, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = await make_bot(settings(sqlite_url))
    events = [
        make_refund(data_refund_id=f"RF{n:02d}", data_deadline_at=f"2026-11-24T{n:02d}:00:00+08:00")
        for n in range(1, 15)
    ]
    status, _ = await bot.post_event({"events": events}, path="/api/v1/events/batch")
    assert status == 202
    await bot.drain()
    text = (await todo(bot, "sup1"))["reply"]["text"]
    lines = text.splitlines()
    assert lines[0] == "sup1 的待办（14）："
    assert lines[1] == "共 退款 14"
    items = [line for line in lines if re.match(r"R[0-9]+ ", line)]
    assert len(items) == 14
    assert all("[退款]" in line and "尺码不合适" in line for line in items[:10])
    assert re.fullmatch(r"R[0-9]+ ¥128\.00 待审核 11-24 11:00", items[10])
    assert all("[退款]" not in line for line in items[10:])
    assert lines[-1].startswith("筛选：待办 打款 · 待办 超时 · 待办 agent2")
    monkeypatch.setattr(commands.case, "TODO_MAX", 12)
    capped = (await todo(bot, "sup1"))["reply"]["text"]
    assert "…还有 2 件未列出" in capped
    assert "11-24 13:00" not in capped
