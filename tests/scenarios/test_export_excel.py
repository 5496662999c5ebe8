"""Exports open cleanly in Excel: Chinese headers and labels (English keys on request), ids as
text, amounts as numbers; and the 支付宝批量付款 file of approved manual payouts, with full
accounts, written owner-only and audited."""

from __future__ import annotations

import asyncio
import csv
import io
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from bot.cli import main
from handlers.export import PAYOUT_COLUMNS
from handlers.payout.alipay_file import ALIPAY_COLUMNS, ALIPAY_TITLE, EXPORTED
from storage.models import AuditEntry, Case
from tests.support.app import Bot, BotFactory, make_settings
from tests.support.payout import GROUPS, make_payout

DAY_1 = datetime(2026, 11, 22, 16, 0, tzinfo=UTC)  # 2026-11-23 00:00 in Shanghai
LONG_ORDER = "3698512345678901234"


async def request(bot: Bot, amount: str, account: str, name: str = "赵六", **extra: str) -> None:
    event = make_payout(data_amount=amount, data_payee={"name": name, "account": account}, **extra)
    assert (await bot.post_event(event))[0] == 202
    await bot.drain()


async def approved_history(bot: Bot) -> None:
    """P1 paid; P2, P3 and P4 approved (P4 to an account Alipay does not know); P5 waiting."""
    bot.clock.set(DAY_1 + timedelta(hours=9))
    await request(bot, "5.00", "13800000001", data_order_id=LONG_ORDER)
    await request(bot, "12.34", "13800000002", name="钱七", data_kind="compensation")
    await request(bot, "100.00", "zhaoliu@example.com")
    await request(bot, "8.00", "wxid_abcdef")
    await request(bot, "9.00", "13800000005")
    for handle in ("P1", "P2", "P3", "P4"):
        assert (await bot.say("sup1", f"通过 {handle}", group="finance"))["ok"]
    assert (await bot.say("fin1", "打款确认 P1 ALI0001", group="finance"))["ok"]
    await bot.drain()


def config(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "refundops.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    return path


async def run(tmp_path: Path, db_url: str, out: Path, *args: str) -> None:
    argv = ["export", *args, "--config", str(config(tmp_path, db_url)), "--out", str(out)]
    assert await asyncio.to_thread(main, argv) == 0


async def test_payout_csv_speaks_chinese_and_keeps_long_ids(
    make_bot: BotFactory, sqlite_url: str, tmp_path: Path
) -> None:
    bot = await make_bot(make_settings(sqlite_url, groups=GROUPS))
    await approved_history(bot)
    out = tmp_path / "payouts.csv"
    await run(
        tmp_path, sqlite_url, out, "payouts", "--since", "2026-11-23", "--until", "2026-11-23"
    )
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert list(rows[0])[:4] == ["打款单号", "编号", "订单号", "类型"]
    first, second = rows[0], rows[1]
    assert first["订单号"] == f'="{LONG_ORDER}"'
    assert (first["类型"], first["状态"], first["打款方式"], first["平台"]) == (
        "活动返现",
        "已打款",
        "线下打款",
        "淘宝",
    )
    assert (second["类型"], second["状态"]) == ("补偿", "已审批 · 待财务打款")
    assert first["收款账号（已隐藏）"] == "138****0001"
    assert "13800000001" not in raw.decode("utf-8-sig")

    english = tmp_path / "payouts-en.csv"
    await run(
        tmp_path, sqlite_url, english, "payouts", "--since", "2026-11-23", "--until", "2026-11-23",
        "--lang", "en",
    )  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(english.read_text(encoding="utf-8-sig"))))
    assert tuple(rows[0]) == PAYOUT_COLUMNS
    assert (rows[0]["kind"], rows[0]["state"], rows[0]["provider"]) == (
        "cashback",
        "paid",
        "manual",
    )


