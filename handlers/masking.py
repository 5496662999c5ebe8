"""Personal data in text that leaves for a buyer or lands in a group: mobile and landline
numbers, ID card numbers, bank card numbers and e-mail (Alipay) accounts — found and masked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

_EDGE_BEFORE = r"(?<![0-9A-Za-z])"
_EDGE_AFTER = r"(?![0-9A-Za-z])"


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _mask_mobile(text: str) -> str:
    digits = _digits(text)
    digits = digits[2:] if len(digits) == 13 and digits.startswith("86") else digits
    return f"{digits[:3]}****{digits[-4:]}"


def _mask_landline(text: str) -> str:
    area, _, number = text.partition("-")
    return f"{area}-****{number[-4:]}"


def _mask_long_number(text: str) -> str:
    compact = re.sub(r"[ -]", "", text)
    return f"{compact[:4]}****{compact[-4:]}"


def _mask_id(text: str) -> str:
    return f"{text[:3]}****{text[-4:]}"


def _mask_email(text: str) -> str:
    local, _, domain = text.partition("@")
    return f"{local[:1]}***@{domain}"


@dataclass(frozen=True)
class Kind:
    label: str
    pattern: re.Pattern[str]
    mask: Callable[[str], str]


# Order matters: an earlier kind claims its span first (an ID number is also 18 digits).
KINDS = (
    Kind(
        "身份证号",
        re.compile(
            _EDGE_BEFORE
            + r"\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
            + _EDGE_AFTER
        ),
        _mask_id,
    ),
    Kind(
        "银行卡号",
        re.compile(_EDGE_BEFORE + r"\d{4}(?:[ -]?\d{4}){3}(?:[ -]?\d{1,3})?" + _EDGE_AFTER),
        _mask_long_number,
    ),
    Kind(
        "手机号",
        re.compile(_EDGE_BEFORE + r"(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}" + _EDGE_AFTER),
        _mask_mobile,
    ),
    Kind(
        "电话号码",
        re.compile(_EDGE_BEFORE + r"0\d{2,3}-\d{7,8}" + _EDGE_AFTER),
        _mask_landline,
    ),
    Kind(
        "邮箱/支付宝账号",
        re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"),
        _mask_email,
    ),
)


@dataclass(frozen=True)
class Finding:
    label: str
    start: int
    end: int
    masked: str

    def __str__(self) -> str:
        return f"{self.label} {self.masked}"


def find(text: str, allow: Iterable[str] = ()) -> list[Finding]:
    """Personal data in `text`, in order; occurrences of the `allow` strings (the case's own
    order and tracking numbers, which look like card or phone numbers) are left alone."""
    taken = [
        (m.start(), m.end())
        for ident in allow
        if len(ident) >= 6
        for m in re.finditer(re.escape(ident), text)
    ]
    found: list[Finding] = []
    for kind in KINDS:
        for match in kind.pattern.finditer(text):
            span = (match.start(), match.end())
            if any(span[0] < end and start < span[1] for start, end in taken):
                continue
            taken.append(span)
            found.append(Finding(kind.label, span[0], span[1], kind.mask(match.group())))
    return sorted(found, key=lambda f: f.start)


def mask(text: str, allow: Iterable[str] = ()) -> tuple[str, list[Finding]]:
    """`text` with every finding replaced by its masked form, and the findings."""
    found = find(text, allow)
    out, at = [], 0
    for finding in found:
        out += [text[at : finding.start], finding.masked]
        at = finding.end
    out.append(text[at:])
    return "".join(out), found


def describe(found: Iterable[Finding]) -> str:
    """'手机号 138****5678、银行卡号 6222****1234' for a message to a person."""
    return "、".join(str(f) for f in found)
