"""Parcels and logistics anomalies: one record per parcel, the anomaly scan, the anomaly cards.

One anomaly case per parcel and problem: a recurrence updates its card, never posts another.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.settings import LogisticsSettings, StaffSettings
from handlers.context import Tx
from handlers.errors import UsageError
from handlers.message import Button, ButtonStyle, Card, Field, Mention, Reply, Tone, one_line
from handlers.money import format_fen
from handlers.schema import Envelope, ShipmentTracking
from handlers.states import Machine
from handlers.step import step
from storage.enums import CaseKind
from storage.models import Case, Parcel, Timer

log = logging.getLogger(__name__)

# Exception / returned / rejected scans are raised as they arrive. Stalls (no pickup, no
# update after pickup, stuck in transit, no movement = lost) are raised by the anomaly
# scan: a durable timer on a fixed grid, armed for the first grid point after some
# parcel's next check, so it survives restarts and fires once across instances.


class Anomaly(StrEnum):
    NO_PICKUP = "no_pickup"
    NO_UPDATE = "no_update"
    STUCK = "stuck"
    LOST = "lost"
    EXCEPTION = "exception"
    RETURNED = "returned"
    REJECTED = "rejected"


STALLS = frozenset({Anomaly.NO_PICKUP, Anomaly.NO_UPDATE, Anomaly.STUCK, Anomaly.LOST})
# Any newer scan ends these: the parcel moves again.
RECOVER_ON_MOVEMENT = STALLS | {Anomaly.EXCEPTION}
SEVERE = frozenset({Anomaly.LOST, Anomaly.RETURNED, Anomaly.REJECTED})
ORDER = list(Anomaly)


@dataclass(frozen=True)
class Thresholds:
    no_pickup: timedelta
    no_update: timedelta
    stuck: timedelta
    lost: timedelta

    @classmethod
    def from_settings(cls, settings: LogisticsSettings) -> Thresholds:
        return cls(
            no_pickup=timedelta(hours=settings.no_pickup_h),
            no_update=timedelta(hours=settings.no_update_after_pickup_h),
            stuck=timedelta(hours=settings.stuck_in_transit_h),
            lost=timedelta(days=settings.lost_days),
        )


def deadlines(
    status: str, shipped_at: datetime | None, last_event_at: datetime, th: Thresholds
) -> dict[Anomaly, datetime]:
    """When each stall anomaly falls due for a parcel whose newest scan is (`status`, `last_event_at`)."""
    if status == "delivered":
        return {}
    if status == "created":
        return {Anomaly.NO_PICKUP: (shipped_at or last_event_at) + th.no_pickup}
    due = {Anomaly.LOST: last_event_at + th.lost}
    if status == "picked_up":
        due[Anomaly.NO_UPDATE] = last_event_at + th.no_update
    elif status in ("in_transit", "delivering"):
        due[Anomaly.STUCK] = last_event_at + th.stuck
    return due


def overdue(
    due: dict[Anomaly, datetime], flagged: set[Anomaly], now: datetime
) -> tuple[list[Anomaly], set[Anomaly]]:
    """(kinds to raise now, kinds settled for this stall); a lost parcel is not also 'stuck'."""
    late = {kind for kind, at in due.items() if at <= now and kind not in flagged}
    if Anomaly.LOST in late:
        return [Anomaly.LOST], late
    return sorted(late, key=ORDER.index), late


def next_check(due: dict[Anomaly, datetime], flagged: set[Anomaly]) -> datetime | None:
    return min((at for kind, at in due.items() if kind not in flagged), default=None)


def next_slot(at: datetime, interval_s: float) -> datetime:
    """The first point of the scan grid strictly after `at` (the same on every instance)."""
    step = timedelta(seconds=interval_s)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((at - epoch) // step + 1) * step


# -- words --------------------------------------------------------------------------------

CARRIERS = {
    "SF": ("顺丰", "95338"),
    "ZTO": ("中通", "95311"),
    "YTO": ("圆通", "95554"),
    "YD": ("韵达", "95546"),
    "STO": ("申通", "95543"),
    "JD": ("京东", "950616"),
    "EMS": ("EMS", "11183"),
    "YZPY": ("中国邮政", "11183"),
    "JT": ("极兔", "956025"),
    "DBL": ("德邦", "95353"),
}
TRACKING_TEXT = {
    "created": "已发货 · 待揽收",
    "picked_up": "已揽收",
    "in_transit": "运输中",
    "exception": "异常",
    "delivering": "派件中",
    "delivered": "已签收",
    "returned": "退回中",
    "rejected": "拒收",
}
KIND_TEXT: dict[str, str] = {
    Anomaly.NO_PICKUP: "揽收超时",
    Anomaly.NO_UPDATE: "揽收后未更新",
    Anomaly.STUCK: "物流停滞",
    Anomaly.LOST: "疑似丢件",
    Anomaly.EXCEPTION: "快件异常",
    Anomaly.RETURNED: "快件退回",
    Anomaly.REJECTED: "收件人拒收",
}
RISK_TEXT: dict[str, str] = {
    Anomaly.NO_PICKUP: "揽收超时会被平台按订单金额罚款 30%，并拉低「24小时揽收及时率」",
    Anomaly.NO_UPDATE: "揽收后长时间无更新会被判定虚假发货：买家投诉成立赔付 30%（5–500 元）",
    Anomaly.STUCK: "物流停滞会被判定虚假发货（赔付 30%，5–500 元）；买家此时申请退款，平台可直接同意",
    Anomaly.LOST: "超过时限无走件按丢件处理：补发或退款，货损由快递承担，可请快递开具红章证明",
    Anomaly.EXCEPTION: "请联系快递核实地址和电话，必要时拦截退回",
    Anomaly.RETURNED: "快件正在退回：确认是否补发或给买家退款",
    Anomaly.REJECTED: "收件人拒收，快件将退回：请联系买家确认退款或补发",
}


def carrier_name(code: str) -> str:
    return CARRIERS.get(code, (code, ""))[0]


def carrier_hotline(code: str) -> str:
    return CARRIERS.get(code, ("", ""))[1]


def parcel_text(carrier: str, tracking_no: str) -> str:
    return f"{carrier_name(carrier)} {tracking_no}"


def parcel_key(carrier: str, tracking_no: str) -> str:
    return f"{carrier}:{tracking_no}"


# -- the anomaly case ----------------------------------------------------------------------


class AnomalyState(StrEnum):
    OPEN = "open"
    CONTACTING = "contacting"
    INTERCEPTING = "intercepting"
    RESHIPPED = "reshipped"
    IGNORED = "ignored"
    RECOVERED = "recovered"


class AnomalyTrigger(StrEnum):
    CONTACT = "contact_carrier"
    INTERCEPT = "intercept"
    RESHIP = "reship"
    IGNORE = "ignore"
    RECOVER = "recover"
    REOPEN = "reopen"


A, AT = AnomalyState, AnomalyTrigger
ACTIVE = frozenset({A.OPEN, A.CONTACTING})
ANOMALY_TRANSITIONS: dict[tuple[AnomalyState, AnomalyTrigger], AnomalyState] = {
    (A.OPEN, AT.CONTACT): A.CONTACTING,
    **{(s, AT.INTERCEPT): A.INTERCEPTING for s in ACTIVE},
    **{(s, AT.RESHIP): A.RESHIPPED for s in ACTIVE},
    **{(s, AT.IGNORE): A.IGNORED for s in ACTIVE},
    **{(s, AT.RECOVER): A.RECOVERED for s in ACTIVE},
    (A.RECOVERED, AT.REOPEN): A.OPEN,
    (A.INTERCEPTING, AT.REOPEN): A.OPEN,
}
ANOMALY_STATE_TEXT: dict[str, str] = {
    A.OPEN: "待处理",
    A.CONTACTING: "联系快递中",
    A.INTERCEPTING: "已转拦截",
    A.RESHIPPED: "已安排补发",
    A.IGNORED: "已忽略",
    A.RECOVERED: "物流已恢复",
}
ANOMALY_ACTION_TEXT = {
    "raised": "发现异常",
    "recurred": "再次发生",
    AT.CONTACT.value: "联系快递",
    AT.INTERCEPT.value: "转拦截",
    AT.RESHIP.value: "安排补发",
    AT.IGNORE.value: "忽略",
    AT.RECOVER.value: "物流恢复",
    AT.REOPEN.value: "重新打开",
}
TRIGGER_TEXT: dict[str, str] = {
    AT.CONTACT: "联系快递",
    AT.INTERCEPT: "拦截",
    AT.RESHIP: "补发",
    AT.IGNORE: "忽略",
}


ANOMALY = Machine(
    "这个物流异常", AnomalyState, ANOMALY_TRANSITIONS, ANOMALY_STATE_TEXT, TRIGGER_TEXT
)
advance_anomaly = ANOMALY.advance


async def move_anomaly(
    tx: Tx,
    case: Case,
    trigger: AnomalyTrigger,
    *,
    actor: str,
    channel: str = "",
    data: dict[str, Any] | None = None,
    **changes: Any,
) -> AnomalyState:
    return await step(
        tx,
        case,
        ANOMALY,
        trigger,
        actor=actor,
        closed=frozenset(AnomalyState) - ACTIVE,
        footer=anomaly_footer(case, tx),
        channel=channel,
        data=data,
        **changes,
    )


def anomaly_case_id(carrier: str, tracking_no: str, kind: Anomaly) -> str:
    return f"{parcel_key(carrier, tracking_no)}:{kind.value}"


async def anomaly_of(tx: Tx, parcel: Parcel, kind: Anomaly) -> Case | None:
    pk = parcel.anomalies.get(kind.value)
    if isinstance(pk, int) and (case := await tx.cases.get(pk)) is not None:
        return case
    return await tx.cases.by_case_id(
        CaseKind.ANOMALY, anomaly_case_id(parcel.carrier, parcel.tracking_no, kind)
    )


def _detail(kind: Anomaly, parcel: Parcel, now: datetime, settings: LogisticsSettings) -> str:
    hours = int((now - parcel.last_event_at).total_seconds() // 3600)
    if kind is Anomaly.NO_PICKUP:
        since = parcel.shipped_at or parcel.last_event_at
        waited = int((now - since).total_seconds() // 3600)
        return f"发货 {waited} 小时仍未揽收（时限 {settings.no_pickup_h:g} 小时）"
    if kind is Anomaly.NO_UPDATE:
        return f"揽收后 {hours} 小时没有物流更新（时限 {settings.no_update_after_pickup_h:g} 小时）"
    if kind is Anomaly.STUCK:
        status = TRACKING_TEXT.get(parcel.status, parcel.status)
        return f"{status} {hours} 小时没有物流更新（时限 {settings.stuck_in_transit_h:g} 小时）"
    if kind is Anomaly.LOST:
        days = (now - parcel.last_event_at).total_seconds() / 86400
        return f"{days:.1f} 天没有任何走件（超过 {settings.lost_days:g} 天按丢件处理）"
    return parcel.description or KIND_TEXT[kind]


async def raise_anomaly(tx: Tx, parcel: Parcel, kind: Anomaly) -> Case:
    """Open (or update) the anomaly case of this parcel and problem; never a second card."""
    settings = tx.svc.settings.logistics
    case = await anomaly_of(tx, parcel, kind)
    facts = {
        "status": parcel.status,
        "detail": _detail(kind, parcel, tx.now, settings),
        "scan": {"at": parcel.last_event_at.isoformat(), "description": parcel.description},
        "seen_at": tx.now.isoformat(),
    }
    if case is None:
        refund = await tx.cases.latest_for_order(CaseKind.REFUND, parcel.order_id)
        group = tx.svc.route(shop=parcel.shop, platform=parcel.platform, kind="anomaly")
        case = await tx.cases.create(
            kind=CaseKind.ANOMALY,
            case_id=anomaly_case_id(parcel.carrier, parcel.tracking_no, kind),
            state=A.OPEN.value,
            now=tx.now,
            shop=parcel.shop,
            platform=parcel.platform,
            order_id=parcel.order_id,
            amount_fen=refund.amount_fen if refund else 0,
            group_id=group.id if group else "",
            # "<kind>@<carrier>" lets digests count by kind and carrier in SQL.
            reason=f"{kind.value}@{parcel.carrier}"[:255],
            data={
                "anomaly": kind.value,
                "carrier": parcel.carrier,
                "tracking_no": parcel.tracking_no,
                "count": 1,
                **facts,
                **(
                    {"refund": {"pk": refund.id, "handle": refund.handle}}
                    if refund is not None
                    else {}
                ),
            },
            last_actor="system",
            last_action="raised",
        )
        parcel.anomalies = {**parcel.anomalies, kind.value: case.id}
        await tx.audit(case, "system", "raised", anomaly=kind.value)
        if group is None:
            await tx.post(
                tx.svc.admin_group,
                f"⚠ 物流异常 {case.handle}（{parcel_text(parcel.carrier, parcel.tracking_no)}）"
                "没有匹配的群，请检查 [[groups]] 的路由配置",
                key=f"unrouted:{case.id}",
                case=case,
            )
        await tx.sync_card(case)
        return case
    data = {**case.data, **facts, "count": int(case.data.get("count", 1)) + 1}
    if case.state == A.RECOVERED:
        await move_anomaly(tx, case, AT.REOPEN, actor="system", data=data)
    else:
        await tx.cases.touch(
            case, now=tx.now, data=data, last_actor="system", last_action="recurred"
        )
        await tx.audit(case, "system", "recurred", from_state=case.state, anomaly=kind.value)
        await tx.sync_card(case)
    return case


async def _recover(tx: Tx, parcel: Parcel, kinds: frozenset[Anomaly]) -> None:
    for kind in sorted(kinds, key=ORDER.index):
        if kind.value not in parcel.anomalies:
            continue
        case = await anomaly_of(tx, parcel, kind)
        if case is None or case.state not in ACTIVE:
            continue
        data = {
            **case.data,
            "recovered": {
                "at": parcel.last_event_at.isoformat(),
                "status": parcel.status,
                "description": parcel.description,
            },
        }
        await move_anomaly(tx, case, AT.RECOVER, actor="carrier", data=data)


# -- parcels --------------------------------------------------------------------------------


def _scan_key(scan: dict[str, Any]) -> tuple[str, str]:
    return str(scan.get("at", "")), str(scan.get("status", ""))


def _history(parcel: Parcel, scans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged = {_scan_key(s): s for s in [*parcel.scans, *scans]}
    return sorted(merged.values(), key=lambda s: str(s.get("at", "")), reverse=True)[:20]


async def on_tracking(tx: Tx, envelope: Envelope, data: ShipmentTracking) -> Parcel:
    """One tracking scan: update the parcel, raise alert statuses at once, re-arm the watch."""
    settings = tx.svc.settings.logistics
    at = data.at or envelope.occurred_at
    parcel, created = await tx.parcels.ensure(
        data.carrier, data.tracking_no, status=data.status, at=at, now=tx.now
    )
    scan = {"at": at.isoformat(), "status": data.status, "description": data.description[:200]}
    seen = _scan_key(scan) in {_scan_key(s) for s in parcel.scans}
    moved = not created and at > parcel.last_event_at
    latest = created or at >= parcel.last_event_at
    extra = data.model_extra or {}
    raw = extra.get("scans")
    history = [s for s in raw if isinstance(s, dict)] if isinstance(raw, list) else []
    parcel.scans = _history(parcel, [*history, scan])
    parcel.order_id = parcel.order_id or data.order_id
    parcel.shop = parcel.shop or envelope.shop
    parcel.platform = parcel.platform or envelope.platform
    parcel.source = str(extra.get("source", parcel.source or "event"))[:16]
    parcel.updated_at = tx.now
    if data.status == "created" or parcel.shipped_at is None:
        parcel.shipped_at = min(at, parcel.shipped_at or at)
    if data.status == "picked_up":
        parcel.picked_up_at = min(at, parcel.picked_up_at or at)
    if latest and not seen:
        parcel.status = data.status
        parcel.last_event_at = at
        parcel.description = data.description[:500]
    if moved:
        ended = RECOVER_ON_MOVEMENT if data.status != "exception" else STALLS
        await _recover(tx, parcel, ended)
    if latest and not seen and data.status in settings.alert_statuses:
        kind = Anomaly(data.status)
        expected = kind in (Anomaly.RETURNED, Anomaly.EXCEPTION)
        if not (expected and await _being_intercepted(tx, parcel)):
            await raise_anomaly(tx, parcel, kind)
    await watch(tx, parcel, Thresholds.from_settings(settings), raise_due=False)
    return parcel


async def _being_intercepted(tx: Tx, parcel: Parcel) -> bool:
    """An intercepted parcel is expected to be held and sent back: those scans are no problem."""
    case = await tx.cases.by_case_id(
        CaseKind.INTERCEPT, parcel_key(parcel.carrier, parcel.tracking_no)
    )
    return case is not None and case.data.get("outcome") != "failed"


async def watch(tx: Tx, parcel: Parcel, th: Thresholds, *, raise_due: bool) -> None:
    """Raise what is overdue (on a scan), then set the parcel's next check and arm the scan."""
    due = deadlines(parcel.status, parcel.shipped_at, parcel.last_event_at, th)
    episode = parcel.last_event_at.isoformat()
    flagged = {Anomaly(k) for k, seen in parcel.flags.items() if seen == episode}
    if raise_due:
        now_due, settled = overdue(due, flagged, tx.now)
        for kind in now_due:
            await raise_anomaly(tx, parcel, kind)
        if settled:
            parcel.flags = {**parcel.flags, **{k.value: episode for k in settled}}
            flagged |= settled
    parcel.next_check_at = next_check(due, flagged)
    if parcel.next_check_at is not None:
        await arm_scan(tx, parcel.next_check_at)


