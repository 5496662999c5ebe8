"""The daily digest and the dashboard, with an injected clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.charts import hbars, stacked_bars
from handlers import digest
from handlers.message import Notice
from integrations.commerce.fake import FakeCommerce
from storage.models import Digest
from tests.support.app import Bot, BotFactory, make_settings, production_settings
from tests.support.fakes import Served

# The fake clock starts at 2026-11-23 10:00 +08:00.


@pytest.fixture
async def bot(make_bot: BotFactory, sqlite_url: str, fake_commerce: Served[FakeCommerce]) -> Bot:
    fake, url = fake_commerce
    return await make_bot(
        make_settings(sqlite_url, commerce={"mode": "webhook", "url": url, "secret": fake.secret})
    )


async def busy_day(bot: Bot) -> None:
    """Refunds on every path during 11-23, decided in various ways."""
    await bot.refund(
        data_shipping={"status": "unshipped"},
        data_amount="30.00",
        data_order_amount="30.00",
        data_reason="拍错了",
    )
    await bot.refund(data_amount="40.00", data_order_amount="128.00", data_reason="质量问题")
    await bot.refund(
        data_amount="128.00", data_reason="质量问题", data_deadline_at="2026-11-23T16:00:00+08:00"
    )
    await bot.refund(data_kind="return_refund", data_reason="尺码不合适", data_deadline_at=None)
    await bot.refund(
        data_shipping={"status": "shipped", "carrier": "SF", "tracking_no": "SF1"},
        data_reason="不想要了",
    )
    bot.clock.advance(minutes=10)
    await bot.say("agent1", "通过 R2")
    bot.clock.advance(minutes=40)
    await bot.say("agent2", "通过 R3")
    await bot.say("sup1", "拒绝 R4 买家已确认无质量问题")
    await bot.drain()
    bot.clock.advance(hours=6)
    await bot.drain()


def field(notice: Notice, label: str) -> str:
    return next(f.value for f in notice.fields if f.label == label)


async def test_figures_of_a_day(bot: Bot) -> None:
    await busy_day(bot)
    async with bot.svc.tx() as tx:
        span = digest.Span.day(date(2026, 11, 23), bot.svc.tz)
        fig = await digest.figures(tx, "aftersales", span)
        notice = digest.render(fig, "售后一组")
    assert fig.new_by_path == {1: 1, 2: 1, 3: 2, 4: 1}
    assert (fig.closed, fig.refunded, fig.refunded_fen, fig.rejected) == (3, 2, 7000, 1)
    assert fig.pending_by_path == {2: 1, 3: 1}
    assert fig.auto_approved == 1
    assert fig.escalations == 1
    assert fig.top_reasons[0] == ("质量问题", 2)
    assert (fig.deadlines_met, fig.deadlines_missed) == (0, 1)
    # First response is over the two refunds a rule sent to a person (R2, R3): the rule's own
    # decisions (R1 approved, R4 waits for the return, R5 intercepted) count apart.
    assert (fig.awaited, fig.responded) == (2, 2)
    assert fig.response_within == 0.5
    assert fig.response_median_s == 1800
    assert fig.people["agent1"].first_response_s == [600.0]
    assert (len(fig.people["agent1"].handled), fig.people["agent1"].approvals) == (1, 1)
    assert fig.people["agent2"].first_response_s == [3000.0]
    assert fig.people["sup1"].first_response_s == []
    assert len(fig.people["sup1"].handled) == 1
    assert fig.pending_by_owner == {"主管": ["R3 ¥128.00"]}
    assert field(notice, "新增") == "5（未发货 1 · 已发货 1 · 已收货 2 · 退货 1）"
    assert field(notice, "完结") == "3（退款 2 笔 ¥70.00 · 拒绝 1）"
    assert field(notice, "平台时限") == "按时 0 · 超时 1"
    assert field(notice, "首次响应") == "中位 30 分钟 · 30 分钟内 50%（需人工 2 单）"
    assert field(notice, "自动处理") == "1 单（规则或系统决定，不计入首次响应）"
    assert [line for line in notice.lines if line.startswith("👤")] == [
        "👤 agent1：首次响应中位 10 分钟（1 单） · 处理 1 单 · 买家留言超时 0 · 审批 1",
        "👤 agent2：首次响应中位 50 分钟（1 单） · 处理 1 单 · 买家留言超时 0 · 审批 0",
        "👤 sup1：首次响应中位 — · 处理 1 单 · 买家留言超时 0 · 审批 0",
    ]
    assert "待办 · 主管：R3 ¥128.00" in notice.lines
    assert notice.title == "售后日报 · 售后一组 · 11-23"
    markdown = notice.markdown()
    assert markdown.startswith("### 售后日报 · 售后一组 · 11-23")
    assert "- **新增**：5（" in markdown


async def test_scheduled_digest_once_per_group_per_day_across_restarts(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    first = await make_bot(make_settings(sqlite_url))
    await busy_day(first)
    await first.client.close()
    first.clock.set(datetime(2026, 11, 24, 1, 0, tzinfo=UTC))  # 09:00 Shanghai
    second = await make_bot(make_settings(sqlite_url))
    third = await make_bot(make_settings(sqlite_url))
    await second.drain()
    await third.drain()
    await second.drain()
    for group in ("aftersales", "ops"):
        cards = [
            c for c in await second.notices(group) if c["card"]["title"].startswith("售后日报")
        ]
        assert len(cards) == 1, group
        assert cards[0]["card"]["title"].endswith("· 11-23")
    async with second.svc.tx() as tx:
        assert await tx.session.scalar(select(func.count()).select_from(Digest)) == 2
    second.clock.advance(days=1)
    await second.drain()
    titles = [
        c["card"]["title"]
        for c in await second.notices()
        if c["card"]["title"].startswith("售后日报")
    ]
    assert titles == ["售后日报 · 售后一组 · 11-23", "售后日报 · 售后一组 · 11-24"]


async def test_digest_on_demand_in_the_group_and_in_a_dm(bot: Bot) -> None:
    await busy_day(bot)
    reply = await bot.say("agent1", "日报")
    assert reply["reply"]["text"] == "📊 售后日报 · 售后一组 · 11-23 已发到群里"
    await bot.drain()
    (card,) = [c for c in await bot.notices() if c["card"]["title"].startswith("售后日报")]
    assert card["state"] is None
    assert any(f["label"] == "首次响应" for f in card["card"]["fields"])
    reply = await bot.say("agent1", "digest yesterday")
    assert "11-22" in reply["reply"]["text"]
    reply = await bot.say("agent1", "日报 明年")
    assert reply["reply"]["text"] == "用法：日报 [今天|昨天|7]"


async def test_dashboard_is_off_without_a_token_outside_the_demo(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await make_bot(production_settings(sqlite_url))
    resp = await bot.client.get("/dashboard")
    assert resp.status == 403
    assert "REFUNDOPS_DASHBOARD__TOKEN" in await resp.text()


async def test_dashboard_token_and_range(make_bot: BotFactory, sqlite_url: str) -> None:
    bot = await make_bot(make_settings(sqlite_url, dashboard={"token": "t0ken"}))
    await busy_day(bot)
    assert (await bot.client.get("/dashboard")).status == 401
    assert (await bot.client.get("/dashboard?token=wrong")).status == 401
    resp = await bot.client.get(
        "/dashboard?token=t0ken&from=2026-11-17&to=2026-11-23&group=aftersales"
    )
    assert resp.status == 200
    html = await resp.text()
    assert "<svg" in html
    assert "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "5（未发货 1 · 已发货 1 · 已收货 2 · 退货 1）" in html
    assert ">质量问题<" in html
    resp = await bot.client.get("/dashboard", headers={"Authorization": "Bearer t0ken"})
    assert resp.status == 200
    for query, status in (
        ("from=2026-11-23&to=2026-11-01", 400),
        ("from=nope", 400),
        ("from=2026-01-01&to=2026-11-23", 400),
        ("group=nobody", 400),
    ):
        assert (await bot.client.get(f"/dashboard?token=t0ken&{query}")).status == status, query


async def test_dashboard_link_in_the_digest_when_public(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await make_bot(
        make_settings(sqlite_url, server={"public_base_url": "https://ops.example.com/"})
    )
    async with bot.svc.tx() as tx:
        notice = await digest.build(tx, "aftersales", digest.span_for(bot.svc, "7", tx.now))
    assert notice.link == "https://ops.example.com/dashboard?from=2026-11-17&to=2026-11-23"
    assert (
        "[查看看板](https://ops.example.com/dashboard?from=2026-11-17&to=2026-11-23)"
        in notice.markdown()
    )


def test_charts_scale_and_escape() -> None:
    svg = stacked_bars(["11-22", "11-23"], [("a<b", [1, 3]), ("c", [2, 0])], line=("done", [0, 4]))
    assert svg.startswith("<svg")
    assert svg.endswith("</svg>")
    assert "a&lt;b" in svg
    assert svg.count("<rect") == 3 + 2
    assert hbars([]).count("暂无数据") == 1
    assert hbars([("质量问题", 4), ("尺码", 2)]).count("<rect") == 2


def test_next_run_is_the_coming_nine_oclock(bot: Bot) -> None:
    now = datetime(2026, 11, 23, 0, 59, tzinfo=UTC)
    assert digest.next_run(bot.svc, now) == datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    assert digest.next_run(bot.svc, now + timedelta(minutes=1)) == datetime(
        2026, 11, 24, 1, 0, tzinfo=UTC
    )


async def test_payouts_have_their_line_in_the_digest(bot: Bot) -> None:
    event = {
        "id": "evt_po_1",
        "type": "payout.requested",
        "occurred_at": "2026-11-23T10:00:00+08:00",
        "data": {
            "payout_id": "PO1",
            "kind": "cashback",
            "order_id": "T1",
            "amount": "5.00",
            "payee": {"name": "王*", "account": "13800138000"},
            "reason": "活动返现",
            "requested_by": "agent1",
        },
    }
    assert (await bot.post_event(event))[0] == 202
    await bot.drain()
    await bot.say("sup1", "通过 P1", group="ops")
    async with bot.svc.tx() as tx:
        notice = await digest.build(tx, "ops", digest.span_for(bot.svc, "", tx.now))
    assert field(notice, "打款") == "申请 1 笔 ¥5.00 · 批准 1 笔 ¥5.00 · 已付 0 笔 ¥0.00"
    async with bot.svc.tx() as tx:
        quiet = await digest.build(tx, "aftersales", digest.span_for(bot.svc, "", tx.now))
    assert all(f.label != "打款" for f in quiet.fields)


async def test_digest_and_dashboard_have_a_row_per_person(bot: Bot) -> None:
    await bot.refund(data_refund_id="RFP1", data_amount="40.00", data_order_amount="128.00")
    await bot.refund(data_refund_id="RFP2", data_amount="128.00")
    await bot.refund(data_refund_id="RFP3", data_amount="20.00", data_order_amount="128.00")
    bot.clock.advance(minutes=5)
    assert (await bot.say("agent1", "回复 R1 亲，正在核实"))["ok"]
    bot.clock.advance(minutes=5)
    assert (await bot.say("agent1", "通过 R1"))["ok"]
    bot.clock.advance(minutes=10)
    assert (await bot.say("agent2", "通过 R2"))["ok"]  # above ¥50: escalated
    assert (await bot.say("agent2", "认领 R3"))["ok"]
    bot.clock.advance(minutes=20)
    assert (await bot.say("sup1", "通过 R2"))["ok"]
    event = {
        "id": "evt_msg_rfp3",
        "type": "buyer.message",
        "occurred_at": bot.clock.now().isoformat(),
        "data": {"refund_id": "RFP3", "text": "在吗？", "at": bot.clock.now().isoformat()},
    }
    assert (await bot.post_event(event))[0] == 202
    await bot.later(minutes=31)
    async with bot.svc.tx() as tx:
        fig = await digest.figures(tx, "aftersales", digest.span_for(bot.svc, "", tx.now))
    people = fig.people
    assert sorted(people) == ["agent1", "agent2", "sup1"]
    assert (people["agent1"].first_response_s, people["agent1"].approvals) == ([300.0], 1)
    assert people["agent2"].first_response_s == [1200.0]
    assert (len(people["agent2"].handled), people["agent2"].overdue) == (1, 1)
    assert (people["sup1"].first_response_s, people["sup1"].approvals) == ([], 1)
    assert fig.buyer_overdue == 1
    # R3 was only claimed: no response at 31 minutes, so one of three is missed.
    assert (fig.awaited, fig.responded) == (3, 2)

    await bot.say("sup1", "日报")
    await bot.drain()
    (card,) = [c for c in await bot.notices() if c["card"]["title"].startswith("售后日报")]
    assert (
        "👤 agent2：首次响应中位 20 分钟（1 单） · 处理 1 单 · 买家留言超时 1 · 审批 0"
        in (card["card"]["lines"])
    )
    assert {"label": "买家留言超时", "value": "1"} in card["card"]["fields"]

    html = await (await bot.client.get("/dashboard?group=aftersales")).text()
    rows = [
        "<tr><td>agent1</td><td>5 分钟（1 单）</td><td>1</td><td>0</td><td>1</td></tr>",
        "<tr><td>agent2</td><td>20 分钟（1 单）</td><td>1</td><td>1</td><td>0</td></tr>",
        "<tr><td>sup1</td><td>—</td><td>1</td><td>0</td><td>1</td></tr>",
    ]
    assert all(row in html for row in rows), html
