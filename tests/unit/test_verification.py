"""The verification middleware: a declared verifier runs before its route and can refuse it;
a route that declares none is left alone."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.routes.verification import verification, verified

SEEN = web.RequestKey("seen", str)


class HeaderToken:
    async def verify(self, request: web.Request) -> web.Response | None:
        if request.headers.get("X-Token") != "right":
            return web.Response(status=401, text="wrong token")
        request[SEEN] = "checked"
        return None


async def test_verification_refuses_before_the_route_and_passes_what_it_read() -> None:
    ran: list[str] = []
    routes = web.RouteTableDef()

    @routes.get("/guarded")
    @verified(HeaderToken())
    async def guarded(request: web.Request) -> web.Response:
        ran.append("guarded")
        return web.Response(text=request[SEEN])

    @routes.get("/open")
    async def open_route(request: web.Request) -> web.Response:  # noqa: ARG001
        ran.append("open")
        return web.Response(text="open")

    app = web.Application(middlewares=[verification])
    app.router.add_routes(routes)
    async with TestClient(TestServer(app)) as client:
        refused = await client.get("/guarded", headers={"X-Token": "wrong"})
        assert (refused.status, await refused.text()) == (401, "wrong token")
        assert ran == []
        passed = await client.get("/guarded", headers={"X-Token": "right"})
        assert (passed.status, await passed.text()) == (200, "checked")
        free = await client.get("/open")
        assert (free.status, await free.text()) == (200, "open")
    assert ran == ["guarded", "open"]
