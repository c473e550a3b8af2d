"""The fan page in headless Chromium: it lists the highlights and plays one with hls.js."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.functional.stack import Stack, make_partner, revoke_league_grants, wait_for_status

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture(scope="module")
def ready_highlight(stack: Stack, real_clip: Path) -> str:
    key = make_partner(stack, "page-league")
    with httpx2.Client(base_url=stack.base_url, timeout=60) as client, real_clip.open("rb") as f:
        response = client.post(
            "/v1/assets",
            headers={"Authorization": f"Bearer {key}"},
            data={"league": "page-league", "title": "Page test winner"},
            files={"file": ("clip.mp4", f, "video/mp4")},
        )
        asset_id = str(response.json()["id"])
        assert wait_for_status(client, asset_id, key, {"ready", "failed"})["status"] == "ready"
    return asset_id


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def test_fan_page_lists_and_plays(stack: Stack, ready_highlight: str, page: Page) -> None:
    page.goto(stack.base_url + "/")
    card = page.locator(f'button.card[data-asset-id="{ready_highlight}"]')
    card.wait_for(timeout=15_000)
    assert "Page test winner" in card.inner_text()
    card.click()
    page.wait_for_function(
        "() => document.getElementById('video').currentTime > 1.5", timeout=20_000
    )
    assert page.evaluate("() => window.Hls && window.Hls.isSupported()") is True
    assert page.locator("#now-playing").inner_text() == "Page test winner"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "fan-home.png"))


def test_a_revoked_highlight_shows_why_it_cannot_play(
    stack: Stack, ready_highlight: str, page: Page
) -> None:
    page.goto(stack.base_url + "/")
    card = page.locator(f'button.card[data-asset-id="{ready_highlight}"]')
    card.wait_for(timeout=15_000)
    revoke_league_grants(stack, "page-league")  # after the page listed it, before the click
    card.click()
    status = page.locator("#player-status")
    status.filter(has_text="available to watch").wait_for(timeout=10_000)
    assert page.evaluate("() => document.getElementById('video').currentTime") == 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "not-available.png"))