async def arm_scan(tx: Tx, due: datetime, *, round_: int = 0) -> None:
    """Make sure an anomaly scan runs on the first grid point after `due` (idempotent)."""
    interval = tx.svc.settings.logistics.scan_interval_s
    slot = tx.now if round_ else next_slot(max(due, tx.now), interval)
    name = f"{slot:%Y%m%dT%H%M%S}"
    await tx.timers.schedule(
        f"logistics_scan:{name}:{round_}" if round_ else f"logistics_scan:{name}",
        "logistics_scan",
        due_at=slot,
        now=tx.now,
        payload={"round": round_},
    )


async def run_scan(tx: Tx, timer: Timer) -> None:
    """The anomaly scan: raise what came due on the parcels whose check has come."""
    settings = tx.svc.settings.logistics
    th = Thresholds.from_settings(settings)
    parcels = await tx.parcels.due(tx.now, settings.scan_batch)
    for parcel in parcels:
        await watch(tx, parcel, th, raise_due=True)
        parcel.updated_at = tx.now
    if len(parcels) >= settings.scan_batch:
        await arm_scan(tx, tx.now, round_=int(timer.payload.get("round", 0)) + 1)
    earliest = await tx.parcels.earliest_check()
    if earliest is not None:
        await arm_scan(tx, earliest)
    log.info("anomaly scan %s checked %d parcels", timer.id, len(parcels))


