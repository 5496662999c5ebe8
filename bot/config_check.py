"""`refundops check-config`: every problem in a configuration, each named on its own line with
the place it is at (`ConfigProblem.path`) and how to fix it. `bot.config_report` runs these on
whatever part of a broken file still loads, and says in which file each place is."""

from __future__ import annotations

import re
from collections.abc import Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel

from bot.settings import CASE_KINDS, NOTIFY_ONLY_CHANNELS, PLACEHOLDER_SECRETS, Settings
from handlers.authority import account
from handlers.clock import SystemClock
from handlers.config import ConfigProblem, GroupSettings
from handlers.platforms import suggest
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


def problems(settings: Settings) -> list[ConfigProblem]:
    found: list[ConfigProblem] = []
    if not settings.groups:
        found.append(
            ConfigProblem(
                "no [[groups]] configured: cards have nowhere to go",
                ("groups",),
                "add a [[groups]] table with an id and a channel",
            )
        )
    secret = settings.ingest.secret.get_secret_value()
    if not secret:
        found.append(
            ConfigProblem(
                "missing secret ingest.secret (set REFUNDOPS_INGEST__SECRET)",
                ("ingest", "secret"),
                "or put it in the secrets file under [ingest]",
            )
        )
    elif secret in PLACEHOLDER_SECRETS and not settings.demo:
        found.append(
            ConfigProblem(
                "ingest.secret is a placeholder; use a long random value outside the demo",
                ("ingest", "secret"),
            )
        )
    found += [located(p, settings) for p in settings.demo_only()]
    for i, group in enumerate(settings.groups):
        found += _group_problems(settings, i, group)
    if settings.bot.admin_group and settings.group(settings.bot.admin_group) is None:
        found.append(
            ConfigProblem(
                f"bot.admin_group {settings.bot.admin_group!r} is not one of the [[groups]]",
                ("bot", "admin_group"),
                _one_of([g.id for g in settings.groups], settings.bot.admin_group),
            )
        )
    interactive = settings.channels - NOTIFY_ONLY_CHANNELS - {"sandbox"}
    platforms = {c.split("_", 1)[0] for c in interactive}
    for i, staff in enumerate(settings.staff):
        where = f"staff[{i}] ({staff.id})"
        if not staff.roles:
            found.append(
                ConfigProblem(
                    f"{where}: has no role",
                    ("staff", i, "roles"),
                    'give roles, e.g. roles = ["agent"] (agent | supervisor | finance | admin)',
                )
            )
        if platforms and not any(account(staff, p) for p in platforms):
            wanted = " or ".join(ID_KEYS[p] for p in sorted(platforms))
            found.append(
                ConfigProblem(
                    f"{where}: no chat id for the channels in use (set {wanted})",
                    ("staff", i, ID_KEYS[min(platforms)]),
                )
            )
        found += [
            ConfigProblem(
                f"{where}: groups names {g!r}, which is not one of the [[groups]]",
                ("staff", i, "groups"),
                _one_of([g.id for g in settings.groups], g),
            )
            for g in staff.groups
            if settings.group(g) is None
        ]
    found += _shared_identities(settings)
    if not any("admin" in s.roles for s in settings.staff) and settings.staff:
        found.append(
            ConfigProblem(
                "no staff member has the admin role: dead letters and refusals name nobody",
                ("staff",),
                'add "admin" to someone\'s roles',
            )
        )
    found += RuleTable.from_settings(settings.rules).problems()
    found += _references(settings)
    found += [
        located(p, settings)
        for p in TemplateBook.from_settings(settings).problems(
            states=[s.value for s in RefundState]
        )
    ]
    for section, tz in (("bot", settings.bot.timezone), ("digest", settings.digest.timezone)):
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            found.append(
                ConfigProblem(
                    f"{section}.timezone: unknown time zone {tz!r}",
                    (section, "timezone"),
                    "use an IANA name such as Asia/Shanghai",
                )
            )
    if settings.commerce.mode == "webhook":
        if not settings.commerce.url:
            found.append(
                ConfigProblem(
                    "commerce.url is empty but commerce.mode is 'webhook'",
                    ("commerce", "url"),
                    'set the ERP endpoint\'s URL, or mode = "none" to refund by hand',
                )
            )
        if not settings.commerce.secret.get_secret_value():
            found.append(
                ConfigProblem(
                    "missing secret commerce.secret (set REFUNDOPS_COMMERCE__SECRET)",
                    ("commerce", "secret"),
                )
            )
    found += [located(p, settings) for p in payout_problems(settings.payout)]
    if settings.payout.provider == "wechatpay":
        found += [
            located(p, settings)
            for p in wechatpay_problems(settings.payout.wechatpay, SystemClock())
        ]
    found += _carrier_problems(settings)
    found += [
        located(p, settings)
        for p in shop_problems(settings.shops, demo=settings.demo, placeholders=PLACEHOLDER_SECRETS)
    ]
    found += [located(p, settings) for p in warehouse_problems(settings.warehouse)]
    found += _shop_routing(settings)
    return found


