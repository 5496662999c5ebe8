"""TaobaoConnector against FakeTaobao: messages and pulls become valid envelopes with the same
ids, writes follow TOP's rules (review, SMS code, versions, proofs, byte limits), and tokens
are refreshed once under the store's lock."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from handlers.clock import FakeClock
from handlers.errors import PermanentError, RetryableError
from handlers.ports import MANUAL
from handlers.schema import parse_event
from integrations.shop.connector import (
    VERIFY,
    AuthorizationError,
    MalformedMessageError,
    PlatformMessage,
    UnknownMessageError,
)
from integrations.taobao.client import BEIJING, TopClient
from integrations.taobao.fake import FakeTaobao
from tests.support.taobao import ACCESS, APP_KEY, APP_SECRET, Rig, taobao_rig


@pytest.fixture
async def tmall(session: aiohttp.ClientSession, clock: FakeClock) -> AsyncIterator[Rig]:
    async with taobao_rig(session, clock, "tmall") as made:
        yield made


def last_message(fake: FakeTaobao) -> PlatformMessage:
    queued = list(fake.queue.values())[-1]
    body = {"id": queued.id, "topic": queued.topic, "content": queued.content, "nick": queued.nick}
    return PlatformMessage(str(queued.id), queued.topic, body)


async def pull_all(rig: Rig, cursor: str | None) -> tuple[list[dict[str, Any]], str]:
    events: list[dict[str, Any]] = []
    more = True
    while more:
        page = await rig.connector.pull(cursor, rig.clock.now())
        events.extend(page.events)
        cursor, more = page.cursor, page.more
    assert cursor is not None
    return events, cursor


def approve(refund_id: str, amount: str = "19.90", **extra: Any) -> dict[str, Any]:
    return {"refund_id": refund_id, "order_id": "", "amount": amount, **extra}


async def test_refund_created_message_becomes_a_valid_requested_snapshot(rig: Rig) -> None:
    refund_id = rig.fake.new_refund(amount_fen=1990, order_fen=5970)
    (event,) = await rig.connector.translate(last_message(rig.fake))
    parse_event(event)
    refund = rig.fake.refunds[int(refund_id)]
    assert (
        event["id"]
        == f"taobao:tb1:{refund_id}:{refund.modified.astimezone(BEIJING):%Y%m%d%H%M%S}:refund.requested"
    )
    assert event["occurred_at"].endswith("+08:00")
    data = event["data"]
    assert (data["kind"], data["amount"], data["order_amount"]) == ("refund_only", "19.90", "59.70")
    assert data["order_id"] == str(refund.tid)
    assert data["shipping"]["status"] == "shipped"
    assert data["platform_version"] == str(refund.version)
    assert data["deadline_at"].endswith("+08:00")
    assert data["reject_reasons"][0] == {"code": "1001", "text": "买家未举证/举证无效"}
    assert data["back_office_url"].endswith(f"disputeId={refund_id}")
    assert data["platform_message"]["refund_id"] == int(refund_id)


async def test_push_and_pull_of_one_state_share_the_event_id(rig: Rig) -> None:
    rig.fake.new_refund()
    pushed = await rig.connector.translate(last_message(rig.fake))
    pulled, _ = await pull_all(rig, None)
    assert [e["id"] for e in pulled] == [e["id"] for e in pushed]
    assert "platform_message" not in pulled[0]["data"]


async def test_return_goods_gives_snapshot_and_return_tracking(rig: Rig) -> None:
    refund_id = rig.fake.new_refund(bill_type="return_bill")
    rig.fake.agree_return(refund_id)
    rig.fake.buyer_returns_goods(refund_id, "中通快递", "ZT7788")
    requested, updated = await rig.connector.translate(last_message(rig.fake))
    assert requested["data"]["kind"] == "return_refund"
    assert updated["type"] == "refund.updated"
    assert updated["data"]["return_tracking"] == {"carrier": "中通快递", "tracking_no": "ZT7788"}
    assert updated["data"]["return_status"] == "shipped"
    for event in (requested, updated):
        parse_event(event)


async def test_success_and_closed_messages_end_the_case(rig: Rig) -> None:
    won = rig.fake.new_refund()
    rig.fake.succeed(won)
    (ended,) = await rig.connector.translate(last_message(rig.fake))
    assert (ended["type"], ended["data"]["status"]) == ("refund.closed", "success")
    lost = rig.fake.new_refund()
    rig.fake.close(lost)
    (closed,) = await rig.connector.translate(last_message(rig.fake))
    assert closed["data"] == {"refund_id": lost, "status": "closed", "detail": "淘宝退款已关闭"}
    parse_event(closed)


async def test_replace_bill_means_nothing(rig: Rig) -> None:
    rig.fake.new_refund(bill_type="replace_bill")
    assert await rig.connector.translate(last_message(rig.fake)) == []


async def test_buyer_refund_message_becomes_buyer_message_and_seller_ones_do_not(rig: Rig) -> None:
    refund_id = rig.fake.new_refund()
    rig.fake.buyer_says(refund_id, "快点处理谢谢")
    (said,) = await rig.connector.translate(last_message(rig.fake))
    parse_event(said)
    assert (said["type"], said["data"]["text"]) == ("buyer.message", "快点处理谢谢")
    rig2 = rig.fake.refunds[int(refund_id)]
    rig2.notes.clear()
    result = await rig.connector.call(
        "send_buyer_message", "k1", {"refund_id": refund_id, "text": "已处理"}
    )
    assert result is not None
    assert result.status == "done"
    assert await rig.connector.translate(last_message(rig.fake)) == []


async def test_unknown_and_unreadable_messages(rig: Rig) -> None:
    with pytest.raises(UnknownMessageError):
        await rig.connector.translate(PlatformMessage("1", "taobao_trade_TradeCreate", {}))
    with pytest.raises(MalformedMessageError):
        await rig.connector.translate(
            PlatformMessage("2", "taobao_refund_RefundCreated", {"content": "{not json"})
        )
    with pytest.raises(MalformedMessageError):
        await rig.connector.translate(
            PlatformMessage("3", "taobao_refund_RefundCreated", {"content": json.dumps({"x": 1})})
        )
    quiet = PlatformMessage("4", "taobao_refund_RefundableMarked", {"content": "{}"})
    assert await rig.connector.translate(quiet) == []


async def test_pull_pages_with_has_next_and_catches_up_ten_thousand(
    rig: Rig, clock: FakeClock
) -> None:
    start = clock.now()
    for _ in range(10_000):
        refund_id = rig.fake.new_refund(publish=False)
        rig.fake.refunds[int(refund_id)].status = "SUCCESS"
        clock.advance(seconds=8)
    began = time.perf_counter()
    cursor: str | None = None
    ids: set[str] = set()
    calls = 0
    more = True
    while more:
        page = await rig.connector.pull(cursor, clock.now())
        cursor, more = page.cursor, page.more
        ids.update(e["data"]["refund_id"] for e in page.events if e["type"] == "refund.closed")
        calls += 1
        assert calls < 200
    elapsed = time.perf_counter() - began
    assert len(ids) == 10_000
    sizes = {c["page_size"] for c in rig.fake.calls("taobao.refunds.receive.get")}
    assert sizes == {"100"}
    print(f"10,000 refunds over {clock.now() - start} in {calls} pulls, {elapsed:.1f}s")
    assert elapsed < 60


async def test_pull_windows_overlap_and_start_back_from_now(rig: Rig, clock: FakeClock) -> None:
    _, cursor = await pull_all(rig, None)
    windows = rig.fake.calls("taobao.refunds.receive.get")
    assert windows[0]["start_modified"] == "2026-11-22 10:00:00"
    assert windows[-1]["end_modified"] == "2026-11-23 10:00:00"
    assert {(w["use_has_next"], w["page_no"]) for w in windows} == {("true", "1")}
    clock.advance(minutes=10)
    page = await rig.connector.pull(cursor, clock.now())
    assert not page.more
    last = rig.fake.calls("taobao.refunds.receive.get")[-1]
    assert last["start_modified"] == "2026-11-23 09:55:00"
    assert last["end_modified"] == "2026-11-23 10:10:00"


async def test_approve_taobao_agrees_once_and_repeats_are_done(rig: Rig) -> None:
    refund_id = rig.fake.new_refund()
    result = await rig.connector.call("approve_refund", "k1", approve(refund_id))
    assert result is not None
    assert result.status == "done"
    (agree,) = rig.fake.calls("taobao.rp.refunds.agree")
    refund = rig.fake.refunds[int(refund_id)]
    assert agree["refund_infos"].startswith(f"{refund_id}|1990|")
    assert refund.status == "SUCCESS"
    again = await rig.connector.call("approve_refund", "k1", approve(refund_id))
    assert again is not None
    assert again.status == "done"
    assert len(rig.fake.calls("taobao.rp.refunds.agree")) == 1


async def test_tmall_reviews_before_agreeing(tmall: Rig) -> None:
    refund_id = tmall.fake.new_refund()
    result = await tmall.connector.call("approve_refund", "k1", approve(refund_id))
    assert result is not None
    assert result.status == "done"
    (review,) = tmall.fake.calls("taobao.rp.refund.review")
    assert (review["operator"], review["result"]) == ("好物旗舰店:小王", "true")
    (agree,) = tmall.fake.calls("taobao.rp.refunds.agree")
    assert agree["refund_infos"].endswith("|aftersale")


async def test_sms_code_is_asked_for_then_accepted_once(rig: Rig) -> None:
    rig.fake.require_sms = True
    refund_id = rig.fake.new_refund()
    asked = await rig.connector.call("approve_refund", "k1", approve(refund_id))
    assert asked is not None
    assert asked.status == VERIFY
    assert "验证码" in asked.detail
    (code,) = rig.fake.sms_sent
    wrong = await rig.connector.call(
        "approve_refund",
        "k1",
        approve(refund_id, sms_code="000000" if code != "000000" else "111111"),
    )
    assert wrong is not None
    assert wrong.status == VERIFY
    done = await rig.connector.call("approve_refund", "k1", approve(refund_id, sms_code=code))
    assert done is not None
    assert done.status == "done"


async def test_stale_version_is_reread_once(rig: Rig) -> None:
    refund_id = rig.fake.new_refund()
    original = rig.fake._agree_one
    raced = {"done": False}

    def race(info: list[str]) -> dict[str, Any]:
        if not raced["done"]:
            raced["done"] = True
            rig.fake._touch(rig.fake.refunds[int(refund_id)])
        return original(info)

    rig.fake._agree_one = race  # type: ignore[method-assign]
    result = await rig.connector.call("approve_refund", "k1", approve(refund_id))
    assert result is not None
    assert result.status == "done"
    assert len(rig.fake.calls("taobao.rp.refunds.agree")) == 2


async def test_amount_changed_or_over_limit_is_manual(rig: Rig) -> None:
    refund_id = rig.fake.new_refund(amount_fen=2500)
    changed = await rig.connector.call("approve_refund", "k1", approve(refund_id, "19.90"))
    assert changed is not None
    assert changed.status == MANUAL
    assert "25.00" in changed.detail
    big = rig.fake.new_refund(amount_fen=700000, order_fen=900000)
    over = await rig.connector.call("approve_refund", "k2", approve(big, "7000.00"))
    assert over is not None
    assert over.status == MANUAL
    assert "6000.00" in over.detail
    assert rig.fake.calls("taobao.rp.refunds.agree") == []


async def test_main_account_session_gets_a_manual_line(rig: Rig) -> None:
    rig.fake.sessions[ACCESS] = False
    refund_id = rig.fake.new_refund()
    result = await rig.connector.call("approve_refund", "k1", approve(refund_id))
    assert result is not None
    assert result.status == MANUAL
    assert "子账号" in result.detail


async def test_reject_picks_the_reason_and_is_idempotent(rig: Rig) -> None:
    refund_id = rig.fake.new_refund()
    data = {"refund_id": refund_id, "reason": "商品已影响二次销售", "amount": "19.90"}
    result = await rig.connector.call("reject_refund", "k1", data)
    assert result is not None
    assert result.status == "done"
    (refuse,) = rig.fake.calls("taobao.refund.refuse")
    assert refuse["refuse_reason_id"] == "1002"
    assert refuse["refund_version"]
    again = await rig.connector.call("reject_refund", "k1", data)
    assert again is not None
    assert again.status == "done"
    assert len(rig.fake.calls("taobao.refund.refuse")) == 1


async def test_tmall_reject_without_proof_is_manual(tmall: Rig) -> None:
    refund_id = tmall.fake.new_refund()
    result = await tmall.connector.call(
        "reject_refund", "k1", {"refund_id": refund_id, "reason": "x"}
    )
    assert result is not None
    assert result.status == MANUAL
    assert "凭证" in result.detail


async def test_buyer_message_limit_and_dedupe(rig: Rig) -> None:
    refund_id = rig.fake.new_refund()
    with pytest.raises(PermanentError, match="400 字节"):
        await rig.connector.call(
            "send_buyer_message", "k1", {"refund_id": refund_id, "text": "好" * 134}
        )
    data = {"refund_id": refund_id, "text": "好" * 133}
    for _ in range(2):
        result = await rig.connector.call("send_buyer_message", "k2", data)
        assert result is not None
        assert result.status == "done"
    assert len(rig.fake.calls("taobao.refund.message.add")) == 1


async def test_not_platform_actions_are_none(rig: Rig) -> None:
    assert await rig.connector.call("stop_shipment", "k", {}) is None
    assert await rig.connector.call("notify_payout", "k", {}) is None
    assert await rig.connector.intercept("k", {"refund_ids": []}) is None


async def test_intercept_accepts_and_fails_with_reason(rig: Rig) -> None:
    shipped = rig.fake.new_refund(shipped=True)
    answer = await rig.connector.intercept("k1", {"refund_ids": [shipped]})
    assert answer is not None
    assert answer.status == "accepted"
    assert rig.fake.refunds[int(shipped)].intercepted
    unshipped = rig.fake.new_refund(shipped=False)
    failed = await rig.connector.intercept("k2", {"refund_ids": [unshipped]})
    assert failed is not None
    assert failed.status == "failed"
    assert "不支持" in failed.detail


async def test_invalid_session_is_refreshed_once_and_saved(rig: Rig) -> None:
    rig.fake.sessions.pop(ACCESS)
    rig.fake.sessions["gone"] = True
    rig.fake.refresh_tokens = {"rt-initial": "gone"}
    refund_id = rig.fake.new_refund()
    await rig.connector.translate(last_message(rig.fake))
    assert len(rig.fake.calls("taobao.top.auth.token.refresh")) == 1
    (saved,) = rig.tokens.saves
    assert saved.access_token in rig.fake.sessions
    assert saved.expires_at is not None
    await rig.connector.reject_reasons(refund_id)
    assert len(rig.fake.calls("taobao.top.auth.token.refresh")) == 1


async def test_token_near_expiry_is_refreshed_before_the_call(rig: Rig, clock: FakeClock) -> None:
    from integrations.shop.connector import Tokens

    rig.tokens.tokens = Tokens(ACCESS, "rt-initial", clock.now() + timedelta(minutes=2))
    rig.fake.new_refund()
    await rig.connector.translate(last_message(rig.fake))
    refresh, *rest = [r["method"] for r in rig.fake.requests]
    assert refresh == "taobao.top.auth.token.refresh"
    assert all(r != refresh for r in rest)


async def test_revoked_authorisation_raises(rig: Rig) -> None:
    refund_id = rig.fake.new_refund()
    rig.fake.revoke(ACCESS)
    with pytest.raises(AuthorizationError):
        await rig.connector.call("approve_refund", "k1", approve(refund_id))


@pytest.mark.parametrize("failure", ["5xx", "limit", "timeout"])
async def test_transient_failures_are_retryable(rig: Rig, failure: Any) -> None:
    refund_id = rig.fake.new_refund()
    rig.fake.fail_next = [failure]
    with pytest.raises(RetryableError):
        await rig.connector.call("approve_refund", "k1", approve(refund_id))


@pytest.mark.parametrize("method", ["md5", "hmac", "hmac-sha256"])
async def test_fake_checks_each_sign_method_and_refuses_a_wrong_secret(
    rig: Rig, session: aiohttp.ClientSession, clock: FakeClock, method: Any
) -> None:
    url = f"{rig.url}/router/rest"
    good = TopClient(
        session, url=url, app_key=APP_KEY, app_secret=APP_SECRET, clock=clock, sign_method=method
    )
    node = await good.call(
        "taobao.refund.refusereason.get",
        {"refund_id": rig.fake.new_refund(), "fields": "reason_id"},
        ACCESS,
    )
    assert node["total_results"] == 3
    bad = TopClient(
        session, url=url, app_key=APP_KEY, app_secret="nope", clock=clock, sign_method=method
    )
    with pytest.raises(PermanentError, match="25"):
        await bad.call("taobao.refund.get", {"refund_id": "1", "fields": "refund_id"}, ACCESS)
    skewed = FakeClock(clock.now() + timedelta(minutes=11))
    late = TopClient(
        session, url=url, app_key=APP_KEY, app_secret=APP_SECRET, clock=skewed, sign_method=method
    )
    with pytest.raises(PermanentError, match="31"):
        await late.call("taobao.refund.get", {"refund_id": "1", "fields": "refund_id"}, ACCESS)
