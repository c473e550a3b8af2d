"""Test helpers for items as transcoding leaves them, and raw HTTP requests."""

from __future__ import annotations

import asyncio
from datetime import datetime
from urllib.parse import unquote

from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message

from core.models import Asset, AssetStatus, League, Rendition, utcnow


def add_asset(
    db: Session,
    league: League,
    *,
    title: str = "clip",
    status: AssetStatus = AssetStatus.READY,
    ready_at: datetime | None = None,
    match_id: int | None = None,
    asset_id: str | None = None,
) -> Asset:
    """An asset; a READY one has a master playlist key and one rendition."""
    asset = Asset(
        league_id=league.id,
        title=title,
        status=status,
        ready_at=ready_at,
        playable_at=ready_at or (utcnow() if status is AssetStatus.READY else None),
        match_id=match_id,
    )
    if asset_id is not None:
        asset.id = asset_id
    db.add(asset)
    db.flush()
    if status is AssetStatus.READY:
        asset.master_key = f"hls/{asset.id}/1/master.m3u8"
        asset.renditions.append(
            Rendition(
                name="360p",
                width=640,
                height=360,
                bandwidth=800_000,
                codecs="avc1.4d401e,mp4a.40.2",
                playlist_key=f"hls/{asset.id}/1/v0/index.m3u8",
            )
        )
    db.commit()
    return asset


def raw_get(app: ASGIApp, raw_path: str, peer: str = "127.0.0.1") -> tuple[int, bytes]:
    """GET ``raw_path`` exactly as written, from ``peer``: HTTP clients (httpx included)
    resolve dot segments before sending, an attacker's raw request need not."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(raw_path),
        "raw_path": raw_path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": (peer, 50000),
        "server": ("testserver", 80),
    }
    status = 0
    body = bytearray()
    requested = False

    async def receive() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        # A streaming response listens for a disconnect while it sends: the client stays.
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    async def call() -> None:
        await app(scope, receive, send)

    asyncio.run(call())
    return status, bytes(body)
