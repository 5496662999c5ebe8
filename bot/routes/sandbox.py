"""The sandbox channel's surface: the chat page, its JSON API and the live websocket."""

from __future__ import annotations

import asyncio
import contextlib
from importlib import resources
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.keys import DISPATCHER, METRICS, SANDBOX, SERVICES, SETTINGS
from commands import ChatInput
from handlers.authority import account
from handlers.config import GroupSettings
from handlers.message import Mention, Reply
from handlers.schema import field_errors
from integrations.sandbox.channel import BOT, direct_conversation, input_ref, topic
from integrations.sandbox.render import VIEWS, Via, message_json, render_text, views

routes = web.RouteTableDef()
WATCHERS = web.AppKey("sandbox_watchers", set[web.WebSocketResponse])


# Ids are 64-bit in the database; a larger number is a bad request, not a server error.
MAX_ID = 2**63 - 1


class SayBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    user: str = Field(min_length=1, max_length=64)
    text: str = Field(min_length=1, max_length=2000)


class ClickBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    user: str = Field(min_length=1, max_length=64)
    message_id: int = Field(ge=0, le=MAX_ID)
    key: str = Field(min_length=1, max_length=64)
    # The version of the card the page showed; without it, the one the message holds now.
    version: int | None = Field(default=None, ge=0, le=MAX_ID)


def _group(request: web.Request) -> GroupSettings:
    group = request.app[SETTINGS].group(request.match_info["group"])
    if group is None or group.channel != "sandbox":
        raise web.HTTPNotFound(
            text='{"error": "no such sandbox group"}', content_type="application/json"
        )
    return group


async def _body(request: web.Request, model: type[BaseModel]) -> Any:
    try:
        return model.model_validate_json(await request.read())
    except ValidationError as exc:
        raise web.HTTPBadRequest(
            text=_dumps({"error": "invalid body", "fields": field_errors(exc)}),
            content_type="application/json",
        ) from exc


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


@routes.get("/sandbox")
async def page(_request: web.Request) -> web.Response:
    html = resources.files("bot").joinpath("static/sandbox.html").read_text("utf-8")
    return web.Response(text=html, content_type="text/html")


