"""Personal data planted in a case, and the check that none of it shows where the case goes."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

ORDER = "3695123456789012345"  # a Taobao order number: 19 digits, shaped like a bank card
TRACKING = "SF7700112233445"
REASON = (
    "没收到货，打我电话13812345678 或 １３８７７７７６６６６ 或 139.2222.3333，"
    "身份证11010519491231002X，寄到浙江省杭州市西湖区文三路138号5栋501室"
)
NICK = "张三15900001111"
# Each must be gone wherever the case is shown; the masked forms show what was there.
RAW = (
    "13812345678",
    "１３８７７７７６６６６",
    "13877776666",
    "139.2222.3333",
    "13922223333",
    "11010519491231002X",
    "文三路138号",
    "501室",
    "15900001111",
    "13700001111",
)


def leaked(text: str, raw: Iterable[str] = RAW) -> list[str]:
    """The raw values in `text`, also when read with full-width digits folded and the
    separators dropped."""
    plain = re.sub(r"[\s.\-]", "", unicodedata.normalize("NFKC", text))
    return [r for r in raw if r in text or re.sub(r"[.\-]", "", r) in plain]
