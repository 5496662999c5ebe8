"""The README's shell examples run as written: the `--demo` command lines and the curl calls
against a running `refundops demo`, the setup lines against a config for the demo's team."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from tests.support.processes import free_port, tail

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
SECRET = "a-long-random-ingest-secret-for-the-readme"
# Where the README keeps production secrets; the test keeps them beside its config.
SECRETS_PATH = "/etc/refundops/secrets.toml"

CONFIG = """
[server]
port = {port}

[database]
url = "sqlite+aiosqlite:///{db}"

[bot]
admin_group = "aftersales"

[[groups]]
id = "aftersales"
name = "售后一组"
channel = "wecom_webhook"
webhook_url = "http://127.0.0.1:9/cgi-bin/webhook/send?key=readme"

[[staff]]
id = "sup1"
roles = ["supervisor"]
refund_limit = 2000
wecom_userid = "sup1"

[[staff]]
id = "admin1"
roles = ["admin"]
wecom_userid = "admin1"
"""


def sh_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README.read_text("utf-8"), flags=re.DOTALL)


def command_lines() -> list[str]:
    """Every `refundops …` line of the README's shell blocks, continuations joined."""
    lines = []
    for block in sh_blocks():
        lines += [
            line.strip()
            for line in block.replace("\\\n", " ").splitlines()
            if line.strip().startswith("refundops ")
        ]
    return lines


@dataclass
class Shell:
    cwd: Path
    env: dict[str, str]

    async def run(self, script: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            "bash",
            "-eo",
            "pipefail",
            "-c",
            script,
            cwd=self.cwd,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        async with asyncio.timeout(120):
            out, _ = await proc.communicate()
        assert proc.returncode is not None
        return proc.returncode, out.decode("utf-8", errors="replace")


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFUNDOPS_")}
    return {**env, "PATH": f"{BIN}:{env.get('PATH', '')}", "TZ": "Asia/Shanghai", **extra}


async def until_ready(url: str, proc: asyncio.subprocess.Process, log: Path) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(1200):
            assert proc.returncode is None, tail(log)
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{url}/readyz") as resp:
                    if resp.status == 200 and "past month written" in tail(log, 10**6):
                        return
            await asyncio.sleep(0.1)
    raise AssertionError(f"the demo did not start:\n{tail(log)}")


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[tuple[Shell, int]]:
    """`refundops demo` in a directory of its own (its database is ./refundops-demo.db), with
    a short past (the README's lines do not depend on its length)."""
    port = free_port()
    env = environment(
        REFUNDOPS_SIMULATOR__HISTORY_DAYS="3", REFUNDOPS_SIMULATOR__HISTORY_PER_DAY="1"
    )
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            str(BIN / "refundops"),
            "demo",
            "--port",
            str(port),
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        await until_ready(f"http://127.0.0.1:{port}", proc, log)
        yield Shell(tmp_path, env), port
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
    assert "Traceback" not in tail(log, 10**7), tail(log, 6000)


def test_the_readme_has_command_lines_for_the_demo_and_for_a_setup() -> None:
    lines = command_lines()
    demo = [line for line in lines if " --demo" in line]
    setup = [line for line in lines if "--config refundops.toml" in line]
    assert len(demo) >= 5
    assert {line.split()[1] for line in demo} >= {"digest", "export", "outbox"}
    assert len(setup) >= 3
    # Every example is one of the two kinds, so the tests below run them all.
    assert sorted(demo + setup) == sorted(lines)


async def test_the_demo_command_lines_work_as_written(demo: tuple[Shell, int]) -> None:
    shell, _ = demo
    for line in [line for line in command_lines() if " --demo" in line]:
        code, out = await shell.run(line)
        assert code == 0, (line, out)
        if line.startswith("refundops digest"):
            assert "售后日报 · 售后一组" in out, (line, out)
    refunds = (shell.cwd / "refunds.csv").read_text("utf-8-sig").splitlines()
    assert len(refunds) > 1, refunds
    assert (shell.cwd / "payouts.csv").exists()
    assert (shell.cwd / "refunds.xlsx").stat().st_size > 0


async def test_the_curl_examples_work_and_the_refund_is_not_overdue(
    demo: tuple[Shell, int],
) -> None:
    shell, port = demo
    # The live shop's morning backlog has brought a card waiting for a decision.
    url = f"http://127.0.0.1:{port}/sandbox/api/groups/aftersales/messages"
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            async with session.get(url) as resp:
                if "'approve'" in str(
                    [m["card"] and m["card"]["buttons"] for m in await resp.json()]
                ):
                    break
            await asyncio.sleep(0.1)
    blocks = [b for b in sh_blocks() if "localhost:8080" in b]
    assert len(blocks) == 3
    outputs = []
    for block in blocks:
        code, out = await shell.run(block.replace("localhost:8080", f"localhost:{port}"))
        assert code == 0, (block, out)
        outputs.append(out)
    sandbox, event, case = outputs
    assert '"reply"' in sandbox
    assert '"error"' not in sandbox, sandbox
    assert json.loads(event) == {"id": "evt_1", "status": "accepted"}
    answer = json.loads(case)
    assert answer["case_id"] == "RF1"
    deadline = datetime.fromisoformat(answer["deadline_at"])
    assert deadline > datetime.now(UTC), answer
    # Sent again, the same event is a duplicate, and still accepted as the README says.
    code, out = await shell.run(blocks[1].replace("localhost:8080", f"localhost:{port}"))
    assert json.loads(out) == {"id": "evt_1", "status": "duplicate"}


async def test_the_setup_lines_work_against_a_config_for_the_demo_team(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "refundops.toml").write_text(
        CONFIG.format(port=port, db=tmp_path / "refundops.db"), encoding="utf-8"
    )
    (tmp_path / "secrets.toml").write_text(f'[ingest]\nsecret = "{SECRET}"\n', encoding="utf-8")
    shell = Shell(tmp_path, environment(REFUNDOPS_INGEST__SECRET=SECRET))
    for line in [line for line in command_lines() if "--config refundops.toml" in line]:
        line = line.replace(SECRETS_PATH, "secrets.toml")
        if not line.startswith("refundops serve"):
            code, out = await shell.run(line)
            assert code == 0, (line, out)
            continue
        log = tmp_path / "serve.log"
        with log.open("wb") as out_file:
            proc = await asyncio.create_subprocess_exec(
                "bash",
                "-c",
                f"exec {line}",
                cwd=tmp_path,
                env=shell.env,
                stdout=out_file,
                stderr=out_file,
            )
        try:
            async with aiohttp.ClientSession() as session:
                for _ in range(300):
                    assert proc.returncode is None, tail(log)
                    with contextlib.suppress(aiohttp.ClientError):
                        async with session.get(f"http://127.0.0.1:{port}/readyz") as resp:
                            if resp.status == 200:
                                break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError(tail(log))
        finally:
            proc.terminate()
            await proc.wait()
