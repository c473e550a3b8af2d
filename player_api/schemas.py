"""The fan API's response shapes (the contract in the OpenAPI schema, with examples)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

MatchStatus = Literal["upcoming", "live", "finished"]

_HIGHLIGHT_EXAMPLE: dict[str, Any] = {
    "id": "3f2b9c0d4e5f60718293a4b5c6d7e8f9",
    "title": "Last-second winner",
    "description": "A buzzer beater from the halfway line.",
    "lang": "en",
    "league": {"slug": "premier", "name": "Premier League"},
    "competition": {"slug": "cup", "name": "National Cup"},
    "teams": [{"slug": "north", "name": "North City"}, {"slug": "south", "name": "South FC"}],
    "match": {
        "id": 12,
        "home": "North City",
        "away": "South FC",
        "kickoff": "2026-03-01T19:00:00Z",
        "status": "finished",
    },
    "tags": ["goal", "last-minute"],
    "duration_s": 42.0,
    "poster_url": "https://play.example.com/v1/highlights/3f2b9c0d4e5f60718293a4b5c6d7e8f9/poster",
    "storyboard_url": None,
    "published_at": "2026-03-01T21:04:05Z",
    "is_live": False,
    "views": 1234,
    "playback_url": "https://play.example.com/v1/playback/3f2b9c0d4e5f60718293a4b5c6d7e8f9",
}


class Ref(BaseModel):
    """A league, competition or team as fans see it: its slug and (localised) name."""

    slug: str
    name: str


class MatchRef(BaseModel):
    id: int
    home: str
    away: str
    kickoff: datetime | None
    status: MatchStatus


class Highlight(BaseModel):
    """One highlight in the viewer's language (``lang`` says which was served)."""

    model_config = {"json_schema_extra": {"examples": [_HIGHLIGHT_EXAMPLE]}}

    id: str
    title: str
    description: str
    lang: str
    league: Ref
    competition: Ref | None
    teams: list[Ref]
    match: MatchRef | None
    tags: list[str]
    duration_s: float | None
    poster_url: str | None
    storyboard_url: str | None
    published_at: datetime
    is_live: bool
    views: int
    playback_url: str


class HighlightPage(BaseModel):
    """One page of the catalog; pass ``next_cursor`` back as ``cursor`` for the next."""

    model_config = {
        "json_schema_extra": {
            "examples": [{"items": [_HIGHLIGHT_EXAMPLE], "next_cursor": "eyJzIjoibmV3ZXN0In0"}]
        }
    }

    items: list[Highlight]
    next_cursor: str | None


class HighlightDetail(Highlight):
    """A highlight and up to 8 related ones (same match, then same teams, then same league)."""

    model_config = {
        "json_schema_extra": {"examples": [{**_HIGHLIGHT_EXAMPLE, "related": [_HIGHLIGHT_EXAMPLE]}]}
    }

    related: list[Highlight]


class PlaybackOut(BaseModel):
    """Where to play: the master playlist, and the poster, storyboard and view report URLs
    under the same playback token."""

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "asset_id": "3f2b9c0d4e5f60718293a4b5c6d7e8f9",
                    "master_url": "https://play.example.com/v1/stream/<token>/master.m3u8",
                    "expires_at": "2026-03-01T23:04:05Z",
                    "poster_url": "https://play.example.com/v1/highlights/3f2b…/poster",
                    "storyboard_url": (
                        "https://play.example.com/v1/stream/<token>/thumbs/storyboard.vtt"
                    ),
                    "view_url": "https://play.example.com/v1/views/<token>",
                }
            ]
        }
    }

    asset_id: str
    master_url: str
    expires_at: datetime
    poster_url: str | None
    storyboard_url: str | None
    view_url: str
    live: LivePlayback | None = None


class LivePlayback(BaseModel):
    """For a live stream: the DVR master (seekable back ``dvr_window_s``), and when it went on
    air. ``master_url`` stays near the live edge."""

    dvr_url: str
    dvr_window_s: int
    started_at: datetime | None
    on_air: bool


class ViewOut(BaseModel):
    """Whether this report counted (a playback counts once, however often it reports)."""

    model_config = {"json_schema_extra": {"examples": [{"counted": True}]}}

    counted: bool
