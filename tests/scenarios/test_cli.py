"""The command line: db upgrade and digest, against real databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.cli import main
from integrations.wecom.fake import FakeWeComAPI
from tests.support.fakes import serve

CONFIG = """
[database]
url = "{url}"

[bot]
admin_group = "aftersales"

[[groups]]
id = "aftersales"
name = "售后一组"
channel = "wecom_webhook"
webhook_url = "{robot}"

[[staff]]
id = "admin1"
roles = ["admin"]
"""


@pytest.fixture
async def robot() -> AsyncIterator[FakeWeComAPI]:
    fake = FakeWeComAPI(corp_id="ww-cli")
    async with serve(fake.app()) as fake.base_url:
        yield fake


def write_config(tmp_path: Path, url: str, robot: str) -> Path:
    path = tmp_path / "refundops.toml"
    path.write_text(CONFIG.format(url=url, robot=robot), encoding="utf-8")
    return path


async def run(*argv: str) -> int:
    """The CLI runs its own event loop: in a thread, so the robot keeps answering on ours."""
    return await asyncio.to_thread(main, list(argv))


async def test_db_upgrade_then_digest_prints_and_sends(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    db_url: str,
    robot: FakeWeComAPI,
) -> None:
    monkeypatch.setenv("REFUNDOPS_INGEST__SECRET", "a-long-random-secret-value")
    config = str(write_config(tmp_path, db_url, robot.webhook_url()))
    assert await run("db", "upgrade", "--config", config) == 0
    assert await run("db", "upgrade", "--config", config) == 0
    assert capsys.readouterr().out.count("newest schema") == 2
    assert (
        await run("digest", "--config", config, "--group", "aftersales", "--date", "2026-11-23")
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("### 售后日报 · 售后一组 · 11-23")
    assert await run("digest", "--config", config, "--group", "aftersales", "--send") == 0
    assert "✓ sent" in capsys.readouterr().err
    (sent,) = robot.webhook_messages["robot-key"]
    assert "售后日报" in str(sent)
    assert await run("digest", "--config", config, "--group", "nobody") == 2
    assert "no group 'nobody'" in capsys.readouterr().err
    assert await run("digest", "--config", config, "--group", "aftersales", "--date", "23/11") == 2
