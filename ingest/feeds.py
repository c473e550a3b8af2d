"""Reading league feeds: MRSS (RSS 2.0 with the ``media:`` namespace) and JSON Feed 1.1.

Parsing only: bytes in, :class:`FeedEntry` values out; nothing here touches the network or the
database. XML goes through ``defusedxml``, which refuses entity declarations and external DTDs
(an entity "bomb" is refused, never expanded). Every value is bounded (lengths, team counts,
items per document); the README lists the fields read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from core.errors import InvalidInput

MAX_FEED_BYTES = 5 * 1024 * 1024
MAX_ITEMS = 200
MAX_TITLE = 300
MAX_DESCRIPTION = 5000
MAX_TEAMS = 20
MAX_TEAM = 100
MAX_GUID = 1024
MEDIA_NS = "http://search.yahoo.com/mrss/"
_M = f"{{{MEDIA_NS}}}"
# Streaming manifests and images are not a clip we can pull as one file.
_NOT_A_FILE = ("application/x-mpegurl", "application/vnd.apple.mpegurl", "application/dash+xml")
_VIDEO_TYPES = ("video/", "application/mp4", "application/octet-stream", "application/mxf")


class FeedInvalid(InvalidInput):
    """The document is not a feed we can read (bad XML or JSON, a refused construct)."""

    code = "feed_invalid"


@dataclass(frozen=True)
class FeedEntry:
    """One item of a feed. ``media_url`` is None when the item has no usable video;
    ``problem`` then says why (``no_media_url``, ``unsupported_type``)."""

    guid: str
    title: str
    description: str = ""
    published_at: datetime | None = None
    media_url: str | None = None
    media_type: str | None = None
    teams: tuple[str, ...] = ()
    match_ref: str | None = None
    problem: str | None = None


def parse_feed(body: bytes) -> list[FeedEntry]:
    """The entries of an MRSS or JSON Feed document (at most :data:`MAX_ITEMS`, in document
    order). The format is told by the first character: ``{`` is JSON, ``<`` is XML."""
    if len(body) > MAX_FEED_BYTES:
        raise FeedInvalid(f"the feed is larger than {MAX_FEED_BYTES} bytes")
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head == b"{":
        return parse_json_feed(body)
    if head == b"<":
        return parse_mrss(body)
    raise FeedInvalid("the feed is neither XML (MRSS) nor JSON (JSON Feed)")


# --- shared helpers ---------------------------------------------------------------------------


def _text(value: object, limit: int) -> str:
    """One line, bounded: titles and team names."""
    return " ".join(str(value).split())[:limit] if value is not None else ""


def _long_text(value: object, limit: int) -> str:
    """Bounded text that keeps its line breaks: descriptions."""
    return str(value).strip()[:limit] if value is not None else ""


def _guid(value: str) -> str:
    """The guid as stored: a very long one is replaced by its digest, so it still dedupes."""
    value = value.strip()
    if len(value) <= MAX_GUID:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def _teams(values: Iterable[object]) -> tuple[str, ...]:
    teams: list[str] = []
    for value in values:
        team = _text(value, MAX_TEAM)
        if team and team not in teams:
            teams.append(team)
    return tuple(teams[:MAX_TEAMS])


def _is_video(media_type: str | None, medium: str | None = None) -> bool:
    if medium:
        return medium.lower() == "video"
    if not media_type:
        return True  # nothing declared: the probe in the worker decides
    lowered = media_type.lower()
    return lowered.startswith(_VIDEO_TYPES) and not lowered.startswith(_NOT_A_FILE)


@dataclass(frozen=True)
class _Media:
    url: str
    media_type: str | None
    medium: str | None = None
    default: bool = False


def _choose(media: list[_Media]) -> tuple[_Media | None, str | None]:
    """The video to pull, or the reason there is none."""
    if not media:
        return None, "no_media_url"
    videos = [m for m in media if _is_video(m.media_type, m.medium)]
    if not videos:
        return None, "unsupported_type"
    return next((m for m in videos if m.default), videos[0]), None


def _entry(guid: str, title: str, media: list[_Media], **fields: Any) -> FeedEntry:
    chosen, problem = _choose(media)
    return FeedEntry(
        guid=_guid(guid),
        title=title or "Clip from the league feed",
        media_url=chosen.url if chosen else (media[0].url if media else None),
        media_type=chosen.media_type if chosen else (media[0].media_type if media else None),
        problem=problem,
        **fields,
    )


# --- MRSS -------------------------------------------------------------------------------------


def parse_mrss(body: bytes) -> list[FeedEntry]:
    """RSS 2.0 items with ``media:content`` (also inside ``media:group``) or an enclosure."""
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise FeedInvalid("the feed declares a DTD or entities, which are refused") from None
    except ParseError as exc:
        raise FeedInvalid(f"the feed is not well-formed XML ({exc})") from None
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        raise FeedInvalid("the XML is not an RSS 2.0 feed (<rss><channel>…)")
    items = channel.findall("item")[:MAX_ITEMS]
    return [entry for entry in map(_mrss_item, items) if entry is not None]


def _child_text(item: Element, tag: str) -> str | None:
    found = item.find(tag)
    return found.text.strip() if found is not None and found.text else None


def _mrss_media(item: Element) -> list[_Media]:
    contents = [*item.findall(f"{_M}content"), *item.findall(f"{_M}group/{_M}content")]
    media = [
        _Media(url, c.get("type"), c.get("medium"), c.get("isDefault") == "true")
        for c in contents
        if (url := (c.get("url") or "").strip())
    ]
    enclosure = item.find("enclosure")
    if not media and enclosure is not None and (url := (enclosure.get("url") or "").strip()):
        media.append(_Media(url, enclosure.get("type")))
    return media


def _categories(item: Element, domain: str) -> list[str]:
    return [c.text for c in item.findall("category") if c.get("domain") == domain and c.text]


def _rfc822(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _mrss_item(item: Element) -> FeedEntry | None:
    media = _mrss_media(item)
    guid = _child_text(item, "guid") or _child_text(item, "link") or (media and media[0].url)
    if not guid:
        return None  # nothing identifies it, so it could not be ingested only once
    title = _child_text(item, "title") or _child_text(item, f"{_M}title") or ""
    description = _child_text(item, "description") or _child_text(item, f"{_M}description")
    matches = _categories(item, "match")
    return _entry(
        guid,
        _text(title, MAX_TITLE),
        media,
        description=_long_text(description, MAX_DESCRIPTION),
        published_at=_rfc822(_child_text(item, "pubDate")),
        teams=_teams(_categories(item, "team")),
        match_ref=matches[0].strip() if matches else None,
    )


# --- JSON Feed --------------------------------------------------------------------------------


def parse_json_feed(body: bytes) -> list[FeedEntry]:
    """JSON Feed 1.x items with ``attachments``; ``_courtside`` adds teams and a match."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise FeedInvalid("the feed is not valid JSON") from None
    if not isinstance(document, dict) or not str(document.get("version", "")).startswith(
        "https://jsonfeed.org/version/1"
    ):
        raise FeedInvalid("the JSON is not a JSON Feed (its 'version' must be jsonfeed.org's)")
    items = document.get("items")
    if not isinstance(items, list):
        raise FeedInvalid("the JSON Feed has no 'items' list")
    return list(_json_items(items[:MAX_ITEMS]))


def _json_items(items: list[object]) -> Iterator[FeedEntry]:
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("id"), str | int) and item["id"] != "":
            yield _json_item(item)


