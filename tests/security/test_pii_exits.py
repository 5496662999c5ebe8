"""Personal data a buyer (or a colleague) typed never leaves the database unmasked: not on a
group card, in a line to the group, a 查 reply, the digest and dashboard, the refunds export,
the case API or a log line; and a database error never carries the SQL parameters."""

from __future__ import annotations

import asyncio
import csv
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from bot.cli import main
from integrations.sandbox.channel import BOT
from storage.db import Database
from storage.models import Payout
from tests.support.app import Bot, BotFactory, make_settings
from tests.support.pii import NICK, ORDER, REASON, TRACKING, leaked


async def pii_case(bot: Bot) -> dict[str, Any]:
    card = await bot.refund(
        data_order_id=ORDER,
        data_reason=REASON,
        data_buyer={"nick": NICK},
        data_shipping={"status": "delivered", "carrier": "SF", "tracking_no": TRACKING},
        data_item={"title": "连衣裙 联系13812345678"},
    )
    assert (await bot.say("agent1", "备注 R1 买家又留了新号 13700001111"))["ok"]
    await bot.drain()
    return card


def card_text(card: dict[str, Any]) -> str:
    body = card["card"]
    return json.dumps(body, ensure_ascii=False)


async def test_group_cards_and_lines_mask_what_buyers_typed(bot: Bot) -> None:
    await pii_case(bot)
    status, _ = await bot.post_event(
        {
            "id": "evt_msg_pii",
            "type": "buyer.message",
            "occurred_at": "2026-11-23T10:05:00+08:00",
            "shop": "flagship",
            "platform": "taobao",
            "data": {
                "refund_id": (await bot.cards())[0]["case_id"],
                "text": "新号１３７００００１１１１",
            },
        }
    )
    assert status == 202
    await bot.drain()
    (card,) = await bot.cards()
    shown = card_text(card)
    assert leaked(shown) == []
    assert "138****5678" in shown
    assert "浙江省杭州市西湖区****" in shown
    fields = {f["label"]: f["value"] for f in card["card"]["fields"]}
    assert fields["订单"] == ORDER  # the case's own numbers stay readable
    assert TRACKING in fields["物流"]
    lines = [m["text"] for m in await bot.messages() if m["kind"] == "text" and m["author"] == BOT]
    assert any("137****1111" in line for line in lines)
    assert leaked("\n".join(lines)) == []


async def test_show_reply_masks_reason_nick_and_notes(bot: Bot) -> None:
    await pii_case(bot)
    reply = (await bot.say("sup1", "查 R1"))["reply"]["text"]
    assert leaked(reply) == []
    assert "159****1111" in reply
    assert "137****1111" in reply
    assert f"订单：{ORDER}" in reply
    todo = (await bot.say("sup1", "待办 all"))["reply"]["text"]
    assert "R1" in todo
    assert leaked(todo) == []


async def test_dashboard_and_digest_mask_top_reasons(make_bot: BotFactory, sqlite_url: str) -> None:
    bot = await make_bot(make_settings(sqlite_url, dashboard={"token": "t0ken"}))
    await pii_case(bot)
    page = await bot.client.get("/dashboard?token=t0ken&from=2026-11-17&to=2026-11-23")
    assert page.status == 200
    html = await page.text()
    assert "138****5678" in html
    assert leaked(html) == []
    assert (await bot.say("agent1", "日报"))["ok"]
    await bot.drain()
    posted = json.dumps(await bot.notices(), ensure_ascii=False)
    assert "138****5678" in posted
    assert leaked(posted) == []


async def test_refunds_export_masks_the_reason(
    make_bot: BotFactory, sqlite_url: str, tmp_path: Path
) -> None:
    bot = await make_bot(make_settings(sqlite_url))
    await pii_case(bot)
    config = tmp_path / "refundops.toml"
    config.write_text(f'[database]\nurl = "{sqlite_url}"\n', encoding="utf-8")
    out = tmp_path / "refunds.csv"
    argv = ["export", "refunds", "--since", "2026-11-23", "--until", "2026-11-23", "--lang", "en"]
    assert await asyncio.to_thread(main, [*argv, "--config", str(config), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8-sig")
    assert leaked(text) == []
    (row,) = list(csv.DictReader(text.splitlines()))
    assert row["order_id"] == f'="{ORDER}"'  # an id of digits stays text in Excel
    assert "138****5678" in row["reason"]


async def test_case_api_masks_reason_and_data(bot: Bot) -> None:
    card = await pii_case(bot)
    status, body = await bot.get_case(card["case_id"])
    assert status == 200
    text = json.dumps(body, ensure_ascii=False)
    assert leaked(text) == []
    assert body["order_id"] == ORDER
    assert body["data"]["refund"]["shipping"]["tracking_no"] == TRACKING
    assert body["reason"].startswith("没收到货，打我电话138****5678")


async def test_log_lines_are_masked(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    await pii_case(bot)
    with caplog.at_level(logging.INFO):
        await bot.say("agent1", f"查 {REASON}")
        logging.getLogger("handlers.refund").warning("refund reason was %s", REASON)
    assert "138****5678" in caplog.text
    assert leaked(caplog.text) == []


async def test_a_database_error_does_not_carry_the_payee_account(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    account = "zhaoliu.secret@example.com"
    now = datetime(2026, 11, 23, tzinfo=UTC)
    with pytest.raises(Exception) as failed:  # noqa: PT011 - the driver's own error class
        async with db.begin() as session:
            await session.execute(
                insert(Payout).values(
                    case_pk=987654,  # no such case: the foreign key refuses the row
                    payout_id="PO-PII-1",
                    kind="cashback",
                    payee_name="赵六",
                    payee_account=account,
                    requested_at=now,
                    updated_at=now,
                )
            )
    logging.getLogger("bot.dispatch").error("insert failed: %s", failed.value)
    assert account not in str(failed.value)
    assert "赵六" not in str(failed.value)
    assert account not in caplog.text


async def test_replies_to_buyers_refuse_full_width_and_spaced_contacts(bot: Bot) -> None:
    await bot.refund()
    for text in (
        "加我微信 １３８１２３４５６７８",
        "打 138 1234 5678 找我",
        "邮箱 kefu＠example.com",
        "寄到浙江省杭州市西湖区文三路138号",
    ):
        answer = await bot.say("agent1", f"回复 R1 {text}")
        assert not answer["ok"], text
        assert "没有发送" in answer["reply"]["text"]
