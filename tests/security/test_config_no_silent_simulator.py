"""A production config that names no shop or carrier system sends nothing and says so: the
refund waits to be refunded by hand, the parcel to be intercepted by phone, and neither card
claims 已退款 / 已截单 / 快递已受理. The person then records what they did."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.registry import commands
from bot.settings import Settings, load_settings
from commands import ChatInput
from handlers.cards import build_card
from handlers.clock import FakeClock
from integrations.wecom.fake import FakeWeComAPI
from storage.models import Case
from tests.support.app import SECRET, Bot, BotFactory, make_refund
from tests.support.fakes import serve

ROUTER = commands()

# The example config as an operator would trim it: no [commerce], no [carrier].
CONFIG = """
[database]
url = "{db}"

[bot]
admin_group = "ops"

[[groups]]
id = "aftersales"
channel = "wecom_webhook"
webhook_url = "{robot}?key=after"
kinds = ["refund"]

[[groups]]
id = "ops"
channel = "wecom_webhook"
webhook_url = "{robot}?key=ops"

[[staff]]
id = "sup1"
roles = ["supervisor"]
refund_limit = 2000
wecom_userid = "wx_sup1"

[[staff]]
id = "admin1"
roles = ["admin"]
wecom_userid = "wx_admin1"
"""


@pytest.fixture
async def robot(clock: FakeClock) -> AsyncIterator[FakeWeComAPI]:
    fake = FakeWeComAPI(corp_id="ww-prod", now=lambda: clock.now().timestamp())
    fake.webhook_keys |= {"after", "ops"}
    async with serve(fake.app()) as fake.base_url:
        yield fake


def production(tmp_path: Path, sqlite_url: str, robot: FakeWeComAPI) -> Settings:
    path = tmp_path / "refundops.toml"
    hook = robot.webhook_url().split("?")[0]
    path.write_text(CONFIG.format(db=sqlite_url, robot=hook), encoding="utf-8")
    return load_settings(path, overrides={"ingest": {"secret": SECRET}})


async def case(bot: Bot, handle: str) -> tuple[Case, Any]:
    async with bot.svc.tx() as tx:
        found = await tx.cases.find(handle)
        assert found is not None
        return found, build_card(found, tx.view)


async def say(bot: Bot, user: str, text: str, group: str) -> Any:
    return await ROUTER.handle(
        bot.svc,
        ChatInput(channel="wecom_aibot", platform="wecom", user=user, text=text, group_id=group),
    )


async def test_config_without_commerce_or_carrier_nothing_is_sent_and_the_cards_say_so(
    make_bot: BotFactory, tmp_path: Path, sqlite_url: str, robot: FakeWeComAPI
) -> None:
    settings = production(tmp_path, sqlite_url, robot)
    assert (settings.demo, settings.commerce.mode, settings.carrier.mode) == (False, "none", "none")
    bot = await make_bot(settings)

    async def post(event: dict[str, Any]) -> None:
        assert (await bot.post_event(event))[0] == 202

    await post(make_refund(data_shipping={"status": "unshipped"}))
    await post(make_refund(data_order_id="T2", data_amount="1800.00", data_order_amount="1800.00"))
    shipped = {"status": "shipped", "carrier": "SF", "tracking_no": "SF900"}
    await post(make_refund(data_order_id="T3", data_shipping=shipped))
    await bot.drain()
    assert (await say(bot, "wx_sup1", "通过 R2", "aftersales")).ok
    await bot.drain()

    refund, card = await case(bot, "R1")
    assert refund.state == "manual_refund", "rule path 1 approved it; nothing refunded it"
    assert {f.label: f.value for f in card.fields}["截单"] == (
        "❗ 未接仓库/ERP，没有通知仓库：请手动截单"
    )
    refund, card = await case(bot, "R2")
    assert refund.state == "manual_refund", "sup1 approved it; nothing refunded it"
    assert card.status == "已通过 · 待手动退款"
    assert any("请在店铺后台手动退款 ¥1,800.00" in line for line in card.lines)
    assert [b.key for b in card.buttons][:2] == ["refunded", "claim"]
    parcel, parcel_card = await case(bot, "X1")
    assert parcel.state == "manual"
    assert parcel_card.status == "未接快递系统 · 请电话联系快递拦截"
    assert any("请电话联系快递拦截（顺丰" in line for line in parcel_card.lines)
    assert "快递受理" not in {f.label for f in parcel_card.fields}
    sent = "\n".join(m["content"] for key in ("after", "ops") for m in robot.webhook_messages[key])
    # R1's card went out while it waited for 截单; its update says it is to be refunded by hand
    # (R2's own update may still wait for the robot's budget of 20 a minute).
    assert "📌 R1 更新：已通过 · 待手动退款" in sent
    assert "X1 更新：未接快递系统 · 请电话联系快递拦截" in sent
    assert "提交中" not in sent
    assert "已退款" not in sent.replace("「已退款 R", "")
    assert "已截单" not in sent

    done = await say(bot, "wx_sup1", "已退款 R2", "aftersales")
    assert done.ok, done.text
    assert (await case(bot, "R2"))[0].state == "refunded"
    again = await say(bot, "wx_sup1", "已退款 R2", "aftersales")
    assert not again.ok
    intercepted = await say(bot, "wx_admin1", "拦截成功 X1 电话确认", "ops")
    assert intercepted.ok, intercepted.text
    assert (await case(bot, "X1"))[0].state == "intercepted"
