"""Outside text shown as it is in the markdown WeCom and DingTalk render.

Both read the same markup (WeCom doc 90236 "markdown消息" and the AI bot's markdown_v2;
DingTalk "自定义机器人发送群消息" / "消息类型" markdown): headings #, quotes >, bold/italic * _,
strikethrough ~, code `, links and images [..](..), lists, tables |, tags <…> (`<font>`,
`<a href>`, `<@userid>` mentions), entities &, escapes \\ and `@id` mentions. Each markup
character becomes its full-width look-alike, which no renderer reads; no documentation says
either platform honours backslash escapes.
"""

from __future__ import annotations

import re

MARKUP = str.maketrans(
    {
        "*": "＊",
        "~": "～",
        "`": "｀",
        "<": "＜",
        ">": "＞",
        "&": "＆",
        "\\": "＼",
        "@": "＠",
    }
)
# A line that starts like a heading, list item, rule, table row, link definition or
# indented code block; and the `](` that ends a link's text.
LINE_START = re.compile(r"^(?=[ \t#:|!\[\-+=]|\d{1,9}[.)](?:\s|$))", re.MULTILINE)
LINK = re.compile(r"\]\s*\(")
# `_` opens or closes emphasis unless it sits inside a word (chat_id stays as it is).
EMPHASIS = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
URL_SCHEME = re.compile(r"(?<=[A-Za-z0-9])://")
ZWSP = "\u200b"


def escape_markdown(text: str) -> str:
    """`text` shown as it is: it can start no heading, list, quote, link, image, tag,
    mention or emphasis, and a bare URL in it is not made a link."""
    text = EMPHASIS.sub("＿", LINK.sub("］(", text.translate(MARKUP)))
    return LINE_START.sub(ZWSP, no_links(text))


def no_links(text: str) -> str:
    """A bare URL in `text` is not made a link (`http：//`)."""
    return URL_SCHEME.sub("：//", text)
