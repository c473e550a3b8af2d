"""Parsing league feeds: MRSS and JSON Feed fixtures, refusals of unsafe XML, limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ingest.feeds import MAX_FEED_BYTES, MAX_ITEMS, FeedInvalid, parse_feed
from tests.ingest.feeds.server import fixture

BASE = "https://cdn.example"


def test_mrss_items_are_read_with_their_media_teams_and_match() -> None:
    entries = parse_feed(fixture("mrss.xml", BASE, 7))
    by_guid = {entry.guid: entry for entry in entries}
    assert list(by_guid) == [
        "goal-1001", "save-1002", "photo-1003", "text-1004", "live-1005", "internal-1006",
    ]  # fmt: skip
    goal = by_guid["goal-1001"]
    assert goal.title == "Late winner at the Riverside"
    assert goal.description == "A volley in the 89th minute."
    assert goal.published_at == datetime(2026, 11, 28, 17, 45, tzinfo=UTC)
    assert goal.media_url == f"{BASE}/clips/goal.mp4"
    assert goal.teams == ("Riverside FC", "Harbour United")
    assert goal.match_ref == "7"
    assert goal.problem is None


def test_mrss_media_group_picks_the_video_and_media_title_fills_in() -> None:
    save = next(e for e in parse_feed(fixture("mrss.xml", BASE)) if e.guid == "save-1002")
    assert save.media_url == f"{BASE}/clips/save.mp4"  # the image beside it is skipped
    assert save.title == "Double save"
    assert save.description == "Two stops in two seconds."
    assert save.match_ref is None


def test_mrss_items_without_a_usable_video_carry_their_reason() -> None:
    problems = {e.guid: e.problem for e in parse_feed(fixture("mrss.xml", BASE))}
    assert problems["photo-1003"] == "unsupported_type"
    assert problems["text-1004"] == "no_media_url"
    assert problems["live-1005"] == "unsupported_type"  # an HLS playlist is not one file
    assert problems["internal-1006"] is None  # the enclosure is a video; the poll refuses it


def test_json_feed_items_are_read_with_the_courtside_extension() -> None:
    entries = parse_feed(fixture("jsonfeed.json", BASE, 9))
    assert [e.guid for e in entries] == ["jf-2001", "2002", "jf-2003", "jf-2004"]  # no id: skipped
    kick, clearance, panorama, bare = entries
    assert kick.title == "Free kick into the top corner"
    assert kick.description == "Curled over the wall."
    assert kick.published_at == datetime(2026, 11, 28, 18, 5, tzinfo=UTC)
    assert kick.media_url == f"{BASE}/clips/freekick.mp4"
    assert kick.teams == ("Harbour United",)  # the extension wins over tags
    assert kick.match_ref == "9"
    assert clearance.description == "Goal-line clearance"
    assert clearance.teams == ("Riverside FC",)  # tags stand in for teams
    assert clearance.media_url == "/clips/clearance.mp4"  # resolved against the feed when polled
    assert clearance.published_at == datetime(
        2026, 11, 28, 18, 10, tzinfo=timezone(timedelta(hours=1))
    )
    assert clearance.title == "Clip from the league feed"
    assert panorama.problem == "unsupported_type"
    assert bare.problem == "no_media_url"


def test_an_xml_entity_bomb_is_refused_not_expanded() -> None:
    with pytest.raises(FeedInvalid, match="DTD or entities"):
        parse_feed(fixture("bomb.xml", BASE))


def test_an_external_dtd_is_refused() -> None:
    with pytest.raises(FeedInvalid, match="DTD or entities"):
        parse_feed(fixture("external.xml", BASE))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<rss><channel><item>", "not well-formed"),
        (b"<html><body>hello</body></html>", "not an RSS 2.0 feed"),
        (b'{"version": "1", "items": []}', "not a JSON Feed"),
        (b'{"version": "https://jsonfeed.org/version/1.1"}', "no 'items' list"),
        (b"{not json", "not valid JSON"),
        (b"GIF89a", "neither XML"),
    ],
)
def test_documents_that_are_not_feeds_are_refused(body: bytes, reason: str) -> None:
    with pytest.raises(FeedInvalid, match=reason):
        parse_feed(body)


def test_items_per_document_are_bounded() -> None:
    items = [{"id": str(n), "attachments": [{"url": f"{BASE}/{n}.mp4"}]} for n in range(500)]
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items})
    assert len(parse_feed(body.encode())) == MAX_ITEMS


def test_an_oversized_document_is_refused() -> None:
    with pytest.raises(FeedInvalid, match="larger than"):
        parse_feed(b"<rss>" + b" " * MAX_FEED_BYTES + b"</rss>")


def test_values_are_bounded_and_a_long_guid_still_dedupes() -> None:
    item = {
        "id": "g" * 5000,
        "title": "t" * 1000,
        "tags": [f"team {n}" for n in range(100)],
        "attachments": [{"url": f"{BASE}/x.mp4"}],
    }
    body = json.dumps({"version": "https://jsonfeed.org/version/1", "items": [item, item]})
    first, second = parse_feed(body.encode())
    assert first.guid == second.guid
    assert first.guid.startswith("sha256:")
    assert len(first.title) == 300
    assert len(first.teams) == 20
