"""What can go wrong with a parcel, and the anomaly case's states: the pure transition table
and the words for kinds, states and actions.
"""

from __future__ import annotations

from enum import StrEnum

from handlers.states import Machine


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
CLOSED = frozenset(AnomalyState) - ACTIVE
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
    "handover": "转交",
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
