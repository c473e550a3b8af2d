"""The fan pages in headless Chromium: home, league, search, the player (quality, previews,
shortcuts), the not-available messages, languages and the phone layout.

One small clip is uploaded through the partner API for the whole module; the items a viewer
may not watch are inserted straight into the stack's database (they never reach the store)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import Browser, Page, Response, ViewportSize, expect, sync_playwright
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import session_scope
from core.models import (
    Asset,
    AssetStatus,
    AssetTranslation,
    Competition,
    League,
    Match,
    RightsGrant,
    Season,
    Team,
)
from tests.functional.stack import Stack, make_partner, revoke_league_grants, wait_for_status
from tests.media import make_clip

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
LEAGUE = "fan-pages"
TITLE = "Fan pages winner"
RELATED = "Fan pages equaliser"
TITLES = {"sv": "Vinnarmålet på fanssidan", "zh-Hans": "球迷页面制胜球"}
PHONE: ViewportSize = {"width": 390, "height": 844}


@dataclass(frozen=True)
class FanContent:
    clip_id: str  # 360p, a 360p/240p/144p ladder, titles in three languages, two teams
    related_id: str  # a second clip of the same league and teams


@pytest.fixture(scope="module")
def content(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> FanContent:
    """Two ready clips uploaded through the partner API, then (as an editor would) given
    translations, teams, and a live and an upcoming match between those teams."""
    key = make_partner(stack, LEAGUE)
    folder = tmp_path_factory.mktemp("fan-clips")
    main = _upload(stack, key, make_clip(folder, seconds=4, width=640, height=360), TITLE)
    related = _upload(stack, key, make_clip(folder, seconds=2, width=320, height=180), RELATED)
    with session_scope(stack.sessions) as session:
        for lang, title in TITLES.items():
            session.add(AssetTranslation(asset_id=main, lang=lang, title=title))
        _add_teams_and_matches(session, [main, related])
    return FanContent(main, related)


@pytest.fixture(scope="module")
def clip_id(content: FanContent) -> str:
    return content.clip_id


def _upload(stack: Stack, key: str, source: Path, title: str) -> str:
    with httpx2.Client(base_url=stack.base_url, timeout=60) as client, source.open("rb") as f:
        response = client.post(
            "/v1/assets",
            headers={"Authorization": f"Bearer {key}"},
            data={"league": LEAGUE, "title": title, "description": "A late winner."},
            files={"file": ("clip.mp4", f, "video/mp4")},
        )
        asset_id = str(response.json()["id"])
        assert wait_for_status(client, asset_id, key, {"ready", "failed"})["status"] == "ready"
    return asset_id


def _add_teams_and_matches(session: Session, asset_ids: list[str]) -> None:
    league = session.scalars(select(League).where(League.slug == LEAGUE)).one()
    north = Team(league_id=league.id, slug="north", name="North FC", names={"sv": "Norra IF"})
    south = Team(league_id=league.id, slug="south", name="South FC", names={"sv": "Södra IF"})
    season = Season(
        name="2026", competition=Competition(league_id=league.id, slug="cup", name="Fan Cup")
    )
    session.add_all([north, south, season])
    session.flush()
    now = datetime.now(UTC)
    for kickoff in (now - timedelta(minutes=20), now + timedelta(days=1)):
        session.add(
            Match(
                season_id=season.id,
                home=north.name,
                away=south.name,
                home_team_id=north.id,
                away_team_id=south.id,
                kickoff=kickoff,
            )
        )
    for asset_id in asset_ids:
        asset = session.get(Asset, asset_id)
        assert asset is not None
        asset.linked_teams = [north, south]


def _listed_asset(stack: Stack, league_slug: str, title: str, window: Mapping[str, object]) -> str:
    """A playable-looking asset in a new league licensed worldwide within ``window``; its files
    do not exist, so any segment request that got through would fail loudly, not play."""
    with session_scope(stack.sessions) as session:
        league = League(slug=league_slug, name=league_slug.title())
        session.add(league)
        session.flush()
        session.add(
            RightsGrant(
                scope_type="league",
                scope_id=str(league.id),
                license_type="highlights",
                status="approved",
                worldwide=True,
                window=dict(window),
            )
        )
        now = datetime.now(UTC)
        asset = Asset(league_id=league.id, title=title, status=AssetStatus.READY, attempt=1)
        asset.duration_s, asset.ready_at, asset.playable_at = 10.0, now, now
        session.add(asset)
        session.flush()
        asset.master_key = f"hls/{asset.id}/1/master.m3u8"
        return asset.id


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


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, locale="en-GB", is_mobile=True, has_touch=True)
    yield context.new_page()
    context.close()


def screenshot(page: Page, name: str) -> None:
    """Save the page as a fan sees it, once its posters have loaded."""
    page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=5_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


def card_of(page: Page, asset_id: str) -> str:
    """The title on the asset's card, once the card is there."""
    card = page.locator(f'a.card[data-asset-id="{asset_id}"]').first
    card.wait_for(timeout=15_000)
    return card.locator(".title").inner_text()