# -- the card -----------------------------------------------------------------------------


def anomaly_mentions(tx: Tx, case: Case) -> tuple[Mention, ...]:
    directory = tx.svc.staff
    if case.assignee and (staff := directory.get(case.assignee)):
        return (directory.mention(staff),)
    roles = ["agent", "supervisor"] if Anomaly(case.data["anomaly"]) in SEVERE else ["agent"]
    return directory.mentions(directory.with_role(roles))


def anomaly_footer(case: Case, tx: Tx) -> str:
    if not case.last_action:
        return ""
    who = tx.svc.staff.name(case.last_actor)
    if case.last_actor == "carrier":
        who = "物流"
    what = ANOMALY_ACTION_TEXT.get(case.last_action, case.last_action)
    return f"{who} {what} · {tx.local(case.updated_at):%m-%d %H:%M}"


def anomaly_card(case: Case, tx: Tx) -> Card:
    data = case.data
    kind = Anomaly(data["anomaly"])
    state = AnomalyState(case.state)
    scan = data.get("scan", {})
    status = str(data.get("status", ""))
    last = tx.local(datetime.fromisoformat(scan["at"])) if scan.get("at") else None
    fields = [
        Field("运单", parcel_text(data["carrier"], data["tracking_no"])),
        Field("订单", case.order_id or "—"),
        Field("物流状态", TRACKING_TEXT.get(status, status or "—")),
        Field(
            "最后轨迹",
            f"{last:%m-%d %H:%M} {scan.get('description', '')}".strip() if last else "—",
        ),
        Field("异常", data.get("detail", KIND_TEXT[kind])),
    ]
    if refund := data.get("refund"):
        amount = f" · {format_fen(case.amount_fen)}" if case.amount_fen else ""
        fields.append(Field("关联退款", f"{refund['handle']}{amount}"))
    if int(data.get("count", 1)) > 1:
        seen = tx.local(datetime.fromisoformat(data["seen_at"]))
        fields.append(Field("次数", f"第 {data['count']} 次 · 最近 {seen:%m-%d %H:%M}"))
    if isinstance(shown := data.get("intercept"), dict):
        fields.append(Field("拦截", f"{shown['handle']} · {shown['text']}"))
    if case.assignee:
        fields.append(Field("处理人", tx.svc.staff.name(case.assignee)))
    if hotline := carrier_hotline(data["carrier"]):
        fields.append(Field("快递电话", f"{carrier_name(data['carrier'])} {hotline}"))
    lines: list[str] = []
    if state in ACTIVE:
        lines.append(f"⚠ {RISK_TEXT[kind]}")
    elif state is A.RECOVERED and (recovered := data.get("recovered")):
        at = tx.local(datetime.fromisoformat(recovered["at"]))
        lines.append(f"✅ {at:%m-%d %H:%M} 有新轨迹：{recovered.get('description') or '已更新'}")
    elif state is A.IGNORED and (why := data.get("ignore_reason")):
        lines.append(f"忽略原因：{why}")
    elif state is A.RESHIPPED:
        lines.append("已决定补发：请在 ERP 安排补发，原件货损可向快递索赔")
    buttons: tuple[Button, ...] = ()
    if state in ACTIVE:
        buttons = (
            Button("intercept", "拦截", ButtonStyle.PRIMARY),
            Button("reship", "补发"),
            *((Button("contact_carrier", "联系快递"),) if state is A.OPEN else ()),
            Button("ignore", "忽略", ButtonStyle.DANGER),
        )
    tone = Tone.INFO
    if state is A.OPEN:
        tone = Tone.DANGER if kind in SEVERE else Tone.WARNING
    elif state is A.CONTACTING:
        tone = Tone.WARNING
    elif state in (A.RESHIPPED, A.RECOVERED):
        tone = Tone.SUCCESS
    elif state is A.IGNORED:
        tone = Tone.MUTED
    return Card(
        case_pk=case.id,
        case_id=case.case_id,
        handle=case.handle,
        kind=case.kind,
        state=case.state,
        version=case.version,
        title=f"物流异常 {case.handle} · {KIND_TEXT[kind]}",
        status=ANOMALY_STATE_TEXT[state],
        tone=tone,
        fields=tuple(fields),
        buttons=buttons,
        lines=tuple(lines),
        footer=anomaly_footer(case, tx),
        mentions=anomaly_mentions(tx, case) if state is A.OPEN else (),
    )


