"""Whom to pay: the full payee account of a payout, for finance and admins only, by direct
message, every time audited; and the payee account taken out of the chat message that asked for
the payout, where the platform lets a message be changed.

Everywhere else (cards, replies, lines, the case API, exports, logs) the account is masked.
The direct message is built when it is sent, from the payout row, so the outbox never holds it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from handlers import masking
from handlers.authority import account
from handlers.config import StaffSettings
from handlers.context import Tx
from handlers.errors import PermissionDeniedError, UsageError
from handlers.masking import mask_account, mask_name
from handlers.message import Reply
from handlers.money import format_fen
from handlers.payout.data import PayoutData
from handlers.payout.machine import FINANCE, KIND_TEXT, STATE_TEXT
from handlers.payout.move import repo
from storage.enums import CaseKind
from storage.models import Case

DIRECT = "direct.payee"
REDACT = "redact.input"
REVEALED = "payee_revealed"
RECALL_HINT = (
    "⚠ 你发的消息里有完整的收款账号，群里人人可见：请长按那条消息撤回（机器人不能替你撤回）。"
    "账号已记在 {handle}，财务发「收款 {handle}」私信查看。"
)


@dataclass(frozen=True)
class Asker:
    """Who asked to see an account, and where: the platform identity a direct message goes to."""

    staff: StaffSettings
    channel: str
    platform: str
    user: str
    group_id: str
    input_id: str
    direct: bool


async def reveal(tx: Tx, case: Case, asker: Asker) -> Reply:
    """The payee of `case` in full for finance or an admin: in a direct chat as the answer,
    from a group by direct message where the channel can send one, else refused. Audited."""
    tx.svc.staff.require(asker.staff, FINANCE, "查看完整收款账号")
    if case.kind != CaseKind.PAYOUT:
        raise UsageError(f"{case.handle} 不是打款单：收款账号只有打款单（P7）才有")
    payout = await repo(tx).get(case.id)
    if payout is None:
        raise UsageError(f"{case.handle} 没有收款信息")
    if asker.direct:
        await _audit(tx, case, asker, "reply")
        shown = (payout.payee_account, payout.payee_name, *masking.identifiers(case))
        return Reply(await direct_text(tx, case), allow=shown)
    capabilities = tx.svc.capabilities.get(asker.channel)
    if capabilities is None or not capabilities.direct_messages:
        raise PermissionDeniedError(
            f"这个群所在的渠道不能私信，完整收款账号不会发在群里：请私聊机器人发「收款 {case.handle}」"
        )
    await _queue(tx, case, asker)
    await _audit(tx, case, asker, "direct_message")
    return Reply(f"🔒 {case.handle} 的完整收款账号已私信发给 {asker.staff.display}（群里不显示）")


async def direct_text(tx: Tx, case: Case) -> str:
    """What the direct message says: the payee in full, the amount and what it is for."""
    payout = await repo(tx).get(case.id)
    if payout is None:
        raise UsageError(f"{case.handle} 没有收款信息")
    kind = KIND_TEXT.get(payout.kind, payout.kind)
    order = f" · 订单 {case.order_id}" if case.order_id else ""
    return (
        f"🔒 {case.handle} 收款信息（仅你可见，查看已记录）\n"
        f"收款账号：{payout.payee_account}\n"
        f"收款人：{payout.payee_name}\n"
        f"金额：{format_fen(case.amount_fen)} · {kind}{order} · {STATE_TEXT.get(case.state, case.state)}"
    )


async def send_to_finance(tx: Tx, case: Case) -> int:
    """`[payout] send_payee_to_finance`: an approved manual payout's payee by direct message to
    each finance person whose `groups` list the payout's group, on that group's channel when it
    can write to one person; each one audited. How many were queued."""
    policy = tx.svc.settings.payout
    group = tx.svc.settings.group(case.group_id)
    if not policy.send_payee_to_finance or policy.transfers or group is None:
        return 0
    capabilities = tx.svc.capabilities.get(group.channel)
    if capabilities is None or not capabilities.direct_messages:
        return 0
    platform = group.channel.split("_", 1)[0]
    approver = PayoutData.of(case).approval
    sent = 0
    for staff in tx.svc.staff.with_role({"finance"}):
        to = account(staff, platform)
        if not to or group.id not in staff.groups or (approver and approver.by == staff.id):
            continue
        asker = Asker(staff, group.channel, platform, to, group.id, f"approved-{staff.id}", False)
        await _queue(tx, case, asker)
        await _audit(tx, case, asker, "on_approval")
        sent += 1
    return sent


def may_see(staff: StaffSettings | None) -> bool:
    """Whether `staff` may be sent a full payee account (finance or admin)."""
    return staff is not None and bool(FINANCE & set(staff.roles))


async def _queue(tx: Tx, case: Case, asker: Asker) -> None:
    """The direct message to `asker`, as an outbox item naming the payout, not its account."""
    await tx.outbox.add(
        f"{DIRECT}:{asker.channel}:{asker.input_id or tx.now.isoformat()}:{case.id}"[:255],
        DIRECT,
        now=tx.now,
        case_pk=case.id,
        group_id=asker.group_id,
        payload={
            "channel": asker.channel,
            "platform": asker.platform,
            "to": asker.user,
            "staff_id": asker.staff.id,
        },
    )


async def _audit(tx: Tx, case: Case, asker: Asker, via: str) -> None:
    await tx.audit(
        case,
        asker.staff.id,
        REVEALED,
        from_state=case.state,
        channel=asker.channel,
        via=via,
        group=asker.group_id,
    )


def redacted(text: str, account: str, name: str) -> str:
    """`text` (what a person typed to ask for a payout) with the payee account and name
    masked, and any other personal data in it too."""
    out = _swap(text, account, mask_account(account))
    out = _swap(out, name, mask_name(name))
    return masking.redact(out)


def _swap(text: str, word: str, masked: str) -> str:
    """`text` with `word`, wherever it stands as a word of its own, written `masked`."""
    if not word or masked == word:
        return text
    return re.sub(rf"(?<!\S){re.escape(word)}(?!\S)", lambda _m: masked, text)


async def redact_request(
    tx: Tx, case: Case, *, channel: str, input_id: str, text: str, direct: bool
) -> str:
    """Take the payee out of the message that asked for `case`: replaced where the channel can
    change it (the sandbox), else the words asking the person to recall it ("" in a direct chat,
    where nobody else reads it)."""
    capabilities = tx.svc.capabilities.get(channel)
    if capabilities is not None and capabilities.redacts_input and input_id:
        await tx.outbox.add(
            f"{REDACT}:{channel}:{input_id}"[:255],
            REDACT,
            now=tx.now,
            case_pk=case.id,
            payload={"channel": channel, "ref": input_id, "text": text},
        )
        return ""
    if direct:
        return ""
    return RECALL_HINT.format(handle=case.handle)
