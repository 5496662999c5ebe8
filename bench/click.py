"""Click → card updated in place: `python -m bench.click [--clicks 200]
[--channels sandbox,wecom_aibot,wecom_app,dingtalk_stream] [--db sqlite|postgres] [--gap-ms 20]`.

Per channel: starts `refundops serve` pointed at the platform's fake (run in this process),
posts refunds until every case's card is on the fake, then taps each card's 认领 (claim)
button the way the platform delivers a tap, one at a time. Measures from the tap leaving
the fake to the fake holding the card redrawn with the claimer's name; anything else
(no update, an update without the claim, a refusal) counts as an error.
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import base64
import contextlib
import json
import os
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from bench.server import BASE_CONFIG, quantile, refund_requested, serve, signed
from integrations.dingtalk.fake import GROUP_SPACE, FakeDingtalk, until
from integrations.dingtalk.models import CARD_TOPIC
from integrations.wecom.crypto import CallbackCrypto
from integrations.wecom.fake import Call, FakeWeComAIBot, FakeWeComAPI, WeComCallbacks

CONFIG = (
    BASE_CONFIG
    + """
[carrier]
mode = "none"
"""
)
CHANNELS = ("sandbox", "wecom_aibot", "wecom_app", "dingtalk_stream")
CLICK_TIMEOUT_S = 5.0
SETTLE_S = 0.5
UPDATE_CARD = "/cgi-bin/message/update_template_card"
# WeCom groups are limited senders (AI bot: burst 5, app: burst 7 per member) that fold five
# waiting cards into one batch card. Spread over groups, every case gets its own card at once
# (a burst into one group is bench.burst's subject); a click's redraw edits the card in place
# and spends nothing from the group's budget.
PER_GROUP = {"wecom_aibot": 2, "wecom_app": 3}


class ClickError(Exception):
    """A tap that did not end in the card redrawn with the claim; the message says why."""


def toml(value: str) -> str:
    """A TOML basic string that survives the `str.format` `serve` applies to the config."""
    return json.dumps(value, ensure_ascii=False).replace("{", "{{").replace("}", "}}")


def claimed(text: str, name: str) -> bool:
    return f"{name} 认领" in text


@dataclass(frozen=True)
class Clicker:
    """Group j's staff member, who claims every case of that group."""

    group: int

    @property
    def staff_id(self) -> str:
        return f"c{self.group}"

    @property
    def name(self) -> str:
        return f"Claimer{self.group}"


@dataclass(frozen=True)
class Target:
    """One case's card on the platform and the tap on its claim button."""

    handle: str
    group: str
    ref: str
    key: str
    user: str
    name: str
    chat: str = ""

    @property
    def number(self) -> int:
        return int(self.handle.lstrip("R") or 0)


@dataclass
class Result:
    channel: str
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    @property
    def clicks(self) -> int:
        return len(self.latencies) + sum(self.errors.values())


