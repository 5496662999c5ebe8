"""抖店 signatures against the worked vectors of the connector research (§4.2), exactly as
they stand, and the push check's tolerance of case and refusal of anything else."""

from __future__ import annotations

from integrations.douyin import signing

APP_KEY = "7000000000000000001"
APP_SECRET = "demo_secret_0123456789"
PARAMS = {
    "page": 0,
    "size": 10,
    "update_start_time": 1714521600,
    "update_end_time": 1714525200,
    "order_by": ["update_time asc"],
}
PARAM_JSON = (
    '{"order_by":["update_time asc"],"page":0,"size":10,'
    '"update_end_time":1714525200,"update_start_time":1714521600}'
)
PUSH_BODY = (
    b'[{"tag":"200","msg_id":"7300000000000000001","data":"{\\"aftersale_id\\":7300000000000000002,'
    b'\\"aftersale_status\\":6,\\"aftersale_type\\":2,\\"apply_time\\":1714521600,'
    b'\\"p_id\\":4900000000000000003,\\"reason_code\\":1,\\"refund_amount\\":1990,'
    b'\\"refund_post_amount\\":0,\\"refund_voucher_num\\":0,\\"s_id\\":4900000000000000004,'
    b'\\"shop_id\\":123456,\\"update_time\\":1714521600}"}]'
)


def test_douyin_param_json_is_sorted_and_compact() -> None:
    assert signing.param_json(PARAMS) == PARAM_JSON


def test_douyin_param_json_keeps_html_and_unicode_unescaped() -> None:
    text = signing.param_json({"b": {"z": 1, "a": "<退款&>"}, "a": "\u2028"})
    assert text == '{"a":"\\u2028","b":{"a":"<退款&>","z":1}}'


def test_douyin_request_sign_hmac_sha256_vector() -> None:
    sign = signing.sign(APP_KEY, APP_SECRET, "afterSale.List", PARAM_JSON, "1714525200")
    assert sign == "18d1718d22b6091126bbbd15824a093176f5b35b54a042c66af05f25246c6e02"


def test_douyin_request_sign_md5_vector() -> None:
    sign = signing.sign(
        APP_KEY, APP_SECRET, "afterSale.List", PARAM_JSON, "1714525200", sign_method="md5"
    )
    assert sign == "c3419de19c017cfc545c44320416f4dd"


def test_douyin_push_event_sign_vector() -> None:
    assert signing.event_sign(APP_KEY, APP_SECRET, PUSH_BODY) == "37bd3253460257c91df4718e6f69738b"


def test_douyin_push_verify_accepts_any_case_and_refuses_the_rest() -> None:
    good = "37bd3253460257c91df4718e6f69738b"
    assert signing.verify_event(APP_KEY, APP_SECRET, PUSH_BODY, good)
    assert signing.verify_event(APP_KEY, APP_SECRET, PUSH_BODY, good.upper())
    assert not signing.verify_event(APP_KEY, APP_SECRET, PUSH_BODY + b" ", good)
    assert not signing.verify_event(APP_KEY, "other", PUSH_BODY, good)
    assert not signing.verify_event(APP_KEY, APP_SECRET, PUSH_BODY, None)
    assert not signing.verify_event(APP_KEY, APP_SECRET, PUSH_BODY, "签名")
