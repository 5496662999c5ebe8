"""The command line: db upgrade and digest, against real databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main

CONFIG = """
[database]
url = "{url}"

[bot]
admin_group = "aftersales"

[[groups]]
id = "aftersales"
name = "售后一组"
channel = "sandbox"

[[staff]]
id = "admin1"
roles = ["admin"]
"""


def write_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "refundops.toml"
    path.write_text(CONFIG.format(url=url), encoding="utf-8")
    return path


def test_db_upgrade_then_digest_prints_and_sends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    monkeypatch.setenv("REFUNDOPS_INGEST__SECRET", "a-long-random-secret-value")
    config = write_config(tmp_path, db_url)
    assert main(["db", "upgrade", "--config", str(config)]) == 0
    assert main(["db", "upgrade", "--config", str(config)]) == 0
    assert capsys.readouterr().out.count("newest schema") == 2
    assert (
        main(["digest", "--config", str(config), "--group", "aftersales", "--date", "2026-11-23"])
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("### 售后日报 · 售后一组 · 11-23")
    assert main(["digest", "--config", str(config), "--group", "aftersales", "--send"]) == 0
    assert "✓ sent" in capsys.readouterr().err
    assert main(["digest", "--config", str(config), "--group", "nobody"]) == 2
    assert "no group 'nobody'" in capsys.readouterr().err
    assert (
        main(["digest", "--config", str(config), "--group", "aftersales", "--date", "23/11"]) == 2
    )
