"""Digest inputs and metrics: intercepts tried / succeeded / failed, money saved, anomalies."""

from __future__ import annotations

from datetime import datetime, timedelta

from handlers.logistics.stats import LogisticsStats, logistics_stats
from tests.support.app import Bot, BotFactory, make_settings


def shipped(tracking_no: str, carrier: str = "SF") -> dict[str, str]:
    return {"status": "shipped", "carrier": carrier, "tracking_no": tracking_no}


def outcome(tracking_no: str, result: str, carrier: str = "SF") -> dict[str, object]:
    return {
        "id": f"evt_{tracking_no}_{result}",
        "type": "intercept.result",
        "occurred_at": "2026-11-23T10:00:00+08:00",
        "data": {"carrier": carrier, "tracking_no": tracking_no, "result": result},
    }


def scan(tracking_no: str, status: str, carrier: str, at: str) -> dict[str, object]:
    return {
        "id": f"evt_{tracking_no}_{status}",
        "type": "shipment.tracking",
        "occurred_at": at,
        "data": {"carrier": carrier, "tracking_no": tracking_no, "status": status, "at": at},
    }


async def test_stats_for_a_day_and_the_metrics(make_bot: BotFactory, db_url: str) -> None:
    bot: Bot = await make_bot(make_settings(db_url))
    day = bot.clock.now()
    await bot.refund(data_shipping=shipped("SF1"), data_amount="128.00")
    await bot.refund(data_shipping=shipped("SF2"), data_amount="59.00", data_order_amount="59.00")
    await bot.refund(
        data_shipping=shipped("ZT3", "ZTO"), data_amount="300.00", data_order_amount="300.00"
    )
    await bot.post_event(outcome("SF1", "intercepted"))
    await bot.post_event(outcome("ZT3", "returned", "ZTO"))
    await bot.post_event(outcome("SF2", "failed"))
    now = day.isoformat()
    for event in (
        scan("SF9", "exception", "SF", now),
        scan("SF8", "rejected", "SF", now),
        scan("ZT7", "exception", "ZTO", now),
    ):
        await bot.post_event(event)
    await bot.drain()

    stats = await _stats(bot, day - timedelta(hours=1), day + timedelta(hours=1))
    assert (stats.intercepts_tried, stats.intercepts_succeeded, stats.intercepts_failed) == (
        3,
        2,
        1,
    )
    assert stats.money_saved_fen == 12800 + 30000
    assert stats.anomalies == {
        ("exception", "SF"): 1,
        ("rejected", "SF"): 1,
        ("exception", "ZTO"): 1,
    }
    assert stats.anomalies_by_kind == {"exception": 2, "rejected": 1}
    assert stats.anomalies_by_carrier == {"SF": 2, "ZTO": 1}
    assert stats.lines() == [
        "拦截 3 单，成功 2，失败 1，挽回 ¥428.00",
        "物流异常 3 起：快件异常 2、收件人拒收 1（顺丰 2、中通 1）",
    ]
    assert await _stats(bot, day + timedelta(hours=1), day + timedelta(days=1)) == LogisticsStats()
    in_ops = await _stats(bot, day - timedelta(hours=1), day + timedelta(hours=1), group="ops")
    assert in_ops == stats
    elsewhere = await _stats(
        bot, day - timedelta(hours=1), day + timedelta(hours=1), group="aftersales"
    )
    assert elsewhere.intercepts_tried == 0

    text = await (await bot.client.get("/metrics")).text()
    assert 'refundops_intercepts{outcome="requested"} 3.0' in text
    assert 'refundops_intercepts{outcome="succeeded"} 2.0' in text
    assert 'refundops_intercepts{outcome="failed"} 1.0' in text
    assert "refundops_intercept_saved_yuan 428.0" in text
    assert 'refundops_anomalies{carrier="ZTO",kind="exception"} 1.0' in text


async def _stats(
    bot: Bot, since: datetime, until: datetime, group: str | None = None
) -> LogisticsStats:
    async with bot.svc.tx() as tx:
        return await logistics_stats(tx, since, until, group_id=group)
