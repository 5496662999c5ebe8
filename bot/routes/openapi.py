"""GET /api/v1/openapi.json: the shop-facing API, with schemas generated from the models.

Each event type is its own schema with its `data` typed, in a union discriminated on
`type`; the limits the server enforces (lengths, amount and date patterns, no U+0000) are
in it, so that what the document calls valid is accepted and what it calls invalid is
refused. `order_amount ≥ amount` is the one rule it can only say in words.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic.json_schema import models_json_schema

from bot.keys import SETTINGS
from handlers.payload import MAX_DEPTH
from handlers.schema import EVENT_MODELS

routes = web.RouteTableDef()

SIGNED: list[dict[str, list[str]]] = [{"timestamp": [], "signature": []}]
REF = "#/components/schemas/{model}"
# Strings anywhere in an event: PostgreSQL text cannot hold U+0000.
STORABLE = "^[^\\u0000]*$"
KEPT = "Kept"


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _storable(node: Any) -> Any:
    """The generated schemas with what the server also refuses said: strings without U+0000,
    unknown members of any JSON value (kept as they are) with storable keys."""
    if isinstance(node, list):
        return [_storable(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _storable(value) for key, value in node.items()}
    if out.get("type") == "string" and not {"pattern", "enum", "const"} & set(out):
        out["pattern"] = STORABLE
    if out.get("additionalProperties") is True:
        out["additionalProperties"] = {"$ref": REF.format(model=KEPT)}
    if out.get("type") == "object":
        out["propertyNames"] = {"pattern": STORABLE}
    return out


def event_schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    """(components, the Envelope union) generated from the per-type event models."""
    _, top = models_json_schema(
        [(model, "validation") for model in EVENT_MODELS.values()], ref_template=REF
    )
    schemas: dict[str, Any] = _storable(top.get("$defs", {}))
    for event_type, model in EVENT_MODELS.items():
        data = schemas[model.__name__]["properties"]["data"]["$ref"].rsplit("/", 1)[1]
        schemas[data].setdefault(
            "description", f"`data` of a `{event_type}` event. Unknown fields are kept."
        )
    schemas[KEPT] = {
        "description": f"Any JSON value, kept as sent (at most {MAX_DEPTH} levels deep in all)",
        "anyOf": [
            {"type": "string", "pattern": STORABLE},
            {"type": "number"},
            {"type": "boolean"},
            {"type": "null"},
            {"type": "array", "items": {"$ref": REF.format(model=KEPT)}},
            {
                "type": "object",
                "additionalProperties": {"$ref": REF.format(model=KEPT)},
                "propertyNames": {"pattern": STORABLE},
            },
        ],
    }
    mapping = {t: REF.format(model=m.__name__) for t, m in EVENT_MODELS.items()}
    envelope = {
        "description": "An event: its `type` says which schema `data` follows.",
        "oneOf": [{"$ref": ref} for ref in dict.fromkeys(mapping.values())],
        "discriminator": {"propertyName": "type", "mapping": mapping},
    }
    return schemas, envelope


def build_spec(batch_max: int = 500) -> dict[str, Any]:
    schemas, envelope = event_schemas()
    schemas["Envelope"] = envelope
    schemas["Accepted"] = {
        "type": "object",
        "required": ["id", "status"],
        "properties": {"id": {"type": "string"}, "status": {"enum": ["accepted", "duplicate"]}},
    }
    schemas["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "fields": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    }
    schemas["HistoryEntry"] = {
        "type": "object",
        "properties": {
            k: {"type": "string"}
            for k in ("at", "actor", "action", "from_state", "to_state", "channel")
        },
    }
    schemas["Case"] = {
        "type": "object",
        "required": ["case_id", "handle", "kind", "state", "history"],
        "properties": {
            "case_id": {"type": "string", "description": "refund_id, payout_id, or a generated id"},
            "handle": {"type": "string", "examples": ["R12"]},
            "also": {
                "type": "string",
                "description": "present when the asked-for id is also another case's handle",
            },
            "kind": {"enum": ["refund", "intercept", "payout", "anomaly", "payout_batch"]},
            "state": {"type": "string"},
            "status_text": {"type": "string"},
            "version": {"type": "integer"},
            "amount": {"type": "string", "description": "yuan, decimal string"},
            "history": {"type": "array", "items": {"$ref": "#/components/schemas/HistoryEntry"}},
        },
    }
    schemas["CaseSummary"] = {
        "type": "object",
        "required": ["case_id", "handle", "kind", "state", "order_id"],
        "properties": {
            k: v for k, v in schemas["Case"]["properties"].items() if k not in ("history", "also")
        }
        | {"order_id": {"type": "string"}},
    }
    schemas["CaseList"] = {
        "type": "object",
        "required": ["cases"],
        "properties": {
            "cases": {
                "type": "array",
                "maxItems": 100,
                "items": {"$ref": "#/components/schemas/CaseSummary"},
            }
        },
    }
    common_errors = {
        "400": _error("The body is not a valid event; `fields` names each bad field"),
        "401": _error("Missing or bad signature, or timestamp outside ±300 s"),
        "413": _error("Body larger than 1 MiB"),
        "503": _error("The events could not be stored for now; send them again later"),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "refundops ingest API",
            "version": "1",
            "description": (
                "Sign every request: `X-Refundops-Timestamp: <unix seconds>` and "
                '`X-Refundops-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`. '
                "A GET signs its method and target with the empty body: "
                '`"<timestamp>.GET <path>[?<query>]."`, the path and query exactly as sent '
                "(percent-encoded), e.g. `1700000000.GET /api/v1/cases/R12.`; a signature "
                "reads only the case it names. Money is a decimal string in yuan."
            ),
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "timestamp": {"type": "apiKey", "in": "header", "name": "X-Refundops-Timestamp"},
                "signature": {"type": "apiKey", "in": "header", "name": "X-Refundops-Signature"},
            },
        },
        "paths": {
            "/api/v1/events": {
                "post": {
                    "summary": "Submit one event",
                    "security": SIGNED,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Envelope"}
                            }
                        },
                    },
                    "responses": {
                        "202": {
                            "description": "Stored (or already stored: duplicate)",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Accepted"}
                                }
                            },
                        },
                        **common_errors,
                    },
                }
            },
            "/api/v1/events/batch": {
                "post": {
                    "summary": f"Submit up to {batch_max} events; all are stored or none",
                    "security": SIGNED,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["events"],
                                    "properties": {
                                        "events": {
                                            "type": "array",
                                            "minItems": 1,
                                            "maxItems": batch_max,
                                            "items": {"$ref": "#/components/schemas/Envelope"},
                                        }
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": {
                            "description": "Per-event results, in order",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "results": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Accepted"},
                                            }
                                        },
                                    }
                                }
                            },
                        },
                        **common_errors,
                    },
                }
            },
            "/api/v1/cases": {
                "get": {
                    "summary": "The cases on one order (refunds, payouts, intercepts, anomalies)",
                    "description": (
                        "Oldest first, at most 100, without their history (ask for one by its "
                        "handle for that); an order without cases gives an empty list."
                    ),
                    "security": SIGNED,
                    "parameters": [
                        {
                            "name": "order_id",
                            "in": "query",
                            "required": True,
                            "schema": {
                                "type": "string",
                                "minLength": 1,
                                "maxLength": 128,
                                "pattern": STORABLE,
                            },
                            "description": "the shop's order id, as the events carry it",
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The order's cases",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/CaseList"}
                                }
                            },
                        },
                        "400": _error("order_id is missing, empty, too long or not storable"),
                        "401": common_errors["401"],
                    },
                }
            },
            "/api/v1/cases/{case_id}": {
                "get": {
                    "summary": "A case with its history",
                    "security": SIGNED,
                    "parameters": [
                        {
                            "name": "case_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                            "description": (
                                "refund_id or payout_id, or a short handle like R12; the id wins "
                                "when both exist (then `also` names the handle's case), and "
                                "%23R12 (#R12) always means the handle"
                            ),
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The case",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Case"}
                                }
                            },
                        },
                        "401": common_errors["401"],
                        "404": _error("No such case"),
                        "409": _error("The id belongs to cases of several kinds: ask by handle"),
                    },
                }
            },
        },
    }


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(build_spec(request.app[SETTINGS].ingest.batch_max))
