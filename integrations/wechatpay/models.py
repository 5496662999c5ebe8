"""transfer-bills on the wire: the create body (outbound, strict) and the bill as WeChat Pay
answers it or notifies it (inbound, unknown fields ignored). Field names are the API's
(wechatpay-im/website openapi/v3/fund-app/mch-transfer/*.md; webhook MCHTRANSFER.BILL.FINISHED)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

TRANSFER_BILLS = "/v3/fund-app/mch-transfer/transfer-bills"
NOTIFY_EVENT = "MCHTRANSFER.BILL.FINISHED"


def by_out_bill_no(out_bill_no: str) -> str:
    return f"{TRANSFER_BILLS}/out-bill-no/{out_bill_no}"


def cancel_path(out_bill_no: str) -> str:
    return f"{by_out_bill_no(out_bill_no)}/cancel"


class Outbound(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Inbound(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SceneReportInfo(Outbound):
    info_type: str
    info_content: str


class TransferBillRequest(Outbound):
    appid: str
    out_bill_no: str = Field(pattern=r"^[A-Za-z0-9]{1,32}$")
    transfer_scene_id: str
    openid: str = Field(min_length=1, max_length=64)
    user_name: str | None = None
    transfer_amount: int = Field(gt=0)
    transfer_remark: str = Field(min_length=1, max_length=32)
    notify_url: str | None = None
    user_recv_perception: str | None = None
    transfer_scene_report_infos: list[SceneReportInfo] | None = None


class Bill(Inbound):
    """A bill as the create, query and cancel answers and the notification carry it."""

    out_bill_no: str
    transfer_bill_no: str = ""
    state: str
    fail_reason: str = ""
    package_info: str = ""
    mch_id: str = ""
    mchid: str = ""
    appid: str = ""
    openid: str = ""
    transfer_amount: int | None = None
    create_time: str = ""
    update_time: str = ""


class ErrorAnswer(Inbound):
    code: str = ""
    message: str = ""


class Resource(Inbound):
    original_type: str = ""
    algorithm: str
    ciphertext: str
    associated_data: str = ""
    nonce: str


class Notification(Inbound):
    id: str
    create_time: str = ""
    event_type: str
    resource_type: str
    summary: str = ""
    resource: Resource