async def test_payout_xlsx_has_text_ids_and_number_amounts(
    make_bot: BotFactory, sqlite_url: str, tmp_path: Path
) -> None:
    bot = await make_bot(make_settings(sqlite_url, groups=GROUPS))
    await approved_history(bot)
    out = tmp_path / "payouts.xlsx"
    await run(
        tmp_path, sqlite_url, out, "payouts", "--since", "2026-11-23", "--until", "2026-11-23",
        "--format", "xlsx",
    )  # fmt: skip
    sheet = load_workbook(out).active
    assert sheet is not None
    assert sheet.title == "payouts"
    assert sheet.freeze_panes == "A2"
    header = [c.value for c in sheet[1]]
    assert header[:5] == ["打款单号", "编号", "订单号", "类型", "金额（元）"]
    assert all(c.font.bold for c in sheet[1])
    order, amount, state = sheet["C2"], sheet["E2"], sheet.cell(2, header.index("状态") + 1)
    assert (order.data_type, order.value, order.number_format) == ("s", LONG_ORDER, "@")
    assert (amount.data_type, amount.value, amount.number_format) == ("n", 5, "#,##0.00")
    assert sheet["E3"].value == pytest.approx(12.34)
    assert state.value == "已打款"
    assert sheet.max_row == 6
    assert sheet.auto_filter.ref == f"A1:V{sheet.max_row}"


async def test_alipay_batch_lists_approved_manual_payouts_in_full_and_audits_them(
    make_bot: BotFactory,
    sqlite_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bot = await make_bot(make_settings(sqlite_url, groups=GROUPS))
    await approved_history(bot)
    out = tmp_path / "alipay.xlsx"
    await run(tmp_path, sqlite_url, out, "alipay-batch", "--format", "xlsx")
    err = capsys.readouterr().err
    assert "完整的收款账号" in err
    assert "P4（收款账号 wxi****cdef 不是支付宝账号）" in err
    assert "✓ 2 approved manual payouts, total ¥112.34: P2 P3" in err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600

    sheet = load_workbook(out).active
    assert sheet is not None
    assert sheet["A1"].value == ALIPAY_TITLE
    assert tuple(c.value for c in sheet[2]) == ALIPAY_COLUMNS
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=3)]
    assert rows == [
        [1, "13800000002", "钱七", pytest.approx(12.34), "P2 补偿 T88001"],
        [2, "zhaoliu@example.com", "赵六", 100, "P3 活动返现 T88001"],
    ]
    assert sheet["B3"].data_type == "s"
    assert sheet["D3"].data_type == "n"

    async with bot.svc.tx() as tx:
        audited = (
            await tx.session.execute(
                select(Case.handle, AuditEntry.actor, AuditEntry.channel)
                .join(Case, Case.id == AuditEntry.case_pk)
                .where(AuditEntry.action == EXPORTED)
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [handle for handle, _, _ in audited] == ["P2", "P3"]
    assert all(actor.startswith("cli:") and channel == "cli" for _, actor, channel in audited)


async def test_alipay_batch_csv_follows_the_template_and_the_approval_period(
    make_bot: BotFactory, sqlite_url: str, tmp_path: Path
) -> None:
    bot = await make_bot(make_settings(sqlite_url, groups=GROUPS))
    await approved_history(bot)
    bot.clock.set(DAY_1 + timedelta(days=1, hours=10))
    await request(bot, "3.00", "13800000006")
    assert (await bot.say("sup1", "通过 P6", group="finance"))["ok"]
    out = tmp_path / "alipay.csv"
    await run(tmp_path, sqlite_url, out, "alipay-batch", "--since", "2026-11-24")
    lines = out.read_bytes().decode("utf-8-sig").split("\r\n")
    assert lines == [
        ALIPAY_TITLE,
        ",".join(ALIPAY_COLUMNS),
        "1,13800000006,赵六,3.00,P6 活动返现 T88001",
        "",
    ]


def test_a_period_export_needs_its_period(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "export",
        "payouts",
        "--since",
        "2026-11-23",
        "--config",
        str(config(tmp_path, sqlite_url)),
    ]
    assert main(argv) == 2
    assert "needs --since and --until" in capsys.readouterr().err