@routes.get("/sandbox/api/config")
async def config(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return web.json_response(
        {
            "bot": settings.bot.name,
            "timezone": settings.bot.timezone,
            "groups": [
                {"id": g.id, "name": g.name or g.id}
                for g in settings.groups
                if g.channel == "sandbox"
            ]
            # The one-to-one chats finance and admins get full payee accounts in (anyone has
            # one: /sandbox/api/groups/@<user>/…).
            + [
                {"id": direct_conversation(account(s, "sandbox")), "name": f"私信 · {s.display}"}
                for s in settings.staff
                if {"finance", "admin"} & set(s.roles)
            ],
            "users": [
                {"user": account(s, "sandbox"), "name": s.display, "roles": s.roles}
                for s in settings.staff
            ],
            # A button's command as people type it (拒绝 for reject): an inline answer to a
            # button that asks for words is sent as that command.
            "commands": {
                c.names[0]: c.names[1 if len(c.names) > 1 else 0]
                for c in request.app[SERVICES].commands.commands
            },
        }
    )


def _direct(request: web.Request) -> str:
    """The sandbox user whose one-to-one chat with the bot the path names (`@fin1`), or ""."""
    name = request.match_info["group"]
    if not name.startswith("@"):
        return ""
    user = name[1:]
    # The conversation id `@<user>` must fit the group column (64).
    if len(name) > 64 or request.app[SERVICES].staff.by_platform("sandbox", user) is None:
        raise web.HTTPNotFound(
            text='{"error": "no such sandbox user"}', content_type="application/json"
        )
    return user


@routes.get("/sandbox/api/groups/{group}/messages")
async def messages(request: web.Request) -> web.Response:
    user = _direct(request)
    where = direct_conversation(user) if user else _group(request).id
    # Without `after`: the newest `limit` messages; with it: the next `limit` after that id.
    try:
        after = int(request.query["after"]) if "after" in request.query else None
        limit = min(int(request.query.get("limit", "500")), 2000)
    except ValueError:
        return web.json_response({"error": "after and limit must be integers"}, status=400)
    if not ((after is None or 0 <= after <= MAX_ID) and limit >= 0):
        return web.json_response({"error": "after and limit must not be negative"}, status=400)
    # The group as the sandbox shows it, unless `view` asks for WeCom's, DingTalk's or `all`.
    view = request.query.get("view", "sandbox")
    if view not in (*VIEWS, "all"):
        return web.json_response(
            {"error": f"view must be one of {', '.join((*VIEWS, 'all'))}"}, status=400
        )
    async with request.app[SERVICES].tx() as tx:
        rows = await tx.sandbox.list(where, after=after, limit=limit)
    shown = [m for m in rows if view == "all" or view in views(m)]
    return web.json_response([message_json(m) for m in shown], dumps=_dumps)


@routes.post("/sandbox/api/groups/{group}/say")
async def say(request: web.Request) -> web.Response:
    direct = _direct(request)
    where = direct_conversation(direct) if direct else _group(request).id
    body: SayBody = await _body(request, SayBody)
    if direct and body.user != direct:
        return web.json_response(
            {"error": f"only {direct} writes in their chat with the bot"}, status=403
        )
    sandbox = request.app[SANDBOX]
    said = await sandbox.say(where, body.user, body.text)
    chat = ChatInput(
        channel="sandbox",
        platform="sandbox",
        user=body.user,
        text=body.text,
        group_id="" if direct else where,
        input_id=input_ref(said.id),
        direct=bool(direct),
    )
    reply = await _run(request, chat)
    answer = await sandbox.say(
        where, BOT, render_text(reply.text, reply.mentions), meta={"via": Via.ANSWER}
    )
    return web.json_response(
        {"message": message_json(said), "reply": message_json(answer), "ok": reply.ok}, dumps=_dumps
    )


@routes.post("/sandbox/api/groups/{group}/click")
async def click(request: web.Request) -> web.Response:
    group = _group(request)
    body: ClickBody = await _body(request, ClickBody)
    async with request.app[SERVICES].tx() as tx:
        message = await tx.sandbox.get(body.message_id)
    if message is None or message.group_id != group.id or message.card is None:
        return web.json_response(
            {"error": f"no card message {body.message_id} in {group.id}"}, status=404
        )
    keys = {b["key"] for b in message.card.get("buttons", [])}
    # A button the card no longer shows (someone acted first) still gets its answer; a card
    # of no case (a digest) has only the buttons it shows.
    known = message.card.get("handle") and request.app[SERVICES].commands.lookup(body.key)
    if body.key not in keys and not known:
        return web.json_response(
            {"error": f"the card has no button {body.key!r}", "buttons": sorted(keys)}, status=400
        )
    chat = ChatInput(
        channel="sandbox",
        platform="sandbox",
        user=body.user,
        group_id=group.id,
        action=body.key,
        case_ref=message.card["handle"],
        input_id=f"click-{message.id}-{body.user}",
        card_version=body.version if body.version is not None else _version(message.card),
    )
    sandbox = request.app[SANDBOX]
    sandbox.tapped(message.id)
    try:
        reply = await _run(request, chat)
        if message.case_pk is not None:
            await request.app[DISPATCHER].flush_case(message.case_pk)
    finally:
        sandbox.answered(message.id)
    async with request.app[SERVICES].tx() as tx:
        updated = await tx.sandbox.get(message.id)
    assert updated is not None
    tapper = _mention_of(request, body.user)
    changed = (updated.card or {}).get("version") != message.card.get("version")
    meta = {
        "via": Via.TAP,
        # The redrawn card is the whole answer unless it is a refusal, calls someone, or
        # nothing changed (WeCom and DingTalk alike).
        "quiet": reply.ok and not reply.mentions and changed,
        "notify": [m.name for m in reply.mentions if m not in tapper],
    }
    answer = await sandbox.say(
        group.id, BOT, render_text(reply.text, (*tapper, *reply.mentions)), meta=meta
    )
    return web.json_response(
        {"ok": reply.ok, "reply": message_json(answer), "message": message_json(updated)},
        dumps=_dumps,
    )


def _version(card: dict[str, Any]) -> int:
    value = card.get("version", 0)
    return value if isinstance(value, int) else 0


def _mention_of(request: web.Request, user: str) -> tuple[Mention, ...]:
    svc = request.app[SERVICES]
    staff = svc.staff.by_platform("sandbox", user)
    return (svc.staff.mention(staff),) if staff else ()


async def _run(request: web.Request, chat: ChatInput) -> Reply:
    reply = await request.app[SERVICES].commands.handle(request.app[SERVICES], chat)
    request.app[METRICS].commands.labels(chat.channel, "ok" if reply.ok else "refused").inc()
    return reply


@routes.get("/sandbox/ws")
async def websocket(request: web.Request) -> web.WebSocketResponse:
    settings = request.app[SETTINGS]
    group_id = request.query.get("group") or next(
        (g.id for g in settings.groups if g.channel == "sandbox"), ""
    )
    ws = web.WebSocketResponse(heartbeat=25)
    await ws.prepare(request)
    request.app[WATCHERS].add(ws)
    updates = request.app[SERVICES].coord.subscribe(topic(group_id))

    async def forward() -> None:
        async for message in updates:
            await ws.send_str(message)

    pump = asyncio.create_task(forward())
    try:
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        request.app[WATCHERS].discard(ws)
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
    return ws


async def close_watchers(app: web.Application) -> None:
    """On shutdown, close open page sockets so the server need not wait them out."""
    watchers = app[WATCHERS]
    for ws in list(watchers):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