def _json_media(item: dict[str, Any]) -> list[_Media]:
    attachments = item.get("attachments")
    if not isinstance(attachments, list):
        return []
    return [
        _Media(
            a["url"].strip(), a.get("mime_type") if isinstance(a.get("mime_type"), str) else None
        )
        for a in attachments[:MAX_ITEMS]
        if isinstance(a, dict) and isinstance(a.get("url"), str) and a["url"].strip()
    ]


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _rfc3339(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _extension(item: dict[str, Any]) -> dict[str, Any]:
    ext = item.get("_courtside")
    return ext if isinstance(ext, dict) else {}


def _list_of(value: object) -> list[object]:
    return list(value[: MAX_TEAMS * 2]) if isinstance(value, list) else []


def _match_ref(value: object) -> str | None:
    return str(value).strip()[:32] if isinstance(value, str | int) and value != "" else None


def _json_item(item: dict[str, Any]) -> FeedEntry:
    ext = _extension(item)
    teams = _list_of(ext.get("teams")) if "teams" in ext else _list_of(item.get("tags"))
    description = _str_or_none(item.get("content_text")) or _str_or_none(item.get("summary"))
    return _entry(
        str(item["id"]),
        _text(item.get("title"), MAX_TITLE),
        _json_media(item),
        description=_long_text(
            description if isinstance(description, str) else "", MAX_DESCRIPTION
        ),
        published_at=_rfc3339(item.get("date_published")),
        teams=_teams(t for t in teams if isinstance(t, str)),
        match_ref=_match_ref(ext.get("match_id")),
    )