def wait_playing(page: Page, past_s: float = 1.5) -> None:
    page.wait_for_function(
        f"() => document.getElementById('video').currentTime > {past_s}", timeout=20_000
    )


def test_home_lists_the_highlights_and_links_to_the_player(
    stack: Stack, clip_id: str, page: Page
) -> None:
    page.goto(stack.base_url + "/")
    assert card_of(page, clip_id) == TITLE
    assert page.locator(f'a.card[data-asset-id="{clip_id}"]').first.get_attribute("href") == (
        f"/watch/{clip_id}"
    )
    assert page.get_by_role("heading", name="Upcoming matches").is_visible()


def test_the_player_plays_and_lists_every_rung(stack: Stack, clip_id: str, page: Page) -> None:
    page.goto(f"{stack.base_url}/watch/{clip_id}")
    wait_playing(page)
    assert page.locator("#now-playing").inner_text() == TITLE
    levels = page.evaluate("() => window.courtside.hls.levels.map(l => l.height)")
    with session_scope(stack.sessions) as session:
        asset = session.get(Asset, clip_id)
        assert asset is not None
        ladder = sorted(r.height for r in asset.renditions)
    assert sorted(levels) == ladder
    assert len(ladder) >= 2
    assert 360 in ladder  # the source's own rung
    options = page.locator("#quality option").all_inner_texts()
    assert options[0].startswith("Auto")
    assert [int(o.split("p")[0]) for o in options[1:]] == levels


def test_choosing_a_quality_switches_the_level(stack: Stack, clip_id: str, page: Page) -> None:
    playlists: list[str] = []
    page.on("request", lambda r: playlists.append(r.url) if ".m3u8" in r.url else None)
    page.goto(f"{stack.base_url}/watch/{clip_id}")
    wait_playing(page, 0.5)
    current = page.evaluate("() => window.courtside.hls.currentLevel")
    target = 0 if current != 0 else 1
    page.select_option("#quality", str(target))
    page.wait_for_function(f"() => window.courtside.hls.currentLevel === {target}", timeout=10_000)
    level_url = page.evaluate(f"() => window.courtside.hls.levels[{target}].url[0]")
    assert any(url.split("?")[0] == level_url.split("?")[0] for url in playlists)


def test_keyboard_shortcuts_play_pause_and_mute(stack: Stack, clip_id: str, page: Page) -> None:
    page.goto(f"{stack.base_url}/watch/{clip_id}")
    wait_playing(page, 0.3)
    page.locator("body").press("m")
    assert page.evaluate("() => document.getElementById('video').muted") is True
    page.locator("body").press("k")
    assert page.evaluate("() => document.getElementById('video').paused") is True
    expect(page.locator("#play")).to_have_attribute("aria-label", "Play")
    page.evaluate("() => { document.getElementById('video').currentTime = 3; }")
    page.locator("body").press("ArrowLeft")
    assert page.evaluate("() => document.getElementById('video').currentTime") == 0
    page.locator("body").press(" ")
    assert page.evaluate("() => document.getElementById('video').paused") is False
    page.locator("body").press("f")
    page.wait_for_function("() => document.fullscreenElement !== null", timeout=5_000)
    assert page.get_by_role("heading", name="Keyboard shortcuts").is_visible()


def test_hovering_the_seek_bar_previews_the_storyboard(
    stack: Stack, clip_id: str, page: Page
) -> None:
    page.goto(f"{stack.base_url}/watch/{clip_id}")
    wait_playing(page, 0.3)
    page.wait_for_function("() => window.courtside.cues.length > 0", timeout=10_000)
    seek = page.locator("#seek").bounding_box()
    assert seek is not None
    page.mouse.move(seek["x"] + seek["width"] * 0.75, seek["y"] + seek["height"] / 2)
    preview = page.locator("#preview .preview-img")
    preview.wait_for(state="visible", timeout=5_000)
    style = preview.evaluate("e => [e.style.backgroundImage, e.style.width]")
    assert "storyboard" in style[0]
    assert style[1] == "160px"  # the storyboard's tile width
    screenshot(page, "player-desktop.png")


