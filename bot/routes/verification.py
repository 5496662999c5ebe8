"""One way every surface checks its caller: a route declares its `Verifier` with `@verified(...)`,
and one middleware runs it before the route does. What the verifier read on the way (the signed
body, the signed timestamp, the decrypted message) it leaves on the request under a typed key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler

Route = TypeVar("Route", bound=Callable[[web.Request], Awaitable[web.StreamResponse]])
DECLARED = "verifier"


class Verifier(Protocol):
    async def verify(self, request: web.Request) -> web.StreamResponse | None:
        """None when the request is what it claims to be; else the answer refusing it (a
        verifier may also raise the `web.HTTPException` that answers)."""


def verified(verifier: Verifier) -> Callable[[Route], Route]:
    """Declare that every request to the route passes `verifier` first."""

    def declare(route: Route) -> Route:
        setattr(route, DECLARED, verifier)
        return route

    return declare


@web.middleware
async def verification(request: web.Request, handler: Handler) -> web.StreamResponse:
    verifier: Verifier | None = getattr(request.match_info.handler, DECLARED, None)
    if verifier is not None:
        refused = await verifier.verify(request)
        if refused is not None:
            return refused
    return await handler(request)
