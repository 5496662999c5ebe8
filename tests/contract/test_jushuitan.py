"""The 聚水潭 client, warehouse and after-sale source against FakeJushuitan."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from handlers.clock import FakeClock
from handlers.errors import AuthorizationError, PermanentError, RetryableError
from handlers.ports import SHIPPED, CommerceResult
from handlers.schema import parse_event
from integrations.jushuitan import signing
from integrations.jushuitan.client import (
    BEIJING,
    CANCEL,
    ORDERS,
    QUESTIONS,
    REFUNDS,
    JushuitanApiError,
)
from integrations.jushuitan.models import OrderQueryBiz, RefundQueryBiz
from integrations.jushuitan.settings import WarehouseSettings, config_problems
from integrations.jushuitan.source import JushuitanRefunds
from integrations.jushuitan.warehouse import CANCELLED_TEXT, STOPPED, JushuitanWarehouse
from tests.support.jushuitan import JstWorld, jushuitan_world
from tests.support.taobao import MemoryTokenStore


@pytest.fixture
async def world(session: aiohttp.ClientSession, clock: FakeClock) -> AsyncIterator[JstWorld]:
    async with jushuitan_world(session, clock) as made:
        yield made


def stop_data(so_id: str) -> dict[str, Any]:
    return {"refund_id": f"R-{so_id}", "order_id": so_id, "shop": "dy", "amount": "99.00"}


# -- stop shipment ------------------------------------------------------------------------


async def test_jushuitan_stop_turns_the_order_into_question(world: JstWorld) -> None:
    order = world.fake.add_order("SO1001")
    result = await world.warehouse().call("stop_shipment", "k1", stop_data("SO1001"))
    assert result == CommerceResult("done", STOPPED)
    assert order.status == "Question"
    assert order.question_type == "售后拦截"
    [sent] = world.fake.calls(QUESTIONS)
    assert sent["o_ids"] == [order.o_id]
    assert sent["channel"] == "refundops"


async def test_jushuitan_stop_already_shipped_answers_shipped(world: JstWorld) -> None:
    world.fake.add_order("SO1002")
    world.fake.ship("SO1002", l_id="ZT9988", company="中通快递")
    result = await world.warehouse().stop("k2", stop_data("SO1002"))
    assert result.status == SHIPPED
    assert result.detail == "仓库已发货（中通快递 ZT9988）"
    assert world.fake.calls(QUESTIONS) == []
    assert world.fake.question_log == []


async def test_jushuitan_stop_split_order_partly_shipped_stops_the_rest(world: JstWorld) -> None:
    first = world.fake.add_order("SO1003")
    second = world.fake.add_order("SO1003")
    first.status, first.l_id, first.logistics_company = "Sent", "YT1", "圆通速递"
    result = await world.warehouse().stop("k3", stop_data("SO1003"))
    assert result.status == SHIPPED
    assert "圆通速递 YT1" in result.detail
    assert second.status == "Question"


async def test_jushuitan_stop_unknown_order_is_permanent(world: JstWorld) -> None:
    with pytest.raises(PermanentError, match="聚水潭找不到订单 SO404"):
        await world.warehouse().stop("k4", stop_data("SO404"))
    assert world.fake.calls(QUESTIONS) == []


async def test_jushuitan_stop_retry_after_lost_answer_adds_no_second_question(
    world: JstWorld,
) -> None:
    order = world.fake.add_order("SO1005")
    world.fake.fail_next(1, "timeout", path=QUESTIONS)
    warehouse = world.warehouse(timeout_s=0.3)
    with pytest.raises(RetryableError):
        await warehouse.stop("k5", stop_data("SO1005"))
    assert order.status == "Question"  # JST acted; only the answer was lost
    assert await warehouse.stop("k5", stop_data("SO1005")) == CommerceResult("done", STOPPED)
    assert await warehouse.stop("k5", stop_data("SO1005")) == CommerceResult("done", STOPPED)
    assert world.fake.question_log == [(order.o_id, "售后拦截")]
    assert len(world.fake.calls(QUESTIONS)) == 1


async def test_jushuitan_stop_other_question_type_counts_as_stopped(world: JstWorld) -> None:
    world.fake.add_order("SO1006", status="Question", question_type="地址异常")
    result = await world.warehouse().stop("k6", stop_data("SO1006"))
    assert result == CommerceResult("done", "聚水潭订单已是异常（地址异常），仓库不会发货")
    assert world.fake.calls(QUESTIONS) == []


async def test_jushuitan_stop_refused_by_questions_is_read_again(world: JstWorld) -> None:
    order = world.fake.add_order("SO1007")
    # Shipped between our read and the 转异常 call: JST refuses it in data.message.
    world.fake.ship_before_questions.add("SO1007")
    warehouse = world.warehouse()
    result = await warehouse.stop("k7", stop_data("SO1007"))
    assert result.status == SHIPPED
    assert result.detail == "仓库已发货（中通快递 SFSO1007）"
    assert order.status == "Sent"
    assert world.fake.question_log == []


async def test_jushuitan_stop_by_cancel(world: JstWorld) -> None:
    order = world.fake.add_order("SO1008", status="WaitFConfirm")
    warehouse = world.warehouse(stop_by="cancel")
    assert await warehouse.stop("k8", stop_data("SO1008")) == CommerceResult("done", CANCELLED_TEXT)
    assert order.status == "Cancelled"
    assert await warehouse.stop("k8", stop_data("SO1008")) == CommerceResult("done", CANCELLED_TEXT)
    [sent] = world.fake.calls(CANCEL)
    assert sent == {
        "o_ids": [order.o_id],
        "cancel_type": "售后拦截",
        "remark": "买家申请退款，请勿发货",
    }


async def test_jushuitan_warehouse_does_only_stop_shipment(world: JstWorld) -> None:
    with pytest.raises(PermanentError, match="approve_refund"):
        await world.warehouse().call("approve_refund", "k9", stop_data("SO1"))
    with pytest.raises(PermanentError, match="没有订单号"):
        await world.warehouse().stop("k9", {"refund_id": "R1", "order_id": ""})


# -- batching ------------------------------------------------------------------------------


async def test_jushuitan_stops_arriving_together_share_calls_of_at_most_50(
    world: JstWorld,
) -> None:
    for i in range(59):
        world.fake.add_order(f"SO2{i:03d}")
    world.fake.add_order("SO2SENT")
    world.fake.ship("SO2SENT", l_id="JT77")
    warehouse = world.warehouse(batch_window_s=0.2)
    so_ids = [f"SO2{i:03d}" for i in range(59)] + ["SO2SENT", "SO2MISSING"]
    results = await asyncio.gather(
        *(warehouse.stop(f"key-{s}", stop_data(s)) for s in so_ids), return_exceptions=True
    )
    answers = dict(zip(so_ids, results, strict=True))
    assert all(answers[f"SO2{i:03d}"] == CommerceResult("done", STOPPED) for i in range(59))
    sent = answers["SO2SENT"]
    assert isinstance(sent, CommerceResult)
    assert sent.status == SHIPPED
    assert isinstance(answers["SO2MISSING"], PermanentError)
    calls = world.fake.calls(QUESTIONS)
    # The first 50 to arrive fill one call; the next batch holds the other 9 (and the two
    # that never reach 转异常: shipped, unknown).
    assert [len(c["o_ids"]) for c in calls] == [50, 9]
    assert all(len(c["so_ids"]) <= 20 for c in world.fake.calls(ORDERS))
    assert len(world.fake.question_log) == 59


async def test_jushuitan_batch_refused_as_a_whole_falls_back_to_one_call_per_order(
    world: JstWorld,
) -> None:
    orders = [world.fake.add_order(f"SO3{i}") for i in range(4)]
    world.fake.refuse_batches = (1, "批量转异常失败")
    warehouse = world.warehouse(batch_window_s=0.2)
    results = await asyncio.gather(
        *(warehouse.stop(f"k{o.so_id}", stop_data(o.so_id)) for o in orders)
    )
    assert results == [CommerceResult("done", STOPPED)] * 4
    sizes = [len(c["o_ids"]) for c in world.fake.calls(QUESTIONS)]
    assert sizes == [4, 1, 1, 1, 1]
    assert all(o.status == "Question" for o in orders)


async def test_jushuitan_fallback_keeps_each_orders_own_answer(world: JstWorld) -> None:
    orders = [world.fake.add_order(f"SO8{i}") for i in range(3)]
    world.fake.refuse_batches = (1, "批量转异常失败")
    world.fake.ship_before_questions.add("SO81")
    warehouse = world.warehouse(batch_window_s=0.2)
    results = await asyncio.gather(
        *(warehouse.stop(f"k{o.so_id}", stop_data(o.so_id)) for o in orders)
    )
    assert [r.status for r in results] == ["done", SHIPPED, "done"]
    assert [o.status for o in orders] == ["Question", "Sent", "Question"]


async def test_jushuitan_batch_failing_before_jst_acts_fails_every_caller(
    world: JstWorld,
) -> None:
    orders = [world.fake.add_order(f"SO9{i}") for i in range(3)]
    world.fake.fail_next(1, "5xx", path=ORDERS)
    warehouse = world.warehouse(batch_window_s=0.2)
    results = await asyncio.gather(
        *(warehouse.stop(f"k{o.so_id}", stop_data(o.so_id)) for o in orders),
        return_exceptions=True,
    )
    assert all(isinstance(r, RetryableError) for r in results)
    assert len(world.fake.calls(ORDERS)) == 1
    assert world.fake.calls(QUESTIONS) == []
    again = await asyncio.gather(
        *(warehouse.stop(f"k{o.so_id}", stop_data(o.so_id)) for o in orders)
    )
    assert [r.status for r in again] == ["done"] * 3


async def test_jushuitan_leader_cancelled_leaves_no_caller_waiting(world: JstWorld) -> None:
    world.fake.add_order("SOA1")
    world.fake.add_order("SOA2")
    warehouse = world.warehouse(batch_window_s=0.3)
    leader = asyncio.create_task(warehouse.stop("ka1", stop_data("SOA1")))
    await asyncio.sleep(0.01)
    follower = asyncio.create_task(warehouse.stop("ka2", stop_data("SOA2")))
    await asyncio.sleep(0.01)
    leader.cancel()
    with pytest.raises(RetryableError, match="截单被中断"):
        await follower
    assert leader.cancelled()
    assert world.fake.requests == []


# -- the client: tokens, errors ------------------------------------------------------------


async def test_jushuitan_token_is_refreshed_once_on_code_100(world: JstWorld) -> None:
    world.fake.add_order("SO4001")
    warehouse = world.warehouse()
    world.fake.revoke_token()
    assert (await warehouse.stop("k", stop_data("SO4001"))).status == "done"
    assert world.fake.refreshes == 1
    saved = world.tokens.tokens
    assert saved is not None
    assert saved.access_token == world.fake.access_token
    assert saved.refresh_token == world.fake.refresh_token == "jst-refresh-2"
    assert saved.expires_at == world.clock.now() + timedelta(days=30)


async def test_jushuitan_refresh_token_is_single_use(world: JstWorld) -> None:
    world.fake.add_order("SO4002")
    stale = world.settings()  # holds refresh token 1
    warehouse = world.warehouse()
    world.fake.revoke_token()
    assert (await warehouse.stop("k", stop_data("SO4002"))).status == "done"
    world.fake.revoke_token()
    other = JushuitanWarehouse(stale, world.session, MemoryTokenStore(), world.clock)
    with pytest.raises(AuthorizationError, match="刷新 token 失败"):
        await other.stop("k", stop_data("SO4002"))
    assert world.fake.refreshes == 1


async def test_jushuitan_5xx_timeouts_and_rate_limits_are_retryable(world: JstWorld) -> None:
    world.fake.add_order("SO5001")
    warehouse = world.warehouse(timeout_s=0.3)
    world.fake.fail_next(1, "5xx")
    with pytest.raises(RetryableError, match="HTTP 502"):
        await warehouse.stop("k", stop_data("SO5001"))
    world.fake.fail_next(1, "timeout", path=ORDERS)
    with pytest.raises(RetryableError, match="没有应答"):
        await warehouse.stop("k", stop_data("SO5001"))
    world.fake.fail_next(1, "code", code=200)
    with pytest.raises(RetryableError) as limited:
        await warehouse.stop("k", stop_data("SO5001"))
    assert limited.value.defer == 60.0
    assert (await warehouse.stop("k", stop_data("SO5001"))).status == "done"
    assert len(world.fake.question_log) == 1


async def test_jushuitan_bad_sign_and_no_permission_are_permanent(world: JstWorld) -> None:
    world.fake.add_order("SO6001")
    wrong = world.warehouse(app_secret=SecretStr("not-the-secret"))
    with pytest.raises(PermanentError, match="验签失败"):
        await wrong.stop("k", stop_data("SO6001"))
    assert world.fake.bad_signatures == 1
    world.fake.no_permission.add(QUESTIONS)
    with pytest.raises(PermanentError, match="没有接口权限"):
        await world.warehouse().stop("k", stop_data("SO6001"))


async def test_jushuitan_fake_checks_the_form(world: JstWorld) -> None:
    form = world.warehouse().client.form(OrderQueryBiz(so_ids=["X"]), world.fake.access_token)
    assert set(form) == {
        "access_token",
        "app_key",
        "biz",
        "charset",
        "timestamp",
        "version",
        "sign",
    }
    async with world.session.post(world.url + ORDERS, data={**form, "sign": "0" * 32}) as resp:
        assert (await resp.json())["code"] == 10
    stale = {**form, "timestamp": str(int(world.clock.now().timestamp()) - 3600)}
    async with world.session.post(
        world.url + ORDERS, data=signing.signed("jst-test-secret", stale)
    ) as resp:
        assert (await resp.json())["code"] == 140


# -- the after-sale source -----------------------------------------------------------------


async def test_jushuitan_refunds_pull_pages_through_a_window(world: JstWorld) -> None:
    now = world.clock.now()
    for i in range(60):
        world.fake.add_refund(
            outer_as_id=f"PLAT{i}",
            so_id=f"SO7{i}",
            modified=now - timedelta(hours=2, seconds=i),
            refund="12.50",
            shop_id=555,
        )
    world.fake.add_refund(
        outer_as_id="EXCH", so_id="SO7X", type="换货", modified=now - timedelta(hours=1)
    )
    world.fake.add_refund(
        outer_as_id="DONE",
        so_id="SO7D",
        shop_status="SUCCESS",
        order_status="Sent",
        modified=now - timedelta(hours=1),
    )
    source = JushuitanRefunds(
        world.settings(shops={"555": "dy"}), world.session, world.tokens, world.clock
    )
    first = await source.pull(None, now)
    assert first.more
    assert first.fetched == 50
    assert json.loads(first.cursor)["page"] == 2
    second = await source.pull(first.cursor, now)
    assert not second.more
    assert second.fetched == 12
    events = first.events + second.events
    requested = [e for e in events if e["type"] == "refund.requested"]
    assert {e["data"]["refund_id"] for e in requested} == {f"PLAT{i}" for i in range(60)} | {"DONE"}
    sample = next(e for e in requested if e["data"]["refund_id"] == "PLAT0")
    assert sample["shop"] == "dy"
    assert sample["data"]["amount"] == "12.50"
    assert sample["data"]["kind"] == "refund_only"
    [closed] = [e for e in events if e["type"] == "refund.closed"]
    assert closed["data"] == {
        "refund_id": "DONE",
        "status": "success",
        "detail": "聚水潭显示平台退款成功",
    }
    for event in events:
        parse_event(event)
    # The next window starts the overlap before now, on page 1.
    saved = json.loads(second.cursor)
    assert saved["page"] == 1
    assert saved["begin"] == (now - timedelta(seconds=300)).isoformat()
    assert all(c["page_size"] == 50 for c in world.fake.calls(REFUNDS))


async def test_jushuitan_refunds_rows_leaving_the_window_while_paging_skip_nothing(
    world: JstWorld,
) -> None:
    """Three rows of page 1 are modified between page 1 and page 2: they leave the window
    (its end is fixed) and the rest move forward. The pull reads again from the page they
    moved into; the three come in the next window."""
    now = world.clock.now()
    refunds = [
        world.fake.add_refund(
            outer_as_id=f"M{i:02d}",
            so_id=f"SO8{i}",
            modified=now - timedelta(hours=1, seconds=100 - i),
        )
        for i in range(60)
    ]
    source = JushuitanRefunds(world.settings(), world.session, world.tokens, world.clock)
    seen: set[str] = set()
    page = await source.pull(None, now)
    seen |= {e["data"]["refund_id"] for e in page.events}
    world.clock.advance(timedelta(seconds=30))
    for moved in refunds[:3]:
        moved.modified = world.clock.now()
    cursor, rounds = page.cursor, 0
    while True:
        rounds += 1
        page = await source.pull(cursor, world.clock.now())
        seen |= {e["data"]["refund_id"] for e in page.events}
        cursor = page.cursor
        if not page.more:
            break
    assert rounds == 3  # page 2 (57 rows left: back to page 1), page 1, page 2
    world.clock.advance(timedelta(minutes=2))
    page = await source.pull(cursor, world.clock.now())
    seen |= {e["data"]["refund_id"] for e in page.events}
    assert seen == {f"M{i:02d}" for i in range(60)}


async def test_jushuitan_refunds_follow_the_shop_connectors_ids_and_leave_their_shops(
    world: JstWorld,
) -> None:
    now = world.clock.now()
    world.fake.add_refund(outer_as_id="KS1", so_id="SO91", shop_id=701, question_type="质量问题")
    world.fake.add_refund(outer_as_id="DY1", so_id="SO92", shop_id=702)
    source = JushuitanRefunds(
        world.settings(shops={"701": "ks-shop", "702": "dy-shop"}),
        world.session,
        world.tokens,
        world.clock,
        platforms={"ks-shop": "kuaishou", "dy-shop": "douyin"},
        skip_shops=frozenset({"dy-shop"}),
    )
    page = await source.pull(None, now)
    [event] = page.events
    assert event["shop"] == "ks-shop"
    assert event["platform"] == "kuaishou"
    stamp = now.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")
    assert event["id"] == f"kuaishou:ks-shop:KS1:jst{stamp}:refund.requested"
    assert event["data"]["reason"] == "质量问题"
    assert page.fetched == 2


async def test_jushuitan_refund_window_is_at_most_seven_days(world: JstWorld) -> None:
    warehouse = world.warehouse()
    now = world.clock.now()
    with pytest.raises(ValueError, match=r"0\.\.7 days"):
        await warehouse.client.refunds(now - timedelta(days=8), now)
    wide = RefundQueryBiz(modified_begin="2026-11-01 00:00:00", modified_end="2026-11-09 00:00:00")
    with pytest.raises(JushuitanApiError, match="七天"):
        await warehouse.client.call(REFUNDS, wide)


# -- settings --------------------------------------------------------------------------------


def test_jushuitan_config_problems_name_each_missing_key() -> None:
    assert config_problems(WarehouseSettings()) == []
    problems = config_problems(WarehouseSettings(connector="jushuitan"))
    text = "\n".join(problems)
    assert "warehouse.app_key" in text
    assert "REFUNDOPS_WAREHOUSE__APP_SECRET" in text
    # No tokens at all is fine: the first ones are obtained (getInitToken or connect --code).
    assert len(problems) == 2
    half = WarehouseSettings(
        connector="jushuitan",
        app_key="k",
        app_secret=SecretStr("s"),
        access_token=SecretStr("a"),
    )
    [missing] = config_problems(half)
    assert "REFUNDOPS_WAREHOUSE__REFRESH_TOKEN" in missing
    [nothing_to_pull] = config_problems(WarehouseSettings(pull_after_sales=True))
    assert 'connector = "jushuitan"' in nothing_to_pull
