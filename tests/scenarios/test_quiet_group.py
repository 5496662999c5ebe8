"""A group with `post = "needs_action"` is not shown refunds the rules handled with nothing
for a person to do; they are in the digest and 查 finds them, and their card is posted the
moment a person is needed."""

from __future__ import annotations

import pytest

from handlers import digest
from integrations.commerce.fake import FakeCommerce
from storage.models import Case
from tests.support.app import Bot, BotFactory, make_refund, make_settings
from tests.support.fakes import Served

QUIET = [
    {
        "id": "aftersales",
        "name": "售后一组",
        "channel": "sandbox",
        "kinds": ["refund"],
        "post": "needs_action",
    },
    {"id": "ops", "name": "管理群", "channel": "sandbox"},
]


@pytest.fixture
async def quiet(
    make_bot: BotFactory, sqlite_url: str, fake_commerce: Served[FakeCommerce]
) -> tuple[Bot, FakeCommerce]:
    fake, url = fake_commerce
    commerce = {"mode": "webhook", "url": url, "secret": fake.secret}
    # ¥30 refunds go out with their 截单 (below refund_before_stop_max), as the rules handle them.
    settings = make_settings(
        sqlite_url, commerce=commerce, groups=QUIET, rules={"refund_before_stop_max": "100"}
    )
    return await make_bot(settings), fake


async def unshipped(bot: Bot, refund_id: str, order_id: str = "T88001") -> None:
    """An unshipped full refund within the auto-approve cap: approved and stopped by the rules."""
    event = make_refund(
        data_refund_id=refund_id,
        data_order_id=order_id,
        data_shipping={"status": "unshipped"},
        data_amount="30.00",
        data_order_amount="30.00",
    )
    status, _ = await bot.post_event(event)
    assert status == 202
    await bot.drain()


async def buyer_says(bot: Bot, refund_id: str, text: str) -> None:
    at = bot.clock.now().isoformat()
    event = {
        "id": f"evt_msg_{refund_id}_{text}",
        "type": "buyer.message",
        "occurred_at": at,
        "data": {"refund_id": refund_id, "text": text, "at": at},
    }
    assert (await bot.post_event(event))[0] == 202
    await bot.drain()


async def state_of(bot: Bot, handle: str) -> str:
    async with bot.svc.tx() as tx:
        case: Case | None = await tx.cases.find(handle)
        assert case is not None
        return case.state


async def test_an_auto_handled_refund_stays_out_but_is_counted_and_found(
    quiet: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = quiet
    await unshipped(bot, "RFQ1")
    assert await state_of(bot, "R1") == "refunded"
    assert len(fake.performed("stop_shipment")) == 1
    assert await bot.messages() == []
    shown = await bot.say("agent1", "查 R1")
    assert shown["ok"]
    assert "R1" in shown["reply"]["text"]
    async with bot.svc.tx() as tx:
        fig = await digest.figures(tx, "aftersales", digest.span_for(bot.svc, "", tx.now))
    assert (fig.new, fig.auto_approved, fig.refunded) == (1, 1, 1)
    # A refund a person must look at gets its card as ever.
    card = await bot.refund(data_refund_id="RFQ2")
    assert card["state"] == "awaiting_review"
    assert [c["handle"] for c in await bot.cards()] == ["R2"]


async def test_every_group_sees_every_card_by_default(
    make_bot: BotFactory, sqlite_url: str, fake_commerce: Served[FakeCommerce]
) -> None:
    fake, url = fake_commerce
    commerce = {"mode": "webhook", "url": url, "secret": fake.secret}
    bot = await make_bot(make_settings(sqlite_url, commerce=commerce))
    assert bot.svc.settings.group("aftersales").post == "all"
    await unshipped(bot, "RFA1")
    assert [(c["handle"], c["state"]) for c in await bot.cards()] == [("R1", "refunded")]


async def test_a_failed_refund_is_posted_then(quiet: tuple[Bot, FakeCommerce]) -> None:
    bot, fake = quiet
    fake.refuse["approve_refund"] = "余额不足"
    await unshipped(bot, "RFQF")
    (card,) = await bot.cards()
    assert (card["handle"], card["state"]) == ("R1", "failed")


async def test_a_complaint_posts_the_card(quiet: tuple[Bot, FakeCommerce]) -> None:
    bot, _ = quiet
    await unshipped(bot, "RFQC")
    assert await bot.messages() == []
    await buyer_says(bot, "RFQC", "钱是退了，但我还是要给差评")
    (card,) = await bot.cards()
    assert card["state"] == "refunded"
    assert {"text": "⚠ 投诉风险", "tone": "danger"} in card["card"]["pills"]
    assert "⚠ 投诉风险（买家提到「差评」）" in (await bot.texts())[-1]


async def test_a_buyer_waiting_for_an_answer_posts_the_card(
    quiet: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = quiet
    fake.status = "pending"
    await unshipped(bot, "RFQB")
    assert await state_of(bot, "R1") == "submitted"
    assert await bot.messages() == []
    await buyer_says(bot, "RFQB", "退款什么时候到账呀？")
    (card,) = await bot.cards()
    assert card["card"]["lines"][-1].endswith("（待回复）")


async def test_a_stop_that_failed_posts_the_card(quiet: tuple[Bot, FakeCommerce]) -> None:
    bot, fake = quiet
    fake.shipped["T9001"] = "已出库"
    await unshipped(bot, "RFQS", order_id="T9001")
    (card,) = await bot.cards()
    assert card["handle"] == "R1"
    assert any(f["label"] == "截单" and "仓库已发货" in f["value"] for f in card["card"]["fields"])
    assert any("截单失败：仓库已发货" in t for t in await bot.texts())
