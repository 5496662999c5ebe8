"""Masking personal data: what counts as a phone, card, ID or account, and what does not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.masking import describe, find, mask


@pytest.mark.parametrize(
    ("text", "masked", "label"),
    [
        ("电话13812345678，谢谢", "电话138****5678，谢谢", "手机号"),
        ("打 +86 138-1234-5678 找我", "打 138****5678 找我", "手机号"),
        ("手机 139 1234 5678", "手机 139****5678", "手机号"),
        ("座机 0571-88886666", "座机 0571-****6666", "电话号码"),
        ("身份证 11010519491231002X", "身份证 110****002X", "身份证号"),
        ("卡号 6222 0212 3456 7890 123 工行", "卡号 6222****0123 工行", "银行卡号"),
        ("退到 6222021234567890", "退到 6222****7890", "银行卡号"),
        ("支付宝 zhang.san@alipay.com", "支付宝 z***@alipay.com", "邮箱/支付宝账号"),
    ],
)
def test_mask_hides_the_middle_and_names_the_kind(text: str, masked: str, label: str) -> None:
    out, found = mask(text)
    assert out == masked
    assert [f.label for f in found] == [label]


@pytest.mark.parametrize(
    "text",
    [
        "退款 ¥128.00，2026-11-23 10:30 前处理",
        "运单号 SF1234567890",
        "运单号 YT13812345678",  # letters glued to the digits: a tracking number, not a phone
        "京东订单 301234567890",
        "拼多多订单 241123-123456789012345",
        "20 位流水 12345678901234567890",
        "尺码 175/92A，3 件",
    ],
)
def test_ordinary_numbers_are_left_alone(text: str) -> None:
    assert find(text) == []
    assert mask(text)[0] == text


def test_the_cases_own_numbers_pass_when_allowed() -> None:
    text = "您的订单 4012345678901234567 已退款，有事打 13812345678"
    assert [f.label for f in find(text)] == ["银行卡号", "手机号"]
    out, found = mask(text, allow=["4012345678901234567"])
    assert out == "您的订单 4012345678901234567 已退款，有事打 138****5678"
    assert describe(found) == "手机号 138****5678"


@given(
    before=st.text(alphabet="亲您好请联系退款谢谢，。 ", max_size=12),
    after=st.text(alphabet="亲您好请联系退款谢谢，。 ", max_size=12),
    prefix=st.sampled_from(["13", "15", "17", "18", "19"]),
    rest=st.text(alphabet="0123456789", min_size=9, max_size=9),
)
def test_a_mobile_number_never_survives_masking(
    before: str, after: str, prefix: str, rest: str
) -> None:
    number = prefix + rest
    out, found = mask(before + number + after)
    assert number not in out
    assert [f.label for f in found] == ["手机号"]
    assert f"{number[:3]}****{number[-4:]}" in out
    assert mask(out) == (out, [])