def _one_of(ids: Sequence[str], written: str) -> str:
    guess = suggest(written, ids)
    meant = f"did you mean {guess!r}? " if guess else ""
    return f"{meant}one of: {', '.join(ids) or 'none configured'}"


# A problem's text starts with where it is: `group 'b': …`, `shops[0] (dy): …`, `missing
# secret carrier.sf.checkword …`, `payout.wechatpay.mchid is empty`.
_HEAD = re.compile(
    r"^(?:missing secret )?(?:group '(?P<group>[^']*)'|(?P<dotted>[a-z_]+(?:\[\d+\])?"
    r"(?:\.[A-Za-z0-9_]+)*))(?: \([^)]*\))?(?::? (?P<next>[a-z_]+))?"
)
_INDEXED = re.compile(r"^(?P<name>[a-z_]+)\[(?P<i>\d+)\]$")


def located(text: str, settings: Settings) -> ConfigProblem:
    """A problem another module names in words, with the place its text starts with."""
    if isinstance(text, ConfigProblem) and text.path:
        return text
    head = _HEAD.match(text)
    if head is None:
        return ConfigProblem(text)
    path: list[str | int] = []
    item: BaseModel | None = None
    if (group := head["group"]) is not None:
        index = next((i for i, g in enumerate(settings.groups) if g.id == group), None)
        if index is None:
            return ConfigProblem(text, ("groups",))
        path, item = ["groups", index], settings.groups[index]
    else:
        node: object = settings
        for part in head["dotted"].split("."):
            indexed = _INDEXED.match(part)
            name = indexed["name"] if indexed else part
            fields = type(node).model_fields if isinstance(node, BaseModel) else {}
            if name not in fields and not (isinstance(node, dict) and name in node):
                break
            node = getattr(node, name) if isinstance(node, BaseModel) else node[name]  # type: ignore[index]
            path.append(name)
            if name == "rules":
                path.append("rows")
                node = settings.rules.rows
            if indexed:
                i = int(indexed["i"])
                path.append(i)
                items = list(node) if isinstance(node, Sequence) else []
                node = items[i] if i < len(items) else None
        item = node if isinstance(node, BaseModel) else None
        if not path or not isinstance(path[-1], int):
            item = None
    if item is not None and (key := head["next"]) and key in type(item).model_fields:
        path.append(key)
    fix = ""
    if "missing secret" in text and "REFUNDOPS_" not in text and "secrets file" not in text:
        fix = "put it in the secrets file, or the environment"
    elif text.endswith(" is empty"):
        fix = "set it"
    return ConfigProblem(text, tuple(path), fix)


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


