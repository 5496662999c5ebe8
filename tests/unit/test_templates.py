"""Reply templates: the built-in set, which suit a case, filling, masking and check-config."""

from __future__ import annotations

import pytest

from bot.config_check import problems
from bot.settings import Settings
from handlers.config import TemplateSettings
from handlers.refund.machine import RefundState
from handlers.templates import (
    DEFAULT_TEMPLATES,
    PLACEHOLDERS,
    CaseFacts,
    TemplateBook,
    TemplateError,
    fill,
    suits,
)

STATES = [s.value for s in RefundState]
VALUES = {
    "order": "4012345678901234567",
    "amount": "¥128.00",
    "order_amount": "¥128.00",
    "deadline": "11月24日 22:00",
    "carrier": "顺丰速运",
    "tracking_no": "SF1234567890",
    "return_carrier": "中通快递",
    "return_tracking_no": "7312345678901",
    "item": "纯棉短袖T恤",
    "reason": "质量问题",
    "buyer": "t**1",
}


def template(text: str, **overrides: object) -> TemplateSettings:
    return TemplateSettings.model_validate({"name": "t", "text": text, **overrides})


# Where each path's case usually waits for a person to answer the buyer.
@pytest.mark.parametrize(
    "facts",
    [
        CaseFacts(1, "refund_only", "auto_approved", "拍错了"),
        CaseFacts(2, "refund_only", "waiting_intercept", "不想要了"),
        CaseFacts(3, "refund_only", "awaiting_review", "尺码不合适"),
        CaseFacts(4, "return_refund", "waiting_return", "不喜欢"),
    ],
)
def test_each_path_has_a_polite_template_that_says_what_next_and_when(facts: CaseFacts) -> None:
    suitable = TemplateBook([]).suitable(facts, VALUES)
    assert suitable, facts
    assert any(
        "抱歉" in f.text
        and "¥128.00" in f.text
        and any(when in f.text for when in ("工作日", "小时", "11月24日 22:00", "当天"))
        for f in suitable
    ), [f.text for f in suitable]
    for filled in suitable:
        assert filled.text.startswith("亲")
        assert "{" not in filled.text
        assert filled.masked == ()


def test_the_built_in_set_is_clean() -> None:
    book = TemplateBook(DEFAULT_TEMPLATES)
    assert book.problems(STATES) == []
    assert len({t.name for t in DEFAULT_TEMPLATES}) == len(DEFAULT_TEMPLATES)


def test_fill_puts_values_in_and_keeps_identifiers_whole() -> None:
    filled = fill(template("亲，订单 {order} 的 {amount} 由{carrier} {tracking_no} 退回"), VALUES)
    assert filled.text == "亲，订单 4012345678901234567 的 ¥128.00 由顺丰速运 SF1234567890 退回"
    assert filled.masked == ()
    assert fill(template("{{literal}} {amount}"), VALUES).text == "{literal} ¥128.00"


def test_fill_names_what_the_case_lacks_and_what_is_unknown() -> None:
    with pytest.raises(TemplateError) as missing:
        fill(template("包裹 {carrier} {tracking_no}"), {"amount": "¥1.00"})
    assert missing.value.missing == ["carrier", "tracking_no"]
    assert "快递公司、运单号" in str(missing.value)
    with pytest.raises(TemplateError) as unknown:
        fill(template("{coupon} 已发放"), VALUES)
    assert unknown.value.missing == []
    assert "{coupon}" in str(unknown.value)


def test_personal_data_is_masked_unless_the_template_reveals_it() -> None:
    text = "退货请寄到杭州xx路1号，电话 0571-88886666，{amount}"
    hidden = fill(template(text), VALUES)
    assert hidden.text == "退货请寄到杭州xx路1号，电话 0571-****6666，¥128.00"
    assert [f.label for f in hidden.masked] == ["电话号码"]
    shown = fill(template(text, reveal=True), VALUES)
    assert "0571-88886666" in shown.text
    assert shown.masked == ()


def test_buyer_supplied_values_are_masked_too() -> None:
    values = {**VALUES, "reason": "质量问题，联系我 13812345678"}
    filled = fill(template("您反馈的「{reason}」已记录"), values)
    assert filled.text == "您反馈的「质量问题，联系我 138****5678」已记录"
    assert not PLACEHOLDERS["reason"].identifier


def test_filters_and_missing_values_decide_what_is_offered() -> None:
    facts = CaseFacts(3, "refund_only", "awaiting_review", "质量问题：开线")
    assert suits(template("x", paths=[3], reasons=["质量"]), facts)
    assert not suits(template("x", paths=[4]), facts)
    assert not suits(template("x", kinds=["price_diff"]), facts)
    assert not suits(template("x", states=["refunded"]), facts)
    assert not suits(template("x", reasons=["破损"]), facts)
    book = TemplateBook([])
    names = [f.name for f in book.suitable(facts, VALUES)]
    assert names[:3] == ["质量问题致歉", "仅退款核实", "建议退货退款"]
    without_deadline = {k: v for k, v in VALUES.items() if k != "deadline"}
    assert "仅退款核实" not in [f.name for f in book.suitable(facts, without_deadline)]


def test_configured_templates_join_or_replace_the_built_in_ones() -> None:
    mine = template("亲，{amount} 已退", name="退差价")
    book = TemplateBook([mine, template("x", name="Extra")])
    assert book.get("退差价") is mine
    assert book.get(" extra ") is not None
    assert len(book) == len(DEFAULT_TEMPLATES) + 1
    only = TemplateBook([mine], builtin=False)
    assert [t.name for t in only.templates] == ["退差价"]
    assert only.get("收到申请") is None


def test_check_config_names_template_mistakes() -> None:
    settings = Settings(
        demo=True,
        ingest={"secret": "long-random-0123456789"},
        groups=[{"id": "g", "channel": "sandbox"}],
        staff=[{"id": "admin1", "roles": ["admin"]}],
        replies={"max_chars": 40},
        templates=[
            {"name": "联系我们", "text": "有问题请打 13912345678"},
            {"name": "联系我们", "text": "{amount}"},
            {"name": "two words", "text": "{coupon} {amount:>10}"},
            {"name": "brace", "text": "差价 {amount"},
            {"name": "filters", "text": "x", "kinds": ["refund"], "paths": [5], "states": ["done"]},
            {"name": "long", "text": "亲" * 41},
            {"name": "地址", "text": "寄到 0571-88886666", "reveal": True},
        ],
    )
    found = "\n".join(problems(settings))
    for expected in (
        "templates[0] (联系我们): contains 手机号 139****5678, which is masked before sending; "
        "set reveal = true",
        "templates[1] (联系我们): the name is used twice",
        "templates[2] (two words): the name must be one word",
        "templates[2] (two words): unknown placeholder {coupon}",
        "templates[2] (two words): placeholder {amount} takes no format",
        "templates[3] (brace): the text has a stray { or }",
        "templates[4] (filters): unknown refund kind 'refund'",
        "templates[4] (filters): unknown path 5",
        "templates[4] (filters): unknown state 'done'",
        "templates[5] (long): the text is longer than replies.max_chars (40)",
    ):
        assert expected in found, expected
    assert "templates[6]" not in found
