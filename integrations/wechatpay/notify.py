"""The transfer result notification (MCHTRANSFER.BILL.FINISHED): verified with WeChat Pay's
key and decrypted (AEAD_AES_256_GCM with the APIv3 key) by `wechatpayv3.utils`.

WeChat Pay sends it when a bill ends (SUCCESS, FAIL, CANCELLED) and repeats it until it gets
HTTP 200/204; the same notification may come many times, so `TransferNotice.id` dedupes.
Answer a refused one with 4xx/5xx and `{"code": "FAIL", "message": …}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError
from wechatpayv3 import utils as wxpay

from handlers.clock import Clock
from handlers.ports import TransferResult
from integrations.wechatpay import keys as wxkeys
from integrations.wechatpay.client import result_of
from integrations.wechatpay.models import NOTIFY_EVENT, Bill, Notification
from integrations.wechatpay.settings import WechatPaySettings

ALGORITHM = "AEAD_AES_256_GCM"


class BadNotificationError(ValueError):
    """Not a transfer notification from WeChat Pay for this merchant."""


@dataclass(frozen=True)
class TransferNotice:
    id: str
    out_bill_no: str
    result: TransferResult


class WechatPayNotifications:
    def __init__(self, settings: WechatPaySettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.keys = wxkeys.load_keys(settings, clock.now())

    def read(self, headers: Mapping[str, str], body: str) -> TransferNotice:
        problem = wxkeys.verify(
            self.keys,
            headers,
            body,
            now=self.clock.now(),
            max_skew_s=self.settings.max_skew_s,
        )
        if problem is not None:
            raise BadNotificationError(f"not WeChat Pay's: {problem}")
        try:
            notification = Notification.model_validate_json(body)
        except ValidationError as exc:
            raise BadNotificationError("not a notification") from exc
        if notification.event_type != NOTIFY_EVENT:
            raise BadNotificationError(f"event {notification.event_type}")
        resource = notification.resource
        if notification.resource_type != "encrypt-resource" or resource.algorithm != ALGORITHM:
            raise BadNotificationError(
                f"resource {notification.resource_type} {resource.algorithm}"
            )
        try:
            plain = wxpay.aes_decrypt(
                nonce=resource.nonce,
                ciphertext=resource.ciphertext,
                associated_data=resource.associated_data,
                apiv3_key=self.settings.apiv3_key.get_secret_value(),
            )
        except ValueError as exc:  # bad base64, wrong key or nonce length
            raise BadNotificationError("cannot decrypt the resource") from exc
        if plain is None:
            raise BadNotificationError("the resource does not decrypt with the APIv3 key")
        try:
            bill = Bill.model_validate_json(plain)
        except ValidationError as exc:
            raise BadNotificationError("the resource is not a transfer bill") from exc
        merchant = bill.mchid or bill.mch_id
        if merchant and merchant != self.settings.mchid:
            raise BadNotificationError(f"bill of merchant {merchant}")
        return TransferNotice(notification.id, bill.out_bill_no, result_of(bill))
