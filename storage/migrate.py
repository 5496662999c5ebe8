"""Apply the Alembic migrations (`refundops db upgrade`, and on start for SQLite)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from storage.db import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str = "", connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade(db: Database) -> None:
    """Bring the schema to the newest revision of every branch."""

    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(db.url, connection), "heads")

    async with db.begin() as session:
        await session.run_sync(lambda s: run(s.connection()))
