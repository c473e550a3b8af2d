"""The comment panel in headless Chromium, on a real live stream's page (an ffmpeg publisher
pushes RTMP to the edge of a live stack on a Redis database of its own): XSS payloads arrive
as inert text, two pages see each other's comments, a moderator's delete removes a comment
from the other page at once, likes and reports reach the other pages (report counts to
moderators only), a blocked term (evaded with full-width letters and a zero-width space) is
held until a moderator approves it, a timed-out fan is told for how long, a ban hides the
author's comments everywhere and refuses their next one, refusals are shown in words, a
dropped socket resumes with ``?after=``, the phone layout fits, and on a highlight (a real
4 s clip) the danmaku overlay replays comments when the video reaches their media time.

Fans register through the accounts API; the moderator is made in the database and signs in
through the panel's own form (or, where that is not the point, through the sessions API)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx2
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Dialog,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

from core import auth
from core.db import session_scope
from core.models import Role
from tests.functional.stack import Stack, make_partner, running_stack, wait_for_status
from tests.functional.test_fan_page import CHROMIUM_ARGS, PHONE, screenshot
from tests.functional.test_live_page import publish, wait_playable
from tests.media import make_clip

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
REDIS_URL = "redis://127.0.0.1:6379/4"  # this module's stack alone
LEAGUE = "comment-panel"
TITLE = "Comments final"
PASSWORD = "panel-password-123"
MODERATOR_EMAIL = "mod@panel.example.com"
XSS = [
    '<img src=x onerror="window.__xss=1;alert(1)">',
    "<script>window.__xss=2;alert(2)</script>",
    '<a href="javascript:window.__xss=3">click me</a>',
]


@dataclass(frozen=True)
class Channels:
    live: str  # a stream on air while the module runs
    highlight: str  # a READY 4 s highlight of the same league


@pytest.fixture(scope="module")
def panel_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("comment-panel")
    with running_stack(tmp, live=True, overrides={"COURTSIDE_REDIS_URL": REDIS_URL}) as stack:
        yield stack


@pytest.fixture(scope="module")
def channels(panel_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Channels]:
    partner = make_partner(panel_stack, LEAGUE, live=True)
    highlight = _highlight(panel_stack, partner, tmp_path_factory.mktemp("clip"))
    with session_scope(panel_stack.sessions) as session:
        auth.create_user(
            session,
            email=MODERATOR_EMAIL,
            handle="panel_mod",
            password=PASSWORD,
            role=Role.MODERATOR,
        )
    with httpx2.Client(base_url=panel_stack.base_url, timeout=30) as client:
        created = client.post(
            "/v1/live",
            json={"league": LEAGUE, "title": TITLE},
            headers={"Authorization": f"Bearer {partner}"},
        ).json()
        log = tmp_path_factory.mktemp("publisher") / "ffmpeg.log"
        publisher = publish(f"{panel_stack.rtmp_url}/{created['stream_key']}", log)
        try:
            wait_playable(client, str(created["id"]))
            yield Channels(str(created["id"]), highlight)
        finally:
            publisher.kill()
            publisher.wait()


def _highlight(stack: Stack, partner: str, folder: Path) -> str:
    """A real 4 s clip uploaded through the partner API and processed by the worker."""
    source = make_clip(folder, seconds=4, width=320, height=180)
    with httpx2.Client(base_url=stack.base_url, timeout=60) as client, source.open("rb") as f:
        response = client.post(
            "/v1/assets",
            headers={"Authorization": f"Bearer {partner}"},
            data={"league": LEAGUE, "title": "Danmaku clip"},
            files={"file": ("clip.mp4", f, "video/mp4")},
        )
        asset_id = str(response.json()["id"])
        assert wait_for_status(client, asset_id, partner, {"ready", "failed"})["status"] == "ready"
    return asset_id


_fans = iter(range(1000))


def fan_token(stack: Stack) -> str:
    """A new fan account's session token, registered through the accounts API."""
    n = next(_fans)
    body = {"email": f"fan{n}@panel.example.com", "handle": f"panel_fan{n}", "password": PASSWORD}
    response = httpx2.post(f"{stack.base_url}/v1/accounts", json=body, timeout=30)
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def post(stack: Stack, channel: str, token: str, text: str) -> dict[str, object]:
    response = httpx2.post(
        f"{stack.base_url}/v1/comments/{channel}",
        json={"text": text, "media_ms": None},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code in (200, 201, 202), response.text
    body: dict[str, object] = response.json()
    return body


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextlib.contextmanager
def fan_page(
    browser: Browser,
    token: str | None = None,
    *,
    phone: bool = False,
    reduced_motion: Literal["reduce", "no-preference"] = "no-preference",
) -> Iterator[Page]:
    """A page in its own browser context (its own storage), signed in with ``token``."""
    context: BrowserContext = browser.new_context(
        viewport=PHONE if phone else DESKTOP,
        is_mobile=phone,
        has_touch=phone,
        locale="en-GB",
        reduced_motion=reduced_motion,
    )
    if token:
        context.add_init_script(f"localStorage.setItem('courtside.session', {token!r})")
    try:
        yield context.new_page()
    finally:
        context.close()


def open_panel(page: Page, stack: Stack, channel: str, path: str = "live") -> None:
    page.goto(f"{stack.base_url}/{path}/{channel}")
    expect(page.locator("#comment-status")).to_have_text("Live comments connected.", timeout=20_000)


def comment(page: Page, text: str) -> None:
    page.get_by_label("Your comment").fill(text)
    page.get_by_role("button", name="Send").click()


def texts(page: Page) -> list[str]:
    return page.locator("#comment-list .comment-text").all_inner_texts()


def _dismiss(dialog: Dialog, seen: list[Dialog]) -> None:
    seen.append(dialog)
    dialog.dismiss()  # a handled-for dialog left open would freeze the page


def test_xss_payloads_arrive_as_inert_text(
    panel_stack: Stack, channels: Channels, browser: Browser
) -> None:
    token = fan_token(panel_stack)
    with fan_page(browser) as page:
        dialogs: list[Dialog] = []
        page.on("dialog", lambda dialog: _dismiss(dialog, dialogs))
        open_panel(page, panel_stack, channels.live)
        for payload in XSS:
            post(panel_stack, channels.live, token, payload)
        for payload in XSS:
            expect(page.locator("#comment-list .comment-text", has_text=payload)).to_have_count(1)
        items = page.locator("#comment-list")
        assert items.locator("img, script, a, iframe, svg").count() == 0
        assert page.evaluate("() => window.__xss") is None
        page.reload()  # from history too
        expect(page.locator("#comment-list .comment-text", has_text=XSS[0])).to_have_count(1)
        assert items.locator("img, script, a").count() == 0
        assert page.evaluate("() => window.__xss") is None
        assert dialogs == []


def test_two_pages_see_each_others_comments(
    panel_stack: Stack, channels: Channels, browser: Browser
) -> None:
    with (
        fan_page(browser, fan_token(panel_stack)) as one,
        fan_page(browser, fan_token(panel_stack)) as two,
    ):
        open_panel(one, panel_stack, channels.live)
        open_panel(two, panel_stack, channels.live)
        comment(one, "Hello from page one")
        expect(two.locator("#comment-list")).to_contain_text("Hello from page one", timeout=5_000)
        comment(two, "And hello back from two")
        expect(one.locator("#comment-list")).to_contain_text("And hello back from two")
        expect(one.get_by_label("Your comment")).to_have_value("")
        # Anonymous readers see the comments but no post box: a sign-in form instead.
        with fan_page(browser) as reader:
            open_panel(reader, panel_stack, channels.live)
            expect(reader.locator("#comment-list")).to_contain_text("And hello back from two")
            expect(reader.get_by_label("Your comment")).to_be_hidden()
            expect(reader.get_by_role("button", name="Sign in")).to_be_visible()
            expect(reader.locator(".comment-mod")).to_have_count(0)


def test_a_moderators_delete_removes_the_comment_from_the_other_page(
    panel_stack: Stack, channels: Channels, browser: Browser
) -> None:
    fan = fan_token(panel_stack)
    with fan_page(browser, fan) as fan_view, fan_page(browser) as moderator:
        open_panel(fan_view, panel_stack, channels.live)
        open_panel(moderator, panel_stack, channels.live)
        sign_in_as_moderator(moderator)  # through the panel's own form
        comment(fan_view, "Please delete me")
        row = moderator.locator("#comment-list li", has_text="Please delete me")
        expect(row).to_have_count(1)
        expect(fan_view.locator(".comment-mod")).to_have_count(0)  # fans get no controls
        row.get_by_role("button", name="Delete this comment by").click()
        expect(fan_view.locator("#comment-list li", has_text="Please delete me")).to_have_count(
            0, timeout=3_000
        )
        expect(row).to_have_count(0)


def sign_in_as_moderator(page: Page) -> None:
    page.get_by_label("Email").fill(MODERATOR_EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#comment-who")).to_have_text("Signed in as panel_mod")


def test_likes_and_reports_reach_the_other_pages(
    panel_stack: Stack, channels: Channels, browser: Browser
) -> None:
    author = fan_token(panel_stack)
    with (
        fan_page(browser, fan_token(panel_stack)) as fan,
        fan_page(browser) as moderator,
        fan_page(browser) as reader,
    ):
        for page in (fan, moderator, reader):
            open_panel(page, panel_stack, channels.live)
        sign_in_as_moderator(moderator)
        post(panel_stack, channels.live, author, "Like and report me")
        row = fan.locator("#comment-list li", has_text="Like and report me")
        row.get_by_role("button", name="Like (0 likes)").click()
        expect(row.locator(".comment-like")).to_have_attribute("aria-pressed", "true")
        liked = reader.locator("#comment-list li", has_text="Like and report me")
        expect(liked.get_by_role("button", name="Like (1 likes)")).to_be_visible()
        row.get_by_role("button", name="Report").click()
        expect(fan.locator("#comment-status")).to_have_text(
            "Thank you: a moderator will look at it."
        )
        reported = moderator.locator("#comment-list li", has_text="Like and report me")
        expect(reported.locator(".comment-reports")).to_have_text("1 reports")
        expect(liked.locator(".comment-reports")).to_have_count(0)  # for moderators only


def test_a_ban_hides_the_authors_comments_everywhere_and_stops_them(
    panel_stack: Stack, channels: Channels, browser: Browser
) -> None:
    with (
        fan_page(browser, fan_token(panel_stack)) as troll,
        fan_page(browser) as moderator,
        fan_page(browser) as reader,
    ):
        for page in (troll, moderator, reader):
            open_panel(page, panel_stack, channels.live)
        sign_in_as_moderator(moderator)
        comment(troll, "first rude remark")
        comment(troll, "second rude remark")
        expect(reader.locator("#comment-list")).to_contain_text("second rude remark")
        moderator.once("dialog", lambda dialog: dialog.accept())  # "Ban … and hide …?"
        row = moderator.locator("#comment-list li", has_text="first rude remark")
        row.get_by_role("button", name="Ban panel_fan").click()
        rude = reader.locator("#comment-list li", has_text="rude remark")
        expect(rude).to_have_count(0, timeout=3_000)
        comment(troll, "third rude remark")
        expect(troll.get_by_role("alert")).to_have_text("You are banned from commenting here.")
        expect(reader.locator("#comment-list")).not_to_contain_text("third rude remark")


def moderator_token(stack: Stack) -> str:
    body = {"email": MODERATOR_EMAIL, "password": PASSWORD}
    response = httpx2.post(f"{stack.base_url}/v1/sessions", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def test_a_held_comment_waits_for_a_moderators_approval(
    panel_stack: Stack, channels: Channels, browser: Browser
) -> None:
    token = moderator_token(panel_stack)
    response = httpx2.put(
        f"{panel_stack.base_url}/v1/comments/blocked-terms",
        json={"terms": ["spoilerword"]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    with (
        fan_page(browser, fan_token(panel_stack)) as fan,
        fan_page(browser, token) as moderator,
        fan_page(browser) as reader,
    ):
        for page in (fan, moderator, reader):
            open_panel(page, panel_stack, channels.live)
        comment(fan, "the \uff33\uff30\uff2f\uff29\uff2c\uff25\uff32\u200bword is out")  # evasion
        alert = fan.get_by_role("alert")
        expect(alert).to_have_text("Your comment is held for review by a moderator.")
        held = moderator.locator("#comment-list li.held", has_text="word is out")
        expect(held.locator(".comment-held")).to_have_text("Held for review")
        held.get_by_role("button", name="Approve").click()
        expect(reader.locator("#comment-list")).to_contain_text("word is out")
        expect(moderator.locator("#comment-list li.held")).to_have_count(0)


def test_a_timed_out_fan_is_told_when_they_may_comment_again(
    panel_stack: Stack, channels: Channels, browser: Browser
) -> None:
    with (
        fan_page(browser, fan_token(panel_stack)) as fan,
        fan_page(browser, moderator_token(panel_stack)) as moderator,
    ):
        for page in (fan, moderator):
            open_panel(page, panel_stack, channels.live)
        comment(fan, "one too many")
        row = moderator.locator("#comment-list li", has_text="one too many")
        row.get_by_role("button", name="Time out panel_fan").click()
        expect(moderator.locator("#comment-status")).to_have_text("Done.")
        comment(fan, "and another")
        expect(fan.get_by_role("alert")).to_contain_text(
            "You are timed out: you can comment again in"
        )


def test_refusals_are_shown_in_words(
    panel_stack: Stack, channels: Channels, browser: Browser
) -> None:
    with fan_page(browser, fan_token(panel_stack)) as page:
        open_panel(page, panel_stack, channels.live)
        for n in range(5):  # the bucket holds 3 in 2 s
            comment(page, f"quick {n}")
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("Slow down: you can comment again in")


def test_a_dropped_socket_resumes_after_the_last_seen_comment(
    panel_stack: Stack, channels: Channels, browser: Browser
) -> None:
    token = fan_token(panel_stack)
    with fan_page(browser) as page:
        open_panel(page, panel_stack, channels.live)
        post(panel_stack, channels.live, token, "before the drop")
        expect(page.locator("#comment-list")).to_contain_text("before the drop")
        # As the server does for a lagging client: close 4008, then resume at once.
        page.evaluate("() => window.courtsideComments.socket.close(4008, 'lagging')")
        post(panel_stack, channels.live, token, "while away")
        expect(page.locator("#comment-list")).to_contain_text("while away", timeout=10_000)
        url = page.evaluate("() => window.courtsideComments.socket.url")
        assert "after=" in url
        assert texts(page).count("while away") == 1
        assert texts(page).count("before the drop") == 1


def test_the_panel_fits_a_phone_and_is_keyboard_usable(
    panel_stack: Stack, channels: Channels, browser: Browser
) -> None:
    with fan_page(browser, fan_token(panel_stack), phone=True) as phone:
        open_panel(phone, panel_stack, channels.live)
        overflow = phone.evaluate("() => document.documentElement.scrollWidth - innerWidth")
        assert overflow <= 0
        box = phone.get_by_label("Your comment")
        box.focus()
        box.type("typed on a phone")
        box.press("Enter")
        expect(phone.locator("#comment-list")).to_contain_text("typed on a phone")
        expect(phone.get_by_role("log", name="Comments, newest last")).to_be_visible()


# Notes the video's time when the first comment enters the overlay.
WATCH_FLIGHTS = """() => {
  const video = document.getElementById('video');
  new MutationObserver((changes, observer) => {
    window.__flewAt = video.currentTime;
    observer.disconnect();
  }).observe(document.getElementById('danmaku'), { childList: true });
}"""


def post_at(stack: Stack, channel: str, token: str, text: str, media_ms: int) -> None:
    response = httpx2.post(
        f"{stack.base_url}/v1/comments/{channel}",
        json={"text": text, "media_ms": media_ms},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text


def test_danmaku_replays_a_highlights_comments_at_their_media_time(
    panel_stack: Stack, channels: Channels, browser: Browser
) -> None:
    token = fan_token(panel_stack)
    post_at(panel_stack, channels.highlight, token, "at two and a half seconds", 2500)
    with fan_page(browser) as page:
        open_panel(page, panel_stack, channels.highlight, path="watch")
        page.get_by_label("Comments over the video").check()
        page.wait_for_function("() => window.courtsideComments.danmaku.byBucket.size > 0")
        page.evaluate(WATCH_FLIGHTS)
        page.evaluate(
            "() => { const v = document.getElementById('video'); v.currentTime = 0; v.play(); }"
        )
        flying = page.locator("#danmaku .danmaku-item", has_text="at two and a half seconds")
        expect(flying).to_have_count(1, timeout=15_000)
        at = page.evaluate("() => window.__flewAt")
        assert 2.2 <= at <= 3.0  # it flew when the video got there (timeupdate: ~0.25 s steps)


def test_a_highlight_offers_the_danmaku_overlay(
    panel_stack: Stack, channels: Channels, browser: Browser
) -> None:
    token = fan_token(panel_stack)
    with fan_page(browser) as page:
        open_panel(page, panel_stack, channels.highlight, path="watch")
        toggle = page.get_by_label("Comments over the video")
        expect(toggle).not_to_be_checked()
        toggle.check()
        expect(page.locator("#danmaku")).to_be_visible()
        post(panel_stack, channels.highlight, token, "flying <b>over</b> the clip")
        flying = page.locator("#danmaku .danmaku-item", has_text="flying <b>over</b> the clip")
        expect(flying).to_have_count(1)
        assert page.locator("#danmaku b").count() == 0
        assert page.locator("#danmaku").get_attribute("aria-hidden") == "true"
    with fan_page(browser, reduced_motion="reduce") as still:
        open_panel(still, panel_stack, channels.highlight, path="watch")
        still.get_by_label("Comments over the video").check()
        expect(still.locator("#danmaku")).to_have_class("danmaku still")


def test_screenshot_of_the_live_page_with_comments(
    panel_stack: Stack, channels: Channels, browser: Browser
) -> None:
    fans = [fan_token(panel_stack) for _ in range(3)]
    lines = [
        "What a start to the final!",
        "Vilken räddning av målvakten!",  # (this machine's Chromium has no CJK font)
        "Heja! Vilken match",
        "<b>not bold</b> — comments are plain text",
    ]
    for n, line in enumerate(lines):
        post(panel_stack, channels.live, fans[n % len(fans)], line)
    with fan_page(browser, fans[0]) as page:
        open_panel(page, panel_stack, channels.live)
        page.wait_for_function(
            "() => document.getElementById('video').currentTime > 0", timeout=30_000
        )
        newest = page.locator("#comment-list li", has_text="comments are plain text")
        expect(newest).to_be_in_viewport()  # the list starts at the newest
        screenshot(page, "live-comments.png")
