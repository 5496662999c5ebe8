"""`refundops connect jushuitan`: the first 聚水潭 tokens from the app's keys alone (its own
app), or from the code a 服务商 app's authorisation page handed back; kept in the database
where the running instances read them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from bot.cli import main
from integrations.jushuitan.fake import FakeJushuitan, md5_sign
from storage.db import Database
from storage.repositories.connector_state import ConnectorStateRepository
from tests.support.fakes import serve
from tests.support.jushuitan import APP_KEY, APP_SECRET

CONFIG = """
[database]
url = "{url}"
[[groups]]
id = "ops"
channel = "wecom_webhook"
webhook_url = "http://127.0.0.1:9/cgi-bin/webhook/send?key=k"
[warehouse]
connector = "{connector}"
api_base = "{base}"
app_key = "{app_key}"
"""


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeJushuitan, str]]:
    jst = FakeJushuitan(app_key=APP_KEY, app_secret=APP_SECRET, access_token="", refresh_token="")
    async with serve(jst.app()) as base:
        yield jst, base


def write(tmp_path: Path, url: str, base: str, connector: str = "jushuitan") -> str:
    path = tmp_path / "refundops.toml"
    path.write_text(
        CONFIG.format(url=url, base=base, connector=connector, app_key=APP_KEY), "utf-8"
    )
    return str(path)


async def run(*argv: str) -> int:
    """The CLI runs its own event loop: in a thread, so the fake keeps answering on ours."""
    return await asyncio.to_thread(main, list(argv))


async def stored(url: str) -> dict[str, object] | None:
    db = Database(url)
    try:
        async with db.begin() as session:
            return await ConnectorStateRepository(session).get("tokens:warehouse")
    finally:
        await db.dispose()


async def test_connect_own_app_gets_and_keeps_the_first_tokens(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    db_url: str,
    fake: tuple[FakeJushuitan, str],
) -> None:
    jst, base = fake
    monkeypatch.setenv("REFUNDOPS_WAREHOUSE__APP_SECRET", APP_SECRET)
    config = write(tmp_path, db_url, base)
    assert await run("connect", "jushuitan", "--config", config) == 0
    assert jst.grants == ["getInitToken"]
    kept = await stored(db_url)
    assert kept is not None
    assert kept["access_token"] == jst.access_token
    assert kept["refresh_token"] == jst.refresh_token
    assert "connected (getInitToken)" in capsys.readouterr().out
    # Again: the new pair replaces the old one (which 聚水潭 retires).
    assert await run("connect", "jushuitan", "--config", config) == 0
    assert (await stored(db_url) or {})["access_token"] == jst.access_token
    assert "replaced" in capsys.readouterr().out


async def test_connect_service_provider_app_through_the_authorisation_page(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sqlite_url: str,
    fake: tuple[FakeJushuitan, str],
) -> None:
    jst, base = fake
    jst.self_built = False
    monkeypatch.setenv("REFUNDOPS_WAREHOUSE__APP_SECRET", APP_SECRET)
    config = write(tmp_path, sqlite_url, base)
    assert await run("connect", "jushuitan", "--config", config) == 2
    assert "--auth-url" in capsys.readouterr().err
    assert await stored(sqlite_url) is None

    assert await run("connect", "jushuitan", "--auth-url", "--state", "s1", "--config", config) == 0
    url = capsys.readouterr().out.splitlines()[0]
    query = dict(parse_qsl(urlsplit(url).query))
    assert query["app_key"] == APP_KEY
    assert query["state"] == "s1"
    assert query["sign"] == md5_sign(APP_SECRET, query)
    assert abs(int(query["timestamp"]) - datetime.now(UTC).timestamp()) < 60

    code = jst.authorize()
    assert await run("connect", "jushuitan", "--code", code, "--config", config) == 0
    assert jst.grants == ["accessToken"]
    assert (await stored(sqlite_url) or {})["access_token"] == jst.access_token
    capsys.readouterr()
    assert await run("connect", "jushuitan", "--code", code, "--config", config) == 2
    assert "15 分钟内用一次" in capsys.readouterr().err


async def test_connect_refuses_without_the_warehouse_or_its_secret(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sqlite_url: str,
    fake: tuple[FakeJushuitan, str],
) -> None:
    jst, base = fake
    none = write(tmp_path, sqlite_url, base, connector="none")
    assert await run("connect", "jushuitan", "--config", none) == 2
    assert "nothing to connect" in capsys.readouterr().err
    monkeypatch.delenv("REFUNDOPS_WAREHOUSE__APP_SECRET", raising=False)
    config = write(tmp_path, sqlite_url, base)
    assert await run("connect", "jushuitan", "--config", config) == 2
    assert "REFUNDOPS_WAREHOUSE__APP_SECRET" in capsys.readouterr().err
    assert jst.grants == []
