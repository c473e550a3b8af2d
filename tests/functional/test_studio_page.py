"""The partner's studio page in headless Chromium: go live over WHIP from the browser.

Chromium's fake camera and microphone publish to the API's WHIP endpoint, the stream goes
live through the RTMP edge and the live worker, and Stop ends the session. A wrong key and a
second publisher see the API's refusal in words.

ICE: the API offers only 127.0.0.1 (its setting). Chromium offers loopback only with
``--allow-loopback-in-peer-connection`` (without it: only the machine's other addresses), and
then still prefers a pair from its interface address to the server's 127.0.0.1 (it ranks
loopback last); that traffic is addressed to this machine and stays on ``lo``. With the fake
media permission granted Chromium shows addresses, not mDNS names, even without the
``WebRtcHideLocalIpsWithMdns`` switch; it is kept off so that stays true."""

from __future__ import annotations

import json
import logging
import subprocess  # noqa: TID251 - ffprobe of a stored segment
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from core.webrtc import candidate_addresses
from tests.conftest import bearer
from tests.functional.stack import Stack, make_partner, running_stack
from tests.functional.test_fan_page import CHROMIUM_ARGS, PHONE, SCREENSHOTS

log = logging.getLogger(__name__)
pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(240)]
LEAGUE = "studio"
REDIS_URL = "redis://127.0.0.1:6379/3"  # this module's stack alone
# The server offers 127.0.0.1 only and ignores Chromium's other candidates and checks, so
# every ICE packet goes between loopback addresses.
OVERRIDES = {
    "COURTSIDE_WEBRTC_HOST_ADDRESSES": '["127.0.0.1"]',
    "COURTSIDE_WEBRTC_PEER_NETWORKS": '["127.0.0.0/8"]',
    "COURTSIDE_REDIS_URL": REDIS_URL,
}
# A fake camera and microphone allowed without a prompt; loopback among the host candidates,
# shown as addresses (not mDNS names, which the server could not resolve).
STUDIO_ARGS = [
    *CHROMIUM_ARGS,
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("studio"), live=True, overrides=OVERRIDES) as s:
        yield s


@pytest.fixture(scope="module")
def partner(stack: Stack) -> str:
    return make_partner(stack, LEAGUE, live=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=STUDIO_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-GB")
    yield context.new_page()
    context.close()


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, locale="en-GB", is_mobile=True, has_touch=True)
    yield context.new_page()
    context.close()


def new_stream(stack: Stack, partner: str) -> tuple[str, str]:
    body = {"league": LEAGUE, "title": "Studio test"}
    response = httpx2.post(f"{stack.base_url}/v1/live", json=body, headers=bearer(partner))
    assert response.status_code == 201, response.text
    created = response.json()
    return str(created["id"]), str(created["stream_key"])


