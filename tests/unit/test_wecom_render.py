"""Card → WeCom template_card / markdown: keys, limits, task ids, mentions."""

from __future__ import annotations

from handlers.message import Button, ButtonStyle, Card, Field, Mention, Tone
from integrations.wecom import render
from integrations.wecom.fake import card_problem


def make_card(**overrides: object) -> Card:
    values: dict[str, object] = {
        "case_pk": 7,
        "case_id": "RF001",
        "handle": "R12",
        "kind": "refund",
        "state": "awaiting_review",
        "version": 3,
        "title": "仅退款 R12 · ¥128.00",
        "status": "待审核",
        "tone": Tone.WARNING,
        "fields": tuple(Field(f"字段{i}", f"值{i}") for i in range(8)),
        "buttons": (
            Button("approve", "通过", ButtonStyle.PRIMARY),
            Button("reject", "拒绝", ButtonStyle.DANGER),
            Button("claim", "认领"),
        ),
        "lines": ("📝 备注一条",),
        "footer": "SUP1 认领 · 11-23 10:03",
    }
    values.update(overrides)
    return Card(**values)  # type: ignore[arg-type]


def test_keys_name_action_handle_and_version() -> None:
    card = make_card()
    rendered = render.template_card(card, "refund-R12-abc")
    keys = [b["key"] for b in rendered["button_list"]]
    assert keys == ["approve:R12:3", "reject:R12:3", "claim:R12:3"]
    assert render.parse_key(keys[0]) == render.Click("approve", "R12", 3)
    for bad in ("approve", "approve:R12", "approve:R12:x", "Approve:R12:3", "a:b:c:d", "x" * 2000):
        assert render.parse_key(bad) is None
    assert [b["style"] for b in rendered["button_list"]] == [1, 3, 2]
    assert card_problem(rendered) == ""


def test_limits_six_rows_six_buttons_overflow_into_the_subtitle() -> None:
    many = tuple(Button(f"b{i}", f"按钮{i}号很长很长很长很长") for i in range(9))
    card = make_card(buttons=many, title="仅退款 R12 · " + "很长的标题" * 10)
    rendered = render.template_card(card, "t1")
    assert len(rendered["horizontal_content_list"]) == 6
    assert len(rendered["button_list"]) == 6
    assert all(len(b["text"]) <= 10 for b in rendered["button_list"])
    assert len(rendered["main_title"]["title"]) <= 26
    subtitle = rendered["sub_title_text"]
    assert subtitle.startswith("字段6：值6 · 字段7：值7 · 📝 备注一条")
    assert len(subtitle) <= 112
    assert card_problem(rendered) == ""


def test_the_source_line_names_the_handle_first() -> None:
    rendered = render.template_card(make_card(), "t1", source="refundops")
    assert rendered["source"]["desc"] == "R12 · refund…"
    assert len(rendered["source"]["desc"]) <= render.SOURCE_CHARS


def test_a_card_without_buttons_still_offers_details() -> None:
    rendered = render.template_card(make_card(buttons=(), state="refunded"), "t2")
    assert rendered["button_list"] == [{"text": "查看详情", "style": 2, "key": "show:R12:3"}]


def test_task_ids_are_fresh_and_within_the_charset() -> None:
    card = make_card(kind="refund", handle="R1")
    ids = {render.new_task_id(card) for _ in range(50)}
    assert len(ids) == 50
    assert all(i.startswith("refund-R1-") and len(i) <= 128 for i in ids)
    assert all(render.NOT_TASK_ID.search(i) is None for i in ids)
    odd = render.new_task_id(make_card(handle="R 1/ü"))
    assert render.NOT_TASK_ID.search(odd) is None


def test_markdown_mentions_resolve_to_wecom_userids() -> None:
    mentions = (Mention("sup1", "SUP1"), Mention("nobody", "路人"), Mention("sup1", "SUP1"))
    text = render.markdown_text("请审批 R12", mentions, {"sup1": "zhangsan"})
    assert text == "请审批 R12 <@zhangsan> @路人"
    card = make_card(mentions=(Mention("sup1", "SUP1"),), tone=Tone.DANGER)
    md = render.markdown_card(card, {"sup1": "zhangsan"}, hint="在群里 @机器人 查 R12")
    assert md.splitlines()[0] == "**仅退款 R12 · ¥128.00**"
    assert '<font color="warning">待审核</font>' in md
    assert "> 字段7：值7" in md
    assert md.endswith("<@zhangsan>")
    assert len(render.markdown_text("长" * 3000, (), {}).encode()) <= 4096


def test_follow_up_and_plain_text() -> None:
    assert (
        render.follow_up(make_card(status="已退款"))
        == "📌 R12 更新：已退款（SUP1 认领 · 11-23 10:03）"
    )
    assert render.plain_text("好", (Mention("a", "甲"),)) == "好 @甲"
    assert len(render.plain_text("退" * 1000).encode()) <= 2048