def _shop_routing(settings: Settings) -> list[ConfigProblem]:
    """A shop whose cases no group takes: its cards would go nowhere."""
    return [
        ConfigProblem(
            f"shops[{i}] ({shop.id}): no [[groups]] entry routes its refunds (add {shop.id!r} to a "
            "group's shops, or leave a group's shops empty)",
            ("shops", i),
        )
        for i, shop in enumerate(settings.shops)
        if settings.groups
        and not any(
            g.routes(shop=shop.id, platform=shop.platform, kind="refund") for g in settings.groups
        )
    ]


def _shared_identities(settings: Settings) -> list[ConfigProblem]:
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
                    ConfigProblem(
                        f"staff[{i}] ({staff.id}): {key} {ident!r} is also staff[{seen[0]}] "
                        f"({seen[1]})'s: one {platform} account would act as both; give each "
                        "person their own",
                        ("staff", i, key),
                    )
                )
    return found


def _carrier_problems(settings: Settings) -> list[ConfigProblem]:
    carrier, logistics = settings.carrier, settings.logistics
    found = []
    if carrier.mode == "webhook":
        if not carrier.url:
            found.append(
                ConfigProblem(
                    "carrier.url is empty but carrier.mode is 'webhook'",
                    ("carrier", "url"),
                    'set the intercept endpoint\'s URL, or mode = "none" to intercept by phone',
                )
            )
        if not carrier.secret.get_secret_value():
            found.append(
                ConfigProblem(
                    "missing secret carrier.secret (set REFUNDOPS_CARRIER__SECRET)",
                    ("carrier", "secret"),
                )
            )
    found += [located(p, settings) for p in carrier_route_problems(carrier)]
    salt = carrier.kuaidi100_salt.get_secret_value()
    if salt and salt in PLACEHOLDER_SECRETS and not settings.demo:
        found.append(
            ConfigProblem(
                "carrier.kuaidi100_salt is a placeholder; use a long random value",
                ("carrier", "kuaidi100_salt"),
            )
        )
    if logistics.stuck_in_transit_h >= logistics.lost_days * 24:
        found.append(
            ConfigProblem(
                "logistics.stuck_in_transit_h is not below lost_days: parcels would be lost first",
                ("logistics", "stuck_in_transit_h"),
                "make it shorter than lost_days × 24",
            )
        )
    return found


def _group_problems(settings: Settings, i: int, group: GroupSettings) -> list[ConfigProblem]:
    where = f"group {group.id!r}"

    def at(key: str, text: str, fix: str = "") -> ConfigProblem:
        return ConfigProblem(f"{where}: {text}", ("groups", i, key), fix)

    found = [
        at(
            "kinds",
            f"unknown case kind {k!r} in kinds{_meant(k, CASE_KINDS)} "
            f"(one of {', '.join(CASE_KINDS)})",
        )
        for k in group.kinds
        if k not in CASE_KINDS
    ]
    if group.channel in CHAT_ID_NAMES and not group.chat_id and not group.awaiting_chat_id:
        found.append(at("chat_id", f"chat_id is empty ({CHAT_ID_NAMES[group.channel]})"))
    if group.channel in ("wecom_webhook", "dingtalk_webhook") and not group.webhook_url:
        found.append(
            at("webhook_url", "webhook_url is empty", "copy the group robot's Webhook URL")
        )
    if group.channel == "wecom_aibot_http" and not group.webhook_url:
        found.append(
            at(
                "webhook_url",
                "webhook_url is empty (the AI bot's HTTP mode cannot post by itself; "
                "new cards reach the group through its webhook robot)",
            )
        )
    if group.channel == "wecom_app":
        staff = {s.id: s for s in settings.staff}
        found += [
            at("chat_id", f"chat_id names {p}, who has no wecom_userid", f"set {p}'s wecom_userid")
            for p in group.chat_id.split("|")
            if p in staff and not staff[p].wecom_userid
        ]
    if group.channel == "dingtalk_webhook" and not group.webhook_secret.get_secret_value():
        found.append(
            at("webhook_secret", "webhook_secret is empty (加签 secret, in the secrets file)")
        )
    if (
        group.channel == "dingtalk_webhook"
        and group.webhook_url
        and "access_token=" not in group.webhook_url
    ):
        found.append(
            at("webhook_url", "webhook_url has no access_token (copy the robot's whole Webhook)")
        )
    found += [
        ConfigProblem(f"{where}: {need}", need.path, need.fix)
        for need in channel_needs(settings, group.channel)
    ]
    return found


