"""The shop-facing API: signed events in, cases out (DESIGN §2)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from bot.group_commit import StoreUnavailableError, UnstorableError
from bot.keys import METRICS, SERVICES, SETTINGS, WRITER
from bot.routes.verification import verified
from handlers import masking, reference
from handlers.cards import build_card
from handlers.money import fen_to_yuan
from handlers.payload import PayloadError, loads, plainly_storable
from handlers.schema import Envelope, InvalidEventError, parse_event
from integrations.signing import verify_headers
from storage.models import Case

routes = web.RouteTableDef()
SIGNED_BODY = web.RequestKey("signed_body", bytes)
# When the request reached its verifier: the answer's latency counts the verification too.
RECEIVED = web.RequestKey("received", float)


def error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


class SignedRequest:
    """The shop's HMAC headers: the raw body is read (within the size limit) and its
    signature checked before any route sees it; refused 413 or 401.

    A POST signs its body; any other method signs its method and request target too
    (integrations.signing), so a captured GET reads nothing but what it read.
    """

    async def verify(self, request: web.Request) -> web.Response | None:
        request[RECEIVED] = time.perf_counter()
        settings = request.app[SETTINGS]
        limit = settings.server.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return error(413, f"body is larger than {limit} bytes")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return error(413, f"body is larger than {limit} bytes")
        problem = verify_headers(
            settings.ingest.secret.get_secret_value(),
            request.headers,
            body,
            now=request.app[SERVICES].clock.now().timestamp(),
            max_skew_s=settings.ingest.max_skew_s,
            target="" if request.method == "POST" else f"{request.method} {request.raw_path}",
        )
        if problem:
            return error(401, problem)
        request[SIGNED_BODY] = body
        return None


def _json(body: bytes) -> Any:
    try:
        return loads(body)
    except PayloadError as exc:
        raise InvalidEventError(exc.errors) from exc


def _rejected(request: web.Request, exc: InvalidEventError) -> web.Response:
    request.app[METRICS].events.labels("rejected").inc()
    return error(400, "invalid event", fields=exc.errors)


async def _store(
    request: web.Request, items: list[tuple[Envelope, dict[str, Any]]]
) -> list[dict[str, str]] | web.Response:
    try:
        stored = await request.app[WRITER].store(items)
    except UnstorableError:
        request.app[METRICS].events.labels("rejected").inc()
        return error(
            400,
            "invalid event",
            fields=[{"field": "body", "message": "the database cannot store this event"}],
        )
    except StoreUnavailableError:
        unavailable = error(503, "events cannot be stored right now; send them again later")
        unavailable.headers["Retry-After"] = "5"
        return unavailable
    results = [
        {"id": envelope.id, "status": "accepted" if new else "duplicate"}
        for (envelope, _), new in zip(items, stored, strict=True)
    ]
    for result in results:
        request.app[METRICS].events.labels(result["status"]).inc()
    return results


@routes.post("/api/v1/events")
@verified(SignedRequest())
async def post_event(request: web.Request) -> web.Response:
    started = request[RECEIVED]
    body = request[SIGNED_BODY]
    try:
        raw = _json(body)
        envelope, _ = parse_event(raw, storable=plainly_storable(body))
    except InvalidEventError as exc:
        return _rejected(request, exc)
    results = await _store(request, [(envelope, raw)])
    if isinstance(results, web.Response):
        return results
    (result,) = results
    request.app[METRICS].http_latency.observe(time.perf_counter() - started)
    return web.json_response(result, status=202)


@routes.post("/api/v1/events/batch")
@verified(SignedRequest())
async def post_batch(request: web.Request) -> web.Response:
    body = request[SIGNED_BODY]
    batch_max = request.app[SETTINGS].ingest.batch_max
    try:
        raw = _json(body)
        events = raw.get("events") if isinstance(raw, dict) else None
        if not isinstance(events, list) or not events:
            raise InvalidEventError([{"field": "events", "message": "a non-empty list of events"}])
        if len(events) > batch_max:
            raise InvalidEventError(
                [
                    {
                        "field": "events",
                        "message": f"at most {batch_max} events per batch, got {len(events)}",
                    }
                ]
            )
    except InvalidEventError as exc:
        return _rejected(request, exc)
    items, errors = [], []
    storable = plainly_storable(body)
    for i, item in enumerate(events):
        try:
            envelope, _ = parse_event(item, prefix=f"events[{i}].", storable=storable)
            items.append((envelope, item))
        except InvalidEventError as exc:
            errors += exc.errors
    if errors:
        return _rejected(request, InvalidEventError(errors))
    results = await _store(request, items)
    if isinstance(results, web.Response):
        return results
    return web.json_response({"results": results}, status=202)


@routes.get("/api/v1/cases")
@verified(SignedRequest())
async def find_cases(request: web.Request) -> web.Response:
    """The cases on one order (`?order_id=`), oldest first, without their history."""
    if set(request.query) - {"order_id"}:
        unknown = ", ".join(sorted(set(request.query) - {"order_id"}))
        return error(
            400,
            "unknown query parameter",
            fields=[{"field": unknown, "message": "not a parameter"}],
        )
    order_id = request.query.get("order_id", "")
    problem = _order_problem(order_id)
    if problem:
        return error(400, "invalid query", fields=[{"field": "order_id", "message": problem}])
    async with request.app[SERVICES].tx() as tx:
        cases = await tx.cases.for_order(order_id, limit=ORDER_CASES_MAX)
        return web.json_response(
            {
                "cases": [
                    case_json(c) | {"status_text": build_card(c, tx.view).status} for c in cases
                ]
            }
        )


ORDER_CASES_MAX = 100


def _order_problem(order_id: str) -> str:
    if not order_id:
        return "required"
    if len(order_id) > 128:
        return "at most 128 characters"
    if "\x00" in order_id:
        return "must not contain U+0000"
    return ""


@routes.get("/api/v1/cases/{case_id}")
@verified(SignedRequest())
async def get_case(request: web.Request) -> web.Response:
    ref = request.match_info["case_id"]
    async with request.app[SERVICES].tx() as tx:
        try:
            case, shadowed = await reference.for_api(tx, ref)
        except reference.AmbiguousReferenceError as exc:
            kinds = ", ".join(f"{c.kind} {c.handle}" for c in exc.cases)
            return error(409, f"{ref!r} is the id of several cases ({kinds}): ask for a handle")
        if case is None:
            return error(404, f"no case {ref!r}")
        history = await tx.audit_log.history(case.id)
        card = build_card(case, tx.view)
        also = (
            {
                "also": f"{ref} is also the handle of {shadowed.kind} {shadowed.case_id}: ask for %23{shadowed.handle}"
            }
            if shadowed is not None
            else {}
        )
        return web.json_response(
            case_json(case)
            | also
            | {
                "status_text": card.status,
                "history": [
                    {
                        "at": h.at.isoformat(),
                        "actor": h.actor,
                        "action": h.action,
                        "from_state": h.from_state,
                        "to_state": h.to_state,
                        "channel": h.channel,
                    }
                    for h in history
                ],
            }
        )


def case_json(case: Case) -> dict[str, Any]:
    """The case as the shop's systems read it; like every page, personal data masked."""
    allow = masking.identifiers(case)
    return {
        "case_id": case.case_id,
        "handle": case.handle,
        "kind": case.kind,
        "state": case.state,
        "version": case.version,
        "shop": case.shop,
        "platform": case.platform,
        "order_id": case.order_id,
        "amount": str(fen_to_yuan(case.amount_fen)),
        "group": case.group_id,
        "assignee": case.assignee,
        "path": case.path,
        "reason": masking.redact(case.reason, allow),
        "deadline_at": case.deadline_at.isoformat() if case.deadline_at else None,
        "created_at": case.created_at.isoformat(),
        "updated_at": case.updated_at.isoformat(),
        "closed_at": case.closed_at.isoformat() if case.closed_at else None,
        "first_response_at": case.first_response_at.isoformat() if case.first_response_at else None,
        "data": masking.redact_tree(case.data, allow),
    }
