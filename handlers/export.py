"""Reconciliation exports: the payouts or refunds of a period as CSV or xlsx rows.

A period is whole local days, `since` through `until`; rows are chosen by when they were
requested, or by when the money moved (`by="paid"`). Accounts and any personal data in the
text are masked; amounts are numbers; a text cell a spreadsheet would run as a formula
(`=HYPERLINK(…)`, `+`, `-`, `@`, tab, CR) is prefixed with `'`.

Headers and labels (states, kinds, platforms) are Chinese by default; `lang="en"` gives the
column keys and the stored ids instead, for scripts. Ids stay text in Excel: xlsx cells are
strings formatted `@`; in CSV an id made only of digits is written `="<digits>"`, the one
formula an export ever holds: a constant, with nothing in it but digits (Excel otherwise shows
a 19-digit order id as 6.69E+18 and loses its last digits).

The one export with full payee accounts, the 支付宝批量付款 file, is `handlers.payout.alipay_file`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import BinaryIO, Literal, TextIO

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import select

from handlers import masking
from handlers.config import TRANSFER_PROVIDERS
from handlers.context import Tx
from handlers.masking import mask_account, mask_name
from handlers.money import fen_to_yuan
from handlers.payout import machine as payout_machine
from handlers.platforms import PLATFORMS
from handlers.refund import machine as refund_machine
from handlers.refund.data import RefundData
from storage.enums import CaseKind
from storage.models import Case
from storage.repositories.payouts import PayoutRepository

By = Literal["requested", "paid"]
Lang = Literal["zh", "en"]

PAYOUT_COLUMNS = (
    "payout_id",
    "handle",
    "order_id",
    "kind",
    "amount",
    "payee_name",
    "payee_account",
    "state",
    "requested_by",
    "requested_at",
    "approved_by",
    "approved_at",
    "paid_by",
    "paid_at",
    "reference",
    "provider",
    "provider_status",
    "batch",
    "rejected_by",
    "rejected_at",
    "shop",
    "platform",
)
REFUND_COLUMNS = (
    "refund_id",
    "handle",
    "order_id",
    "shop",
    "platform",
    "kind",
    "amount",
    "order_amount",
    "state",
    "path",
    "reason",
    "rule",
    "decided_by",
    "decision",
    "decided_at",
    "requested_at",
    "closed_at",
    "commerce_status",
)
# The Chinese header of each column key (`lang="en"` shows the key itself).
HEADERS: dict[str, str] = {
    "payout_id": "打款单号",
    "refund_id": "退款单号",
    "handle": "编号",
    "order_id": "订单号",
    "kind": "类型",
    "amount": "金额（元）",
    "order_amount": "订单金额（元）",
    "payee_name": "收款人",
    "payee_account": "收款账号（已隐藏）",
    "state": "状态",
    "requested_by": "申请人",
    "requested_at": "申请时间",
    "approved_by": "审批人",
    "approved_at": "审批时间",
    "paid_by": "打款人",
    "paid_at": "打款时间",
    "reference": "流水号",
    "provider": "打款方式",
    "provider_status": "渠道状态",
    "batch": "批次",
    "rejected_by": "拒绝人",
    "rejected_at": "拒绝时间",
    "shop": "店铺",
    "platform": "平台",
    "path": "处理路径",
    "reason": "原因",
    "rule": "规则",
    "decided_by": "决定人",
    "decision": "决定",
    "decided_at": "决定时间",
    "closed_at": "结束时间",
    "commerce_status": "店铺系统状态",
}
# Columns that hold ids (text however many digits they have) and money (numbers, ¥0.00).
ID_COLUMNS = frozenset({"payout_id", "refund_id", "order_id", "reference"})
MONEY_COLUMNS = frozenset({"amount", "order_amount"})
PROVIDER_TEXT = {"manual": "线下打款", **TRANSFER_PROVIDERS}
PAYOUT_LABELS: dict[str, Mapping[str, str]] = {
    "kind": payout_machine.KIND_TEXT,
    "state": payout_machine.STATE_TEXT,
    "provider": PROVIDER_TEXT,
    "platform": PLATFORMS,
}
REFUND_LABELS: dict[str, Mapping[str, str]] = {
    "kind": refund_machine.KIND_TEXT,
    "state": refund_machine.STATE_TEXT,
    "decision": refund_machine.ACTION_TEXT,
    "platform": PLATFORMS,
}

Cell = str | Decimal | int
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
DIGITS = re.compile(r"[0-9]+")
MONEY_FORMAT = "#,##0.00"


@dataclass(frozen=True)
class Export:
    columns: tuple[str, ...]
    rows: list[dict[str, Cell]]
    fen: int
    name: str = "export"
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.rows)

    def header(self, lang: Lang) -> list[str]:
        return [HEADERS.get(c, c) if lang == "zh" else c for c in self.columns]

    def cells(self, row: dict[str, Cell], lang: Lang) -> list[Cell]:
        """A row's values in column order, labelled in `lang`, formulas neutralised."""
        out: list[Cell] = []
        for column in self.columns:
            value = row.get(column, "")
            names = self.labels.get(column)
            if lang == "zh" and names is not None and isinstance(value, str):
                value = names.get(value, value)
            out.append(spreadsheet_cell(value))
        return out


