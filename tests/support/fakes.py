"""Fakes as real servers: `serve` runs any fake's aiohttp app on port 0 for a block, and
`Served` is what a fake's fixture yields when the fake does not carry its own `base_url`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Generic, NamedTuple, TypeVar

from aiohttp import web
from aiohttp.test_utils import TestServer

F = TypeVar("F")


class Served(NamedTuple, Generic[F]):
    """A running fake and the URL the app under test is given for it."""

    fake: F
    url: str


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Run `app` on a free port until the block ends; yields its base URL (no trailing slash)."""
    server = TestServer(app)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