def test_a_blocked_viewer_sees_why_and_gets_no_segment(stack: Stack, page: Page) -> None:
    asset_id = _listed_asset(stack, "fan-blocked", "Blocked winner", {})
    revoke_league_grants(stack, "fan-blocked")
    with httpx2.Client(base_url=stack.base_url) as client:
        refused = client.post(f"/v1/playback/{asset_id}")
    assert refused.status_code == 451
    media: list[Response] = []
    page.on("response", lambda r: media.append(r) if "/v1/stream/" in r.url else None)
    page.goto(f"{stack.base_url}/watch/{asset_id}")
    notice = page.locator("#unavailable")
    notice.wait_for(state="visible", timeout=10_000)
    assert notice.inner_text() == refused.json()["error"]["message"]
    assert notice.get_attribute("aria-live") == "assertive"
    assert page.locator("#video").is_hidden()
    assert [r for r in media if r.ok] == []
    screenshot(page, "not-available.png")


def test_not_yet_available_says_when(stack: Stack, page: Page) -> None:
    start = datetime.now(UTC) + timedelta(days=2)
    window = {"start": {"at": start.isoformat()}, "end": None}
    asset_id = _listed_asset(stack, "fan-later", "Later winner", window)
    page.goto(f"{stack.base_url}/watch/{asset_id}")
    notice = page.locator("#unavailable")
    notice.wait_for(state="visible", timeout=10_000)
    shown = page.evaluate(
        "iso => new Intl.DateTimeFormat('en', {dateStyle: 'medium', timeStyle: 'short'})"
        ".format(new Date(iso))",
        start.isoformat(),
    )
    assert f"It will be available from {shown}." in notice.inner_text()


def test_the_language_switch_translates_ui_and_titles(
    stack: Stack, clip_id: str, page: Page
) -> None:
    page.goto(f"{stack.base_url}/watch/{clip_id}")
    page.locator("#now-playing").filter(has_text=TITLE).wait_for(timeout=10_000)
    page.select_option("#lang-select", "sv")
    page.locator("#now-playing").filter(has_text=TITLES["sv"]).wait_for(timeout=10_000)
    assert page.evaluate("() => document.documentElement.lang") == "sv"
    assert page.locator(".search button").inner_text() == "Sök"
    page.goto(stack.base_url + "/")  # the choice is remembered
    assert card_of(page, clip_id) == TITLES["sv"]
    page.select_option("#lang-select", "zh-Hans")
    page.locator(f'a.card[data-asset-id="{clip_id}"]').filter(has_text=TITLES["zh-Hans"]).wait_for()
    assert page.evaluate("() => document.documentElement.lang") == "zh-Hans"
    assert page.get_by_label("语言").is_visible()


def test_league_and_search_pages(stack: Stack, clip_id: str, page: Page) -> None:
    page.goto(f"{stack.base_url}/league/{LEAGUE}")
    page.get_by_role("heading", level=1, name=LEAGUE.title()).wait_for(timeout=10_000)
    assert card_of(page, clip_id) == TITLE
    screenshot(page, "league.png")
    page.goto(f"{stack.base_url}/search?q=pages+WIN")
    assert card_of(page, clip_id) == TITLE
    assert page.locator("#search-q").input_value() == "pages WIN"
    screenshot(page, "search.png")
    page.goto(f"{stack.base_url}/search?q=nothing-like-this")
    page.get_by_text("Nothing matches").wait_for(timeout=10_000)


@pytest.mark.parametrize("path", ["/", "/watch/{id}", f"/league/{LEAGUE}", "/search?q=winner"])
def test_phone_width_has_no_horizontal_scroll(
    stack: Stack, clip_id: str, phone: Page, path: str
) -> None:
    phone.goto(stack.base_url + path.format(id=clip_id))
    card_or_player = "#video" if "watch" in path else f'a.card[data-asset-id="{clip_id}"]'
    phone.locator(card_or_player).first.wait_for(timeout=15_000)
    if "watch" in path:
        wait_playing(phone, 0.5)
        screenshot(phone, "player-phone.png")
    width = phone.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1] == PHONE["width"]


