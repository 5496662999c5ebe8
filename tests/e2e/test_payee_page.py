"""The sandbox page in a real browser: the payee account an agent types leaves the group's copy
of the message, and finance reads it in their own chat with the bot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, expect

from bot.app import create_app
from tests.e2e.test_sandbox_page import browser, open_as
from tests.support.app import make_settings

__all__ = ["browser"]
pytestmark = pytest.mark.e2e
ACCOUNT = "13800138000"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[TestServer]:
    groups = [{"id": "aftersales", "name": "售后一组", "channel": "sandbox"}]
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'e2e.db'}", groups=groups))
    server = TestServer(app)
    await server.start_server()
    yield server
    await server.close()


async def say(page: Page, text: str) -> None:
    await page.locator("#text").fill(text)
    await page.locator("#text").press("Enter")


async def test_the_typed_account_is_masked_and_finance_reads_it_in_their_own_chat(
    browser: Browser, server: TestServer, tmp_path: Path
) -> None:
    agent = await open_as(browser, server, "agent1")
    await say(agent, f"打款 补偿 T88001 5 {ACCOUNT} 王小明 快递破损补偿")
    log = agent.locator("#log")
    await expect(log).to_contain_text("138****8000 王** 快递破损补偿", timeout=10_000)
    await expect(log).not_to_contain_text(ACCOUNT)

    finance = await open_as(browser, server, "fin1")
    await say(finance, "收款 P1")
    await expect(finance.locator("#log")).to_contain_text("已私信发给 fin1", timeout=10_000)
    await expect(finance.locator("#log")).not_to_contain_text(ACCOUNT)
    await finance.locator("#groups li", has_text="私信 · fin1").click()
    await expect(finance.locator("#log")).to_contain_text(f"收款账号：{ACCOUNT}", timeout=10_000)
    await finance.screenshot(path=str(tmp_path / "payee-dm.png"))
    await expect(agent.locator("#log")).not_to_contain_text(ACCOUNT)
