"""The one masking function: no phone or ID number survives in any spelling people use to slip
past a filter (full-width, spaced, dotted, dashed, zero-width, mixed), and addresses lose their
detailed part while keeping the city and district."""

from __future__ import annotations

import logging
import re
import timeit
import unicodedata
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers import masking
from handlers.masking import mask

FULL_WIDTH = str.maketrans("0123456789Xx", "０１２３４５６７８９Ｘｘ")
SEPARATORS = [" ", ".", "-", "　", "－", "．", "\u200b", "—", "_", "\t"]
# Text around a number: no digit and no Latin letter right next to it (a letter glued to the
# digits makes a tracking number like YT13812345678, which is left alone on purpose).
AROUND = st.text(alphabet="亲您好请联系我电话号码是打给，。：:！？（） \n【】买家退款", max_size=10)


@st.composite
def spelled(draw: st.DrawFn, number: str) -> str:
    """`number` as a person might type it: any digit full-width, any gap with up to two
    separators."""
    out = []
    for i, char in enumerate(number):
        if i and draw(st.booleans()):
            out.append("".join(draw(st.lists(st.sampled_from(SEPARATORS), max_size=2))))
        out.append(char.translate(FULL_WIDTH) if draw(st.booleans()) else char)
    return "".join(out)


def digits_of(text: str) -> str:
    return re.sub(r"[^0-9X]", "", unicodedata.normalize("NFKC", text).upper())


def redact(text: str, allow: list[str] | None = None) -> str:
    return mask(text, allow or [])[0]


mobiles = st.builds(
    lambda second, rest: "1" + second + rest,
    st.sampled_from("3456789"),
    st.text(alphabet="0123456789", min_size=9, max_size=9),
)


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    area = draw(st.text(alphabet="0123456789", min_size=6, max_size=6))
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31)))
    serial = draw(st.text(alphabet="0123456789", min_size=3, max_size=3))
    check = draw(st.sampled_from("0123456789X"))
    return f"{area}{born:%Y%m%d}{serial}{check}"


@settings(max_examples=400)
@given(data=st.data(), number=mobiles, before=AROUND, after=AROUND, plus86=st.booleans())
def test_no_mobile_number_survives_in_any_spelling(
    data: st.DataObject, number: str, before: str, after: str, plus86: bool
) -> None:
    shown = data.draw(spelled(number))
    if plus86:
        shown = "+86 " + shown
    out, found = mask(before + shown + after)
    assert number not in digits_of(out)
    assert [f.label for f in found] == ["手机号"]
    assert f"{number[:3]}****{number[-4:]}" in out
    assert redact(out) == out


@settings(max_examples=400)
@given(data=st.data(), number=id_numbers(), before=AROUND, after=AROUND)
def test_no_id_number_survives_in_any_spelling(
    data: st.DataObject, number: str, before: str, after: str
) -> None:
    out, found = mask(before + data.draw(spelled(number)) + after)
    assert number not in digits_of(out)
    assert number[6:14] not in digits_of(out)  # the birth date goes too
    assert [f.label for f in found] == ["身份证号"]


@settings(max_examples=200)
@given(data=st.data(), length=st.integers(16, 19), before=AROUND, after=AROUND)
def test_no_bank_card_number_survives_in_any_spelling(
    data: st.DataObject, length: int, before: str, after: str
) -> None:
    number = data.draw(st.text(alphabet="0123456789", min_size=length, max_size=length))
    out, found = mask(before + data.draw(spelled(number)) + after)
    assert number not in digits_of(out)
    assert found


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("加我 １３８１２３４５６７８", "加我 138****5678"),
        ("电话 138.1234.5678", "电话 138****5678"),
        ("电话 138 1234 5678", "电话 138****5678"),
        ("电话 一三八一二三四五六七八", "电话 138****5678"),
        ("座机 0571 8888 6666", "座机 0571-****6666"),
        ("北京 01012345678", "北京 010-****5678"),
        ("身份证 １１０１０５１９４９１２３１００２Ｘ", "身份证 110****002X"),
        ("邮箱 zhang.san＠alipay.com", "邮箱 z***@alipay.com"),
        ("邮箱 zhangsan ＠ qq.com", "邮箱 z***@qq.com"),
    ],
)
def test_look_alike_spellings_are_masked(text: str, masked: str) -> None:
    assert redact(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "寄到浙江省杭州市西湖区文三路138号华星大厦5楼501室，谢谢",
            "寄到浙江省杭州市西湖区****，谢谢",
        ),
        ("上海市徐汇区九江路三号楼二单元301", "上海市徐汇区****"),
        (
            "收货地址：广东省深圳市南山区粤海街道 3栋 502 室",
            "收货地址：广东省深圳市南山区粤海街道****",
        ),
        ("北京市朝阳区建国路88号", "北京市朝阳区****"),
    ],
)
def test_addresses_keep_city_and_district_and_lose_the_rest(text: str, masked: str) -> None:
    assert redact(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "我11号下的单，3楼的快递柜",
        "退款 ¥1,800.00，2026-11-23 10:30 前处理",
        "运单号 SF1234567890，订单 T88001",
        "尺码 175/92A，买了 3 件",
        "¥135.00 · 11-23 10:00 · 共 3 件",
        "¥1,386.00 2026-11-23 10:30",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_the_cases_own_numbers_pass_only_where_allowed() -> None:
    order = "3695123456789012345"  # a Taobao order number looks like a bank card
    text = f"订单 {order}，买家卡号 6222021234567890123"
    assert redact(text, [order]) == f"订单 {order}，买家卡号 6222****0123"
    assert order not in redact(text)


def test_log_records_come_out_masked_for_every_handler(caplog: pytest.LogCaptureFixture) -> None:
    masking.install_log_masking()
    assert logging.getLogRecordFactory() is masking.MaskedLogRecord
    log = logging.getLogger("handlers.refund")
    with caplog.at_level(logging.INFO):
        log.info("buyer wrote %s", "电话１３８１２３４５６７８ 住文三路138号")
        try:
            raise ValueError("payee 6222021234567890123")
        except ValueError:
            log.exception("transfer failed")
    assert "138****5678" in caplog.text
    for raw in ("１３８１２３４５６７８", "文三路138号", "6222021234567890123"):
        assert raw not in caplog.text


def test_masking_log_lines_costs_little() -> None:
    """A log line without digits costs one scan; one with digits a few microseconds."""
    plain = "dispatcher: nothing due, sleeping"
    busy = "outbox item card:1234:7 attempt 2 failed: HTTP 503 from api (took 1.20 s)"
    redact_log = masking.redact_log
    per_plain = min(timeit.repeat(lambda: redact_log(plain), number=2000, repeat=3)) / 2000
    per_busy = min(timeit.repeat(lambda: redact_log(busy), number=2000, repeat=3)) / 2000
    assert redact_log(busy) == busy
    assert per_plain < 20e-6
    assert per_busy < 200e-6
