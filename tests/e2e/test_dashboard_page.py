"""The dashboard in a real browser, on a desktop and on a phone: it fits the width and every
chart's text is drawn at a legible size."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page

from bot.app import create_app
from tests.e2e.test_sandbox_page import browser, post_refund
from tests.support.app import make_settings

pytestmark = pytest.mark.e2e
__all__ = ["browser"]

SMALLEST_PX = 11
# Every chart text the page shows, with the size it is drawn at on screen (its font size in
# the chart's own units times the chart's scale).
CHART_TEXT = """() => [...document.querySelectorAll("svg text")]
  .filter((t) => t.getClientRects().length > 0)
  .map((t) => ({text: t.textContent,
                px: parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a}))"""
# Elements that reach past the right edge of the viewport.
PAST_THE_EDGE = """(width) => [...document.querySelectorAll("body *")]
  .filter((e) => e.getClientRects().length > 0 && e.getBoundingClientRect().right > width + 0.5)
  .map((e) => e.tagName + "." + (typeof e.className === "string" ? e.className : ""))"""

# The visible trend chart's dates along its x axis, left to right, with their extent.
DATES = """() => [...document.querySelectorAll("section.wide svg text.axis")]
  .filter((t) => t.getClientRects().length > 0 && /^\\d\\d-\\d\\d$/.test(t.textContent))
  .map((t) => { const b = t.getBoundingClientRect();
                return {text: t.textContent, left: b.left, right: b.right}; })
  .sort((a, b) => a.left - b.left)"""


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[TestServer]:
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'dash.db'}"))
    server = TestServer(app)
    await server.start_server()
    for amount, reason in [
        ("12.00", "拍错了/多拍了"),
        ("128.00", "尺码不合适"),
        ("899.00", "质量问题"),
    ]:
        await post_refund(server, data_amount=amount, data_order_amount=amount, data_reason=reason)
    yield server
    await server.close()


async def open_month(browser: Browser, server: TestServer, width: int, height: int) -> Page:
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    page = await browser.new_page(viewport={"width": width, "height": height})
    url = f"/dashboard?from={today - timedelta(days=29)}&to={today}"
    resp = await page.goto(str(server.make_url(url)))
    assert resp is not None
    assert resp.status == 200
    return page


async def chart_text(page: Page) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await page.evaluate(CHART_TEXT)
    assert found, "no chart text is shown"
    return found


@pytest.mark.parametrize(("width", "height"), [(1366, 800), (390, 844)])
async def test_the_dashboard_fits_and_its_charts_are_legible(
    browser: Browser, server: TestServer, tmp_path: Path, width: int, height: int
) -> None:
    page = await open_month(browser, server, width, height)
    small = [t for t in await chart_text(page) if t["px"] < SMALLEST_PX]
    assert not small, small[:10]
    assert await page.evaluate("document.documentElement.scrollWidth") <= width, (
        await page.evaluate(PAST_THE_EDGE, width)
    )
    for selector in ("header h1", "header select", "header input[name=from]", "header button"):
        box = await page.locator(selector).bounding_box()
        assert box is not None
        assert box["x"] >= 0, (selector, box)
        assert box["x"] + box["width"] <= width, (selector, box)
    # One trend chart is shown, the one drawn for this width; its dates do not overlap.
    assert await page.locator("section.wide svg:visible").count() == 1
    dates = await page.evaluate(DATES)
    assert len(dates) >= 5, dates
    for left, right in itertools.pairwise(dates):
        assert left["right"] <= right["left"], (left, right)
    await page.screenshot(path=str(tmp_path / f"dashboard-{width}.png"), full_page=True)


async def test_on_a_phone_the_tiles_and_sections_take_the_width(
    browser: Browser, server: TestServer
) -> None:
    page = await open_month(browser, server, 390, 844)
    for section in await page.locator("main > section").all():
        box = await section.bounding_box()
        assert box is not None
        # Full width less the page's margins, never wider than the phone.
        assert box["width"] >= 340, box
        assert box["x"] + box["width"] <= 390, box
    tile = await page.locator(".tile").first.bounding_box()
    assert tile is not None
    assert tile["width"] >= 140, tile
