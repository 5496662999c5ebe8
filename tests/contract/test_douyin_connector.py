"""DouyinConnector against FakeDouyin: signed calls, tokens, messages → events, the pull
catch-up, agree/refuse through afterSale/operate, and the platform intercept."""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from handlers.clock import FakeClock
from handlers.errors import PermanentError, RetryableError
from handlers.ports import MANUAL
from handlers.schema import parse_event
from integrations.douyin import signing
from integrations.douyin.connector import MANUAL_APPROVE, MANUAL_MESSAGE, DouyinConnector
from integrations.douyin.fake import FakeDouyin
from integrations.douyin.models import OperateItem
from integrations.shop.connector import (
    AuthorizationError,
    MalformedMessageError,
    PlatformMessage,
    Tokens,
    UnknownMessageError,
)
from integrations.shop.settings import ShopSettings
from tests.support.fakes import serve

APP_KEY = "7000000000000000001"
APP_SECRET = "demo_secret_0123456789"
START = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


class MemoryTokens:
    def __init__(self, tokens: Tokens | None = None) -> None:
        self.tokens = tokens
        self.saved: list[Tokens] = []

    async def load(self) -> Tokens | None:
        return self.tokens

    async def save(self, tokens: Tokens) -> None:
        self.tokens = tokens
        self.saved.append(tokens)

    def lock(self) -> contextlib.AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()


class World:
    def __init__(
        self, fake: FakeDouyin, url: str, session: aiohttp.ClientSession, clock: FakeClock
    ) -> None:
        self.fake, self.url, self.session, self.clock = fake, url, session, clock
        self.tokens = MemoryTokens()

    def shop(self, **extra: Any) -> ShopSettings:
        values: dict[str, Any] = {
            "id": "dy1",
            "platform": "douyin",
            "connector": "douyin",
            "app_key": APP_KEY,
            "app_secret": SecretStr(APP_SECRET),
            "shop_id": self.fake.shop_id,
            "api_base": self.url,
            "timeout_s": 0.3,
            "pull_overlap_s": 300,
        }
        return ShopSettings.model_validate(values | extra)

    def connector(self, **extra: Any) -> DouyinConnector:
        address = extra.pop("return_address_id", None)
        return DouyinConnector(
            self.shop(**extra), self.session, self.tokens, self.clock, return_address_id=address
        )


@pytest.fixture
async def world() -> AsyncIterator[World]:
    clock = FakeClock(START)
    fake = FakeDouyin(APP_KEY, APP_SECRET, now=clock.now)
    async with serve(fake.app()) as url, aiohttp.ClientSession() as session:
        yield World(fake, url, session, clock)


def as_message(element: dict[str, str]) -> PlatformMessage:
    return PlatformMessage(id=element["msg_id"], topic=element["tag"], body=dict(element))


