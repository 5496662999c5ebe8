"""`refundops export payouts|refunds` and the digest's payout totals agree with the database."""

from __future__ import annotations

import asyncio
import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.cli import main
from handlers.export import PAYOUT_COLUMNS, REFUND_COLUMNS
from handlers.payout import flow as payout
from storage.models import Case, Payout
from tests.support.app import Bot, BotFactory, make_settings
from tests.support.payout import GROUPS, make_payout

DAY_1 = datetime(2026, 11, 22, 16, 0, tzinfo=UTC)  # 2026-11-23 00:00 in Shanghai


async def request(bot: Bot, amount: str, account: str) -> str:
    event = make_payout(data_amount=amount, data_payee={"name": "赵六", "account": account})
    assert (await bot.post_event(event))[0] == 202
    await bot.drain()
    return str(event["data"]["payout_id"])


async def history(bot: Bot) -> None:
    """Three days of payouts: requested, approved and paid on different days."""
    bot.clock.set(DAY_1 + timedelta(hours=9))
    await request(bot, "5.00", "13800000001")
    await request(bot, "12.34", "13800000002")
    await request(bot, "100.00", "zhaoliu@example.com")
    assert (await bot.say("sup1", "通过 P1", group="finance"))["ok"]
    assert (await bot.say("sup1", "通过 P2", group="finance"))["ok"]
    assert (await bot.say("fin1", "打款确认 P1 ALI0001", group="finance"))["ok"]
    bot.clock.set(DAY_1 + timedelta(days=1, hours=23, minutes=59))
    await request(bot, "7.00", "13800000004")
    assert (await bot.say("fin1", "打款确认 P2 ALI0002", group="finance"))["ok"]
    assert (await bot.say("sup1", "拒绝 P3 不符合返现规则", group="finance"))["ok"]
    bot.clock.set(DAY_1 + timedelta(days=2, hours=1))
    await request(bot, "50.00", "13800000005")
    assert (await bot.say("sup1", "通过 P4", group="finance"))["ok"]
    assert (await bot.say("fin1", "打款确认 P4 ALI0004", group="finance"))["ok"]
    await bot.drain()


async def db_tally(bot: Bot, column: str, since: datetime, until: datetime) -> tuple[int, int]:
    at = getattr(Payout, column)
    async with bot.svc.tx() as tx:
        count, fen = (
            await tx.session.execute(
                select(func.count(), func.coalesce(func.sum(Case.amount_fen), 0))
                .select_from(Payout)
                .join(Case, Case.id == Payout.case_pk)
                .where(at >= since, at < until)
            )
        ).one()
    return int(count), int(fen)


def config(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "refundops.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    return path


def read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def fen(rows: list[dict[str, str]]) -> int:
    return int(sum(Decimal(r["amount"]) for r in rows) * 100)


async def export(tmp_path: Path, db_url: str, *args: str) -> list[dict[str, str]]:
    out = tmp_path / f"{'-'.join(args)}.csv"
    argv = ["export", *args, "--config", str(config(tmp_path, db_url)), "--out", str(out)]
    argv += ["--lang", "en"]
    assert await asyncio.to_thread(main, argv) == 0
    text = out.read_text(encoding="utf-8-sig")
    for account in ("13800000001", "13800000002", "zhaoliu@example.com", "13800000004"):
        assert account not in text
    return read(out)


async def test_payout_export_totals_match_the_database(
    make_bot: BotFactory, sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bot = await make_bot(make_settings(sqlite_url, groups=GROUPS))
    await history(bot)
    since, until = DAY_1, DAY_1 + timedelta(days=2)

    requested = await export(
        tmp_path, sqlite_url, "payouts", "--since", "2026-11-23", "--until", "2026-11-24"
    )
    assert tuple(requested[0]) == PAYOUT_COLUMNS
    assert (len(requested), fen(requested)) == await db_tally(bot, "requested_at", since, until)
    assert [r["handle"] for r in requested] == ["P1", "P2", "P3", "P4"]
    first = requested[0]
    assert (first["payee_account"], first["payee_name"]) == ("138****0001", "赵*")
    assert (first["approved_by"], first["paid_by"], first["reference"]) == (
        "sup1",
        "fin1",
        "ALI0001",
    )
    assert (first["requested_at"], first["state"], first["provider_status"]) == (
        "2026-11-23 09:00:00",
        "paid",
        "MANUAL",
    )
    assert requested[2]["payee_account"] == "zha****@example.com"
    assert (requested[2]["state"], requested[2]["rejected_by"]) == ("rejected", "sup1")
    assert "✓ 4 payouts 2026-11-23..2026-11-24 (by requested), total ¥124.34" in (
        capsys.readouterr().err
    )

    paid = await export(
        tmp_path,
        sqlite_url,
        "payouts",
        "--since",
        "2026-11-23",
        "--until",
        "2026-11-24",
        "--by",
        "paid",
    )
    assert [r["handle"] for r in paid] == ["P1", "P2"]
    assert (len(paid), fen(paid)) == await db_tally(bot, "paid_at", since, until) == (2, 1734)

    async with bot.svc.tx() as tx:
        totals = await payout.totals(tx, since, until)
        finance = await payout.totals(tx, since, until, group_id="finance")
        elsewhere = await payout.totals(tx, since, until, group_id="aftersales")
    assert (totals.requested.count, totals.requested.fen) == (4, 12434)
    assert (totals.approved.count, totals.approved.fen) == (2, 1734)
    assert (totals.paid.count, totals.paid.fen) == (2, 1734)
    assert finance == totals
    assert elsewhere.requested.count == 0
    day_3 = await db_tally(bot, "paid_at", until, until + timedelta(days=1))
    assert day_3 == (1, 700)


async def test_refund_export_totals_match_the_database(
    make_bot: BotFactory, sqlite_url: str, tmp_path: Path
) -> None:
    bot = await make_bot(make_settings(sqlite_url, groups=GROUPS))
    bot.clock.set(DAY_1 + timedelta(hours=11))
    await bot.refund(data_amount="30.00")
    await bot.refund(data_amount="99.90", data_shipping={"status": "unshipped"})
    assert (await bot.say("sup1", "通过 R1"))["ok"]
    await bot.drain()
    bot.clock.set(DAY_1 + timedelta(days=3))
    await bot.refund(data_amount="1.00")
    rows = await export(
        tmp_path, sqlite_url, "refunds", "--since", "2026-11-23", "--until", "2026-11-23"
    )
    assert tuple(rows[0]) == REFUND_COLUMNS
    assert [(r["handle"], r["amount"]) for r in rows] == [("R1", "30.00"), ("R2", "99.90")]
    async with bot.svc.tx() as tx:
        db_fen = await tx.session.scalar(
            select(func.sum(Case.amount_fen)).where(
                Case.kind == "refund",
                Case.created_at >= DAY_1,
                Case.created_at < DAY_1 + timedelta(days=1),
            )
        )
    assert fen(rows) == db_fen
    assert (rows[0]["decided_by"], rows[0]["decision"]) == ("sup1", "approve")
    assert rows[1]["rule"] != ""


def test_export_refuses_a_backwards_period(tmp_path: Path, sqlite_url: str) -> None:
    argv = ["export", "payouts", "--since", "2026-11-24", "--until", "2026-11-23"]
    assert main([*argv, "--config", str(config(tmp_path, sqlite_url))]) == 2
