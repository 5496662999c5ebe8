"""`refundops check-config`: every problem in a configuration, each named on its own line."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.settings import CASE_KINDS, NOTIFY_ONLY_CHANNELS, PLACEHOLDER_SECRETS, Settings
from handlers.authority import account
from handlers.clock import SystemClock
from handlers.config import GroupSettings
from handlers.refund.machine import RefundState
from handlers.rules import RuleTable
from handlers.templates import TemplateBook
from integrations.carrier.routing import config_problems as carrier_route_problems
from integrations.jushuitan.settings import config_problems as warehouse_problems
from integrations.payout.client import config_problems as payout_problems
from integrations.shop.settings import shop_problems
from integrations.wechatpay.client import config_problems as wechatpay_problems
from integrations.wecom.crypto import valid_aes_key

ID_KEYS = {"wecom": "wecom_userid", "dingtalk": "dingtalk_staff_id"}
CHAT_ID_NAMES = {
    "wecom_aibot": "the AI bot's group chatid",
    "wecom_app": "a touser list like 'sup1|sup2'",
    "dingtalk_stream": "the group's openConversationId",
    "dingtalk_http": "the group's openConversationId",
}


def problems(settings: Settings) -> list[str]:
    found: list[str] = []
    if not settings.groups:
        found.append("no [[groups]] configured: cards have nowhere to go")
    secret = settings.ingest.secret.get_secret_value()
    if not secret:
        found.append("missing secret ingest.secret (set REFUNDOPS_INGEST__SECRET)")
    elif secret in PLACEHOLDER_SECRETS and not settings.demo:
        found.append("ingest.secret is a placeholder; use a long random value outside the demo")
    found += settings.demo_only()
    for group in settings.groups:
        found += _group_problems(settings, group)
    if settings.bot.admin_group and settings.group(settings.bot.admin_group) is None:
        found.append(f"bot.admin_group {settings.bot.admin_group!r} is not one of the [[groups]]")
    interactive = settings.channels - NOTIFY_ONLY_CHANNELS - {"sandbox"}
    platforms = {c.split("_", 1)[0] for c in interactive}
    for i, staff in enumerate(settings.staff):
        where = f"staff[{i}] ({staff.id})"
        if not staff.roles:
            found.append(f"{where}: has no role")
        if platforms and not any(account(staff, p) for p in platforms):
            wanted = " or ".join(ID_KEYS[p] for p in sorted(platforms))
            found.append(f"{where}: no chat id for the channels in use (set {wanted})")
        found += [
            f"{where}: groups names {g!r}, which is not one of the [[groups]]"
            for g in staff.groups
            if settings.group(g) is None
        ]
    found += _shared_identities(settings)
    if not any("admin" in s.roles for s in settings.staff) and settings.staff:
        found.append("no staff member has the admin role: dead letters and refusals name nobody")
    found += RuleTable.from_settings(settings.rules).problems()
    found += TemplateBook.from_settings(settings).problems(states=[s.value for s in RefundState])
    for name, tz in (
        ("bot.timezone", settings.bot.timezone),
        ("digest.timezone", settings.digest.timezone),
    ):
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            found.append(f"{name}: unknown time zone {tz!r}")
    if settings.commerce.mode == "webhook":
        if not settings.commerce.url:
            found.append("commerce.url is empty but commerce.mode is 'webhook'")
        if not settings.commerce.secret.get_secret_value():
            found.append("missing secret commerce.secret (set REFUNDOPS_COMMERCE__SECRET)")
    found += payout_problems(settings.payout)
    if settings.payout.provider == "wechatpay":
        found += wechatpay_problems(settings.payout.wechatpay, SystemClock())
    found += _carrier_problems(settings)
    found += shop_problems(settings.shops, demo=settings.demo, placeholders=PLACEHOLDER_SECRETS)
    found += warehouse_problems(settings.warehouse)
    found += _shop_routing(settings)
    return found


def warnings(settings: Settings) -> list[str]:
    """What works, but not yet as meant: said on every check and at start, never refused."""
    found = [
        f"group {g.id!r}: no chat_id yet, so no case is routed to it. Start refundops and "
        "@-mention the bot in that group: it answers there with the group's chat_id and the "
        "lines for [[groups]]; write them in and restart"
        for g in settings.groups
        if g.awaiting_chat_id
    ]
    if settings.channels & {"dingtalk_stream", "dingtalk_http"} and not settings.dingtalk.agent_id:
        found.append(
            "dingtalk.agent_id is not set: robot group messages cannot @ anyone, so reminders "
            "and escalations name people without notifying them; set the app's AgentId "
            "(凭证与基础信息) to send them a work notification (工作通知) too"
        )
    return found


def notes(settings: Settings) -> list[str]:
    """What check-config read differently from how it was written, said so nobody guesses."""
    return [
        f"shops[{i}] ({shop.id}): platform {shop.platform_written!r} is taken as {shop.platform!r}"
        for i, shop in enumerate(settings.shops)
        if shop.platform_written
    ]


def _shop_routing(settings: Settings) -> list[str]:
    """A shop whose cases no group takes: its cards would go nowhere."""
    return [
        f"shops[{i}] ({shop.id}): no [[groups]] entry routes its refunds (add {shop.id!r} to a "
        "group's shops, or leave a group's shops empty)"
        for i, shop in enumerate(settings.shops)
        if settings.groups
        and not any(
            g.routes(shop=shop.id, platform=shop.platform, kind="refund") for g in settings.groups
        )
    ]


def _shared_identities(settings: Settings) -> list[str]:
    """Two staff entries with one chat account: whoever holds it would act as both."""
    found = []
    for key, platform, on in (
        ("wecom_userid", "WeCom", "wecom"),
        ("dingtalk_staff_id", "DingTalk", "dingtalk"),
        ("sandbox_user", "sandbox", "sandbox"),
    ):
        first: dict[str, tuple[int, str]] = {}
        for i, staff in enumerate(settings.staff):
            ident = account(staff, on)
            if not ident:
                continue
            # WeCom userids are case-insensitive (成员 UserID 不区分大小写); DingTalk ids alike.
            seen = first.setdefault(ident.strip().casefold(), (i, staff.id))
            if seen[0] != i:
                found.append(
                    f"staff[{i}] ({staff.id}): {key} {ident!r} is also staff[{seen[0]}] "
                    f"({seen[1]})'s: one {platform} account would act as both; give each "
                    "person their own"
                )
    return found


def _carrier_problems(settings: Settings) -> list[str]:
    carrier, logistics = settings.carrier, settings.logistics
    found = []
    if carrier.mode == "webhook":
        if not carrier.url:
            found.append("carrier.url is empty but carrier.mode is 'webhook'")
        if not carrier.secret.get_secret_value():
            found.append("missing secret carrier.secret (set REFUNDOPS_CARRIER__SECRET)")
    found += carrier_route_problems(carrier)
    salt = carrier.kuaidi100_salt.get_secret_value()
    if salt and salt in PLACEHOLDER_SECRETS and not settings.demo:
        found.append("carrier.kuaidi100_salt is a placeholder; use a long random value")
    if logistics.stuck_in_transit_h >= logistics.lost_days * 24:
        found.append(
            "logistics.stuck_in_transit_h is not below lost_days: parcels would be lost first"
        )
    return found


def _group_problems(settings: Settings, group: GroupSettings) -> list[str]:
    where = f"group {group.id!r}"
    found = [
        f"{where}: unknown case kind {k!r} in kinds (one of {', '.join(CASE_KINDS)})"
        for k in group.kinds
        if k not in CASE_KINDS
    ]
    if group.channel in CHAT_ID_NAMES and not group.chat_id and not group.awaiting_chat_id:
        found.append(f"{where}: chat_id is empty ({CHAT_ID_NAMES[group.channel]})")
    if group.channel in ("wecom_webhook", "dingtalk_webhook") and not group.webhook_url:
        found.append(f"{where}: webhook_url is empty")
    if group.channel == "wecom_aibot_http" and not group.webhook_url:
        found.append(
            f"{where}: webhook_url is empty (the AI bot's HTTP mode cannot post by itself; "
            "new cards reach the group through its webhook robot)"
        )
    if group.channel == "wecom_app":
        staff = {s.id: s for s in settings.staff}
        found += [
            f"{where}: chat_id names {p}, who has no wecom_userid"
            for p in group.chat_id.split("|")
            if p in staff and not staff[p].wecom_userid
        ]
    if group.channel == "dingtalk_webhook" and not group.webhook_secret.get_secret_value():
        found.append(f"{where}: webhook_secret is empty (加签 secret, in the secrets file)")
    if (
        group.channel == "dingtalk_webhook"
        and group.webhook_url
        and "access_token=" not in group.webhook_url
    ):
        found.append(f"{where}: webhook_url has no access_token (copy the robot's whole Webhook)")
    found += [f"{where}: {need}" for need in channel_needs(settings, group.channel)]
    return found


def channel_needs(settings: Settings, channel: str) -> list[str]:
    """The platform keys `channel` still needs, named as the config and env spell them."""
    wecom, aibot, ding = settings.wecom, settings.wecom.aibot, settings.dingtalk
    required: dict[str, list[tuple[str, bool]]] = {
        "wecom_aibot": [
            ("wecom.aibot.bot_id", bool(aibot.bot_id)),
            ("wecom.aibot.secret", bool(aibot.secret.get_secret_value())),
        ],
        "wecom_aibot_http": [
            ("wecom.aibot.token", bool(aibot.token.get_secret_value())),
            ("wecom.aibot.encoding_aes_key", bool(aibot.encoding_aes_key.get_secret_value())),
        ],
        "wecom_app": [
            ("wecom.corp_id", bool(wecom.corp_id)),
            ("wecom.agent_id", bool(wecom.agent_id)),
            ("wecom.secret", bool(wecom.secret.get_secret_value())),
            ("wecom.token", bool(wecom.token.get_secret_value())),
            ("wecom.encoding_aes_key", bool(wecom.encoding_aes_key.get_secret_value())),
        ],
        "dingtalk_stream": [
            ("dingtalk.app_key", bool(ding.app_key)),
            ("dingtalk.app_secret", bool(ding.app_secret.get_secret_value())),
            ("dingtalk.robot_code", bool(ding.robot_code)),
            ("dingtalk.card_template_id", bool(ding.card_template_id)),
        ],
    }
    required["dingtalk_http"] = [
        *required["dingtalk_stream"],
        ("dingtalk.corp_id", bool(ding.corp_id)),
        ("server.public_base_url", bool(settings.server.public_base_url)),
    ]
    needs = [
        f"channel {channel} needs {key} (REFUNDOPS_{key.upper().replace('.', '__')})"
        for key, present in required.get(channel, [])
        if not present
    ]
    aes_keys = {
        "wecom_app": ("wecom", wecom.encoding_aes_key.get_secret_value()),
        "wecom_aibot_http": ("wecom.aibot", aibot.encoding_aes_key.get_secret_value()),
    }
    if channel in aes_keys:
        prefix, key = aes_keys[channel]
        if key and not valid_aes_key(key):
            needs.append(
                f"channel {channel}: {prefix}.encoding_aes_key is not a valid EncodingAESKey "
                "(the 43 characters shown beside the callback URL)"
            )
    return needs
