"""Dead-lettered deliveries come back: `refundops outbox requeue` and the admins' 重发死信;
money-moving kinds are never re-sent this way."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.keys import PROCESSOR
from handlers.clock import FakeClock
from storage.db import Database
from storage.enums import OutboxState
from storage.models import OutboxItem
from storage.repositories.outbox import OutboxRepository
from tests.support.app import Bot, make_refund

CONFIG = """
[database]
url = "{url}"
[bot]
admin_group = "ops"
[[groups]]
id = "aftersales"
channel = "sandbox"
[[groups]]
id = "ops"
channel = "sandbox"
[[staff]]
id = "admin1"
roles = ["admin"]
"""


async def bury_cards(bot: Bot, n: int) -> list[str]:
    """`n` new refunds whose cards were dead-lettered, plus a dead refund submission."""
    for _ in range(n):
        status, _ = await bot.post_event(make_refund())
        assert status == 202

    await bot.app[PROCESSOR].run_once()
    async with bot.svc.tx() as tx:
        items = list((await tx.session.scalars(select(OutboxItem))).all())
        for item in items:
            await tx.outbox.dead(item.id, error="Redis unreachable", now=tx.now)
        await tx.outbox.add(
            "commerce.approve_refund:1", "commerce.approve_refund", now=tx.now, case_pk=1
        )
        await tx.outbox.dead("commerce.approve_refund:1", error="gave up", now=tx.now)
    return [i.id for i in items]


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def states(bot: Bot) -> dict[str, tuple[str, int]]:
    async with bot.svc.tx() as tx:
        items = (await tx.session.scalars(select(OutboxItem))).all()
        return {i.id: (i.state, i.attempts) for i in items}


async def test_redis_requeue_chat_command_resends_dead_cards_for_admins_only(bot: Bot) -> None:
    buried = await bury_cards(bot, 3)
    refused = await bot.say("agent1", "重发死信", group="ops")
    assert not refused["ok"]
    assert (await states(bot))[buried[0]][0] == OutboxState.DEAD

    answer = await bot.say("admin1", "重发死信 card 1h", group="ops")
    assert answer["ok"], answer
    assert "已重发 3 条" in answer["reply"]["text"]
    assert "commerce.approve_refund 1 条" in answer["reply"]["text"]
    now = await states(bot)
    assert [now[i] for i in buried] == [(OutboxState.PENDING, 0)] * 3
    assert now["commerce.approve_refund:1"][0] == OutboxState.DEAD
    await bot.drain()
    assert len(await bot.cards()) == 3

    money = await bot.say("admin1", "重发死信 commerce.approve_refund", group="ops")
    assert not money["ok"]
    assert (await states(bot))["commerce.approve_refund:1"][0] == OutboxState.DEAD


async def test_redis_requeue_since_leaves_older_dead_items(bot: Bot) -> None:
    old = await bury_cards(bot, 1)
    bot.clock.advance(timedelta(hours=3))
    answer = await bot.say("admin1", "requeue 2h", group="ops")
    assert "已重发 0 条" in answer["reply"]["text"]
    assert (await states(bot))[old[0]][0] == OutboxState.DEAD


async def test_redis_requeue_cli(
    bot: Bot, sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    buried = await bury_cards(bot, 2)
    config = tmp_path / "refundops.toml"
    config.write_text(CONFIG.format(url=sqlite_url), encoding="utf-8")
    # The CLI's clock is the real one: everything buried on the test clock is "since 1d" only
    # when that clock is not in the future, so ask without --since here.
    assert await cli("outbox", "requeue", "--config", str(config), "--kind", "card") == 0
    out = capsys.readouterr().out
    assert "requeued 2 dead item(s)" in out
    assert "commerce.approve_refund" in out
    assert [(await states(bot))[i] for i in buried] == [(OutboxState.PENDING, 0)] * 2
    assert await cli("outbox", "requeue", "--config", str(config), "--kind", "payout.transfer") == 2
    assert "不能重发" in capsys.readouterr().err
    assert await cli("outbox", "requeue", "--config", str(config), "--since", "yesterday") == 2


async def test_redis_requeue_repository_on_either_database(db: Database) -> None:
    start = FakeClock().now()
    async with db.begin() as session:
        outbox = OutboxRepository(session)
        for n, kind in enumerate(["card", "card", "text", "payout.transfer"]):
            await outbox.add(f"{kind}:{n}", kind, now=start)
            await outbox.dead(f"{kind}:{n}", error="x", now=start + timedelta(minutes=n))
    async with db.begin() as session:
        outbox = OutboxRepository(session)
        since = start + timedelta(minutes=1)
        assert await outbox.requeue_dead(["card", "text"], since=since, now=since) == 2
        assert await outbox.dead_counts(since=None) == {"card": 1, "payout.transfer": 1}
        item = await outbox.get("card:1")
        assert item is not None
        assert (item.state, item.attempts, item.done_at) == (OutboxState.PENDING, 0, None)
