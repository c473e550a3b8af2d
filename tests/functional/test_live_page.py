"""A live stream in the fan pages, in headless Chromium: an ffmpeg publisher pushes RTMP to
the edge, the live worker publishes HLS, the home page lists the stream as live, and its page
plays it with hls.js (time advances, the LIVE badge and go-live button are shown)."""

from __future__ import annotations

import subprocess  # noqa: TID251 - a real ffmpeg publisher
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.functional.stack import Stack, make_partner, running_stack
from tests.functional.test_fan_page import CHROMIUM_ARGS, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
LEAGUE = "live-pages"
TITLE = "Live page final"


@pytest.fixture(scope="module")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("live-page"), live=True) as stack:
        yield stack


@pytest.fixture(scope="module")
def on_air(live_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A stream of a league licensed for live worldwide, published to until the module ends;
    yields its id once it is playable."""
    partner = make_partner(live_stack, LEAGUE, live=True)
    with httpx2.Client(base_url=live_stack.base_url, timeout=30) as client:
        created = client.post(
            "/v1/live",
            json={"league": LEAGUE, "title": TITLE},
            headers={"Authorization": f"Bearer {partner}"},
        ).json()
        log = tmp_path_factory.mktemp("publisher") / "ffmpeg.log"
        publisher = publish(f"{live_stack.rtmp_url}/{created['stream_key']}", log)
        try:
            wait_playable(client, str(created["id"]))
            yield str(created["id"])
        finally:
            publisher.kill()
            publisher.wait()


def publish(url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
             "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25",
             "-re", "-f", "lavfi", "-i", "sine=frequency=440",
             "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25",
             "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv", url],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def wait_playable(client: httpx2.Client, stream_id: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if client.post(f"/v1/playback/{stream_id}").status_code == 200:
            return
        time.sleep(0.5)
    raise AssertionError(f"live stream {stream_id} was not playable within {timeout_s:.0f} s")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    yield context.new_page()
    context.close()


def test_home_lists_the_stream_as_live(live_stack: Stack, on_air: str, page: Page) -> None:
    page.goto(f"{live_stack.base_url}/")
    live_now = page.locator('section[aria-labelledby="live-heading"]')
    card = live_now.locator(f'a.card[data-asset-id="{on_air}"]')
    expect(card).to_be_visible(timeout=10_000)
    # Listed once: the latest highlights per league leave streams on air out.
    expect(page.locator(f'a.card[data-asset-id="{on_air}"]')).to_have_count(1)
    expect(card.locator(".badge-live")).to_have_text("Live")
    assert card.get_attribute("href") == f"/live/{on_air}"


def test_the_live_page_plays_the_stream_with_hls_js(
    live_stack: Stack, on_air: str, page: Page
) -> None:
    page.goto(f"{live_stack.base_url}/live/{on_air}")
    expect(page.locator("#now-playing")).to_have_text(TITLE, timeout=10_000)
    expect(page.locator("#live-badge")).to_have_text("Live")
    expect(page.locator("#go-live")).to_be_visible()
    page.wait_for_function("() => document.getElementById('video').currentTime > 0", timeout=30_000)
    first = page.evaluate("() => document.getElementById('video').currentTime")
    page.wait_for_function(
        f"() => document.getElementById('video').currentTime > {first} + 2", timeout=30_000
    )
    levels = page.evaluate("() => window.courtside.hls.levels.map(l => l.height)")
    assert levels
    assert max(levels) <= 360  # never above the input
    assert page.evaluate("() => window.courtside.hls.liveSyncPosition") is not None
    screenshot(page, "live.png")
