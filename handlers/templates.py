"""Reply templates (话术): the built-in set for the four refund paths, which suit a case,
filling their placeholders, masking what must not leave, and check-config's findings.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from string import Formatter

from handlers import masking
from handlers.config import DomainSettings, TemplateSettings
from handlers.rules import REFUND_KINDS


@dataclass(frozen=True)
class Placeholder:
    label: str
    # Identifiers of the case (order and tracking numbers) go in as they are: they are
    # what the buyer needs, and a 19-digit order number would otherwise read as a card.
    identifier: bool


PLACEHOLDERS: dict[str, Placeholder] = {
    "order": Placeholder("订单号", True),
    "amount": Placeholder("退款金额", True),
    "order_amount": Placeholder("订单金额", True),
    "deadline": Placeholder("处理时限", True),
    "carrier": Placeholder("快递公司", True),
    "tracking_no": Placeholder("运单号", True),
    "return_carrier": Placeholder("退货快递公司", True),
    "return_tracking_no": Placeholder("退货运单号", True),
    "item": Placeholder("商品", False),
    "reason": Placeholder("退款原因", False),
    "buyer": Placeholder("买家昵称", False),
}
PATHS = (1, 2, 3, 4)
REVIEW = ["awaiting_review", "escalated"]
PAYING = ["approved", "auto_approved", "submitted"]

# Apology first, then what happens next and when (../shared/domain: a buyer who waits
# three days for a smiley complains; one who hears within 30 minutes mostly does not).
DEFAULT_TEMPLATES = (
    TemplateSettings(
        name="未发货退款",
        paths=[1],
        states=PAYING,
        text=(
            "亲，非常抱歉让您久等了！您的订单 {order} 还没有发出，我们已经通知仓库拦下这单，"
            "不会再发货。退款 {amount} 已经提交，会原路退回，一般 1–3 个工作日到账，"
            "请留意支付账户的通知。给您添麻烦了，有任何问题随时找我们～"
        ),
    ),
    TemplateSettings(
        name="已发货拦截",
        paths=[2],
        states=["waiting_intercept"],
        text=(
            "亲，很抱歉给您带来不便！您的包裹已经由{carrier}发出（运单号 {tracking_no}），"
            "我们已第一时间联系快递拦截退回，一般 2 小时内会有结果。拦截成功后马上为您退款 "
            "{amount}，不需要您再操作；如果快递员仍然派送，您直接拒收就可以。"
        ),
    ),
    TemplateSettings(
        name="质量问题致歉",
        paths=[3],
        states=REVIEW,
        reasons=["质量", "破损", "描述不符", "少件", "漏发", "发错"],
        text=(
            "亲，真的很抱歉让您收到有问题的商品！您反馈的「{reason}」我们已经记录并转给品控，"
            "退款 {amount} 正在为您优先处理，会在 {deadline} 前给您结果。"
            "方便的话请拍几张问题处的照片发给我们，处理会更快。再次向您道歉！"
        ),
    ),
    TemplateSettings(
        name="仅退款核实",
        paths=[3],
        kinds=["refund_only", "price_diff"],
        states=REVIEW,
        text=(
            "亲，非常抱歉商品没有达到您的预期！您申请的退款 {amount} 我们已经收到，"
            "正在加急核实，会在 {deadline} 前给您明确答复，请您放心。"
        ),
    ),
    TemplateSettings(
        name="建议退货退款",
        paths=[3],
        kinds=["refund_only"],
        states=REVIEW,
        text=(
            "亲，看到您申请的是仅退款。如果商品您不需要了，麻烦把申请改为「退货退款」并寄回商品，"
            "我们签收后会立即为您退款 {amount}；如果商品有问题，请拍照发给我们，我们马上处理。"
            "给您添麻烦了，谢谢理解！"
        ),
    ),
    TemplateSettings(
        name="退货寄回指引",
        paths=[4],
        states=["waiting_return"],
        text=(
            "亲，很抱歉商品让您不满意！您的退货申请我们已经同意，请在平台上填写退货快递单号"
            "并寄回商品（保留吊牌、配件齐全）。我们收到后当天质检，通过后立即为您退款 {amount}。"
        ),
    ),
    TemplateSettings(
        name="退货在途",
        paths=[4],
        states=["returning"],
        text=(
            "亲，您寄回的包裹（{return_carrier} {return_tracking_no}）我们已经看到在路上了，"
            "签收后当天质检并为您退款 {amount}，请您放心。"
        ),
    ),
    TemplateSettings(
        name="已收到退货",
        paths=[4],
        states=["inspecting"],
        text=(
            "亲，您寄回的商品我们已经签收，正在质检，通过后马上为您退款 {amount}，"
            "请留意到账通知。感谢您的耐心！"
        ),
    ),
    TemplateSettings(
        name="退差价",
        kinds=["price_diff"],
        states=PAYING,
        text=(
            "亲，抱歉让您多花了钱！您申请的差价 {amount} 我们已经核实，正在为您退回，"
            "一般 1–3 个工作日到账，请留意支付账户的通知。感谢您的支持！"
        ),
    ),
    TemplateSettings(
        name="收到申请",
        states=["new", *REVIEW, "waiting_intercept", "waiting_return"],
        text=(
            "亲，您好！您的退款申请（订单 {order}）我们已经收到，正在为您加急处理，"
            "会在 {deadline} 前给您答复，请您放心。给您添麻烦了！"
        ),
    ),
    TemplateSettings(
        name="退款已完成",
        states=["refunded"],
        text=(
            "亲，您的退款 {amount} 已经原路退回，请留意支付账户的到账通知。"
            "给您带来的不便再次说声抱歉，期待再次为您服务！"
        ),
    ),
)


class TemplateError(ValueError):
    """A template that cannot be filled for a case: unknown placeholders or missing values."""

    def __init__(self, message: str, *, missing: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.missing = list(missing)


@dataclass(frozen=True)
class CaseFacts:
    """What a template's filters look at."""

    path: int
    kind: str
    state: str
    reason: str


