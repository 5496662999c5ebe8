"""The 支付宝批量付款 file: every approved manual payout nobody has paid yet, with its full
payee account, laid out like Alipay's batch-payment upload template; each payout it lists is
audited as exported."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import BinaryIO, TextIO

from handlers import masking
from handlers.context import Tx
from handlers.export import Cell, csv_text, header_row, put, spreadsheet_cell, workbook
from handlers.masking import mask_account
from handlers.money import fen_to_yuan
from handlers.payout import machine as payout_machine
from storage.repositories.payouts import PayoutRepository

# 支付宝「批量付款到支付宝账户」: the title line and columns of its upload template, as a public
# payment system writes it; Alipay's own download was not available to check it against.
ALIPAY_TITLE = "支付宝批量付款文件模板"
ALIPAY_COLUMNS = (
    "序号（必填）",
    "收款方支付宝账号（必填）",
    "收款方姓名（必填）",
    "金额（必填，单位：元）",
    "备注（选填）",
)
# An Alipay login: a mainland mobile number or an e-mail address.
ALIPAY_ACCOUNT = re.compile(
    r"1[3-9][0-9]{9}|[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9.-]+\.[A-Za-z]+"
)
ALIPAY_NOTE_MAX = 50
EXPORTED = "payee_exported"


@dataclass(frozen=True)
class AlipayBatch:
    """The batch-payment rows (full accounts), and the payouts left out of the file and why."""

    rows: list[tuple[int, str, str, Decimal, str]]
    handles: list[str]
    fen: int
    left_out: list[str]

    @property
    def count(self) -> int:
        return len(self.rows)


async def alipay_batch(
    tx: Tx,
    *,
    actor: str,
    since: datetime | None = None,
    until: datetime | None = None,
    channel: str = "cli",
) -> AlipayBatch:
    """Every approved manual payout not paid yet (approved in [since, until) when given), with
    its full account, for 支付宝批量付款; each one listed is audited as exported by `actor`.
    A payee account that is not an Alipay login is left out, named in `left_out`."""
    pairs = await PayoutRepository(tx.session).awaiting_payment("manual", since, until)
    rows: list[tuple[int, str, str, Decimal, str]] = []
    handles: list[str] = []
    left_out: list[str] = []
    fen = 0
    for payout, case in pairs:
        account = payout.payee_account.strip()
        if not ALIPAY_ACCOUNT.fullmatch(account):
            left_out.append(f"{case.handle}（收款账号 {mask_account(account)} 不是支付宝账号）")
            continue
        kind = payout_machine.KIND_TEXT.get(payout.kind, payout.kind)
        note = " ".join(part for part in (case.handle, kind, case.order_id) if part)
        note = masking.redact(note[:ALIPAY_NOTE_MAX], masking.identifiers(case))
        rows.append((len(rows) + 1, account, payout.payee_name, fen_to_yuan(case.amount_fen), note))
        handles.append(case.handle)
        fen += case.amount_fen
        await tx.audit(case, actor, EXPORTED, from_state=case.state, channel=channel, file="alipay")
    return AlipayBatch(rows, handles, fen, left_out)


def write_alipay_csv(batch: AlipayBatch, out: TextIO) -> None:
    """The batch file as the template's CSV: the title line, the header, one line per payout."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([ALIPAY_TITLE])
    writer.writerow(ALIPAY_COLUMNS)
    for row in batch.rows:
        writer.writerow([csv_text(spreadsheet_cell(v)) for v in row])


def write_alipay_xlsx(batch: AlipayBatch, out: BinaryIO) -> None:
    """The batch file as a workbook laid out like the template: title row, header row, rows."""
    wb, sheet = workbook("批量付款")
    header_row(sheet, 1, [ALIPAY_TITLE])
    header_row(sheet, 2, list(ALIPAY_COLUMNS))
    for n, row in enumerate(batch.rows, start=3):
        values: tuple[Cell, ...] = row
        for i, value in enumerate(values, start=1):
            put(sheet, n, i, spreadsheet_cell(value), is_id=i == 2)
    for letter, width in zip("ABCDE", (8, 28, 16, 20, 40), strict=True):
        sheet.column_dimensions[letter].width = width
    sheet.freeze_panes = "A3"
    wb.save(out)
