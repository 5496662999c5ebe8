"""How long a fresh clone takes from `make demo` to cards in the sandbox.

    python -m bench.demo_start [--repo PATH] [--port N]

Clones the repository (its committed state) into a temporary directory, runs `make demo`
there (building `.venv`, then the first start writes the past month) and polls the sandbox's
messages API. It prints the seconds from `make demo` to: the first card in the group, the
month written, the first card of the live shop, and the live shop's first batch card.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def messages(port: int) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/sandbox/api/groups/aftersales/messages?limit=50"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            found: list[dict[str, Any]] = json.load(resp)
            return found
    except OSError:
        return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--limit-s", type=float, default=1800.0)
    args = parser.parse_args()
    port = args.port or free_port()
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "p"
        subprocess.run(["git", "clone", "-q", str(args.repo), str(clone)], check=True)
        log = clone / "demo.log"
        env = {**os.environ, "REFUNDOPS_SERVER__PORT": str(port)}
        started, wall = time.monotonic(), datetime.now(UTC)
        with log.open("wb") as out:
            make = subprocess.Popen(
                ["make", "demo"], cwd=clone, env=env, stdout=out, stderr=out, start_new_session=True
            )
        marks: dict[str, float] = {}
        try:
            while len(marks) < 4 and time.monotonic() - started < args.limit_s:
                if make.poll() is not None:
                    raise SystemExit(f"make demo ended early:\n{log.read_text()[-3000:]}")
                now = time.monotonic() - started
                cards = [m for m in messages(port) if m["kind"] == "card"]
                text = log.read_text("utf-8", errors="replace")
                if cards:
                    marks.setdefault("first card in the group", now)
                if "month written" not in marks and "month written" in text:
                    marks["month written"] = now
                    # The month's cards end where it was written: later ones are the live shop's.
                    wall = datetime.now(UTC)
                live = [
                    m
                    for m in cards
                    if "month written" in marks and datetime.fromisoformat(m["created_at"]) >= wall
                ]
                if any(m["case_id"] for m in live):
                    marks.setdefault("first card of the live shop", now)
                if any(m["card"]["title"].startswith("⚡") for m in live):
                    marks.setdefault("first batch card of the live shop", now)
                time.sleep(0.25)
        finally:
            os.killpg(make.pid, signal.SIGTERM)
            make.wait()
        for name, seconds in sorted(marks.items(), key=lambda kv: kv[1]):
            print(f"{seconds:7.1f} s  {name}")
        venv_built = "refundops demo:" in log.read_text("utf-8", errors="replace")
        print(f"(from `make demo` in a fresh clone, .venv built: {venv_built})")


if __name__ == "__main__":
    main()