def stream_state(stack: Stack, partner: str, stream_id: str) -> dict[str, object]:
    response = httpx2.get(f"{stack.base_url}/v1/live/{stream_id}", headers=bearer(partner))
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def wait_for(check: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def segments(stack: Stack, stream_id: str) -> list[Path]:
    return sorted((stack.media_dir / "live" / stream_id).glob("*/*.m4s"))


def codecs_of_first_segment(stack: Stack, stream_id: str, tmp: Path) -> set[str]:
    """The codecs in the first stored segment (with its rung's init segment), by ffprobe."""
    segment = segments(stack, stream_id)[0]
    joined = tmp / "first.mp4"
    init = next(segment.parent.glob("init-*.mp4"))
    joined.write_bytes(init.read_bytes() + segment.read_bytes())
    argv = ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "json",
            "-protocol_whitelist", "file", str(joined)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    return {stream["codec_name"] for stream in json.loads(done.stdout)["streams"]}


def open_studio(page: Page, stack: Stack, stream_id: str) -> None:
    page.goto(f"{stack.base_url}/studio/{stream_id}")
    expect(page.get_by_role("heading", name="Studio")).to_be_visible()


def test_go_live_from_the_browser_then_stop(
    stack: Stack, partner: str, page: Page, tmp_path: Path
) -> None:
    stream_id, key = new_stream(stack, partner)
    open_studio(page, stack, stream_id)
    page.get_by_label("Stream key").fill(key)
    started = time.monotonic()
    with page.expect_response(lambda r: r.request.method == "POST" and "/whip" in r.url) as whip:
        page.get_by_role("button", name="Go live").click()
    answer = whip.value
    assert answer.status == 201, answer.text()
    offer = answer.request.post_data or ""
    assert answer.request.headers["authorization"] == f"Bearer {key}"
    assert offer.count("a=sendonly") == 2, offer  # camera and microphone, send only
    # Non-trickle: the offer carries the gathered candidates (loopback among them).
    offered = candidate_addresses(offer)
    log.info("offered candidates: %s", offered)
    assert ("127.0.0.1", "host") in offered, offer
    assert {address for address, _ in candidate_addresses(answer.text())} == {"127.0.0.1"}
    status = page.get_by_role("status").first
    expect(status).to_have_text("Live: sending to Courtside.", timeout=30_000)
    connected_s = time.monotonic() - started
    expect(page.locator("#on-air")).to_be_visible()
    assert page.locator("#camera option").count() >= 1  # the fake camera, by its label

    wait_for(lambda: stream_state(stack, partner, stream_id)["state"] == "live", 60, "live")
    live_s = time.monotonic() - started
    state = stream_state(stack, partner, stream_id)
    assert state["protocol"] == "whip", state
    assert state["publishing"] is True, state
    wait_for(lambda: len(segments(stack, stream_id)) >= 2, 60, "HLS segments in the store")
    assert (stack.media_dir / "live" / stream_id / "master.m3u8").is_file()
    assert codecs_of_first_segment(stack, stream_id, tmp_path) == {"h264", "aac"}
    log.info("connected %.1f s, stream live %.1f s after Go live", connected_s, live_s)
    expect(page.locator("#studio-stats")).to_contain_text("kbit/s", timeout=10_000)
    log.info("page says: %s", page.locator("#studio-stats").inner_text())
    path = page.locator("#studio-stats").get_attribute("data-path") or ""
    log.info("ICE path: %s", path)
    local, _, remote = path.partition(" → ")
    # Both ends loopback: the server answered none of Chromium's checks from its other
    # addresses (COURTSIDE_WEBRTC_PEER_NETWORKS), so the pair it chose is 127.0.0.1 to 127.0.0.1.
    assert remote.startswith("127.0.0.1:"), path
    assert local.startswith("127.0.0.1:"), path
    page.evaluate("window.scrollTo(0, 0)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "studio.png"), full_page=True)

    page.get_by_role("button", name="Stop").click()
    expect(status).to_contain_text("Stopped", timeout=10_000)
    wait_for(
        lambda: stream_state(stack, partner, stream_id)["publishing"] is False, 20, "publisher left"
    )
    expect(page.get_by_role("button", name="Go live")).to_be_enabled()
    expect(page.get_by_role("alert")).to_be_hidden()


def test_a_wrong_key_shows_the_refusal(stack: Stack, partner: str, page: Page) -> None:
    stream_id, _key = new_stream(stack, partner)
    open_studio(page, stack, stream_id)
    page.get_by_label("Stream key").fill("cs_live_not-a-real-key")
    page.get_by_label("Stream key").press("Enter")  # the form submits from the keyboard
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The stream key was refused", timeout=15_000)
    expect(page.get_by_role("button", name="Go live")).to_be_enabled()
    assert stream_state(stack, partner, stream_id)["publishing"] is False


def test_a_second_publisher_is_told_the_stream_is_busy(
    stack: Stack, partner: str, browser: Browser
) -> None:
    stream_id, key = new_stream(stack, partner)
    first = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-GB")
    second = browser.new_context(viewport={"width": 1100, "height": 900}, locale="sv-SE")
    try:
        one, two = first.new_page(), second.new_page()
        open_studio(one, stack, stream_id)
        one.get_by_label("Stream key").fill(key)
        one.get_by_role("button", name="Go live").click()
        expect(one.locator("#studio-state")).to_have_attribute("data-state", "live", timeout=30_000)
        wait_for(lambda: stream_state(stack, partner, stream_id)["publishing"], 30, "publishing")
        two.goto(f"{stack.base_url}/studio/{stream_id}")
        two.get_by_label("Strömnyckel").fill(key)
        two.get_by_role("button", name="Sänd direkt").click()
        expect(two.get_by_role("alert")).to_contain_text("någon sänder redan", timeout=20_000)
        one.get_by_role("button", name="Stop").click()
        expect(one.locator("#studio-state")).to_have_attribute("data-state", "stopped")
    finally:
        first.close()
        second.close()


def test_the_studio_fits_a_phone_and_works_from_the_keyboard(
    stack: Stack, partner: str, phone: Page
) -> None:
    stream_id, _key = new_stream(stack, partner)
    open_studio(phone, stack, stream_id)
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways: {width}px"
    phone.keyboard.press("Tab")  # the skip link first
    phone.keyboard.press("Tab")
    focused = []
    for _ in range(8):
        phone.keyboard.press("Tab")
        focused.append(phone.evaluate("document.activeElement.id"))
    for control in ("stream-key", "camera", "microphone", "start-preview", "go-live"):
        assert control in focused, focused
    phone.get_by_role("button", name="Start camera").click()
    expect(phone.locator("#studio-state")).to_have_attribute("data-state", "preview")
    phone.wait_for_function("() => document.getElementById('preview').videoWidth > 0")


def test_the_page_says_when_the_server_ends_the_session(
    stack: Stack, partner: str, page: Page
) -> None:
    stream_id, key = new_stream(stack, partner)
    open_studio(page, stack, stream_id)
    page.get_by_label("Stream key").fill(key)
    with page.expect_response(lambda r: r.request.method == "POST" and "/whip" in r.url) as whip:
        page.get_by_role("button", name="Go live").click()
    session_url = stack.base_url + whip.value.headers["location"]
    state = page.locator("#studio-state")
    expect(state).to_have_attribute("data-state", "live", timeout=30_000)
    ended = time.monotonic()
    assert httpx2.delete(session_url, headers=bearer(key)).status_code == 204
    expect(page.get_by_role("alert")).to_contain_text("lost or ended", timeout=45_000)
    log.info("the page noticed the end after %.1f s", time.monotonic() - ended)
    expect(state).to_have_attribute("data-state", "error")
    expect(page.get_by_role("button", name="Go live")).to_be_enabled()
