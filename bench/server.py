"""What the benchmarks share: `refundops serve` in its own process, signed posts, percentiles."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from integrations.signing import signed_headers

SECRET = "bench-secret-0123456789abcdef"
# What every benchmark's `refundops serve` shares; `serve` fills in {port} and {db}.
BASE_CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
[database]
url = "{db}"
[commerce]
mode = "none"
[digest]
enabled = false
"""
# One sandbox group and an admin, for benchmarks that need no more.
ONE_GROUP = """
[[groups]]
id = "aftersales"
channel = "sandbox"
[[staff]]
id = "admin1"
roles = ["admin"]
"""


def refund_requested(
    refund_id: str, *, shop: str = "flagship", platform: str = "taobao", **data: Any
) -> bytes:
    """A signed-ready refund.requested event: a delivered refund-only of ¥128 due in 40 hours,
    unless `data` says otherwise."""
    now = datetime.now(UTC)
    envelope = {
        "id": f"bench_{uuid.uuid4().hex}",
        "type": "refund.requested",
        "occurred_at": now.isoformat(timespec="seconds"),
        "shop": shop,
        "platform": platform,
        "data": {
            "refund_id": refund_id,
            "order_id": f"T{refund_id}",
            "kind": "refund_only",
            "amount": "128.00",
            "order_amount": "128.00",
            "reason": "尺码不合适",
            "shipping": {"status": "delivered", "carrier": "SF", "tracking_no": "SF1234567890"},
            "buyer": {"nick": "t**1"},
            "deadline_at": (now + timedelta(hours=40)).isoformat(timespec="seconds"),
        }
        | data,
    }
    return json.dumps(envelope, ensure_ascii=False).encode()


async def open_loop(
    rate: float,
    total: int,
    send: Callable[[aiohttp.ClientSession, int], Coroutine[Any, Any, None]],
) -> None:
    """Start `send(session, i)` for i in 0..total at `rate` a second, whatever the answers'
    pace (an open loop), and wait for them all."""
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        tasks = []
        for i in range(total):
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(send(session, i)))
        await asyncio.gather(*tasks)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def quantile(values: list[float], q: int) -> float:
    """The q-th percentile (1..99); the maximum when there are too few values to cut."""
    if len(values) <= 100:
        return max(values, default=0.0)
    return statistics.quantiles(values, n=100)[q - 1]


def signed(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", **signed_headers(SECRET, int(time.time()), body)}


async def wait_up(
    url: str, within_s: float = 60.0, proc: asyncio.subprocess.Process | None = None
) -> None:
    """Until `url` answers at all (any HTTP status); fails at once if `proc` has exited."""
    deadline = time.monotonic() + within_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc is not None and proc.returncode is not None:
                raise RuntimeError(f"the server exited with {proc.returncode}")
            try:
                async with session.get(url) as resp:
                    await resp.read()
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {within_s:.0f} s")


async def run(*args: str, env: dict[str, str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, env=env, stdout=asyncio.subprocess.DEVNULL
    )
    if await proc.wait():
        raise RuntimeError(f"refundops {' '.join(args)} exited with {proc.returncode}")


@dataclass
class Served:
    """A running `refundops serve` (or demo): its base URL and its process id."""

    url: str
    pid: int
    workdir: Path


@contextlib.asynccontextmanager
async def serve(
    config: str,
    *,
    db_url: str | None = None,
    secrets: dict[str, str] | None = None,
    quiet: bool = True,
) -> AsyncIterator[Served]:
    """Start `refundops serve` (`demo` for a sandbox config) with `config` (TOML; `{port}` and `{db}` are filled in) in a
    temporary directory and stop it on exit. Secrets go in the environment, as in production
    (`REFUNDOPS_<SECTION>__<KEY>`); the ingest secret is set. A PostgreSQL `db_url` is
    migrated first."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        port = free_port()
        db = db_url or f"sqlite+aiosqlite:///{workdir / 'refundops.db'}"
        env = {**os.environ, "REFUNDOPS_INGEST__SECRET": SECRET, **(secrets or {})}
        if db.startswith("postgresql"):
            await run("db", "upgrade", env={**env, "REFUNDOPS_DATABASE__URL": db})
        path = workdir / "refundops.toml"
        path.write_text(config.format(port=port, db=db), encoding="utf-8")
        out = asyncio.subprocess.DEVNULL if quiet else None  # stderr is kept: it says why
        # The sandbox channel exists only in the demo: a config using it runs as one, unfed.
        command = ["demo", "--no-simulator"] if 'channel = "sandbox"' in config else ["serve"]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            *command,
            "--config",
            str(path),
            env=env,
            stdout=out,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            await wait_up(f"{url}/healthz", proc=proc)
            yield Served(url, proc.pid, workdir)
        finally:
            if proc.returncode is None:
                proc.terminate()
            await proc.wait()


def memory_mib(pid: int, field: str = "VmRSS") -> float:
    """A process's memory figure from /proc (VmRSS resident now, VmHWM its peak), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")
