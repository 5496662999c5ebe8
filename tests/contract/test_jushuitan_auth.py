"""聚水潭 first authorisation against FakeJushuitan: getInitToken for a merchant's own app
(on first use, once across instances), the authorisation page and accessToken for a 服务商 app,
and the fake as strict as the docs are about both."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest
from pydantic import SecretStr

from handlers.clock import FakeClock
from handlers.errors import AuthorizationError
from integrations.jushuitan import signing
from integrations.jushuitan.client import (
    CODE_TOKEN,
    INIT_TOKEN,
    JushuitanClient,
    authorization_page,
)
from integrations.jushuitan.fake import md5_sign
from integrations.jushuitan.models import OrderQueryBiz
from integrations.jushuitan.settings import WarehouseSettings
from tests.support.jushuitan import APP_KEY, APP_SECRET, JstWorld, jushuitan_world
from tests.support.taobao import MemoryTokenStore


@pytest.fixture
async def world(session: aiohttp.ClientSession, clock: FakeClock) -> AsyncIterator[JstWorld]:
    async with jushuitan_world(session, clock) as made:
        # A new app: 聚水潭 has issued no token yet.
        made.fake.access_token = made.fake.refresh_token = ""
        yield made


def client(world: JstWorld, store: MemoryTokenStore | None = None) -> JushuitanClient:
    settings = world.settings(access_token=SecretStr(""), refresh_token=SecretStr(""))
    return JushuitanClient.of(settings, world.session, store or world.tokens, world.clock)


def grant_form(world: JstWorld, code: str, **changes: str) -> dict[str, str]:
    form = {
        "app_key": APP_KEY,
        "timestamp": str(int(world.clock.now().timestamp())),
        "grant_type": "authorization_code",
        "charset": "utf-8",
        "code": code,
    }
    return signing.signed(APP_SECRET, form | changes)


async def post(world: JstWorld, path: str, form: dict[str, str]) -> dict[str, object]:
    async with world.session.post(world.url + path, data=form) as resp:
        answer: dict[str, object] = await resp.json()
        return answer


async def test_jushuitan_own_app_gets_its_first_token_on_first_use(world: JstWorld) -> None:
    world.fake.add_order("SO1")
    page = await client(world).orders(["SO1"])
    assert [o.so_id for o in page.orders] == ["SO1"]
    assert world.fake.grants == ["getInitToken"]
    saved = world.tokens.tokens
    assert saved is not None
    assert saved.access_token == world.fake.access_token
    assert saved.refresh_token == world.fake.refresh_token
    assert saved.expires_at == world.clock.now() + timedelta(days=30)


async def test_jushuitan_instances_starting_together_ask_for_one_token(world: JstWorld) -> None:
    """getInitToken retires the tokens issued before: a second grant would cut the first
    instance off. The store's lock lets one ask and the others read what it kept."""
    world.fake.add_order("SO2")
    store = MemoryTokenStore()
    twins = [client(world, store) for _ in range(3)]
    await asyncio.gather(*(t.orders(["SO2"]) for t in twins))
    assert world.fake.grants == ["getInitToken"]
    assert len(store.saves) == 1


async def test_jushuitan_stored_token_wins_over_a_new_grant(world: JstWorld) -> None:
    first = client(world)
    await first.connect()
    assert world.fake.grants == ["getInitToken"]
    await client(world).orders(["none"])
    assert world.fake.grants == ["getInitToken"]


async def test_jushuitan_service_provider_app_is_told_to_use_the_authorisation_page(
    world: JstWorld,
) -> None:
    world.fake.self_built = False
    with pytest.raises(AuthorizationError, match="--auth-url") as refused:
        await client(world).orders(["SO3"])
    assert refused.value.shop == "聚水潭"
    assert world.tokens.tokens is None
    code = world.fake.authorize()
    tokens = await client(world).connect(code)
    assert world.fake.grants == ["accessToken"]
    assert tokens.access_token == world.fake.access_token
    assert world.tokens.tokens == tokens
    assert (await client(world).orders(["SO3"])).orders == []


async def test_jushuitan_page_code_is_single_use_and_expires(world: JstWorld) -> None:
    world.fake.self_built = False
    code = world.fake.authorize()
    await client(world).connect(code)
    with pytest.raises(AuthorizationError, match="15 分钟内用一次"):
        await client(world).connect(code)
    late = world.fake.authorize()
    world.clock.advance(timedelta(minutes=16))
    with pytest.raises(AuthorizationError, match="15 分钟内用一次"):
        await client(world).connect(late)
    assert world.fake.grants == ["accessToken"]


async def test_jushuitan_fake_init_token_is_strict(world: JstWorld) -> None:
    bad_sign = {**grant_form(world, "Ab12Cd"), "sign": "0" * 32}
    assert (await post(world, INIT_TOKEN, bad_sign))["code"] == 10
    stale = grant_form(world, "Ab12Cd", timestamp=str(int(world.clock.now().timestamp()) - 3600))
    assert (await post(world, INIT_TOKEN, stale))["code"] == 140
    missing = {k: v for k, v in grant_form(world, "Ab12Cd").items() if k != "charset"}
    missing["sign"] = md5_sign(APP_SECRET, missing)
    assert (await post(world, INIT_TOKEN, missing))["code"] == 130
    wrong_grant = grant_form(world, "Ab12Cd", grant_type="refresh_token")
    assert (await post(world, INIT_TOKEN, wrong_grant))["code"] != 0
    assert (await post(world, INIT_TOKEN, grant_form(world, "12345")))["code"] != 0
    assert world.fake.grants == []
    ok = await post(world, INIT_TOKEN, grant_form(world, "Ab12Cd"))
    assert ok["code"] == 0
    again = await post(world, INIT_TOKEN, grant_form(world, "Ab12Cd"))
    assert again["code"] != 0
    assert world.fake.grants == ["getInitToken"]
    page_code = await post(world, CODE_TOKEN, grant_form(world, "Ab12Cd"))
    assert page_code["code"] != 0  # a made-up code is no authorisation page's code


async def test_jushuitan_a_new_grant_retires_the_tokens_before_it(world: JstWorld) -> None:
    first = client(world)
    await first.connect()
    old = world.fake.access_token
    await client(world, MemoryTokenStore()).connect()
    form = first.form(OrderQueryBiz(so_ids=["X"]), old)
    assert (await post(world, "/open/orders/single/query", form))["code"] == 100


def test_jushuitan_authorisation_page_is_signed(clock: FakeClock) -> None:
    settings = WarehouseSettings(
        connector="jushuitan", app_key=APP_KEY, app_secret=SecretStr(APP_SECRET)
    )
    url = authorization_page(settings, clock.now(), state="shop-7")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://openweb.jushuitan.com/auth"
    query = dict(parse_qsl(parts.query))
    assert set(query) == {"app_key", "timestamp", "charset", "state", "sign"}
    assert query["sign"] == md5_sign(APP_SECRET, query)
    bare = dict(parse_qsl(urlsplit(authorization_page(settings, clock.now())).query))
    assert "state" not in bare