def test_static_files_are_revalidated_and_pages_share_the_shell(stack: Stack) -> None:
    with httpx2.Client(base_url=stack.base_url) as client:
        shells = [client.get(p) for p in ("/", "/league/x", "/team/x/y", "/search", "/watch/z")]
        assert {r.status_code for r in shells} == {200}
        assert {r.text for r in shells} == {shells[0].text}
        assert shells[0].headers["cache-control"] == "no-cache"
        script = client.get("/static/app.js")
        assert script.headers["cache-control"] == "no-cache"
        assert (
            client.get(
                "/static/app.js", headers={"If-None-Match": script.headers["etag"]}
            ).status_code
            == 304
        )


def test_the_player_lists_related_clips_and_reports_a_view(
    stack: Stack, content: FanContent, page: Page
) -> None:
    views: list[Response] = []
    page.on("response", lambda r: views.append(r) if "/v1/views/" in r.url else None)
    page.goto(f"{stack.base_url}/watch/{content.clip_id}")
    related = page.get_by_role("heading", name="Related clips")
    related.wait_for(timeout=10_000)
    assert card_of(page, content.related_id) == RELATED
    page.evaluate("() => { document.getElementById('video').loop = true; }")  # a 4 s clip
    page.wait_for_function("() => window.courtside.counted", timeout=15_000)
    page.wait_for_timeout(500)
    assert [(r.request.method, r.status) for r in views] == [("POST", 202)]
    assert page.evaluate("() => window.courtside.played") >= 5


def test_home_league_and_team_pages_show_matches(
    stack: Stack, content: FanContent, page: Page
) -> None:
    page.goto(stack.base_url + "/")
    live = page.get_by_role("list", name="Live now")
    live.wait_for(timeout=10_000)
    assert "North FC vs South FC" in live.inner_text()
    assert "North FC vs South FC" in page.get_by_role("list", name="Upcoming matches").inner_text()
    screenshot(page, "fan-home.png")
    page.goto(f"{stack.base_url}/league/{LEAGUE}")
    page.locator(".chips").get_by_role("link", name="North FC").click()
    page.get_by_role("heading", level=1, name="North FC").wait_for(timeout=10_000)
    assert card_of(page, content.clip_id) == TITLE
    assert page.get_by_role("list", name="Matches").locator("li").count() == 2


def test_share_copies_the_page_link(stack: Stack, clip_id: str, browser: Browser) -> None:
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    try:
        page.goto(f"{stack.base_url}/watch/{clip_id}")
        page.get_by_role("button", name="Copy link").click()
        page.get_by_text("Link copied.").wait_for(timeout=5_000)
        assert page.evaluate("() => navigator.clipboard.readText()") == page.url
    finally:
        context.close()


UNNAMED_CONTROLS = """() => [...document.querySelectorAll('button, select, input, a[href], video')]
    .filter(e => e.offsetParent !== null || e.tagName === 'VIDEO')
    .filter(e => !((e.labels && e.labels.length) || e.getAttribute('aria-label')
                   || e.textContent.trim()))
    .map(e => e.outerHTML.slice(0, 80))"""


@pytest.mark.parametrize("path", ["/", "/watch/{id}"])
def test_every_control_is_named_and_every_poster_described(
    stack: Stack, content: FanContent, page: Page, path: str
) -> None:
    page.goto(stack.base_url + path.format(id=content.clip_id))
    page.locator(f'a.card[data-asset-id="{content.related_id}"]').first.wait_for(timeout=15_000)
    assert page.evaluate(UNNAMED_CONTROLS) == []
    alts = page.locator("img").evaluate_all("imgs => imgs.map(i => i.alt)")
    assert alts
    assert all(alt.startswith("Poster of ") for alt in alts)
    page.keyboard.press("Tab")  # the first stop is the skip link, shown when focused
    assert page.evaluate("() => document.activeElement.className") == "skip"
    assert page.locator(".skip").is_visible()


def test_the_browser_language_is_the_default(stack: Stack, clip_id: str, browser: Browser) -> None:
    context = browser.new_context(locale="sv-SE")
    page = context.new_page()
    try:
        page.goto(stack.base_url + "/")
        assert card_of(page, clip_id) == TITLES["sv"]
        assert page.evaluate("() => document.documentElement.lang") == "sv"
        assert page.locator("#lang-select").input_value() == "sv"
        assert page.get_by_role("heading", name="Kommande matcher").is_visible()
    finally:
        context.close()
