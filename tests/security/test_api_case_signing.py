"""`GET /api/v1/cases/{id}` signs its method and target: one captured GET reads one case, not
every case (`<ts>.GET <path>[?query].`); POST still signs `<ts>.<body>`."""

from __future__ import annotations

import json

from integrations.signing import SIGNATURE_HEADER, sign, signed_get_headers
from tests.support.app import SECRET, Bot, make_refund


async def two_cases(bot: Bot) -> None:
    await bot.refund()
    await bot.refund()


def by_hand(bot: Bot, path: str) -> dict[str, str]:
    """Headers signed as documented, `<ts>.GET <path>.` with the empty body."""
    ts = int(bot.clock.now().timestamp())
    return {
        "X-Refundops-Timestamp": str(ts),
        SIGNATURE_HEADER: sign(SECRET, ts, f"GET {path}.".encode()),
    }


async def test_a_captured_get_cannot_read_another_case(bot: Bot) -> None:
    await two_cases(bot)
    captured = by_hand(bot, "/api/v1/cases/R1")
    own = await bot.client.get("/api/v1/cases/R1", headers=captured)
    assert own.status == 200
    assert (await own.json())["handle"] == "R1"
    for other in ("/api/v1/cases/R2", "/api/v1/cases/R1?x=1"):
        resp = await bot.client.get(other, headers=captured)
        assert resp.status == 401, other
        assert "R2" not in await resp.text()


async def test_the_query_string_is_signed_with_the_path(bot: Bot) -> None:
    await two_cases(bot)
    path = "/api/v1/cases/R2?fields=all"
    assert (await bot.client.get(path, headers=by_hand(bot, path))).status == 200
    stripped = by_hand(bot, "/api/v1/cases/R2")
    assert (await bot.client.get(path, headers=stripped)).status == 401


async def test_a_get_signed_over_the_empty_body_alone_is_refused(bot: Bot) -> None:
    await two_cases(bot)
    resp = await bot.client.get("/api/v1/cases/R1", headers=bot.headers(b""))
    assert resp.status == 401
    assert "does not match" in (await resp.json())["error"]


async def test_the_signed_string_is_as_documented(bot: Bot) -> None:
    await two_cases(bot)
    ts = int(bot.clock.now().timestamp())
    documented = by_hand(bot, "/api/v1/cases/R1")
    assert sign(SECRET, ts, b"", target="GET /api/v1/cases/R1") == documented[SIGNATURE_HEADER]
    assert signed_get_headers(SECRET, ts, "/api/v1/cases/R1") == documented
    assert (await bot.client.get("/api/v1/cases/R1", headers=documented)).status == 200


async def test_post_still_signs_the_body_alone(bot: Bot) -> None:
    body = json.dumps(make_refund()).encode()
    resp = await bot.client.post("/api/v1/events", data=body, headers=bot.headers(body))
    assert resp.status == 202
    target = by_hand(bot, "/api/v1/events")
    other = json.dumps(make_refund()).encode()
    assert (await bot.client.post("/api/v1/events", data=other, headers=target)).status == 401