@dataclass(frozen=True)
class Filled:
    name: str
    text: str
    masked: tuple[masking.Finding, ...] = ()


def fields(text: str) -> list[tuple[str, str | None, str, str | None]]:
    """The (literal, placeholder, format, conversion) pieces; ValueError on a stray brace."""
    return [(lit, name, spec or "", conv) for lit, name, spec, conv in Formatter().parse(text)]


def fill(template: TemplateSettings, values: Mapping[str, str]) -> Filled:
    """The text the buyer gets: placeholders filled, personal data masked unless `reveal`."""
    try:
        pieces = fields(template.text)
    except ValueError as exc:
        raise TemplateError(f"#{template.name} 的内容有不成对的花括号") from exc
    unknown = [n for _, n, _, _ in pieces if n is not None and n not in PLACEHOLDERS]
    if unknown:
        raise TemplateError(
            f"#{template.name} 有未知的占位符 {'、'.join('{' + n + '}' for n in unknown)}"
        )
    missing = [n for _, n, _, _ in pieces if n is not None and not values.get(n)]
    if missing:
        labels = "、".join(dict.fromkeys(PLACEHOLDERS[n].label for n in missing))
        raise TemplateError(f"#{template.name} 需要{labels}", missing=missing)
    out: list[str] = []
    found: list[masking.Finding] = []
    for literal, name, _, _ in pieces:
        out.append(_masked(literal, template.reveal, found))
        if name is not None:
            value = values[name]
            keep = template.reveal or PLACEHOLDERS[name].identifier
            out.append(value if keep else _masked(value, False, found))
    return Filled(template.name, "".join(out), tuple(found))


def _masked(text: str, reveal: bool, found: list[masking.Finding]) -> str:
    if reveal:
        return text
    masked, hits = masking.mask(text)
    found += hits
    return masked


