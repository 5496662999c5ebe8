"""GET /api/v1/openapi.json: the shop-facing API, with schemas generated from the models."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from handlers.schema import DATA_MODELS, Envelope

routes = web.RouteTableDef()

SIGNED: list[dict[str, list[str]]] = [{"timestamp": [], "signature": []}]


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def build_spec() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    envelope = Envelope.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(envelope.pop("$defs", {}))
    schemas["Envelope"] = envelope
    for event_type, model in DATA_MODELS.items():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schema["description"] = f"`data` of a `{event_type}` event. Unknown fields are kept."
        schemas[model.__name__] = schema
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
    common_errors = {
        "400": _error("The body is not a valid event; `fields` names each bad field"),
        "401": _error("Missing or bad signature, or timestamp outside ±300 s"),
        "413": _error("Body larger than 1 MiB"),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "refundops ingest API",
            "version": "1",
            "description": (
                "Sign every request: `X-Refundops-Timestamp: <unix seconds>` and "
                '`X-Refundops-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`. '
                "GET requests sign an empty body. Money is a decimal string in yuan."
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
                    "summary": "Submit up to 500 events; all are stored or none",
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
                                            "maxItems": 500,
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
async def openapi(_request: web.Request) -> web.Response:
    return web.json_response(build_spec())
