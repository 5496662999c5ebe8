"""What a case is known by (tracking numbers, the buyer's nick) is kept beside it whenever its
data is written, found by index, and filled in for the cases stored before."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from sqlalchemy import select, text

from handlers.case_keys import search_keys
from storage.db import Database
from storage.enums import CaseKind
from storage.migrate import alembic_config
from storage.models import CaseKey
from storage.repositories import CaseRepository

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def refund_data(nick: str, tracking: str, **more: Any) -> dict[str, Any]:
    return {
        "refund": {
            "buyer": {"nick": nick},
            "shipping": {"status": "shipped", "tracking_no": tracking},
            **more,
        },
        "notes": [],
    }


async def keys(db: Database, pk: int) -> set[tuple[str, str]]:
    async with db.begin() as s:
        rows = await s.execute(select(CaseKey.kind, CaseKey.value).where(CaseKey.case_pk == pk))
        return {(k, v) for k, v in rows.all()}


async def test_keys_follow_every_write_of_the_data(db: Database) -> None:
    async with db.begin() as s:
        case = await CaseRepository(s, search_keys).create(
            kind=CaseKind.REFUND,
            case_id="RF1",
            state="new",
            now=NOW,
            data=refund_data("Tom 小明", "sf 123"),
        )
        pk = case.id
    assert await keys(db, pk) == {("nick", "tom 小明"), ("tracking", "SF123")}
    async with db.begin() as s:
        repo = CaseRepository(s, search_keys)
        loaded = await repo.get(pk)
        assert loaded is not None
        returned = refund_data("Tom 小明", "SF123", return_tracking={"tracking_no": "YT9"})
        await repo.touch(loaded, now=NOW, data=returned)
    assert await keys(db, pk) == {("nick", "tom 小明"), ("tracking", "SF123"), ("tracking", "YT9")}
    async with db.begin() as s:
        repo = CaseRepository(s, search_keys)
        again = await repo.get(pk)
        assert again is not None
        await repo.transition(again, "approved", now=NOW, data=refund_data("", "SF124"))
    assert await keys(db, pk) == {("tracking", "SF124")}
    async with db.begin() as s:
        repo = CaseRepository(s, search_keys)
        found = await repo.known_by({("tracking", "SF124")})
        assert [c.id for c in found] == [pk]
        assert await repo.known_by({("nick", "tom 小明")}) == []
        assert await repo.known_by({("tracking", "SF124")}, groups=set()) == []


async def test_lookup_by_key_uses_the_index(db: Database) -> None:
    query = "SELECT case_pk FROM case_keys WHERE kind = 'nick' AND value = 'tom'"
    async with db.begin() as s:
        if db.is_sqlite:
            plan = " ".join(str(r) for r in (await s.execute(text("EXPLAIN QUERY PLAN " + query))))
            assert "ix_case_keys_kind_value" in plan, plan
        else:
            await s.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " ".join(str(r) for r in (await s.execute(text("EXPLAIN " + query))))
            assert "ix_case_keys_kind_value" in plan, plan


def test_the_migration_fills_in_keys_for_cases_already_stored(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    migrations = alembic_config(f"sqlite+aiosqlite:///{path}")
    command.upgrade(migrations, "0060_connectors")
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO cases (id, kind, case_id, handle, state, version, shop, platform,"
                " order_id, amount_fen, group_id, assignee, path, reason, data, created_at,"
                " updated_at, last_actor, last_action, decided_by) VALUES (1, 'refund', 'RF1',"
                " 'R1', 'new', 1, '', '', 'T1', 0, '', '', 0, '', :data, :now, :now, '', '', '')"
            ),
            {
                "data": '{"refund": {"buyer": {"nick": "Ｔｏｍ"}, "shipping": {"tracking_no": "sf1"}}}',
                "now": NOW.replace(tzinfo=None),
            },
        )
        conn.execute(
            text(
                "INSERT INTO cases (id, kind, case_id, handle, state, version, shop, platform,"
                " order_id, amount_fen, group_id, assignee, path, reason, data, created_at,"
                " updated_at, last_actor, last_action, decided_by) VALUES (2, 'intercept',"
                " 'SF:SF2', 'X1', 'sent', 1, '', '', '', 0, '', '', 0, '', :data, :now, :now,"
                " '', '', '')"
            ),
            {"data": '{"carrier": "SF", "tracking_no": "SF2"}', "now": NOW.replace(tzinfo=None)},
        )
    engine.dispose()
    command.upgrade(migrations, "heads")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT case_pk, kind, value FROM case_keys ORDER BY 1, 2")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        (1, "nick", "tom"),
        (1, "tracking", "SF1"),
        (2, "tracking", "SF2"),
    ]