def suits(template: TemplateSettings, facts: CaseFacts) -> bool:
    return (
        (not template.paths or facts.path in template.paths)
        and (not template.kinds or facts.kind in template.kinds)
        and (not template.states or facts.state in template.states)
        and (not template.reasons or any(r in facts.reason for r in template.reasons))
    )


class TemplateBook:
    """The templates in use: the built-in set (unless turned off), then the configured ones;
    a configured template with a built-in's name replaces it."""

    def __init__(
        self, configured: Sequence[TemplateSettings], *, builtin: bool = True, max_chars: int = 500
    ) -> None:
        names = {t.name for t in configured}
        defaults = [t for t in DEFAULT_TEMPLATES if t.name not in names] if builtin else []
        self.configured = list(configured)
        self.templates = [*defaults, *configured]
        self.max_chars = max_chars
        self._by_name: dict[str, TemplateSettings] = {}
        for template in self.templates:
            self._by_name.setdefault(template.name.casefold(), template)

    @classmethod
    def from_settings(cls, settings: DomainSettings) -> TemplateBook:
        replies = settings.replies
        return cls(
            settings.templates, builtin=replies.builtin_templates, max_chars=replies.max_chars
        )

    def __len__(self) -> int:
        return len(self.templates)

    def get(self, name: str) -> TemplateSettings | None:
        return self._by_name.get(name.strip().casefold())

    def suitable(self, facts: CaseFacts, values: Mapping[str, str]) -> list[Filled]:
        """The templates that suit the case and can be filled for it, filled."""
        found = []
        for template in self.templates:
            if not suits(template, facts):
                continue
            try:
                found.append(fill(template, values))
            except TemplateError:
                continue
        return found

    def problems(self, states: Collection[str] = ()) -> list[str]:
        """Mistakes in the configured templates, each named for check-config."""
        found: list[str] = []
        seen: set[str] = set()
        for i, template in enumerate(self.configured):
            where = f"templates[{i}] ({template.name})"
            name = template.name.strip()
            if not name or any(c.isspace() for c in template.name) or name.startswith("#"):
                found.append(
                    f"{where}: the name must be one word without spaces or '#' "
                    "(agents type 回复 R12 #name)"
                )
            if name.casefold() in seen:
                found.append(f"{where}: the name is used twice")
            seen.add(name.casefold())
            found += [f"{where}: {p}" for p in self._text_problems(template)]
            found += [
                f"{where}: unknown refund kind {k!r} (one of {', '.join(REFUND_KINDS)})"
                for k in template.kinds
                if k not in REFUND_KINDS
            ]
            found += [
                f"{where}: unknown path {p} (one of 1, 2, 3, 4)"
                for p in template.paths
                if p not in PATHS
            ]
            if states:
                found += [
                    f"{where}: unknown state {s!r}" for s in template.states if s not in states
                ]
        return found

    def _text_problems(self, template: TemplateSettings) -> list[str]:
        if not template.text.strip():
            return ["the text is empty"]
        try:
            pieces = fields(template.text)
        except ValueError:
            return ["the text has a stray { or } (write {{ or }} for a literal brace)"]
        found = [
            f"unknown placeholder {{{n}}} (one of {', '.join(PLACEHOLDERS)})"
            for _, n, _, _ in pieces
            if n is not None and n not in PLACEHOLDERS
        ]
        found += [
            f"placeholder {{{n}}} takes no format or conversion"
            for _, n, spec, conv in pieces
            if n is not None and (spec or conv)
        ]
        literal = "".join(lit for lit, _, _, _ in pieces)
        if not template.reveal and (hits := masking.find(literal)):
            found.append(
                f"contains {masking.describe(hits)}, which is masked before sending; "
                "set reveal = true if the buyer should see it"
            )
        if len(literal) > self.max_chars:
            found.append(f"the text is longer than replies.max_chars ({self.max_chars})")
        return found
