"""The full payee account reaches finance and admins only, by direct message, every time
audited: not an agent, a supervisor or another group's finance, and never a group chat. The
account an agent typed to ask for a payout is taken out of the group's copy of that message."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from handlers.channel import Capabilities, MentionBy
from handlers.payout.reveal import DIRECT, REVEALED
from storage.models import AuditEntry, Case, OutboxItem, SandboxMessage
from tests.support.app import STAFF, Bot, BotFactory, make_settings
from tests.support.payout import GROUPS, make_payout

ACCOUNT = "13800138000"
NAME = "王小明"
SETTINGS: dict[str, Any] = {
    "groups": [
        *GROUPS,
        {"id": "finance2", "name": "二店财务", "channel": "sandbox", "kinds": ["payout"]},
    ],
    # fin1 may act from a direct chat on the finance group's cases; fin2 on finance2's only.
    "staff": [
        *(s | {"groups": ["finance"]} if s["id"] == "fin1" else s for s in STAFF),
        {"id": "fin2", "roles": ["finance"], "groups": ["finance2"]},
    ],
}


async def payout_bot(make_bot: BotFactory, sqlite_url: str) -> Bot:
    bot = await make_bot(make_settings(sqlite_url, **SETTINGS))
    event = make_payout(data_payee={"name": NAME, "account": ACCOUNT}, data_amount="25.00")
    assert (await bot.post_event(event))[0] == 202
    await bot.drain()
    return bot


async def say_direct(bot: Bot, user: str, text: str) -> dict[str, Any]:
    resp = await bot.client.post(
        f"/sandbox/api/groups/@{user}/say", json={"user": user, "text": text}
    )
    assert resp.status == 200, await resp.text()
    result: dict[str, Any] = await resp.json()
    return result


async def everything(bot: Bot) -> dict[str, str]:
    """Every conversation the sandbox holds, as one JSON string each."""
    async with bot.svc.tx() as tx:
        rows = (await tx.session.scalars(select(SandboxMessage))).all()
    out: dict[str, list[Any]] = {}
    for m in rows:
        out.setdefault(m.group_id, []).append([m.text, m.card])
    return {k: json.dumps(v, ensure_ascii=False) for k, v in out.items()}


async def reveals(bot: Bot) -> list[tuple[str, str, str, dict[str, Any]]]:
    async with bot.svc.tx() as tx:
        rows = await tx.session.execute(
            select(Case.handle, AuditEntry.actor, AuditEntry.channel, AuditEntry.detail)
            .join(Case, Case.id == AuditEntry.case_pk)
            .where(AuditEntry.action == REVEALED)
            .order_by(AuditEntry.id)
        )
        return [(h, a, c, dict(d)) for h, a, c, d in rows.all()]


async def test_finance_asking_in_the_group_gets_the_account_by_direct_message(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await payout_bot(make_bot, sqlite_url)
    answer = await bot.say("fin1", "收款 P1", group="finance")
    assert answer["ok"], answer
    assert "已私信" in answer["reply"]["text"]
    assert ACCOUNT not in json.dumps(answer, ensure_ascii=False)
    await bot.drain()
    (direct,) = [m for m in await bot.messages("@fin1") if m["author"] == "bot"]
    assert ACCOUNT in direct["text"]
    assert NAME in direct["text"]
    assert "P1" in direct["text"]
    assert [(h, a, d["via"], d["group"]) for h, a, _, d in await reveals(bot)] == [
        ("P1", "fin1", "direct_message", "finance")
    ]
    assert (await bot.say("admin1", "收款 P1", group="finance"))["ok"]
    await bot.drain()
    held = {where for where, text in (await everything(bot)).items() if ACCOUNT in text}
    assert held == {"@fin1", "@admin1"}
    assert [a for _, a, _, _ in await reveals(bot)] == ["fin1", "admin1"]
    async with bot.svc.tx() as tx:
        queued = (
            await tx.session.scalars(select(OutboxItem).where(OutboxItem.kind == DIRECT))
        ).all()
    assert queued
    assert all(ACCOUNT not in json.dumps(item.payload) for item in queued)


async def test_asked_in_a_direct_chat_the_answer_is_the_account(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await payout_bot(make_bot, sqlite_url)
    answer = await say_direct(bot, "fin1", "收款 P1")
    assert answer["ok"]
    assert ACCOUNT in answer["reply"]["text"]
    assert [(a, d["via"]) for _, a, _, d in await reveals(bot)] == [("fin1", "reply")]
    assert (await bot.say("fin1", "查 P1", group="finance"))["reply"]["text"].count(
        "查看完整收款账号"
    )


async def test_nobody_else_gets_the_account(make_bot: BotFactory, sqlite_url: str) -> None:
    bot = await payout_bot(make_bot, sqlite_url)
    refused = [
        await bot.say("agent1", "收款 P1", group="finance"),
        await bot.say("sup1", "收款 P1", group="finance"),
        await bot.say("sup1", "payee P1", group="finance"),
        await say_direct(bot, "agent1", "收款 P1"),
        await say_direct(bot, "sup1", "收款账号 P1"),
        # Finance of another group: not from their group, not from a direct chat either.
        await bot.say("fin2", "收款 P1", group="finance2"),
        await say_direct(bot, "fin2", "收款 P1"),
    ]
    assert [r["ok"] for r in refused] == [False] * len(refused)
    assert "财务" in refused[0]["reply"]["text"]
    assert "属于「财务群」" in refused[5]["reply"]["text"]
    await bot.drain()
    assert [where for where, text in (await everything(bot)).items() if ACCOUNT in text] == []
    assert await reveals(bot) == []


async def test_a_channel_that_cannot_write_to_one_person_refuses_in_the_group(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await payout_bot(make_bot, sqlite_url)
    bot.svc.capabilities["sandbox"] = Capabilities(edits_in_place=True, mentions_by=MentionBy.NAME)
    answer = await bot.say("fin1", "收款 P1", group="finance")
    assert not answer["ok"]
    assert "不能私信" in answer["reply"]["text"]
    assert "私聊机器人" in answer["reply"]["text"]
    await bot.drain()
    assert [where for where, text in (await everything(bot)).items() if ACCOUNT in text] == []
    assert await reveals(bot) == []


async def test_the_account_typed_to_ask_for_a_payout_is_taken_out_of_the_group(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await make_bot(make_settings(sqlite_url, **SETTINGS))
    typed = f"打款 补偿 T88001 5 {ACCOUNT} {NAME} 快递破损补偿"
    answer = await bot.say("agent1", typed, group="finance")
    assert answer["ok"], answer
    assert "撤回" not in answer["reply"]["text"]
    await bot.drain()
    said = next(m for m in await bot.messages("finance") if m["id"] == answer["message"]["id"])
    assert said["text"] == "打款 补偿 T88001 5 138****8000 王** 快递破损补偿"
    assert [where for where, text in (await everything(bot)).items() if ACCOUNT in text] == []


async def test_where_a_message_cannot_be_changed_the_agent_is_asked_to_recall_it(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await make_bot(make_settings(sqlite_url, **SETTINGS))
    bot.svc.capabilities["sandbox"] = Capabilities(
        edits_in_place=True, mentions_by=MentionBy.NAME, direct_messages=True
    )
    answer = await bot.say("agent1", f"打款 补偿 T88001 5 {ACCOUNT} {NAME} 破损", group="finance")
    assert answer["ok"]
    assert "请长按那条消息撤回" in answer["reply"]["text"]
    assert "收款 P1" in answer["reply"]["text"]
    assert ACCOUNT not in answer["reply"]["text"]
    await bot.drain()
    said = next(m for m in await bot.messages("finance") if m["id"] == answer["message"]["id"])
    assert ACCOUNT in said["text"]


async def test_opted_in_the_groups_finance_get_the_account_once_it_is_approved(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    payout = {"send_payee_to_finance": True}
    bot = await make_bot(make_settings(sqlite_url, **SETTINGS, payout=payout))
    event = make_payout(data_payee={"name": NAME, "account": ACCOUNT}, data_amount="25.00")
    assert (await bot.post_event(event))[0] == 202
    await bot.drain()
    assert [where for where, text in (await everything(bot)).items() if ACCOUNT in text] == []
    assert (await bot.say("sup1", "通过 P1", group="finance"))["ok"]
    await bot.drain()
    # fin1 works the finance group; fin2 another group's payouts, so never sees this one.
    assert [where for where, text in (await everything(bot)).items() if ACCOUNT in text] == [
        "@fin1"
    ]
    assert [(a, d["via"]) for _, a, _, d in await reveals(bot)] == [("fin1", "on_approval")]


async def test_only_the_person_writes_in_their_sandbox_chat_with_the_bot(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await payout_bot(make_bot, sqlite_url)
    config = await (await bot.client.get("/sandbox/api/config")).json()
    assert {"id": "@fin1", "name": "私信 · fin1"} in config["groups"]
    resp = await bot.client.post(
        "/sandbox/api/groups/@fin1/say", json={"user": "agent1", "text": "收款 P1"}
    )
    assert resp.status == 403
    assert (await bot.client.get("/sandbox/api/groups/@nobody/messages")).status == 404
    assert await bot.messages("@fin1") == []
    assert await reveals(bot) == []
