"""The domain's configuration: who works here, where cards go, the rules, timers and policies.

`bot.settings` loads these (with each integration's own section) from TOML, secrets and env;
the core reads them through `DomainSettings`, which holds no integration's own section.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from handlers.platforms import platform_ids


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    FINANCE = "finance"
    ADMIN = "admin"


class ChannelName(StrEnum):
    """Where a group's cards go; the sandbox exists only under `refundops demo`."""

    WECOM_AIBOT = "wecom_aibot"
    WECOM_AIBOT_HTTP = "wecom_aibot_http"
    WECOM_APP = "wecom_app"
    WECOM_WEBHOOK = "wecom_webhook"
    DINGTALK_STREAM = "dingtalk_stream"
    DINGTALK_HTTP = "dingtalk_http"
    DINGTALK_WEBHOOK = "dingtalk_webhook"
    SANDBOX = "sandbox"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigProblem(str):
    """One thing wrong in the configuration, as text, with where it is (`path`, the keys down
    to it: `("groups", 1, "chat_id")`) and how to fix it when the text does not say."""

    path: tuple[str | int, ...]
    fix: str

    def __new__(cls, text: str, path: tuple[str | int, ...] = (), fix: str = "") -> ConfigProblem:
        made = super().__new__(cls, text)
        made.path = path
        made.fix = fix
        return made


class BotSettings(Section):
    name: str = "refundops"
    admin_group: str = ""
    timezone: str = "Asia/Shanghai"


# Channels whose group is named by the platform's own chat id, which the bot tells the group
# when first @-mentioned there (setting up: the group may be configured before it is known).
LEARNS_CHAT_ID = frozenset(
    {
        ChannelName.WECOM_AIBOT,
        ChannelName.WECOM_AIBOT_HTTP,
        ChannelName.DINGTALK_STREAM,
        ChannelName.DINGTALK_HTTP,
    }
)


class GroupSettings(Section):
    id: str
    name: str = ""
    # No default: where cards go and who may act is never guessed (the sandbox is demo-only).
    channel: ChannelName
    chat_id: str = ""
    webhook_url: str = ""
    webhook_secret: SecretStr = SecretStr("")
    shops: list[str] = []
    platforms: list[str] = []
    kinds: list[str] = []
    max_per_minute: int = Field(default=0, ge=0)
    # "needs_action": cases handled automatically with nothing for a person to do stay out
    # of the group (digest and 查 still have them) until a person is needed.
    post: Literal["all", "needs_action"] = "all"

    _platforms = field_validator("platforms")(staticmethod(platform_ids))

    @property
    def awaiting_chat_id(self) -> bool:
        """Configured before its chat id is known: no case goes there until it has one."""
        return self.channel in LEARNS_CHAT_ID and not self.chat_id

    def routes(self, *, shop: str, platform: str, kind: str) -> bool:
        return all(
            not allowed or value in allowed
            for allowed, value in (
                (self.shops, shop),
                (self.platforms, platform),
                (self.kinds, kind),
            )
        )


class StaffSettings(Section):
    id: str
    name: str = ""
    roles: list[Role] = [Role.AGENT]
    refund_limit: Decimal | None = Field(default=None, ge=0)
    wecom_userid: str = ""
    dingtalk_staff_id: str = ""
    dingtalk_mobile: str = ""
    sandbox_user: str = ""
    # Groups whose cases this person may act on from a DM (besides wecom_app groups naming them).
    groups: list[str] = []

    @property
    def display(self) -> str:
        return self.name or self.id


class RuleSettings(Section):
    """One row of the decision table; empty conditions match anything."""

    name: str
    platforms: list[str] = []
    shops: list[str] = []
    kinds: list[str] = []
    shipping: list[str] = []
    scope: Literal["any", "full", "partial"] = "any"
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    reasons: list[str] = []
    actions: list[str] = []
    review_role: Role = Role.AGENT

    # Platform ids or the names people write (淘宝, 抖音 …), kept as ids.
    _platforms = field_validator("platforms")(staticmethod(platform_ids))


class RulesSettings(Section):
    """`[rules]`: the team's own rows (`[[rules]]`, or `[[rules.rows]]` beside the keys below),
    evaluated before the defaults unless `replace_defaults`, and when an automatic refund of an
    unshipped order waits for the warehouse to stop it first."""

    rows: list[RuleSettings] = []
    replace_defaults: bool = False
    # Yuan. An auto-approved unshipped refund above this is sent only once 截单 succeeded;
    # 0: every one waits (a stop that fails never leaves money and goods both gone).
    refund_before_stop_max: Decimal = Field(
        default=Decimal(0), ge=0, max_digits=11, decimal_places=2
    )

    @model_validator(mode="before")
    @classmethod
    def _rows_alone(cls, data: Any) -> Any:
        """`[[rules]]` tables alone are the rows, with the keys above at their defaults."""
        return {"rows": data} if isinstance(data, list) else data


class TimerSettings(Section):
    first_response_min: int = Field(default=30, ge=1)
    deadline_warn_h: list[float] = [6.0, 1.0]
    approval_h: float = 4.0
    intercept_feedback_h: float = 2.0
    return_tracking_h: float = 12.0
    qc_h: float = 12.0
    poll_s: float = Field(default=1.0, gt=0)


class CommandSettings(Section):
    """`[commands]`: chat commands."""

    # How long a person may take back their own approval or rejection (while nothing was sent).
    undo_window_min: float = Field(default=5.0, ge=0, le=1440)


