"""Real `refundops` processes for the multi-instance tests: start one on a free port with its
output in a log, wait until it is ready, stop or kill it, and read the logs afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import aiohttp

Process = asyncio.subprocess.Process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start(port: int, log: Path, env: Mapping[str, str], *argv: str) -> Process:
    """`refundops <argv>` serving on `port`, stdout and stderr written to `log`."""
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            *argv,
            env={**env, "REFUNDOPS_SERVER__PORT": str(port)},
            stdout=out,
            stderr=out,
        )


async def ready(
    url: str, proc: Process, log: Path, within: float = 20.0, step: float = 0.1
) -> None:
    """Return once `url` answers /readyz with 200; fail if the process exits or time runs out."""
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while proc.returncode is None and time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{url}/readyz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(step)
    raise AssertionError(f"{url} did not become ready:\n{tail(log)}")


def tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-chars:]


async def stop(*procs: Process) -> None:
    """SIGTERM every process still running, then wait for all of them."""
    for proc in procs:
        if proc.returncode is None:
            proc.terminate()
    for proc in procs:
        await proc.wait()


async def kill(proc: Process) -> None:
    proc.send_signal(signal.SIGKILL)
    await proc.wait()


def assert_no_tracebacks(folder: Path) -> None:
    """No process that logged to `folder` (`instance*.log`) printed a traceback."""
    for log in sorted(folder.glob("instance*.log")):
        content = log.read_text("utf-8", errors="replace")
        assert "Traceback" not in content, f"{log.name}:\n{content[-6000:]}"
