"""A command acts only on the cases routed to the group it was typed in (or, from a DM, to the
person's own groups); admins excepted. Every command that takes a case, payout, batch or
batch-card reference is tried from the wrong place, and so are buttons and the lists."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from bot.keys import METRICS
from bot.registry import commands
from bot.settings import Settings
from bot.wecom import Bridge
from commands import ChatInput
from integrations.wecom.models import Inbound
from storage.models import AuditEntry, Fold
from tests.support.app import STAFF, Bot, BotFactory, make_refund, make_settings
from tests.support.payout import make_payout

ROUTER = commands()

GROUPS: list[dict[str, Any]] = [
    {"id": "aftersales", "name": "售后一组", "channel": "sandbox", "kinds": ["refund"]},
    {"id": "finance", "name": "财务群", "channel": "sandbox", "kinds": ["payout"]},
    {"id": "ops", "name": "管理群", "channel": "sandbox"},
]
REFUSED = "R1 属于「售后一组」，不能在「财务群」处理：请到「售后一组」操作"
# Each command that takes a reference, typed by someone whose role allows it, in a group
# the referenced case does not belong to. A new command taking a reference must be added.
ATTEMPTS: dict[str, tuple[str, str, str]] = {
    "show": ("sup1", "查 R1", "finance"),
    "approve": ("sup1", "通过 R1", "finance"),
    "undo": ("sup1", "撤销 R1", "finance"),
    "handover": ("sup1", "转交 R1 agent1", "finance"),
    "retry": ("sup1", "重试 R1", "finance"),
    "verify": ("sup1", "验证码 R1 123456", "finance"),
    "reject": ("sup1", "拒绝 R1 不符合", "finance"),
    "refunded": ("sup1", "已退款 R1", "finance"),
    "claim": ("sup1", "认领 R1", "finance"),
    "note": ("sup1", "备注 R1 买家来电", "finance"),
    "intercept": ("sup1", "拦截 R1", "finance"),
    "intercepted": ("sup1", "拦截成功 R1", "finance"),
    "intercept_failed": ("sup1", "拦截失败 R1 已派送", "finance"),
    "reship": ("sup1", "补发 R1", "finance"),
    "contact_carrier": ("sup1", "联系快递 R1", "finance"),
    "ignore": ("sup1", "忽略 R1 无需处理", "finance"),
    "reply": ("sup1", "回复 R1 亲，在的", "finance"),
    "templates": ("sup1", "常用回复 R1", "finance"),
    "approve_all": ("sup1", "全部通过 F1", "finance"),
    "list": ("sup1", "列表 F1", "finance"),
    "paid": ("fin1", "打款确认 P1 REF1", "aftersales"),
    "repay": ("fin1", "重新打款 P1", "aftersales"),
    "recheck": ("fin1", "核对 P1", "aftersales"),
    "batch": ("fin1", "批量打款 P1", "aftersales"),
    "unbatch": ("fin1", "取消批次 P1", "aftersales"),
    "rule": ("agent1", "规则 R1", "finance"),
    "payee": ("fin1", "收款 P1", "aftersales"),
}
WHERE = {"R1": "售后一组", "F1": "售后一组", "P1": "财务群"}


def settings(db_url: str, **overrides: Any) -> Settings:
    return make_settings(db_url, **({"groups": GROUPS} | overrides))


async def audit_count(bot: Bot) -> int:
    async with bot.svc.tx() as tx:
        return int(await tx.session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


async def state(bot: Bot, handle: str) -> str:
    async with bot.svc.tx() as tx:
        case = await tx.cases.find(handle)
        assert case is not None
        return str(case.state)


async def setup_cases(bot: Bot) -> None:
    """R1 ¥1,800 awaiting review in 售后一组 (on a batch card F1), P1 approved in 财务群."""
    assert (await bot.post_event(make_refund(data_amount="1800.00", data_order_amount="1800.00")))[
        0
    ] == 202
    assert (await bot.post_event(make_payout(data_amount="500.00")))[0] == 202
    await bot.drain()
    assert (await chat(bot, "sup1", "通过 P1", group_id="finance")).ok
    await bot.drain()
    async with bot.svc.tx() as tx:
        r1 = await tx.cases.find("R1")
        assert r1 is not None
        tx.session.add(Fold(key="F1", group_id="aftersales", case_pks=[r1.id], created_at=tx.now))


async def chat(bot: Bot, user: str, text: str = "", **fields: Any) -> Any:
    return await ROUTER.handle(
        bot.svc, ChatInput(channel="sandbox", platform="sandbox", user=user, text=text, **fields)
    )


def refs(command: Any) -> list[str]:
    return [
        name
        for name, field in command.args.model_fields.items()
        if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("ref")
    ]


def test_scope_every_command_taking_a_reference_is_tried() -> None:
    taking = {c.names[0] for c in ROUTER.commands if refs(c)}
    assert taking == set(ATTEMPTS)
    for command in ROUTER.commands:
        for name in command.args.model_fields:
            if name in ("case", "cases", "fold"):
                assert name in refs(command), f"{command.names[0]}.{name} is not scope-checked"


async def test_scope_commands_typed_in_another_group_are_refused(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await make_bot(settings(sqlite_url))
    await setup_cases(bot)
    before = (await audit_count(bot), await state(bot, "R1"), await state(bot, "P1"))
    for name, (user, text, group) in ATTEMPTS.items():
        answer = await bot.say(user, text, group=group)
        ref = text.split()[1]
        here = "财务群" if group == "finance" else "售后一组"
        expected = f"{ref} 属于「{WHERE[ref]}」，不能在「{here}」处理：请到「{WHERE[ref]}」操作"
        assert not answer["ok"], name
        assert expected in answer["reply"]["text"], (name, answer["reply"]["text"])
    await bot.drain()
    assert (await audit_count(bot), await state(bot, "R1"), await state(bot, "P1")) == before


async def test_scope_the_reported_attack_from_the_admin_group(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await make_bot(settings(sqlite_url))
    await setup_cases(bot)
    approve = await bot.say("sup1", "通过 R1", group="ops")
    assert not approve["ok"]
    assert "R1 属于「售后一组」，不能在「管理群」处理" in approve["reply"]["text"]
    pay = await bot.say("fin1", "打款确认 P1 REF1", group="ops")
    assert not pay["ok"]
    assert "P1 属于「财务群」，不能在「管理群」处理" in pay["reply"]["text"]
    await bot.drain()
    assert (await state(bot, "R1"), await state(bot, "P1")) == ("awaiting_review", "approved")
    # In its own group the same command works; an admin may act from anywhere.
    assert (await bot.say("fin1", "打款确认 P1 REF1", group="finance"))["ok"]
    assert (await bot.say("admin1", "通过 R1", group="ops"))["ok"]


async def test_scope_a_tapped_button_on_another_groups_case_is_refused(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await make_bot(settings(sqlite_url))
    await setup_cases(bot)
    tapped = await chat(bot, "sup1", group_id="finance", action="approve", case_ref="R1")
    assert not tapped.ok
    assert REFUSED in tapped.text
    assert await state(bot, "R1") == "awaiting_review"


async def test_scope_a_forged_wecom_key_gets_no_card_of_another_group(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    staff: list[dict[str, Any]] = [{**s, "wecom_userid": f"wx_{s['id']}"} for s in STAFF]
    groups: list[dict[str, Any]] = [
        *GROUPS[:2],
        {"id": "ops", "name": "管理群", "channel": "sandbox"},
    ]
    groups[1] = {**groups[1], "channel": "wecom_aibot", "chat_id": "wrkFIN"}
    bot = await make_bot(
        settings(
            sqlite_url,
            groups=groups,
            staff=staff,
            wecom={"aibot": {"bot_id": "b", "secret": "s"}},
        )
    )
    await setup_cases(bot)
    inbound = Inbound(
        channel="wecom_aibot",
        user="wx_sup1",
        dedup="aibot:forged",
        group_id="finance",
        chattype="group",
        key="approve:R1:2",
        task_id="refund-R1-x",
    )
    outcome = await Bridge(bot.svc, bot.app[METRICS]).handle(inbound)
    assert not outcome.reply.ok
    assert "R1 属于「售后一组」，不能在「财务群」处理" in outcome.reply.text
    assert outcome.card is None, "the other group's card is not drawn for the clicker"
    assert await state(bot, "R1") == "awaiting_review"


@pytest.mark.parametrize(
    ("staff_groups", "app_list", "allowed"),
    [([], "", False), (["aftersales"], "", True), ([], "sup1|fin1", True)],
)
async def test_scope_a_dm_acts_on_the_persons_own_groups_only(
    make_bot: BotFactory,
    sqlite_url: str,
    staff_groups: list[str],
    app_list: str,
    allowed: bool,
) -> None:
    staff: list[dict[str, Any]] = [
        {**s, "groups": staff_groups} if s["id"] == "sup1" else s for s in STAFF
    ]
    groups: list[dict[str, Any]] = [*GROUPS]
    if app_list:
        groups[0] = {**groups[0], "channel": "wecom_app", "chat_id": app_list}
    bot = await make_bot(
        settings(
            sqlite_url,
            groups=groups,
            staff=staff,
            wecom={
                "corp_id": "ww1",
                "agent_id": 1,
                "secret": "s",
                "api_base": "http://127.0.0.1:9",
            },
        )
    )
    await setup_cases(bot)
    answer = await chat(bot, "sup1", "查 R1", direct=True)
    assert answer.ok is allowed, answer.text
    if not allowed:
        assert "R1 属于「售后一组」，私聊只能处理你所在群的单据" in answer.text
    todo = await chat(bot, "sup1", "待办 all", direct=True)
    assert ("R1" in todo.text) is allowed
    admin = await chat(bot, "admin1", "查 R1", direct=True)
    assert admin.ok


async def test_scope_a_chat_no_group_names_acts_on_nothing(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await make_bot(settings(sqlite_url))
    await setup_cases(bot)
    stranger_group = await chat(bot, "sup1", "通过 R1")
    assert not stranger_group.ok
    assert "R1 属于「售后一组」，这个群没有配置在 [[groups]] 里" in stranger_group.text
    digest = await chat(bot, "sup1", "日报")
    assert not digest.ok
    assert await state(bot, "R1") == "awaiting_review"


async def test_scope_lists_show_only_this_groups_cases(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await make_bot(settings(sqlite_url))
    await setup_cases(bot)
    assert "R1" in (await bot.say("sup1", "待办 all"))["reply"]["text"]
    assert "R1" not in (await bot.say("sup1", "待办 all", group="finance"))["reply"]["text"]
    assert "R1" not in (await bot.say("sup1", "待办 all", group="ops"))["reply"]["text"]
    assert "P1" in (await bot.say("fin1", "待打款", group="finance"))["reply"]["text"]
    assert "P1" not in (await bot.say("fin1", "待打款", group="aftersales"))["reply"]["text"]
    nothing = await bot.say("fin1", "批量打款", group="aftersales")
    assert nothing["reply"]["text"].startswith("🎉 没有待确认的已审批打款")
    assert (await bot.say("fin1", "批量打款", group="finance"))["reply"]["text"].startswith(
        "📦 已生成批量打款 B"
    )
