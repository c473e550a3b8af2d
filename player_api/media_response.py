"""Serving stored media over HTTP: playlists, segments with byte ranges, or an S3 redirect."""

from __future__ import annotations

import re

from fastapi import Response
from fastapi.responses import RedirectResponse, StreamingResponse

from core.errors import InvalidInput
from core.storage import ObjectStore

PLAYLIST_CACHE = "private, max-age=5"
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


def playlist_response(store: ObjectStore, key: str) -> Response:
    body = store.get_bytes(key)
    return Response(
        body,
        media_type="application/vnd.apple.mpegurl",
        headers={"Cache-Control": PLAYLIST_CACHE},
    )


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