class Platform(abc.ABC):
    """One channel's fake, how the served bot is pointed at it, and how a tap is made there."""

    name: str
    per_group = 0

    def __init__(self) -> None:
        self.servers: list[TestServer] = []
        self.clickers: dict[str, Clicker] = {}
        self.chats: dict[str, Clicker] = {}
        self.notes: list[str] = []
        self.url = ""
        self.session: aiohttp.ClientSession | None = None

    async def serve_fake(self, app: web.Application) -> str:
        server = TestServer(app)
        await server.start_server()
        self.servers.append(server)
        return str(server.make_url("")).rstrip("/")

    async def close(self) -> None:
        for server in self.servers:
            await server.close()

    @property
    def http(self) -> aiohttp.ClientSession:
        assert self.session is not None, "bound to the served bot first"
        return self.session

    @abc.abstractmethod
    async def start(self) -> None:
        """Start the fake(s)."""

    def config(self) -> str:
        """The platform's TOML sections (secrets go to `secrets`)."""
        return ""

    def secrets(self) -> dict[str, str]:
        return {}

    def chat_id(self, group: int) -> str:  # noqa: ARG002
        return ""

    def user(self, clicker: Clicker) -> str:
        return clicker.staff_id

    @abc.abstractmethod
    async def ready(self) -> None:
        """Until the served bot is connected to the platform."""

    @abc.abstractmethod
    async def cards(self, cases: int) -> list[Target]:
        """The cards on the platform once all `cases` are there (or as many as came in time)."""

    @abc.abstractmethod
    async def click(self, target: Target) -> float:
        """Tap `target`'s claim button; seconds until the card showed the claim (or ClickError)."""

    def groups_toml(self, cases: int) -> str:
        per_group = self.per_group or cases
        lines: list[str] = []
        for j in range(-(-cases // per_group)):
            clicker = Clicker(j)
            self.clickers[self.user(clicker)] = clicker
            self.chats[self.chat_id(j)] = clicker
            lines += [
                "[[groups]]",
                f'id = "g{j}"',
                f"channel = {toml(self.name)}",
                f"chat_id = {toml(self.chat_id(j))}",
                f'shops = ["shop{j}"]',
            ]
        for staff_id, name, role in [
            ("admin1", "Admin", "admin"),
            *((c.staff_id, c.name, "agent") for c in self.clickers.values()),
        ]:
            lines += [
                "[[staff]]",
                f"id = {toml(staff_id)}",
                f"name = {toml(name)}",
                f'roles = ["{role}"]',
                f'wecom_userid = "wx_{staff_id}"',
                f'dingtalk_staff_id = "ding-{staff_id}"',
            ]
        return "\n".join(lines) + "\n"

    def shop(self, case: int, cases: int) -> str:
        return f"shop{case // (self.per_group or cases)}"


async def settled(
    wait_for: Callable[[Callable[[], bool], float], Awaitable[Any]],
    check: Callable[[], bool],
    within: float,
) -> None:
    """`fake.wait_for(check, within)`, content with what there is when time is up."""
    with contextlib.suppress(TimeoutError):
        await wait_for(check, within)


class Sandbox(Platform):
    name = "sandbox"

    async def start(self) -> None:
        pass

    async def ready(self) -> None:
        pass

    async def cards(self, cases: int) -> list[Target]:
        clicker = Clicker(0)
        found: dict[str, Target] = {}
        after = 0
        deadline = time.monotonic() + card_wait_s(cases)
        while len(found) < cases and time.monotonic() < deadline:
            query = {"after": str(after), "limit": "500"}
            messages = f"{self.url}/sandbox/api/groups/g0/messages"
            async with self.http.get(messages, params=query) as resp:
                page: list[dict[str, Any]] = await resp.json()
            for message in page:
                after = max(after, int(message["id"]))
                card = message.get("card") or {}
                if message.get("handle") and any(b["key"] == "claim" for b in card["buttons"]):
                    found[message["handle"]] = Target(
                        message["handle"],
                        "g0",
                        str(message["id"]),
                        "claim",
                        clicker.staff_id,
                        clicker.name,
                    )
            if not page:
                await asyncio.sleep(0.05)
        return list(found.values())

    async def click(self, target: Target) -> float:
        body = {"user": target.user, "message_id": int(target.ref), "key": target.key}
        started = time.perf_counter()
        click = f"{self.url}/sandbox/api/groups/{target.group}/click"
        async with self.http.post(click, json=body) as resp:
            answer = await resp.read()
        took = time.perf_counter() - started
        if resp.status != 200:
            raise ClickError(f"HTTP {resp.status}")
        card = json.loads(answer)["message"]["card"]
        if not claimed(card["footer"], target.name):
            raise ClickError("the answered card does not show the claim")
        return took


class WecomAibot(Platform):
    name = "wecom_aibot"
    per_group = PER_GROUP["wecom_aibot"]

    async def start(self) -> None:
        self.fake = FakeWeComAIBot()
        self.ws_url = await self.serve_fake(self.fake.app()) + "/"

    def config(self) -> str:
        return f"[wecom.aibot]\nbot_id = {toml(self.fake.bot_id)}\nws_url = {toml(self.ws_url)}\n"

    def secrets(self) -> dict[str, str]:
        return {"REFUNDOPS_WECOM__AIBOT__SECRET": self.fake.secret}

    def chat_id(self, group: int) -> str:
        return f"wrkBENCH{group}"

    def user(self, clicker: Clicker) -> str:
        return f"wx_{clicker.staff_id}"

    async def ready(self) -> None:
        await self.fake.wait_for(lambda: self.fake.online, within=30)

    async def cards(self, cases: int) -> list[Target]:
        await settled(
            self.fake.wait_for,
            lambda: sum(len(c) for c in self.fake.cards.values()) >= cases,
            card_wait_s(cases),
        )
        targets = []
        for chat, cards in self.fake.cards.items():
            clicker = self.chats[chat]
            for task_id, card in cards.items():
                key = next(b["key"] for b in card["button_list"] if b["key"].startswith("claim:"))
                targets.append(
                    Target(
                        key.split(":")[1],
                        f"g{clicker.group}",
                        task_id,
                        key,
                        self.user(clicker),
                        clicker.name,
                        chat,
                    )
                )
        return targets

    async def click(self, target: Target) -> float:
        fake = self.fake
        updates, refusals = len(fake.updates), len(fake.refused)
        started = time.perf_counter()
        req_id = await fake.click(target.user, target.chat, target.ref, target.key)

        def answered() -> dict[str, Any] | int | None:
            update = next((b for r, b in fake.updates[updates:] if r == req_id), None)
            return update or next((c for r, c in fake.refused[refusals:] if r == req_id), None)

        try:
            answer = await fake.wait_for(answered, within=CLICK_TIMEOUT_S)
        except TimeoutError:
            raise ClickError("no card update frame within 5 s") from None
        took = time.perf_counter() - started
        if isinstance(answer, int):
            raise ClickError(f"card update refused ({answer})")
        if not claimed(answer["template_card"].get("sub_title_text", ""), target.name):
            raise ClickError("the update frame's card does not show the claim")
        return took


class WecomApp(Platform):
    name = "wecom_app"
    per_group = PER_GROUP["wecom_app"]
    token = "benchclicktoken"

    async def start(self) -> None:
        self.api = FakeWeComAPI(corp_id="wwbenchcorp")
        self.api.base_url = await self.serve_fake(self.api.app())
        self.aes_key = base64.b64encode(os.urandom(32)).decode().rstrip("=")
        crypto = CallbackCrypto(self.token, self.aes_key, self.api.corp_id)
        self.callbacks = WeComCallbacks(crypto, self.api.corp_id, self.api.agent_id)

    def config(self) -> str:
        return (
            f"[wecom]\ncorp_id = {toml(self.api.corp_id)}\nagent_id = {self.api.agent_id}\n"
            f"api_base = {toml(self.api.base_url)}\n"
        )

    def secrets(self) -> dict[str, str]:
        return {
            "REFUNDOPS_WECOM__SECRET": self.api.secret,
            "REFUNDOPS_WECOM__TOKEN": self.token,
            "REFUNDOPS_WECOM__ENCODING_AES_KEY": self.aes_key,
        }

    def chat_id(self, group: int) -> str:
        return Clicker(group).staff_id

    async def ready(self) -> None:
        pass  # WeCom calls the bot over HTTP; nothing to connect

    def user(self, clicker: Clicker) -> str:
        return f"wx_{clicker.staff_id}"

    async def cards(self, cases: int) -> list[Target]:
        await settled(self.api.wait_for, lambda: len(self.api.cards) >= cases, card_wait_s(cases))
        targets = []
        for task_id, card in self.api.cards.items():
            (user,) = self.api.recipients[task_id]
            clicker = self.clickers[user]
            key = next(b["key"] for b in card["button_list"] if b["key"].startswith("claim:"))
            targets.append(
                Target(key.split(":")[1], f"g{clicker.group}", task_id, key, user, clicker.name)
            )
        return targets

    async def click(self, target: Target) -> float:
        api = self.api
        query, body = self.callbacks.app_click(
            target.user, target.ref, target.key, api.click_code(target.ref)
        )
        mark = len(api.calls)

        def updated() -> Call | None:
            return next(
                (
                    c
                    for c in api.calls[mark:]
                    if c.path == UPDATE_CARD
                    and (c.body.get("template_card") or {}).get("task_id") == target.ref
                ),
                None,
            )

        async def callback() -> int:
            async with self.http.post(f"{self.url}/wecom/callback?{query}", data=body) as resp:
                await resp.read()
                return resp.status

        started = time.perf_counter()
        posted = asyncio.ensure_future(callback())
        try:
            call: Call = await api.wait_for(updated, within=CLICK_TIMEOUT_S)
        except TimeoutError:
            raise ClickError("no update_template_card within 5 s") from None
        finally:
            status = await posted
        took = time.perf_counter() - started
        if status != 200:
            raise ClickError(f"callback answered HTTP {status}")
        if call.errcode:
            raise ClickError(f"update_template_card refused ({call.errcode})")
        if not claimed(call.body["template_card"].get("sub_title_text", ""), target.name):
            raise ClickError("the updated card does not show the claim")
        return took


class DingtalkStream(Platform):
    name = "dingtalk_stream"

    def __init__(self) -> None:
        super().__init__()
        self.acks: list[float] = []

    async def start(self) -> None:
        self.fake = FakeDingtalk()
        self.fake.base_url = await self.serve_fake(self.fake.app())

    def config(self) -> str:
        fake = self.fake
        return (
            f"[dingtalk]\napp_key = {toml(fake.app_key)}\nrobot_code = {toml(fake.robot_code)}\n"
            'card_template_id = "refundops-refund.schema"\n'
            f"api_base = {toml(fake.base_url)}\noapi_base = {toml(fake.base_url)}\n"
        )

    def secrets(self) -> dict[str, str]:
        return {"REFUNDOPS_DINGTALK__APP_SECRET": self.fake.app_secret}

    def chat_id(self, group: int) -> str:
        return f"cidBENCH{group}=="

    def user(self, clicker: Clicker) -> str:
        return f"ding-{clicker.staff_id}"

    async def ready(self) -> None:
        await until(lambda: bool(self.fake.live(CARD_TOPIC)), within=30)

    async def cards(self, cases: int) -> list[Target]:
        await settled(self.fake.wait_for, lambda: len(self.fake.cards) >= cases, card_wait_s(cases))
        targets = []
        for track, card in self.fake.cards.items():
            clicker = self.chats[card.space_id.removeprefix(GROUP_SPACE)]
            if card.params.get("claim_visible") == "true":
                targets.append(
                    Target(
                        card.params["handle"],
                        f"g{clicker.group}",
                        track,
                        "claim",
                        self.user(clicker),
                        clicker.name,
                    )
                )
        return targets

    async def click(self, target: Target) -> float:
        fake = self.fake
        card = fake.cards[target.ref]
        mark = len(card.updates)
        started = time.perf_counter()
        payload = fake.click_payload(target.ref, target.user, target.key)
        message_id = await fake.push(CARD_TOPIC, payload)

        def updated() -> bool:
            return any(claimed(p.get("footer", ""), target.name) for _, p in card.updates[mark:])

        try:
            await fake.wait_for(updated, within=CLICK_TIMEOUT_S)
        except TimeoutError:
            raise ClickError("card not updated within 5 s") from None
        took = time.perf_counter() - started
        ack = await fake.acked(message_id, within=CLICK_TIMEOUT_S)
        self.acks.append(time.perf_counter() - started)
        response = json.loads(ack.get("data") or "{}").get("response") or {}
        params = (response.get("cardData") or {}).get("cardParamMap") or {}
        if ack.get("code") != 200 or not claimed(params.get("footer", ""), target.name):
            raise ClickError("the callback's answer does not show the claim")
        return took

    async def close(self) -> None:
        if self.acks:
            self.notes.append(
                f"callback answer (ack) received: p50 {statistics.median(self.acks) * 1000:.0f} ms, "
                f"p99 {quantile(self.acks, 99) * 1000:.0f} ms"
            )
        for conn in self.fake.live():
            await conn.ws.close()
        await super().close()


PLATFORMS: dict[str, type[Platform]] = {
    p.name: p for p in (Sandbox, WecomAibot, WecomApp, DingtalkStream)
}


def card_wait_s(cases: int) -> float:
    return 60 + cases * 0.2


async def run_channel(platform: Platform, cases: int, gap_s: float, db: str) -> Result:
    result = Result(platform.name)
    run = uuid.uuid4().hex[:6].upper()
    await platform.start()
    try:
        config = CONFIG + platform.config() + platform.groups_toml(cases)
        db_url = None
        if db == "postgres":
            from bench.digest import fresh_database

            with tempfile.TemporaryDirectory() as workdir:
                db_url = await fresh_database("postgres", Path(workdir))
        async with (
            serve(config, db_url=db_url, secrets=platform.secrets()) as served,
            aiohttp.ClientSession() as session,
        ):
            platform.url, platform.session = served.url, session
            await platform.ready()
            for i in range(cases):
                body = refund_requested(f"RFC{run}{i:06d}", shop=platform.shop(i, cases))
                events = f"{served.url}/api/v1/events"
                async with session.post(events, data=body, headers=signed(body)) as resp:
                    if resp.status != 202:
                        raise RuntimeError(f"event refused: {resp.status} {await resp.text()}")
            targets = await platform.cards(cases)
            if len(targets) < cases:
                result.errors["no card to tap (not delivered in time)"] += cases - len(targets)
            await asyncio.sleep(SETTLE_S)
            for target in sorted(targets, key=lambda t: t.number):
                try:
                    result.latencies.append(await platform.click(target))
                except ClickError as exc:
                    result.errors[str(exc)] += 1
                await asyncio.sleep(gap_s)
    finally:
        await platform.close()
    result.notes = platform.notes
    return result


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clicks", type=int, default=200, help="cases (one tap each) per channel")
    parser.add_argument("--channels", default=",".join(CHANNELS))
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--gap-ms", type=float, default=20.0, help="pause between two taps")
    args = parser.parse_args()
    channels = [c.strip() for c in args.channels.split(",") if c.strip()]
    unknown = [c for c in channels if c not in PLATFORMS]
    if unknown:
        parser.error(f"unknown channel {', '.join(unknown)} (one of {', '.join(PLATFORMS)})")
    results = [
        await run_channel(PLATFORMS[c](), args.clicks, args.gap_ms / 1000, args.db)
        for c in channels
    ]
    print(f"refundops ({args.db}), taps one at a time, {args.gap_ms:.0f} ms apart")
    print("| channel | clicks | p50 | p99 | max | errors |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        p50 = ms(statistics.median(r.latencies)) if r.latencies else "—"
        print(
            f"| {r.channel} | {r.clicks} | {p50} | {ms(quantile(r.latencies, 99))} "
            f"| {ms(max(r.latencies, default=0.0))} | {sum(r.errors.values())} |"
        )
    for r in results:
        for reason, n in r.errors.most_common():
            print(f"{r.channel}: {n} × {reason}")
        for note in r.notes:
            print(f"{r.channel}: {note}")


if __name__ == "__main__":
    asyncio.run(main())