class EscalationSettings(Section):
    """What is escalated to the supervisors at once, whatever the timers say."""

    # A buyer message with one of these (full-width digits and letters count as their
    # ASCII forms, case ignored) @-mentions the supervisors, once per case, and marks the card.
    complaint_words: list[str] = ["投诉", "12315", "差评", "黑猫", "工商"]

    @field_validator("complaint_words")
    @classmethod
    def _no_empty_word(cls, words: list[str]) -> list[str]:
        if any(not w.strip() for w in words):
            raise ValueError("an empty complaint word would match every message")
        return words


class DigestSettings(Section):
    enabled: bool = True
    time: str = "09:00"
    timezone: str = "Asia/Shanghai"


class LogisticsSettings(Section):
    """When a parcel counts as a problem (DESIGN §4), and how often parcels are checked."""

    no_pickup_h: float = Field(default=24.0, gt=0)
    no_update_after_pickup_h: float = Field(default=48.0, gt=0)
    stuck_in_transit_h: float = Field(default=48.0, gt=0)
    lost_days: float = Field(default=5.0, gt=0)
    alert_statuses: list[Literal["exception", "returned", "rejected"]] = [
        "exception",
        "returned",
        "rejected",
    ]
    scan_interval_s: float = Field(default=300.0, ge=1)
    scan_batch: int = Field(default=500, ge=1)


class ReplySettings(Section):
    """Answers to buyers from the group (回复 R12 …)."""

    # Keep the built-in reply templates (the four refund paths) beside the configured ones.
    builtin_templates: bool = True
    # Free text carrying a phone/card/ID number or account: refuse it, or mask and send.
    sensitive_free_text: Literal["refuse", "mask"] = "refuse"
    max_chars: int = Field(default=500, ge=1, le=2000)


class TemplateSettings(Section):
    """One reply template (话术); empty filters suit any case."""

    name: str
    text: str
    paths: list[int] = []
    kinds: list[str] = []
    states: list[str] = []
    reasons: list[str] = []
    reveal: bool = False


# Providers that move the money themselves once finance confirms, and what cards call them.
TRANSFER_PROVIDERS = {"alipay": "支付宝", "wechatpay": "微信支付"}


class PayoutPolicy(Section):
    """How payouts are made: who moves the money, whether a second person confirms, batch size."""

    provider: Literal["manual", "alipay", "wechatpay"] = "manual"
    two_person_rule: bool = True
    # Manual payouts: the full payee account by direct message to the group's finance people
    # once a payout is approved.
    send_payee_to_finance: bool = False
    batch_max: int = Field(default=200, ge=1, le=1000)

    @property
    def transfers(self) -> bool:
        """The provider moves the money itself (else finance pays and gives the 流水号)."""
        return self.provider in TRANSFER_PROVIDERS

    @property
    def provider_text(self) -> str:
        return TRANSFER_PROVIDERS.get(self.provider, "线下")


class ModeSettings(Section):
    """How a side system (the shop's, the carrier's) is reached; `none` means by hand."""

    mode: Literal["simulator", "webhook", "none"] = "none"


class PublicServerSettings(Section):
    """The address people reach the server at, for links in cards and digests."""

    public_base_url: str = ""


class ShopRouting(Section):
    """What the core knows of a `[[shops]]` entry: which system answers for the shop's refunds
    (`integrations.shop.settings.ShopSettings` holds the rest)."""

    id: str = Field(min_length=1, max_length=64)
    platform: str
    # A platform connector's name, or `webhook` (the shared [commerce]) or `none` (by hand).
    connector: str = "webhook"


class DomainSettings(BaseModel):
    """Every section the core reads; `bot.settings.Settings` is this plus the wiring's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    server: PublicServerSettings = PublicServerSettings()
    bot: BotSettings = BotSettings()
    groups: list[GroupSettings] = []
    staff: list[StaffSettings] = []
    rules: RulesSettings = RulesSettings()
    timers: TimerSettings = TimerSettings()
    commands: CommandSettings = CommandSettings()
    escalation: EscalationSettings = EscalationSettings()
    digest: DigestSettings = DigestSettings()
    commerce: ModeSettings = ModeSettings()
    carrier: ModeSettings = ModeSettings()
    logistics: LogisticsSettings = LogisticsSettings()
    payout: PayoutPolicy = PayoutPolicy()
    replies: ReplySettings = ReplySettings()
    templates: list[TemplateSettings] = []
    shops: Sequence[ShopRouting] = ()

    @field_validator("groups")
    @classmethod
    def _unique_group_ids(cls, groups: list[GroupSettings]) -> list[GroupSettings]:
        _require_unique("group", [g.id for g in groups])
        return groups

    @field_validator("staff")
    @classmethod
    def _unique_staff_ids(cls, staff: list[StaffSettings]) -> list[StaffSettings]:
        _require_unique("staff", [s.id for s in staff])
        return staff

    @property
    def channels(self) -> set[str]:
        return {g.channel for g in self.groups}

    def group(self, group_id: str) -> GroupSettings | None:
        return next((g for g in self.groups if g.id == group_id), None)

    def commerce_mode(self, shop: str) -> str:
        """How the shop's refunds reach its shop system: `platform` (its own connector),
        `webhook`, `simulator` or `none` (by hand)."""
        entry = next((s for s in self.shops if s.id == shop), None)
        if entry is None or entry.connector == "webhook":
            return self.commerce.mode
        return "none" if entry.connector == "none" else "platform"

    def route(self, *, shop: str, platform: str, kind: str) -> GroupSettings | None:
        """The first configured group that takes this shop, platform and case kind (a group
        still without its chat id takes none)."""
        for group in self.groups:
            if not group.awaiting_chat_id and group.routes(shop=shop, platform=platform, kind=kind):
                return group
        return None


def _require_unique(what: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise ValueError(f"{what} id {item!r} is used twice")
        seen.add(item)
