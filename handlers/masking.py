"""Personal data in text that leaves the database — for a buyer, a group, a page, an export or a
log: mobile and landline numbers, ID card and bank card numbers, e-mail (Alipay) accounts and
the detailed part of addresses, however spelled (full-width, spaced, dotted), found and masked.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from handlers.message import Card, Field, Notice, Reply
from storage.models import Case

Shown = TypeVar("Shown", Card, Notice)

# Characters read as what they look like before searching (one for one, so a match's span
# in the folded text is its span in the original): every decimal digit (full-width ０-９,
# Arabic-Indic …) and the full-width forms of ASCII (＠, －, ．, letters).


class _Fold(dict[int, int]):
    def __missing__(self, code: int) -> int:
        char = chr(code)
        value = code
        digit = unicodedata.decimal(char, None)
        if digit is not None:
            value = ord(str(digit))
        else:
            plain = unicodedata.normalize("NFKC", char)
            if len(plain) == 1 and plain.isascii():
                value = ord(plain)
        self[code] = value
        return value


_FOLD = _Fold()
# A number dictated in Chinese numerals (一三八…, 幺 for 1): only a run of seven or more is
# read as digits, so 张三 and 十一号 stay words.
_NUMERALS = str.maketrans("〇零一幺二三四五六七八九", "001123456789")
_NUMERAL_RUN = re.compile(
    r"[〇零一幺二三四五六七八九](?:[\s.\-]{0,2}[〇零一幺二三四五六七八九]){6,}"
)


def fold(text: str) -> str:
    """`text` with every character read as the ASCII it stands for; the same length."""
    return text.translate(_FOLD)


# Up to three separators may stand between two digits: "138 1234 5678", "138.1234.5678",
# "138-1234-5678", zero-width spaces, "1 3 8 …". Not "," or "·": they join our own figures
# ("¥1,800.00 · 11-23 10:30").
_GAP = r"[\s.\-_—–~()\[\]\u200b\u200c\u200d\u2060\ufeff]{0,3}"
# An amount in yuan (¥1,800.00, ¥135.00) is money, never part of a number around it; at most
# nine digits, so no phone or card number hides in one.
_AMOUNT = re.compile(r"(?<=[¥￥])\s?(?:[0-9]{1,3}(?:,[0-9]{3}){0,2}|[0-9]{1,7})\.[0-9]{2}(?![0-9])")
_EDGE_BEFORE = r"(?<![0-9A-Za-z])"
_EDGE_AFTER = r"(?![0-9A-Za-z])"


def _spaced(*atoms: str) -> str:
    """Atoms (each matching one character) with a gap allowed between neighbours."""
    return _GAP.join(atoms)


def _digits(n: int) -> list[str]:
    return ["[0-9]"] * n


def _number(pattern: str) -> re.Pattern[str]:
    return re.compile(_EDGE_BEFORE + pattern + _EDGE_AFTER)


_D = "[0-9]"
_MOBILE = _number(
    rf"(?:\+?{_spaced('8', '6')}{_GAP})?" + _spaced("1", "[3-9]", *_digits(9)),
)
_ID = _number(
    _spaced(*_digits(6))
    + _GAP
    + rf"(?:{_spaced('1', '[89]')}|{_spaced('2', '0')})"
    + _GAP
    + _spaced(_D, _D)
    + _GAP
    + rf"(?:{_spaced('0', '[1-9]')}|{_spaced('1', '[0-2]')})"
    + _GAP
    + rf"(?:{_spaced('0', '[1-9]')}|{_spaced('[12]', _D)}|{_spaced('3', '[01]')})"
    + _GAP
    + _spaced(*_digits(3), "[0-9Xx]")
)
# An 18-character number ending in X is an ID number even when its birth date is not a date.
_ID_X = _number(_spaced(*_digits(17), "[Xx]"))
_BANK = _number(_D + rf"(?:{_GAP}{_D}){{15,18}}")
_LANDLINE = _number(
    _spaced("0", "[1-9]") + rf"(?:{_GAP}{_D}){{1,2}}{_GAP}[2-9](?:{_GAP}{_D}){{6,7}}"
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+ ?@ ?[A-Za-z0-9\-]+(?: ?\. ?[A-Za-z0-9\-]+)+")
# The detailed part of an address: a road (or estate) and its number, or building, unit and
# room; the province, city and district before it stay readable.
_ROAD = "路|街|大道|大街|巷|胡同|村|小区|花园|公寓|大厦|广场|社区|家园|新村|苑|里弄|弄"
_UNIT = "号楼|号院|号|栋|幢|座|单元|室|楼|层|户|弄"
_STRONG_UNIT = re.compile("栋|幢|单元|室|号楼|号院")
_ADDRESS = re.compile(
    rf"(?P<road>(?:(?![省市区县旗州镇乡])[\u4e00-\u9fff]){{1,6}}(?:{_ROAD})\s{{0,2}})?"
    rf"(?P<units>(?:[-#]?\s{{0,2}}[0-9A-Za-z〇零一二三四五六七八九十百两]{{1,6}}\s{{0,2}}(?:{_UNIT})\s{{0,2}})+)"
    r"(?:[-#]?[0-9]{1,5}(?![0-9]))?"
)
_NOT_DIGITS = re.compile(r"[^0-9]+")
_UNIT_CHARS = frozenset("号楼院栋幢座单元室层户弄")


def _digit_string(text: str) -> str:
    return re.sub(r"[^0-9Xx]", "", text)


def _mask_mobile(text: str) -> str:
    digits = _digit_string(text)
    digits = digits[2:] if len(digits) == 13 else digits
    return f"{digits[:3]}****{digits[-4:]}"


def _mask_landline(text: str) -> str:
    digits = _digit_string(text)
    split = re.match(r"(0[0-9]{2,3})[^0-9]", text)
    area = split.group(1) if split else digits[: 3 if digits[1] in "12" else 4]
    return f"{area}-****{digits[-4:]}"


def _mask_long_number(text: str) -> str:
    digits = _digit_string(text)
    return f"{digits[:4]}****{digits[-4:]}"


def _mask_id(text: str) -> str:
    digits = _digit_string(text).upper()
    return f"{digits[:3]}****{digits[-4:]}"


def _mask_email(text: str) -> str:
    local, _, domain = text.replace(" ", "").partition("@")
    return f"{local[:1]}***@{domain}"


def _mask_address(_text: str) -> str:
    return "****"


def _is_address(match: re.Match[str]) -> bool:
    return bool(match.group("road")) or bool(_STRONG_UNIT.search(match.group("units")))


@dataclass(frozen=True)
class Kind:
    label: str
    pattern: re.Pattern[str]
    mask: Callable[[str], str]
    accept: Callable[[re.Match[str]], bool] = lambda _match: True
    numeric: bool = True


# Order matters: an earlier kind claims its span first (an ID number is also 18 digits).
KINDS = (
    Kind("身份证号", _ID, _mask_id),
    Kind("身份证号", _ID_X, _mask_id),
    Kind("银行卡号", _BANK, _mask_long_number),
    Kind("手机号", _MOBILE, _mask_mobile),
    Kind("电话号码", _LANDLINE, _mask_landline),
    Kind("邮箱/支付宝账号", _EMAIL, _mask_email, numeric=False),
    Kind("地址", _ADDRESS, _mask_address, _is_address, numeric=False),
)


@dataclass(frozen=True)
class Finding:
    label: str
    start: int
    end: int
    masked: str

    def __str__(self) -> str:
        return f"{self.label} {self.masked}"


def _maybe(folded: str) -> tuple[bool, bool, bool]:
    """Whether numbers, accounts or addresses can be in `folded` at all (the cheap test)."""
    return (
        len(_NOT_DIGITS.sub("", folded)) >= 7,
        "@" in folded,
        any(c in _UNIT_CHARS for c in folded),
    )


def find(text: str, allow: Iterable[str] = ()) -> list[Finding]:
    """Personal data in `text`, in order; occurrences of the `allow` strings (the case's own
    order and tracking numbers, which look like card or phone numbers) are left alone."""
    words = fold(text)
    folded = _NUMERAL_RUN.sub(lambda m: m.group().translate(_NUMERALS), words)
    folded = _AMOUNT.sub(lambda m: "¤" * len(m.group()), folded)
    numbers, accounts, places = _maybe(folded)
    if not (numbers or accounts or places):
        return []
    taken = [
        (m.start(), m.end())
        for ident in {fold(a) for a in allow}
        if len(ident) >= 6
        for m in re.finditer(re.escape(ident), folded)
    ]
    found: list[Finding] = []
    for kind in KINDS:
        if kind.numeric and not numbers:
            continue
        if kind.label == "地址" and not places:
            continue
        if kind.label.startswith("邮箱") and not accounts:
            continue
        source = words if kind.label == "地址" else folded
        for match in kind.pattern.finditer(source):
            span = (match.start(), match.end())
            if span[0] == span[1] or not kind.accept(match):
                continue
            if any(span[0] < end and start < span[1] for start, end in taken):
                continue
            taken.append(span)
            found.append(Finding(kind.label, span[0], span[1], kind.mask(match.group())))
    return sorted(found, key=lambda f: f.start)


def mask(text: str, allow: Iterable[str] = ()) -> tuple[str, list[Finding]]:
    """`text` with every finding replaced by its masked form, and the findings."""
    found = find(text, allow)
    if not found:
        return text, found
    out, at, last = [], 0, ""
    for finding in found:
        gap = text[at : finding.start]
        if not (finding.label == last == "地址" and not gap.strip()):
            out += [gap, finding.masked]  # one mask for one address's consecutive parts
        at, last = finding.end, finding.label
    out.append(text[at:])
    return "".join(out), found


def redact(text: str, allow: Iterable[str] = ()) -> str:
    """The one masking function for what leaves the database: `text` with personal data masked."""
    return mask(text, allow)[0] if text else text


def describe(found: Iterable[Finding]) -> str:
    """'手机号 138****5678、银行卡号 6222****1234' for a message to a person."""
    return "、".join(str(f) for f in found)


# -- what leaves: cards, notices, replies, documents ------------------------------------------

IDENTIFIER_KEYS = frozenset(
    {"order_id", "refund_id", "payout_id", "tracking_no", "reference", "out_biz_no", "case_id"}
)


def identifiers(case: Case) -> list[str]:
    """The case's own numbers (order, refund, payout, tracking, payment reference): they pass
    although they may look like card or phone numbers."""
    found = {case.order_id, case.case_id}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key in IDENTIFIER_KEYS and isinstance(inner, str):
                    found.add(inner)
                elif isinstance(inner, dict | list):
                    walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(case.data)
    return sorted(n for n in found if n)


def redact_card(card: Card, allow: Iterable[str] = ()) -> Card:
    return _redact_message(card, tuple(allow))


def redact_notice(notice: Notice, allow: Iterable[str] = ()) -> Notice:
    return _redact_message(notice, tuple(allow))


def _redact_message(message: Shown, keep: tuple[str, ...]) -> Shown:
    """A card or notice with every text it shows masked."""
    return replace(
        message,
        title=redact(message.title, keep),
        status=redact(message.status, keep),
        fields=tuple(
            Field(redact(f.label, keep), redact(f.value, keep), f.url) for f in message.fields
        ),
        lines=tuple(redact(line, keep) for line in message.lines),
        footer=redact(message.footer, keep),
    )


def redact_reply(reply: Reply) -> Reply:
    card = reply.card if reply.card is None else redact_card(reply.card, reply.allow)
    return replace(reply, text=redact(reply.text, reply.allow), card=card)


def redact_tree(value: Any, allow: Iterable[str] = ()) -> Any:
    """Every string in a JSON-like value masked (the values of identifier keys pass)."""
    keep = tuple(allow)
    if isinstance(value, str):
        return redact(value, keep)
    if isinstance(value, dict):
        return {k: v if k in IDENTIFIER_KEYS else redact_tree(v, keep) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_tree(v, keep) for v in value]
    return value


# -- logs ---------------------------------------------------------------------------------------

_LOG_GATE = re.compile(r"[\d@＠﹫]")


def redact_log(text: str) -> str:
    """A log line masked; one without a digit or an @ (most of them) costs a single scan."""
    if not text or not _LOG_GATE.search(text):
        return text
    return redact(text)


class MaskedLogRecord(logging.LogRecord):
    """A log record whose message and traceback text come out masked, for every handler."""

    _raw: str | None = None
    _masked: str = ""

    def getMessage(self) -> str:  # noqa: N802 - logging's name
        raw = super().getMessage()
        if raw != self._raw:
            self._raw, self._masked = raw, redact_log(raw)
        return self._masked

    @property
    def exc_text(self) -> str | None:
        return self.__dict__.get("_exc_text")

    @exc_text.setter
    def exc_text(self, value: str | None) -> None:
        self.__dict__["_exc_text"] = None if value is None else redact_log(value)


def install_log_masking() -> None:
    """Make every log record a `MaskedLogRecord` (idempotent)."""
    current = logging.getLogRecordFactory()
    if current is MaskedLogRecord or getattr(current, "masks_personal_data", False):
        return
    if current is logging.LogRecord:
        logging.setLogRecordFactory(MaskedLogRecord)
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        if type(record) is logging.LogRecord:
            exc_text = record.__dict__.pop("exc_text", None)
            record.__class__ = MaskedLogRecord
            record.exc_text = exc_text
        return record

    factory.masks_personal_data = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


# -- a payee, as a card or an export shows it --------------------------------------------------


def mask_account(account: str) -> str:
    """138****8000, 2088****1234, zh****@example.com: enough to recognise, not to reuse."""
    account = account.strip()
    if "@" in account:
        local, _, domain = account.rpartition("@")
        keep = min(3, max(1, len(local) // 2)) if len(local) > 1 else 0
        return f"{local[:keep]}****@{domain}"
    if len(account) >= 7:
        return f"{account[:3]}****{account[-4:]}"
    if len(account) >= 3:
        return f"{account[0]}****{account[-1]}"
    return "****"


def mask_name(name: str) -> str:
    """王小明 → 王**; a name the platform already masked stays as it is."""
    name = name.strip()
    if not name or "*" in name:
        return name
    return name[0] + "*" * min(len(name) - 1, 3) if len(name) > 1 else name