def checked(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for event in events:
        parse_event(event)
    return events


async def translate_pending(world: World, connector: DouyinConnector) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for element in world.fake.pending_messages():
        events += await connector.translate(as_message(element))
    world.fake._pending.clear()
    return checked(events)


async def pull_all(connector: DouyinConnector, now: datetime) -> list[dict[str, Any]]:
    page = await connector.pull(None, now)
    events = list(page.events)
    while page.more:
        page = await connector.pull(page.cursor, now)
        events += page.events
    return events


# -- the wire -------------------------------------------------------------------------


async def test_douyin_calls_are_signed_and_self_authorised(world: World) -> None:
    refund = world.fake.new_aftersale()
    await world.connector().translate(as_message(world.fake.pending_messages()[0]))
    assert world.fake.bad_signatures == 0
    create, detail = world.fake.requests[0], world.fake.requests[1]
    assert create["path"] == "token/create"
    assert create["params"] == {"code": "", "grant_type": "authorization_self", "shop_id": 123456}
    assert "access_token" not in create["query"]
    assert detail["query"]["method"] == "afterSale.Detail"
    assert detail["query"]["sign_method"] == "hmac-sha256"
    assert detail["params"] == {"after_sale_id": refund}
    saved = world.tokens.saved[-1]
    assert detail["query"]["access_token"] == saved.access_token
    assert saved.expires_at == START + timedelta(days=7)


async def test_douyin_md5_signing_is_accepted(world: World) -> None:
    world.fake.new_aftersale()
    await world.connector(sign_method="md5").translate(as_message(world.fake.pending_messages()[0]))
    assert world.fake.bad_signatures == 0
    assert world.fake.requests[-1]["query"]["sign_method"] == "md5"


async def test_douyin_a_wrong_secret_is_a_clear_permanent_error(world: World) -> None:
    world.fake.new_aftersale()
    world.tokens.tokens = Tokens(world.fake.grant().access_token)
    with pytest.raises(PermanentError, match="签名校验失败"):
        await world.connector(app_secret=SecretStr("wrong")).reject_reasons("1")
    assert world.fake.bad_signatures == 1


async def test_douyin_an_ip_off_the_allow_list_is_named(world: World) -> None:
    world.fake.allowed_ips = {"10.0.0.1"}
    with pytest.raises(PermanentError, match="IP 白名单"):
        await world.connector().reject_reasons("1")


@pytest.mark.parametrize("how", ["5xx", "20000", "timeout"])
async def test_douyin_transient_failures_are_retryable(world: World, how: Any) -> None:
    world.tokens.tokens = Tokens(world.fake.grant().access_token)
    world.fake.fail_next = [how]
    with pytest.raises(RetryableError):
        await world.connector().reject_reasons("1")
    assert len(await world.connector().reject_reasons("1")) == 3


# -- tokens ---------------------------------------------------------------------------


async def test_douyin_token_is_refreshed_before_it_runs_out(world: World) -> None:
    old = world.fake.grant(ttl_s=3600)
    world.tokens.tokens = Tokens(old.access_token, old.refresh_token, START + timedelta(hours=1))
    world.clock.advance(minutes=55)
    await world.connector().reject_reasons("1")
    assert [r["path"] for r in world.fake.requests] == [
        "token/refresh",
        "afterSale/rejectReasonCodeList",
    ]
    assert world.fake.requests[0]["params"] == {
        "grant_type": "refresh_token",
        "refresh_token": old.refresh_token,
    }
    assert world.tokens.tokens is not None
    assert world.tokens.tokens.access_token != old.access_token


async def test_douyin_an_expired_token_is_refreshed_once_and_the_call_repeated(
    world: World,
) -> None:
    old = world.fake.grant(ttl_s=60)
    world.tokens.tokens = Tokens(old.access_token, old.refresh_token, None)
    world.clock.advance(minutes=5)
    assert len(await world.connector().reject_reasons("1")) == 3
    paths = [r["path"] for r in world.fake.requests]
    assert paths == [
        "afterSale/rejectReasonCodeList",
        "token/refresh",
        "afterSale/rejectReasonCodeList",
    ]


async def test_douyin_a_revoked_grant_is_an_authorization_error(world: World) -> None:
    old = world.fake.grant()
    world.tokens.tokens = Tokens(old.access_token, old.refresh_token, None)
    world.fake.revoke_all()
    with pytest.raises(AuthorizationError) as raised:
        await world.connector(shop_id="").reject_reasons("1")
    assert raised.value.shop == "dy1"


async def test_douyin_configured_secrets_are_used_when_the_store_is_empty(world: World) -> None:
    made = world.fake.grant()
    connector = world.connector(access_token=SecretStr(made.access_token))
    await connector.reject_reasons("1")
    assert world.fake.requests[0]["query"]["access_token"] == made.access_token


# -- messages → events ----------------------------------------------------------------


async def test_douyin_refund_created_is_a_complete_snapshot(world: World) -> None:
    refund = world.fake.new_aftersale(
        aftersale_type=1,
        amount=1990,
        post_amount=100,
        pay_amount=5000,
        tracking_no="YT100",
        company_code="yuantong",
    )
    connector = world.connector()
    (event,) = await translate_pending(world, connector)
    made = world.fake.aftersales[refund]
    assert event["id"] == f"douyin:dy1:{refund}:{made.update_time}:refund.requested"
    assert event["type"] == "refund.requested"
    assert event["occurred_at"].endswith("+08:00")
    data = event["data"]
    assert data["order_id"] == made.order_id
    assert (data["kind"], data["amount"], data["order_amount"]) == ("refund_only", "20.90", "50.00")
    assert data["shipping"] == {"status": "shipped", "carrier": "yuantong", "tracking_no": "YT100"}
    assert (
        data["deadline_at"]
        == datetime.fromtimestamp(made.status_deadline, UTC)
        .astimezone(datetime.fromisoformat(event["occurred_at"]).tzinfo)
        .isoformat()
    )
    assert data["platform_status"] == 6
    assert data["platform_version"] == made.update_time
    assert data["reject_reasons"][0] == {"code": "1", "text": "买家已收到货，商品无质量问题"}
    assert data["back_office_url"].endswith(f"aftersale_id={refund}")
    assert json.loads(data["platform_message"]["data"])["aftersale_id"] == int(refund)


async def test_douyin_kinds_follow_the_aftersale_type(world: World) -> None:
    kinds = {}
    for t in (0, 1, 2, 6, 3, 7, 8):
        world.fake.new_aftersale(aftersale_type=t)
        kinds[t] = [e["data"]["kind"] for e in await translate_pending(world, world.connector())]
    assert kinds == {
        0: ["return_refund"],
        1: ["refund_only"],
        2: ["refund_only"],
        6: ["price_diff"],
        3: [],
        7: [],
        8: [],
    }


async def test_douyin_success_and_close_end_the_case(world: World) -> None:
    connector = world.connector()
    ok, gone, shut = (world.fake.new_aftersale() for _ in range(3))
    world.fake.succeed(ok)
    world.fake.close(gone, by_buyer=True)
    world.fake.close(shut, by_buyer=False)
    world.fake._pending = [m for m in world.fake.pending_messages() if m["tag"] != "200"]
    events = await translate_pending(world, connector)
    endings = {
        e["data"]["refund_id"]: (e["type"], e["data"]["status"])
        for e in events
        if e["type"] != "refund.requested"
    }
    assert endings == {
        ok: ("refund.closed", "success"),
        gone: ("refund.cancelled", "closed"),
        shut: ("refund.closed", "closed"),
    }
    # The snapshot comes first, so that an after-sale never seen still makes a case.
    assert [e["type"] for e in events if e["data"]["refund_id"] == ok] == [
        "refund.requested",
        "refund.closed",
    ]


async def test_douyin_buyer_return_and_deadline_change(world: World) -> None:
    connector = world.connector(return_address_id=9)
    refund = world.fake.new_aftersale(aftersale_type=0)
    await connector.call("approve_refund", "k1", {"refund_id": refund})
    world.fake._pending.clear()
    world.fake.buyer_returns(refund, tracking_no="SF200", company_code="shunfeng")
    world.fake.change_deadline(refund, int((START + timedelta(days=5)).timestamp()))
    events = await translate_pending(world, connector)
    updated = [e for e in events if e["type"] == "refund.updated"]
    assert updated[0]["data"]["return_tracking"] == {"carrier": "shunfeng", "tracking_no": "SF200"}
    assert updated[0]["data"]["return_status"] == "shipped"
    last = [e for e in events if e["type"] == "refund.requested"][-1]
    assert (
        last["data"]["deadline_at"]
        == (START + timedelta(days=5))
        .astimezone(datetime.fromisoformat(last["occurred_at"]).tzinfo)
        .isoformat()
    )
    assert len({e["id"] for e in events}) == len(events)


async def test_douyin_trade_logistics_change_is_tracking(world: World) -> None:
    refund = world.fake.new_aftersale()
    world.fake._pending.clear()
    world.fake.ship(refund, tracking_no="ZT300", company_code="zhongtong")
    (event,) = await translate_pending(world, world.connector())
    assert event["type"] == "shipment.tracking"
    assert event["data"] | {"at": None} == {
        "carrier": "zhongtong",
        "tracking_no": "ZT300",
        "order_id": world.fake.aftersales[refund].order_id,
        "status": "created",
        "description": "商家发货物流信息变更",
        "at": None,
    }


async def test_douyin_unknown_and_unreadable_messages(world: World) -> None:
    connector = world.connector()
    with pytest.raises(UnknownMessageError):
        await connector.translate(
            PlatformMessage("m1", "999", {"tag": "999", "msg_id": "m1", "data": "{}"})
        )
    with pytest.raises(MalformedMessageError):
        await connector.translate(
            PlatformMessage("m2", "200", {"tag": "200", "msg_id": "m2", "data": "{not json"})
        )
    with pytest.raises(MalformedMessageError):
        await connector.translate(
            PlatformMessage("m3", "200", {"tag": "200", "msg_id": "m3", "data": "{}"})
        )


async def test_douyin_push_and_pull_of_one_state_give_one_event_id(world: World) -> None:
    connector = world.connector()
    world.fake.new_aftersale()
    pushed = await translate_pending(world, connector)
    pulled = await pull_all(connector, world.clock.now() + timedelta(seconds=1))
    assert {e["id"] for e in pushed} == {e["id"] for e in pulled}


# -- push delivery --------------------------------------------------------------------


async def test_douyin_push_is_signed_and_redelivered_until_acked(world: World) -> None:
    seen: list[tuple[bytes, str]] = []

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append((body, request.headers["event-sign"]))
        if len(seen) == 1:
            return web.json_response({"code": 1, "msg": "fail"})
        return web.json_response({"code": 0, "msg": "success"})

    app = web.Application()
    app.router.add_post("/push", receive)
    world.fake.new_aftersale()
    world.fake.new_aftersale()
    async with serve(app) as url:
        assert await world.fake.flush(url + "/push", session=world.session)
    assert [d.ok for d in world.fake.deliveries] == [False, True]
    body, sign = seen[-1]
    assert signing.verify_event(APP_KEY, APP_SECRET, body, sign)
    assert [m["tag"] for m in json.loads(body)] == ["200", "200"]
    assert world.fake.pending_messages() == []


# -- pull -----------------------------------------------------------------------------


async def test_douyin_pull_pages_through_bounded_windows(world: World) -> None:
    base = int(START.timestamp())
    for n in range(250):
        world.fake.new_aftersale(update_time=base - 3 * 3600 + n * 10, message=False)
    connector = world.connector(pull_start_h=4)
    now = START
    page = await connector.pull(None, now)
    calls = world.fake.calls("afterSale/List")
    assert calls[0]["update_end_time"] - calls[0]["update_start_time"] == 3600
    assert calls[0]["order_by"] == ["update_time asc"]
    assert calls[0]["page"] == 0
    assert calls[0]["size"] == 100
    seen = {e["data"]["refund_id"] for e in page.events}
    cursor, rounds = page.cursor, 1
    while page.more:
        page = await connector.pull(cursor, now)
        seen |= {e["data"]["refund_id"] for e in page.events}
        cursor, rounds = page.cursor, rounds + 1
    assert seen == set(world.fake.aftersales)
    starts = [c["update_start_time"] for c in world.fake.calls("afterSale/List") if c["page"] == 0]
    assert all(b - a == 3600 - 300 for a, b in itertools.pairwise(starts))
    assert rounds < 20


async def test_douyin_pull_catches_up_ten_thousand(world: World) -> None:
    base = int(START.timestamp())
    for n in range(10_000):
        world.fake.new_aftersale(update_time=base - 24 * 3600 + n * 8, message=False)
    connector = world.connector()
    started = time.monotonic()
    page = await connector.pull(None, START)
    seen = {e["data"]["refund_id"] for e in page.events}
    calls = 1
    while page.more:
        page = await connector.pull(page.cursor, START)
        seen |= {e["data"]["refund_id"] for e in page.events}
        calls += 1
    took = time.monotonic() - started
    print(f"抖店 pull: 10000 after-sales in {calls} calls, {took:.1f}s")
    assert len(seen) == 10_000
    assert took < 60


# -- agree / refuse -------------------------------------------------------------------


async def test_douyin_approve_refund_only_uses_201_with_the_version(world: World) -> None:
    refund = world.fake.new_aftersale(aftersale_type=1)
    version = world.fake.aftersales[refund].update_time
    result = await world.connector().call("approve_refund", "o1", {"refund_id": refund})
    assert result is not None
    assert result.status == "done"
    (sent,) = world.fake.calls("afterSale/operate")
    assert sent == {"type": 201, "items": [{"aftersale_id": refund, "update_time": version}]}
    assert world.fake.aftersales[refund].status == 12
    again = await world.connector().call("approve_refund", "o1", {"refund_id": refund})
    assert again is not None
    assert again.status == "done"
    assert len(world.fake.calls("afterSale/operate")) == 1


@pytest.mark.parametrize(("kind", "op_type"), [(2, 401), (0, 101)])
async def test_douyin_approve_picks_the_type_for_the_kind(
    world: World, kind: int, op_type: int
) -> None:
    refund = world.fake.new_aftersale(aftersale_type=kind)
    result = await world.connector(return_address_id=77).call(
        "approve_refund", "o", {"refund_id": refund}
    )
    assert result is not None
    assert result.status == "done"
    assert world.fake.calls("afterSale/operate")[0]["type"] == op_type


async def test_douyin_a_stale_version_is_read_again_once(world: World) -> None:
    refund = world.fake.new_aftersale(aftersale_type=1)
    connector = world.connector()
    original = connector.client.aftersale_detail
    calls = 0

    async def detail_then_modify(aftersale_id: str) -> Any:
        nonlocal calls
        calls += 1
        answer = await original(aftersale_id)
        if calls == 1:
            world.fake.modify(refund, amount=900)
        return answer

    connector.client.aftersale_detail = detail_then_modify  # type: ignore[method-assign]
    result = await connector.call("approve_refund", "o", {"refund_id": refund})
    assert result is not None
    assert result.status == "done"
    assert len(world.fake.calls("afterSale/operate")) == 2


async def test_douyin_11001_and_wrong_state_are_manual(world: World) -> None:
    manual = world.fake.new_aftersale(aftersale_type=1)
    world.fake.manual_ids.add(manual)
    result = await world.connector().call("approve_refund", "o", {"refund_id": manual})
    assert result is not None
    assert (result.status, result.detail) == (MANUAL, MANUAL_APPROVE)
    returning = world.fake.new_aftersale(aftersale_type=0)
    world.fake.aftersales[returning].status = 8
    result = await world.connector().call("approve_refund", "o", {"refund_id": returning})
    assert result is not None
    assert result.status == MANUAL
    assert "待商家发货" in result.detail


async def test_douyin_reject_sends_a_reason_code(world: World) -> None:
    refund = world.fake.new_aftersale(aftersale_type=1)
    data = {"refund_id": refund, "reason": "退回商品影响二次销售，拒绝"}
    result = await world.connector().call("reject_refund", "r1", data)
    assert result is not None
    assert result.status == "done"
    (sent,) = world.fake.calls("afterSale/operate")
    item = sent["items"][0]
    assert sent["type"] == 202
    # The matching reason needs evidence we cannot upload; the first that needs none is sent.
    assert item["reject_reason_code"] == 1
    assert item["remark"] == "退回商品影响二次销售，拒绝"
    assert world.fake.aftersales[refund].status == 27
    coded = world.fake.new_aftersale(aftersale_type=0)
    await world.connector().call(
        "reject_refund", "r2", {"refund_id": coded, "reason": "x", "reason_code": "2"}
    )
    assert world.fake.calls("afterSale/operate")[-1]["items"][0]["reject_reason_code"] == 2
    assert world.fake.calls("afterSale/operate")[-1]["type"] == 102


async def test_douyin_operate_takes_twenty_items_all_or_nothing(world: World) -> None:
    ids = [world.fake.new_aftersale(aftersale_type=1) for _ in range(21)]
    connector = world.connector()
    items = [OperateItem(aftersale_id=i) for i in ids]
    with pytest.raises(ValueError, match="20"):
        await connector.client.operate(201, items)
    world.fake.aftersales[ids[5]].status = 12
    with pytest.raises(PermanentError):
        await connector.client.operate(201, items[:20])
    assert all(world.fake.aftersales[i].status == 6 for i in ids if i != ids[5])
    del items[5]
    await connector.client.operate(201, items[:20])
    assert sum(world.fake.aftersales[i].status == 12 for i in ids) == 21


async def test_douyin_other_actions(world: World) -> None:
    connector = world.connector()
    message = await connector.call("send_buyer_message", "m", {"refund_id": "1", "text": "您好"})
    assert message is not None
    assert (message.status, message.detail) == (MANUAL, MANUAL_MESSAGE)
    assert await connector.call("stop_shipment", "s", {}) is None
    assert await connector.call("notify_payout", "n", {}) is None


# -- intercept ------------------------------------------------------------------------


async def test_douyin_intercept_and_its_result(world: World) -> None:
    refund = world.fake.new_aftersale(aftersale_type=1, tracking_no="YT9", company_code="yuantong")
    connector = world.connector()
    data = {"carrier": "yuantong", "tracking_no": "YT9", "refund_ids": [refund]}
    answer = await connector.intercept("i1", data)
    assert answer is not None
    assert answer.status == "accepted"
    assert world.fake.calls("afterSale/applyLogisticsIntercept") == [
        {
            "after_sale_id": int(refund),
            "op_from": 1,
            "intercept_targets": [{"company_code": "yuantong", "tracking_no": "YT9"}],
        }
    ]
    world.fake.parcel_returning(refund)
    pulled = await pull_all(connector, world.clock.now() + timedelta(seconds=5))
    result = [e for e in checked(pulled) if e["type"] == "intercept.result"]
    assert result[0]["data"]["result"] == "intercepted"
    assert result[0]["data"]["tracking_no"] == "YT9"


async def test_douyin_intercept_refusal_and_no_refund(world: World) -> None:
    refund = world.fake.new_aftersale(aftersale_type=1, tracking_no="YT9", company_code="yuantong")
    world.fake.intercept_refusals["YT9"] = (5, "该快递公司不支持拦截")
    connector = world.connector()
    answer = await connector.intercept(
        "i", {"carrier": "yuantong", "tracking_no": "YT9", "refund_ids": [refund]}
    )
    assert answer is not None
    assert (answer.status, answer.detail) == (
        "failed",
        "该快递公司不支持拦截",
    )
    assert (
        await connector.intercept(
            "i", {"carrier": "yuantong", "tracking_no": "YT9", "refund_ids": []}
        )
        is None
    )
