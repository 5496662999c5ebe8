"""The sandbox (whose API trusts the "user" field) and the simulators exist only under
`refundops demo`: `serve`, check-config and `create_app` refuse them, and nothing but the
demo command switches the demo on."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.cli import main
from bot.settings import ConfigError, Settings, load_settings
from handlers.config import ChannelName, GroupSettings
from tests.support.app import production_settings
from tests.support.processes import free_port

SECRET = "a-long-random-ingest-secret-0123456789"
# A production-minded config written from the old example: a group with no channel (the
# default was "sandbox") and no [commerce] / [carrier] (the default was "simulator").
PRODUCTION = """
[bot]
admin_group = "aftersales"

[[groups]]
id = "aftersales"
{channel}

[[staff]]
id = "sup1"
roles = ["supervisor"]
refund_limit = 2000

[[staff]]
id = "admin1"
roles = ["admin"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "refundops.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def start(*argv: str, port: int) -> asyncio.subprocess.Process:
    env = {**os.environ, "REFUNDOPS_INGEST__SECRET": SECRET, "REFUNDOPS_SERVER__PORT": str(port)}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *argv,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def say_as_sup1(port: int) -> int | None:
    """The attack: anyone who reaches the port speaks as sup1; the status, or None if closed."""
    url = f"http://127.0.0.1:{port}/sandbox/api/groups/aftersales/say"
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json={"user": "sup1", "text": "待办 all"}) as resp,
        ):
            return resp.status
    except aiohttp.ClientError:
        return None


async def refused_to_serve(config: Path) -> str:
    """Run `refundops serve --config`; it must exit non-zero within seconds. Its stderr."""
    port = free_port()
    proc = await start("serve", "--config", str(config), port=port)
    try:
        await asyncio.wait_for(proc.wait(), timeout=20)
    except TimeoutError:
        answered = await say_as_sup1(port)
        proc.kill()
        await proc.wait()
        pytest.fail(f"serve started with a sandbox group; POST /sandbox/.../say → {answered}")
    assert proc.stderr is not None
    err = (await proc.stderr.read()).decode()
    assert proc.returncode == 2, err
    return err


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        (
            'channel = "sandbox"',
            "group 'aftersales': channel sandbox exists only under `refundops demo`",
        ),
        ("", "missing key groups[0].channel: a group has no default channel"),
    ],
)
async def test_config_serve_refuses_a_sandbox_or_channelless_group(
    tmp_path: Path, channel: str, expected: str
) -> None:
    err = await refused_to_serve(write(tmp_path, PRODUCTION.format(channel=channel)))
    assert expected in err


def test_config_check_config_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REFUNDOPS_INGEST__SECRET", SECRET)
    text = PRODUCTION.format(channel='channel = "sandbox"') + (
        '\n[commerce]\nmode = "simulator"\n[carrier]\nmode = "simulator"\n'
        "[simulator]\nenabled = true\n"
    )
    assert main(["check-config", "--config", str(write(tmp_path, text))]) == 2
    err = capsys.readouterr().err
    for expected in (
        "group 'aftersales': channel sandbox exists only under `refundops demo` (its page and "
        "API let anyone who reaches the port act as any staff member)",
        "commerce.mode = 'simulator' runs only under `refundops demo`",
        "carrier.mode = 'simulator' runs only under `refundops demo`",
        "simulator.enabled feeds made-up events and runs only under `refundops demo`",
    ):
        assert expected in err, expected
    assert main(["check-config", "--config", str(write(tmp_path, PRODUCTION.format(channel="")))])
    assert "missing key groups[0].channel" in capsys.readouterr().err


def test_config_create_app_refuses_crafted_sandbox_settings(sqlite_url: str) -> None:
    crafted = Settings(
        database={"url": sqlite_url},
        ingest={"secret": SECRET},
        groups=[{"id": "aftersales", "channel": "sandbox"}],
        staff=[{"id": "sup1", "roles": ["supervisor"], "refund_limit": "2000"}],
    )
    assert not crafted.sandbox_enabled
    with pytest.raises(ConfigError) as caught:
        create_app(crafted)
    assert "channel sandbox exists only under `refundops demo`" in str(caught.value)
    unvalidated = Settings.model_construct(
        database=crafted.database,
        groups=[GroupSettings.model_construct(id="g", channel=ChannelName.SANDBOX)],
    )
    with pytest.raises(ConfigError):
        create_app(unvalidated)


async def test_config_a_production_app_has_no_sandbox_route(
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
    sqlite_url: str,
) -> None:
    app = create_app(production_settings(sqlite_url), workers=False)
    paths = [r.canonical for r in app.router.resources()]
    assert not [p for p in paths if p.startswith("/sandbox")], paths
    client = await aiohttp_client(app)
    assert (await client.get("/sandbox")).status == 404
    said = await client.post(
        "/sandbox/api/groups/aftersales/say", json={"user": "sup1", "text": "通过 R1"}
    )
    assert said.status == 404
    assert (await client.get("/", allow_redirects=False)).headers["Location"] == "/healthz"


def test_config_only_the_demo_command_switches_the_demo_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REFUNDOPS_INGEST__SECRET", SECRET)
    in_file = write(tmp_path, "demo = true\n" + PRODUCTION.format(channel='channel = "sandbox"'))
    with pytest.raises(ConfigError) as caught:
        load_settings(in_file)
    assert "demo is written in refundops.toml: no config file can switch the demo on" in str(
        caught.value
    )
    assert main(["check-config", "--config", str(in_file)]) == 2
    assert "no config file can switch the demo on" in capsys.readouterr().err

    plain = write(tmp_path, PRODUCTION.format(channel='channel = "sandbox"'))
    monkeypatch.setenv("REFUNDOPS_DEMO", "true")
    with pytest.raises(ConfigError) as caught:
        load_settings(plain)
    assert "REFUNDOPS_DEMO is set: only `refundops demo` runs the demo" in str(caught.value)
    with pytest.raises(ConfigError):
        Settings(groups=[{"id": "g", "channel": "sandbox"}])
    monkeypatch.delenv("REFUNDOPS_DEMO")
    assert not load_settings(plain).demo
    assert load_settings(plain, demo=True).demo


def test_config_commerce_and_carrier_default_to_none(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, PRODUCTION.format(channel='channel = "wecom_aibot"')))
    assert (settings.commerce.mode, settings.carrier.mode) == ("none", "none")
    assert settings.demo_only() == []
    simulated = Settings(
        ingest={"secret": SECRET},
        groups=[{"id": "g", "channel": "wecom_aibot", "chat_id": "wrk1"}],
        commerce={"mode": "simulator"},
    )
    with pytest.raises(ConfigError) as caught:
        create_app(simulated)
    assert "commerce.mode = 'simulator' runs only under `refundops demo`" in str(caught.value)


async def test_config_the_demo_with_a_config_file_keeps_its_sandbox(tmp_path: Path) -> None:
    port = free_port()
    config = write(tmp_path, PRODUCTION.format(channel='channel = "sandbox"'))
    db = tmp_path / "demo.db"
    proc = await start(
        "demo", "--no-simulator", "--config", str(config), "--db", str(db), port=port
    )
    try:
        for _ in range(200):
            if (status := await say_as_sup1(port)) is not None:
                break
            await asyncio.sleep(0.1)
        assert status == 200
    finally:
        proc.terminate()
        await proc.wait()