def _meant(written: str, known: Sequence[str]) -> str:
    guess = suggest(written, known)
    return f"; did you mean {guess!r}?" if guess else ""


def _references(settings: Settings) -> list[ConfigProblem]:
    """Shops named in groups and rules that no `[[shops]]` entry declares, groups that can
    receive no case, and a config whose groups together receive none."""
    found: list[ConfigProblem] = []
    declared = [s.id for s in settings.shops]
    platform_of = {s.id: s.platform for s in settings.shops}
    named = [shop for g in settings.groups for shop in g.shops]
    # Without [[shops]], the shops the groups name are all there is when every group names some.
    known = declared or (named if settings.groups and all(g.shops for g in settings.groups) else [])
    declare = (
        "correct it, or declare the shop: [[shops]] id = {shop!r}, platform, and connector = "
        '"webhook" when its events come to /api/v1/events'
    )
    receiving = 0
    for i, group in enumerate(settings.groups):
        if declared:
            found += [
                ConfigProblem(
                    f"group {group.id!r}: shop {shop!r} is not one of the [[shops]]"
                    f"{_meant(shop, declared)}",
                    ("groups", i, "shops"),
                    declare.format(shop=shop),
                )
                for shop in group.shops
                if shop not in declared
            ]
        if (why := _receives_nothing(group, platform_of)) is not None:
            found.append(
                ConfigProblem(
                    f"group {group.id!r} receives no case: {why}",
                    ("groups", i),
                    "widen its shops, platforms or kinds (an empty list takes any), or remove it",
                )
            )
        else:
            receiving += 1
    if settings.groups and not receiving:
        found.append(
            ConfigProblem(
                "no [[groups]] entry receives any case: every card would go nowhere",
                ("groups",),
                "give at least one group filters that match your shops (empty lists take any)",
            )
        )
    table = RuleTable.from_settings(settings.rules)
    for row in table.rows:
        if row.origin != "config" or not known:
            continue
        found += [
            ConfigProblem(
                f"rules[{row.index}] ({row.rule.name}): shop {shop!r} is not "
                f"{'one of the [[shops]]' if declared else 'a shop any [[groups]] entry takes'}"
                f"{_meant(shop, known)}",
                ("rules", "rows", row.index, "shops"),
                declare.format(shop=shop),
            )
            for shop in row.rule.shops
            if shop not in known
        ]
    return found


def _receives_nothing(group: GroupSettings, platform_of: dict[str, str]) -> str | None:
    """Why no case can reach `group`, or None when some can."""
    if group.kinds and not set(group.kinds) & set(CASE_KINDS):
        return f"none of its kinds {group.kinds} is a case kind"
    shops = group.shops
    if (
        shops
        and group.platforms
        and all(s in platform_of for s in shops)
        and not any(platform_of[s] in group.platforms for s in shops)
    ):
        on = sorted({platform_of[s] for s in shops})
        return f"its shops {shops} are on {on}, its platforms {group.platforms} are not"
    return None


def channel_needs(settings: Settings, channel: str) -> list[ConfigProblem]:
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
        ConfigProblem(
            f"channel {channel} needs {key} (REFUNDOPS_{key.upper().replace('.', '__')})",
            tuple(key.split(".")),
        )
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
                ConfigProblem(
                    f"channel {channel}: {prefix}.encoding_aes_key is not a valid EncodingAESKey "
                    "(the 43 characters shown beside the callback URL)",
                    (*prefix.split("."), "encoding_aes_key"),
                )
            )
    return needs