# -- people ---------------------------------------------------------------------------------


def require_anomaly(case: Case, what: str) -> None:
    if case.kind != CaseKind.ANOMALY:
        raise UsageError(f"{case.handle} 不是物流异常单，{what}请用异常单号（如 A3）")


async def contact_carrier(tx: Tx, case: Case, staff: StaffSettings, channel: str) -> Reply:
    require_anomaly(case, "联系快递")
    await move_anomaly(tx, case, AT.CONTACT, actor=staff.id, channel=channel, assignee=staff.id)
    carrier = case.data["carrier"]
    hotline = carrier_hotline(carrier)
    call = f"（客服 {hotline}）" if hotline else ""
    return Reply(
        f"📞 {case.handle} 由 {staff.display} 联系{carrier_name(carrier)}{call}，"
        f"核实 {case.data['tracking_no']} 的去向后请在卡片上选择拦截、补发或忽略"
    )


async def reship(tx: Tx, case: Case, staff: StaffSettings, channel: str) -> Reply:
    require_anomaly(case, "补发")
    await move_anomaly(
        tx, case, AT.RESHIP, actor=staff.id, channel=channel, assignee=case.assignee or staff.id
    )
    return Reply(f"📦 {case.handle} 已记为补发（{staff.display}），请在 ERP 安排补发")


async def ignore(tx: Tx, case: Case, staff: StaffSettings, reason: str, channel: str) -> Reply:
    require_anomaly(case, "忽略")
    data = {**case.data, "ignore_reason": reason.strip()[:200]} if reason.strip() else None
    await move_anomaly(
        tx,
        case,
        AT.IGNORE,
        actor=staff.id,
        channel=channel,
        data=data,
        assignee=case.assignee or staff.id,
    )
    return Reply(
        f"已忽略 {case.handle}" + (f"：{one_line(reason.strip())}" if reason.strip() else "")
    )
