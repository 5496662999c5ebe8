"""Reconciliation exports: the payouts or refunds of a period as CSV or xlsx rows.

A period is whole local days, `since` through `until`; rows are chosen by when they were
requested, or by when the money moved (`by="paid"`). Accounts and any personal data in the
text are masked; amounts are numbers; a text cell a spreadsheet would run as a formula
(`=HYPERLINK(…)`, `+`, `-`, `@`, tab, CR) is prefixed with `'`.
"""

from __future__ import annotations

import csv
import re
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import BinaryIO, Literal, TextIO
from xml.sax.saxutils import escape

from sqlalchemy import select

from handlers import masking
from handlers.context import Tx
from handlers.masking import mask_account, mask_name
from handlers.money import fen_to_yuan
from handlers.refund.data import RefundData
from storage.enums import CaseKind
from storage.models import Case
from storage.repositories.payouts import PayoutRepository

By = Literal["requested", "paid"]

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


Cell = str | Decimal
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class Export:
    columns: tuple[str, ...]
    rows: list[dict[str, Cell]]
    fen: int
    name: str = "export"

    @property
    def count(self) -> int:
        return len(self.rows)


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
    return Export(PAYOUT_COLUMNS, rows, sum(c.amount_fen for _, c in pairs), "payouts")


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
    return Export(REFUND_COLUMNS, rows, sum(c.amount_fen for c in cases), "refunds")


def _masked(row: dict[str, Cell], *keys: str, extra: list[str] | None = None) -> dict[str, Cell]:
    """The row with personal data masked in every text cell; its own numbers pass."""
    allow = [str(row[k]) for k in keys if row.get(k)] + (extra or [])
    return {k: masking.redact(v, allow) if isinstance(v, str) else v for k, v in row.items()}


def spreadsheet_cell(value: Cell) -> Cell:
    """Text a spreadsheet would run as a formula gets a leading `'`; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def write_csv(export: Export, out: TextIO) -> None:
    writer = csv.DictWriter(out, fieldnames=export.columns, lineterminator="\n")
    writer.writeheader()
    for row in export.rows:
        writer.writerow({k: _csv_text(spreadsheet_cell(v)) for k, v in row.items()})


def _csv_text(value: Cell) -> str:
    return f"{value:f}" if isinstance(value, Decimal) else value


def write_xlsx(export: Export, out: BinaryIO) -> None:
    """One worksheet: a header row, then the rows; text as inline strings, amounts as numbers."""
    lines = [_xlsx_row(1, list(export.columns))]
    for n, row in enumerate(export.rows, start=2):
        lines.append(_xlsx_row(n, [spreadsheet_cell(row[c]) for c in export.columns]))
    sheet = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<worksheet xmlns="{_MAIN}"><sheetData>{"".join(lines)}</sheetData></worksheet>'
    )
    name = escape(export.name[:31])
    workbook = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<workbook xmlns="{_MAIN}" xmlns:r="{_DOC_RELS}">'
        f'<sheets><sheet name="{name}" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("[Content_Types].xml", _CONTENT_TYPES)
        book.writestr("_rels/.rels", _rels("officeDocument", "xl/workbook.xml"))
        book.writestr("xl/workbook.xml", workbook)
        book.writestr("xl/_rels/workbook.xml.rels", _rels("worksheet", "worksheets/sheet1.xml"))
        book.writestr("xl/worksheets/sheet1.xml", sheet)


_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    "</Types>"
)


def _rels(kind: str, target: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{_DOC_RELS}/{kind}" Target="{target}"/>'
        "</Relationships>"
    )


def _column(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _xlsx_row(n: int, cells: list[Cell]) -> str:
    out = []
    for i, value in enumerate(cells):
        ref = f"{_column(i)}{n}"
        if isinstance(value, Decimal):
            out.append(f'<c r="{ref}"><v>{value:f}</v></c>')
        elif value:
            text = escape(NOT_XML.sub("", value))
            out.append(
                f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'
            )
    return f'<row r="{n}">{"".join(out)}</row>'


async def _handles(tx: Tx, pks: set[int]) -> dict[int, str]:
    if not pks:
        return {}
    rows = await tx.session.execute(select(Case.id, Case.handle).where(Case.id.in_(pks)))
    return {int(pk): str(handle) for pk, handle in rows.all()}


def _at(tx: Tx, at: datetime | None) -> str:
    return "" if at is None else f"{tx.local(at):%Y-%m-%d %H:%M:%S}"
