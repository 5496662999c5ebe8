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
from handlers.message import Reply
from handlers.schema import field_errors
from integrations.sandbox.channel import BOT, topic
from integrations.sandbox.render import message_json, render_text

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
            ],
            "users": [
                {"user": account(s, "sandbox"), "name": s.display, "roles": s.roles}
                for s in settings.staff
            ],
        }
    )


@routes.get("/sandbox/api/groups/{group}/messages")
async def messages(request: web.Request) -> web.Response:
    group = _group(request)
    # Without `after`: the newest `limit` messages; with it: the next `limit` after that id.
    try:
        after = int(request.query["after"]) if "after" in request.query else None
        limit = min(int(request.query.get("limit", "500")), 2000)
    except ValueError:
        return web.json_response({"error": "after and limit must be integers"}, status=400)
    if not ((after is None or 0 <= after <= MAX_ID) and limit >= 0):
        return web.json_response({"error": "after and limit must not be negative"}, status=400)
    async with request.app[SERVICES].tx() as tx:
        rows = await tx.sandbox.list(group.id, after=after, limit=limit)
    return web.json_response([message_json(m) for m in rows], dumps=_dumps)


@routes.post("/sandbox/api/groups/{group}/say")
async def say(request: web.Request) -> web.Response:
    group = _group(request)
    body: SayBody = await _body(request, SayBody)
    sandbox = request.app[SANDBOX]
    said = await sandbox.say(group.id, body.user, body.text)
    chat = ChatInput(
        channel="sandbox",
        platform="sandbox",
        user=body.user,
        text=body.text,
        group_id=group.id,
        input_id=f"sandbox-{said.id}",
    )
    reply = await _run(request, chat)
    answer = await sandbox.say(group.id, BOT, render_text(reply.text, reply.mentions))
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
    reply = await _run(request, chat)
    if message.case_pk is not None:
        await request.app[DISPATCHER].flush_case(message.case_pk)
    answer = await request.app[SANDBOX].say(
        group.id, BOT, render_text(reply.text, (*_mention_of(request, body.user), *reply.mentions))
    )
    async with request.app[SERVICES].tx() as tx:
        updated = await tx.sandbox.get(message.id)
    assert updated is not None
    return web.json_response(
        {"ok": reply.ok, "reply": message_json(answer), "message": message_json(updated)},
        dumps=_dumps,
    )


def _version(card: dict[str, Any]) -> int:
    value = card.get("version", 0)
    return value if isinstance(value, int) else 0


def _mention_of(request: web.Request, user: str) -> tuple[Any, ...]:
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