def period(since: date, until: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """[since 00:00, the day after until 00:00) in local time."""
    start = datetime.combine(since, time(), tz)
    end = datetime.combine(until + timedelta(days=1), time(), tz)
    return start, end


async def payouts(tx: Tx, since: datetime, until: datetime, by: By = "requested") -> Export:
    pairs = await PayoutRepository(tx.session).between(by, since, until)
    handles = await _handles(tx, {p.batch_pk for p, _ in pairs if p.batch_pk is not None})
    rows: list[dict[str, Cell]] = [
        {
            "payout_id": p.payout_id,
            "handle": c.handle,
            "order_id": c.order_id,
            "kind": p.kind,
            "amount": fen_to_yuan(c.amount_fen),
            "payee_name": mask_name(p.payee_name),
            "payee_account": mask_account(p.payee_account),
            "state": c.state,
            "requested_by": p.requested_by,
            "requested_at": _at(tx, p.requested_at),
            "approved_by": p.approved_by,
            "approved_at": _at(tx, p.approved_at),
            "paid_by": p.paid_by,
            "paid_at": _at(tx, p.paid_at),
            "reference": p.reference,
            "provider": p.provider,
            "provider_status": p.provider_status,
            "batch": handles.get(p.batch_pk or 0, ""),
            "rejected_by": p.rejected_by,
            "rejected_at": _at(tx, p.rejected_at),
            "shop": c.shop,
            "platform": c.platform,
        }
        for p, c in pairs
    ]
    rows = [
        _masked(row, "payout_id", "order_id", "reference", extra=masking.identifiers(c))
        for row, (_, c) in zip(rows, pairs, strict=True)
    ]
    fen = sum(c.amount_fen for _, c in pairs)
    return Export(PAYOUT_COLUMNS, rows, fen, "payouts", PAYOUT_LABELS)


async def refunds(tx: Tx, since: datetime, until: datetime, by: By = "requested") -> Export:
    stmt = select(Case).where(Case.kind == CaseKind.REFUND.value)
    if by == "paid":
        stmt = stmt.where(Case.state == "refunded", Case.closed_at >= since, Case.closed_at < until)
        stmt = stmt.order_by(Case.closed_at, Case.id)
    else:
        stmt = stmt.where(Case.created_at >= since, Case.created_at < until)
        stmt = stmt.order_by(Case.created_at, Case.id)
    cases = list((await tx.session.scalars(stmt)).all())
    rows: list[dict[str, Cell]] = []
    for c in cases:
        data = RefundData.of(c)
        decision = data.decision
        order_amount = data.order_amount_fen
        row: dict[str, Cell] = {
            "refund_id": c.case_id,
            "handle": c.handle,
            "order_id": c.order_id,
            "shop": c.shop,
            "platform": c.platform,
            "kind": data.refund.kind,
            "amount": fen_to_yuan(c.amount_fen),
            "order_amount": fen_to_yuan(order_amount) if order_amount is not None else "",
            "state": c.state,
            "path": str(c.path or ""),
            "reason": c.reason,
            "rule": data.rule,
            "decided_by": decision.by if decision else "",
            "decision": decision.action if decision else "",
            "decided_at": (
                _at(tx, datetime.fromisoformat(decision.at)) if decision and decision.at else ""
            ),
            "requested_at": _at(tx, c.created_at),
            "closed_at": _at(tx, c.closed_at),
            "commerce_status": data.commerce.status,
        }
        rows.append(_masked(row, "refund_id", "order_id", extra=masking.identifiers(c)))
    fen = sum(c.amount_fen for c in cases)
    return Export(REFUND_COLUMNS, rows, fen, "refunds", REFUND_LABELS)


def _masked(row: dict[str, Cell], *keys: str, extra: list[str] | None = None) -> dict[str, Cell]:
    """The row with personal data masked in every text cell; its own numbers pass."""
    allow = [str(row[k]) for k in keys if row.get(k)] + (extra or [])
    return {k: masking.redact(v, allow) if isinstance(v, str) else v for k, v in row.items()}


def spreadsheet_cell(value: Cell) -> Cell:
    """Text a spreadsheet would run as a formula gets a leading `'`; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_id(value: Cell) -> Cell:
    """An id of digits only as `="<digits>"`, which Excel keeps as text; anything else as is."""
    if isinstance(value, str) and DIGITS.fullmatch(value):
        return f'="{value}"'
    return value


def write_csv(export: Export, out: TextIO, lang: Lang = "zh") -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(export.header(lang))
    ids = [c in ID_COLUMNS for c in export.columns]
    for row in export.rows:
        cells = export.cells(row, lang)
        writer.writerow(
            [csv_text(csv_id(v) if is_id else v) for v, is_id in zip(cells, ids, strict=True)]
        )


def csv_text(value: Cell) -> str:
    if isinstance(value, Decimal):
        return f"{value:f}"
    return str(value)


def write_xlsx(export: Export, out: BinaryIO, lang: Lang = "zh") -> None:
    """One worksheet: a bold, frozen header row with a filter, then the rows; ids and text as
    strings, amounts as numbers shown with two decimals."""
    wb, sheet = workbook(export.name)
    columns = export.columns
    header = export.header(lang)
    header_row(sheet, 1, header)
    for n, row in enumerate(export.rows, start=2):
        for i, (value, column) in enumerate(zip(export.cells(row, lang), columns, strict=True)):
            put(sheet, n, i + 1, value, is_id=column in ID_COLUMNS)
    for i, (column, name) in enumerate(zip(columns, header, strict=True), start=1):
        sheet.column_dimensions[get_column_letter(i)].width = _width(column, name)
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{export.count + 1}"
    wb.save(out)


def workbook(title: str) -> tuple[Workbook, Worksheet]:
    wb = Workbook()
    sheet = wb.active
    assert isinstance(sheet, Worksheet)
    sheet.title = re.sub(r"[\\/*?:\[\]]", "_", title)[:31]
    return wb, sheet


def _width(column: str, header: str) -> float:
    if column in ID_COLUMNS:
        return 24
    if column.endswith("_at") or column in ("reason", "state", "rule"):
        return 20
    return max(10, len(header) * 2 if not header.isascii() else len(header) + 2)


def header_row(sheet: Worksheet, row: int, names: list[str]) -> None:
    for i, name in enumerate(names, start=1):
        cell = sheet.cell(row=row, column=i, value=name)
        cell.font = Font(bold=True)


def put(sheet: Worksheet, row: int, column: int, value: Cell, *, is_id: bool = False) -> None:
    """Numbers as numbers; every string a string cell, never a formula, whatever it starts with."""
    cell = sheet.cell(row=row, column=column)
    if isinstance(value, Decimal):
        cell.value = value
        cell.number_format = MONEY_FORMAT
        return
    if isinstance(value, int):
        cell.value = value
        return
    text = NOT_XML.sub("", value)
    if text:
        cell.value = text
        cell.data_type = "s"
    if is_id:
        cell.number_format = "@"


async def _handles(tx: Tx, pks: set[int]) -> dict[int, str]:
    if not pks:
        return {}
    rows = await tx.session.execute(select(Case.id, Case.handle).where(Case.id.in_(pks)))
    return {int(pk): str(handle) for pk, handle in rows.all()}


def _at(tx: Tx, at: datetime | None) -> str:
    return "" if at is None else f"{tx.local(at):%Y-%m-%d %H:%M:%S}"
