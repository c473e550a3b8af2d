"""Serving stored media over HTTP: playlists, segments with byte ranges, or an S3 redirect."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from fastapi import Response
from fastapi.responses import RedirectResponse, StreamingResponse

from core.errors import InvalidInput
from core.storage import ObjectStore

PLAYLIST_CACHE = "private, max-age=5"
# A live playlist changes every segment: the browser must ask again each time.
LIVE_PLAYLIST_CACHE = "private, no-cache"
# Private: a shared cache keyed by the token URL would serve a segment without the per-request
# country and rights checks. The fan's own browser may keep it: the bytes never change.
SEGMENT_CACHE = "private, max-age=31536000, immutable"
# A presigned URL can be replayed by anyone for its lifetime, outside our checks: keep it short.
PRESIGN_TTL_S = 30
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class RangeNotSatisfiable(InvalidInput):
    code = "range_not_satisfiable"


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end) inclusive for a single ``bytes=`` range, None for the whole object."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        raise RangeNotSatisfiable("only one 'bytes=start-end' range is supported")
    first, last = match.groups()
    if first == "":
        start, end = max(size - int(last), 0), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiable(f"range outside the {size}-byte object")
    return start, end


PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
# How long a live playlist is served from memory: a bound on the latency it adds.
LIVE_PLAYLIST_TTL_S = 0.25
# Playlists are small: anything bigger is not one we wrote, and is not kept.
MAX_CACHED_PLAYLIST_BYTES = 256 * 1024


class PlaylistCache:
    """Playlists recently read from the store, by key, each kept for ``ttl_s`` seconds.

    Every player asks for the same few playlists every few seconds; reading each from the
    store again costs a thread-pool hand-off and a file read or an S3 GET per request. A
    published attempt's playlists never change under their key (a new attempt gets a new
    prefix), so the TTL only bounds how long a deleted or rewritten object can still be
    served; the checks before serving (token, viewer, rights) run on every request anyway.
    Bounded in entries and in the size of each entry."""

    def __init__(
        self,
        *,
        ttl_s: float = 1.0,
        max_items: int = 2048,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max_items = max_items
        self._clock = clock
        self._entries: dict[str, tuple[bytes, float]] = {}

    def get(self, key: str) -> bytes | None:
        """The playlist's bytes if read less than ``ttl_s`` ago (no I/O)."""
        entry = self._entries.get(key)
        if entry is None or self._clock() >= entry[1]:
            return None
        return entry[0]

    def put(self, key: str, body: bytes, ttl_s: float | None = None) -> None:
        """Keep ``body`` for ``ttl_s`` (the cache's own TTL when None)."""
        if len(body) > MAX_CACHED_PLAYLIST_BYTES:
            return
        if len(self._entries) >= self._max_items:
            self._entries.clear()  # rare and cheap to refill; no per-request bookkeeping
        self._entries[key] = (body, self._clock() + (self._ttl_s if ttl_s is None else ttl_s))


def playlist_body_response(body: bytes, *, live: bool = False) -> Response:
    cache_control = LIVE_PLAYLIST_CACHE if live else PLAYLIST_CACHE
    return Response(body, media_type=PLAYLIST_TYPE, headers={"Cache-Control": cache_control})


def playlist_response(
    store: ObjectStore, key: str, cache: PlaylistCache | None = None, *, live: bool = False
) -> Response:
    """A playlist from the store, remembered in ``cache`` when given (a live one briefly: a
    new segment is listed every second or so)."""
    body = store.get_bytes(key)
    if cache is not None:
        cache.put(key, body, LIVE_PLAYLIST_TTL_S if live else None)
    return playlist_body_response(body, live=live)


def media_response(store: ObjectStore, key: str, range_header: str | None) -> Response:
    """A segment: redirect to a presigned URL when the store has them, else stream it."""
    url = store.presigned_get_url(key, expires_s=PRESIGN_TTL_S)
    if url is not None:
        return RedirectResponse(url, status_code=302, headers={"Cache-Control": "private"})
    info = store.stat(key)
    span = parse_range(range_header, info.size)
    headers = {"Cache-Control": SEGMENT_CACHE, "Accept-Ranges": "bytes"}
    media_type = info.content_type or "application/octet-stream"
    if span is None:
        headers["Content-Length"] = str(info.size)
        return StreamingResponse(store.iter_range(key), media_type=media_type, headers=headers)
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
    headers["Content-Length"] = str(end - start + 1)
    body = store.iter_range(key, start, end)
    return StreamingResponse(body, status_code=206, media_type=media_type, headers=headers)
