"""The logistics watch: parcel records, anomalies raised once, the scan across restarts, 快递100."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from bot.keys import PROCESSOR
from integrations.carrier.fake import FakeCarrier
from integrations.kuaidi100.fake import FakeKuaidi100
from integrations.kuaidi100.signing import sign
from storage.enums import CaseKind
from storage.models import Case, Parcel, Timer
from tests.support.app import Bot, BotFactory, make_settings
from tests.support.fakes import Served

SCAN = timedelta(minutes=5)
_ids = itertools.count(1)


def tracking(
    tracking_no: str,
    status: str,
    at: datetime,
    *,
    carrier: str = "SF",
    order_id: str = "",
    description: str = "",
) -> dict[str, Any]:
    return {
        "id": f"evt_scan_{next(_ids)}",
        "type": "shipment.tracking",
        "occurred_at": at.isoformat(),
        "shop": "flagship",
        "platform": "taobao",
        "data": {
            "carrier": carrier,
            "tracking_no": tracking_no,
            "order_id": order_id or f"O-{tracking_no}",
            "status": status,
            "at": at.isoformat(),
            "description": description or f"{status} scan",
        },
    }


async def scan(bot: Bot, *events: dict[str, Any]) -> None:
    for event in events:
        assert (await bot.post_event(event))[0] == 202
    await bot.drain()


async def anomalies(bot: Bot) -> dict[str, dict[str, Any]]:
    """Anomaly cards by case id (carrier:tracking:kind)."""
    return {c["case_id"]: c for c in await bot.cards("ops") if c["handle"].startswith("A")}


async def test_tracking_events_keep_one_record_per_parcel(bot: Bot) -> None:
    now = bot.clock.now()
    await scan(
        bot,
        tracking("SF1", "created", now - timedelta(hours=3)),
        tracking("SF1", "picked_up", now - timedelta(hours=1)),
        tracking("SF1", "created", now - timedelta(hours=3)),
        tracking("SF1", "in_transit", now),
        tracking("SF1", "picked_up", now - timedelta(hours=2), description="迟到的揽收"),
        tracking("SF1", "in_transit", now, carrier="ZTO"),
    )
    async with bot.svc.tx() as tx:
        parcels = (await tx.session.scalars(select(Parcel).order_by(Parcel.id))).all()
    assert [(p.carrier, p.tracking_no) for p in parcels] == [("SF", "SF1"), ("ZTO", "SF1")]
    sf = parcels[0]
    assert (sf.status, sf.last_event_at) == ("in_transit", now)
    assert sf.shipped_at == now - timedelta(hours=3)
    assert sf.picked_up_at == now - timedelta(hours=2)
    assert [s["status"] for s in sf.scans] == ["in_transit", "picked_up", "picked_up", "created"]
    assert sf.next_check_at == now + timedelta(hours=48)


async def test_each_anomaly_kind_is_raised_once(bot: Bot) -> None:
    t0 = bot.clock.now()
    await scan(
        bot,
        tracking("SF-PICKUP", "created", t0),
        tracking("SF-NOUPD", "picked_up", t0),
        tracking("SF-STUCK", "in_transit", t0),
        tracking("SF-EXC", "exception", t0, description="【杭州】地址不详，联系不上收件人"),
        tracking("SF-RET", "returned", t0),
        tracking("SF-REJ", "rejected", t0, description="收件人拒收"),
    )
    found = await anomalies(bot)
    assert sorted(found) == ["SF:SF-EXC:exception", "SF:SF-REJ:rejected", "SF:SF-RET:returned"]
    exc = found["SF:SF-EXC:exception"]
    assert exc["card"]["title"] == f"物流异常 {exc['handle']} · 快件异常"
    assert [b["key"] for b in exc["card"]["buttons"]] == [
        "intercept",
        "reship",
        "contact_carrier",
        "ignore",
    ]
    assert exc["card"]["mentions"] == ["agent1", "agent2"]
    assert found["SF:SF-REJ:rejected"]["card"]["mentions"] == ["agent1", "agent2", "sup1", "sup2"]
    assert {"label": "异常", "value": "【杭州】地址不详，联系不上收件人"} in exc["card"]["fields"]

    await bot.later(hours=23, minutes=50)
    assert len(await anomalies(bot)) == 3
    await bot.later(minutes=15)
    assert "SF:SF-PICKUP:no_pickup" in await anomalies(bot)
    await bot.later(hours=24)
    found = await anomalies(bot)
    assert {"SF:SF-NOUPD:no_update", "SF:SF-STUCK:stuck"} <= set(found)
    stuck = found["SF:SF-STUCK:stuck"]
    assert {"label": "异常", "value": "运输中 48 小时没有物流更新（时限 48 小时）"} in stuck[
        "card"
    ]["fields"]
    assert any("虚假发货" in line for line in stuck["card"]["lines"])
    await bot.later(days=3, hours=1)
    lost = {k for k in await anomalies(bot) if k.endswith(":lost")}
    assert lost == {f"SF:SF-{n}:lost" for n in ("NOUPD", "STUCK", "EXC", "RET", "REJ")}
    for _ in range(4):
        await bot.later(days=3)
    assert len(await anomalies(bot)) == 3 + 1 + 2 + 5
    async with bot.svc.tx() as tx:
        count = await tx.session.scalar(
            select(func.count()).where(Case.kind == CaseKind.ANOMALY.value)
        )
        pending = await tx.session.scalar(
            select(func.count()).where(Timer.kind == "logistics_scan", Timer.state == "pending")
        )
    assert count == 11
    assert pending == 0


async def test_a_parcel_overdue_on_arrival_is_raised_by_the_next_scan(bot: Bot) -> None:
    now = bot.clock.now()
    await scan(bot, tracking("SF-LATE", "created", now - timedelta(hours=30)))
    assert await anomalies(bot) == {}
    await bot.later(minutes=5)
    (late,) = (await anomalies(bot)).values()
    assert late["case_id"] == "SF:SF-LATE:no_pickup"
    assert {"label": "异常", "value": "发货 30 小时仍未揽收（时限 24 小时）"} in late["card"][
        "fields"
    ]


async def test_the_scan_survives_a_restart(make_bot: BotFactory, sqlite_url: str) -> None:
    first = await make_bot(make_settings(sqlite_url))
    now = first.clock.now()
    await first.post_event(tracking("SF-R1", "picked_up", now))
    await first.post_event(tracking("SF-R2", "in_transit", now - timedelta(hours=47)))
    await first.app[PROCESSOR].run_once()
    await first.client.close()

    second = await make_bot(make_settings(sqlite_url))
    await second.later(hours=1, minutes=5)
    assert set(await anomalies(second)) == {"SF:SF-R2:stuck"}
    await second.later(hours=47)
    assert set(await anomalies(second)) == {"SF:SF-R2:stuck", "SF:SF-R1:no_update"}


async def test_movement_recovers_and_a_recurrence_updates_the_same_card(bot: Bot) -> None:
    t0 = bot.clock.now()
    await scan(bot, tracking("SF-S", "in_transit", t0))
    await bot.later(hours=48, minutes=5)
    (stuck,) = (await anomalies(bot)).values()
    assert stuck["state"] == "open"
    await scan(
        bot,
        tracking("SF-S", "in_transit", bot.clock.now(), description="到达【郑州转运中心】"),
    )
    (recovered,) = (await anomalies(bot)).values()
    assert recovered["id"] == stuck["id"]
    assert recovered["state"] == "recovered"
    assert recovered["card"]["buttons"] == []
    assert any("到达【郑州转运中心】" in line for line in recovered["card"]["lines"])
    await bot.later(hours=48, minutes=5)
    (again,) = (await anomalies(bot)).values()
    assert again["id"] == stuck["id"]
    assert again["state"] == "open"
    assert any(
        f["label"] == "次数" and f["value"].startswith("第 2 次") for f in again["card"]["fields"]
    )


async def test_repeated_exception_scans_update_one_card(bot: Bot) -> None:
    t0 = bot.clock.now()
    first = tracking("SF-E", "exception", t0, description="地址不详")
    await scan(bot, first, {**first, "id": "evt_same_scan_again"})
    await scan(
        bot, tracking("SF-E", "exception", t0 + timedelta(hours=5), description="电话无人接听")
    )
    (card,) = (await anomalies(bot)).values()
    assert {"label": "异常", "value": "电话无人接听"} in card["card"]["fields"]
    assert any(f["value"].startswith("第 2 次") for f in card["card"]["fields"])


async def test_anomaly_buttons(
    make_bot: BotFactory, sqlite_url: str, fake_carrier: Served[FakeCarrier]
) -> None:
    carrier, url = fake_carrier
    bot = await make_bot(
        make_settings(sqlite_url, carrier={"mode": "webhook", "url": url, "secret": carrier.secret})
    )
    t0 = bot.clock.now()
    await scan(
        bot,
        tracking("SF-A", "exception", t0),
        tracking("SF-B", "exception", t0),
        tracking("SF-C", "exception", t0),
        tracking("SF-D", "rejected", t0),
    )
    found = await anomalies(bot)
    a, b, c, d = (
        found[f"SF:SF-{n}:{k}"]
        for n, k in zip("ABCD", ["exception"] * 3 + ["rejected"], strict=True)
    )
    _, answer = await bot.click("agent1", a["id"], "contact_carrier", group="ops")
    assert "由 agent1 联系顺丰（客服 95338）" in answer["reply"]["text"]
    assert answer["message"]["state"] == "contacting"
    assert "contact_carrier" not in [b["key"] for b in answer["message"]["card"]["buttons"]]
    _, answer = await bot.click("agent2", b["id"], "reship", group="ops")
    assert answer["message"]["state"] == "reshipped"
    reply = await bot.say("sup1", f"忽略 {c['handle']} 买家已确认收到", group="ops")
    assert reply["ok"]
    await bot.drain()
    ignored = (await anomalies(bot))["SF:SF-C:exception"]
    assert ignored["state"] == "ignored"
    assert "忽略原因：买家已确认收到" in ignored["card"]["lines"]
    refused = await bot.say("agent1", f"补发 {c['handle']}", group="ops")
    assert "现在是「已忽略」" in refused["reply"]["text"]

    _, answer = await bot.click("agent1", d["id"], "intercept", group="ops")
    assert answer["ok"], answer
    assert "已申请拦截 顺丰 SF-D（X1）" in answer["reply"]["text"]
    await bot.drain()
    assert carrier.intercepted() == ["SF-D"]
    d_card = (await anomalies(bot))["SF:SF-D:rejected"]
    assert d_card["state"] == "intercepting"
    x1 = next(m for m in await bot.cards("ops") if m["handle"] == "X1")
    assert {"label": "关联异常", "value": d["handle"]} in x1["card"]["fields"]
    # The intercepted parcel coming back is expected, not a new problem.
    await scan(bot, tracking("SF-D", "exception", bot.clock.now(), description="拦截件"))
    await scan(bot, tracking("SF-D", "returned", bot.clock.now() + timedelta(minutes=1)))
    assert not {"SF:SF-D:returned", "SF:SF-D:exception"} & set(await anomalies(bot))
    # A failed intercept hands the problem back to the team.
    await scan(
        bot,
        {
            "id": "evt_result_d",
            "type": "intercept.result",
            "occurred_at": bot.clock.now().isoformat(),
            "data": {
                "carrier": "SF",
                "tracking_no": "SF-D",
                "result": "failed",
                "detail": "已签收",
            },
        },
    )
    d_card = (await anomalies(bot))["SF:SF-D:rejected"]
    assert d_card["state"] == "open"
    assert {"label": "拦截", "value": "X1 · 拦截失败"} in d_card["card"]["fields"]


async def test_anomaly_links_the_orders_refund(bot: Bot) -> None:
    await bot.refund(
        data_order_id="T-LINK",
        data_amount="30.00",
        data_shipping={"status": "in_transit", "carrier": "YTO", "tracking_no": "YT1"},
    )
    await scan(bot, tracking("YT1", "exception", bot.clock.now(), carrier="YTO", order_id="T-LINK"))
    (card,) = (await anomalies(bot)).values()
    assert {"label": "关联退款", "value": "R1 · ¥30.00"} in card["card"]["fields"]
    assert {"label": "运单", "value": "圆通 YT1"} in card["card"]["fields"]


async def test_kuaidi100_pushes_update_the_same_records(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    push = FakeKuaidi100(salt="salt-for-tests")
    bot = await make_bot(make_settings(sqlite_url, carrier={"kuaidi100_salt": push.salt}))
    t0 = bot.clock.now()
    await scan(bot, tracking("SF777", "created", t0 - timedelta(hours=2), order_id="T777"))
    url = "/logistics/kuaidi100?order_id=T777&shop=flagship&platform=taobao"
    form = push.form(
        "shunfeng", "SF777", "1", [(t0 - timedelta(hours=1), "1", "【杭州】快件已揽收")]
    )
    resp = await bot.client.post(url, data=form)
    assert resp.status == 200
    assert await resp.json() == {"result": True, "returnCode": "200", "message": "成功"}
    resp = await bot.client.post(url, data=form)
    assert (await resp.json())["result"] is True
    await bot.drain()
    async with bot.svc.tx() as tx:
        parcels = (await tx.session.scalars(select(Parcel))).all()
        stored = await tx.session.scalar(select(func.count()).select_from(Parcel.__table__))
    assert stored == 1
    (parcel,) = parcels
    assert (parcel.carrier, parcel.status, parcel.order_id) == ("SF", "picked_up", "T777")
    assert parcel.source == "kuaidi100"
    assert parcel.picked_up_at == t0 - timedelta(hours=1)

    rejected = push.form(
        "shunfeng",
        "SF777",
        "14",
        [(t0 - timedelta(hours=1), "1", "【杭州】快件已揽收"), (t0, "14", "收件人拒收")],
    )
    assert (await bot.client.post(url, data=rejected)).status == 200
    await bot.drain()
    (card,) = (await anomalies(bot)).values()
    assert card["case_id"] == "SF:SF777:rejected"
    assert {"label": "异常", "value": "收件人拒收"} in card["card"]["fields"]


async def test_kuaidi100_refuses_a_bad_sign(make_bot: BotFactory, sqlite_url: str) -> None:
    push = FakeKuaidi100(salt="salt-for-tests")
    bot = await make_bot(make_settings(sqlite_url, carrier={"kuaidi100_salt": push.salt}))
    form = push.form("yunda", "4300", "0", [(bot.clock.now(), "0", "运输中")])
    forged = {**form, "param": form["param"].replace("4300", "4301")}
    resp = await bot.client.post("/logistics/kuaidi100", data=forged)
    assert resp.status == 401
    assert await resp.json() == {"result": False, "returnCode": "401", "message": "签名错误"}
    resp = await bot.client.post("/logistics/kuaidi100", data={"param": form["param"]})
    assert resp.status == 400
    resp = await bot.client.post(
        "/logistics/kuaidi100", data={"param": "{not json", "sign": sign("{not json", push.salt)}
    )
    assert resp.status == 400
    assert (await resp.json())["result"] is False
    async with bot.svc.tx() as tx:
        assert await tx.events.pending_count() == 0


async def test_kuaidi100_is_off_without_a_salt(bot: Bot) -> None:
    resp = await bot.client.post("/logistics/kuaidi100", data={"param": "{}", "sign": ""})
    assert resp.status in (404, 405)


async def test_two_instances_raise_each_anomaly_once(make_bot: BotFactory, db_url: str) -> None:
    first = await make_bot(make_settings(db_url))
    second = await make_bot(make_settings(db_url))
    now = first.clock.now()
    for n in range(20):
        await first.post_event(tracking(f"SF-M{n}", "in_transit", now - timedelta(hours=47)))
    await asyncio.gather(first.drain(), second.drain())
    first.clock.advance(hours=1, minutes=5)
    await asyncio.gather(first.drain(), second.drain(), first.drain(), second.drain())
    async with first.svc.tx() as tx:
        raised = await tx.session.scalar(
            select(func.count()).where(Case.kind == CaseKind.ANOMALY.value)
        )
    assert raised == 20
    assert len(await anomalies(first)) == 20


async def test_case_commands_on_an_anomaly_point_to_its_own_actions(bot: Bot) -> None:
    await scan(bot, tracking("SF-CMD", "exception", bot.clock.now()))
    (card,) = (await anomalies(bot)).values()
    handle = card["handle"]
    refused = await bot.say("sup1", f"通过 {handle}", group="ops")
    assert not refused["ok"]
    assert f"{handle} 是物流异常" in refused["reply"]["text"]
    assert f"拦截 {handle}" in refused["reply"]["text"]
    assert (await bot.say("agent1", f"认领 {handle}", group="ops"))["ok"]
    assert (await bot.say("agent1", f"备注 {handle} 已联系顺丰客服", group="ops"))["ok"]
    shown = (await bot.say("fin1", f"查 {handle}", group="ops"))["reply"]["text"]
    assert "已联系顺丰客服" in shown
