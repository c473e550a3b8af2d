"""Partner API for live streams (``/v1/live``) and the RTMP edge's publish hooks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response, status
from pydantic import BaseModel, Field

from core.deps import PartnerDep, SessionDep, SettingsDep
from core.models import LiveState, LiveStream
from core.settings import Settings
from ingest import live_streams
from ingest.live_streams import NewStream, Publisher, PublishRefused

router = APIRouter(prefix="/v1/live", tags=["live"])
hooks_router = APIRouter(prefix="/v1/live/hooks", include_in_schema=False)

LangTag = Annotated[str, Field(min_length=2, max_length=35, pattern=r"^[A-Za-z0-9-]+$")]


class LiveStreamIn(BaseModel):
    league: str = Field(max_length=64, examples=["demo"])
    title: str = Field(min_length=1, max_length=live_streams.MAX_TITLE, examples=["Final, live"])
    description: str = Field(default="", max_length=5000)
    lang: LangTag = "en"
    match_id: int | None = None
    dvr_window_s: int | None = Field(default=None, ge=60, le=6 * 3600)


class IngestUrls(BaseModel):
    rtmp_url: str = Field(description="Server URL for OBS; the stream key goes in its own field")
    whip_url: str = Field(description="WHIP endpoint; send the stream key as a Bearer token")


class LiveStreamOut(BaseModel):
    id: str
    league_id: int
    title: str
    match_id: int | None
    state: LiveState
    publishing: bool
    protocol: str
    sessions: int
    key_hint: str = Field(description="Last characters of the current key; empty: revoked")
    dvr_window_s: int
    segment_s: float
    started_at: datetime | None
    ended_at: datetime | None
    health: dict[str, object]
    ladder: list[dict[str, object]]
    error: dict[str, str] | None
    ingest: IngestUrls

    @classmethod
    def of(cls, stream: LiveStream, settings: Settings, base_url: str) -> LiveStreamOut:
        error = None
        if stream.error_code:
            error = {"code": stream.error_code, "message": stream.error_message or ""}
        return cls(
            id=stream.id,
            league_id=stream.league_id,
            title=stream.asset.title,
            match_id=stream.asset.match_id,
            state=stream.state,
            publishing=stream.publishing,
            protocol=stream.protocol,
            sessions=stream.sessions,
            key_hint=stream.key_hint,
            dvr_window_s=stream.dvr_window_s,
            segment_s=stream.segment_s,
            started_at=stream.started_at,
            ended_at=stream.ended_at,
            health=stream.health,
            ladder=stream.ladder,
            error=error,
            ingest=IngestUrls(
                rtmp_url=settings.rtmp_public_url,
                whip_url=f"{base_url.rstrip('/')}/v1/live/{stream.id}/whip",
            ),
        )


class LiveStreamWithKey(LiveStreamOut):
    stream_key: str = Field(description="Shown once: store it now")


def _base_url(request: Request, settings: Settings) -> str:
    return settings.public_base_url or str(request.base_url)


def _with_key(
    stream: LiveStream, key: str, request: Request, settings: Settings
) -> LiveStreamWithKey:
    out = LiveStreamOut.of(stream, settings, _base_url(request, settings))
    return LiveStreamWithKey(**out.model_dump(), stream_key=key)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_live_stream(
    request: Request,
    body: LiveStreamIn,
    session: SessionDep,
    settings: SettingsDep,
    principal: PartnerDep,
) -> LiveStreamWithKey:
    """A live stream for a league (optionally a match of it), with its stream key, shown
    once. Push RTMP to ``ingest.rtmp_url`` with the key, or WHIP to ``ingest.whip_url``.
    **Who:** the league's partners, admins."""
    data = NewStream(
        title=body.title,
        description=body.description,
        lang=body.lang,
        match_id=body.match_id,
        dvr_window_s=body.dvr_window_s,
    )
    stream, key = live_streams.create_stream(session, principal, settings, body.league, data)
    session.commit()
    return _with_key(stream, key, request, settings)


@router.get("/{stream_id}")
def get_live_stream(
    request: Request,
    stream_id: str,
    session: SessionDep,
    settings: SettingsDep,
    principal: PartnerDep,
) -> LiveStreamOut:
    """State and health (input bitrate, fps, resolution, codec, encoder speed, dropped
    frames, last segment age, viewers). **Who:** the league's partners, admins."""
    stream = live_streams.get_stream(session, principal, stream_id)
    return LiveStreamOut.of(stream, settings, _base_url(request, settings))


@router.post("/{stream_id}/key")
def rotate_stream_key(
    request: Request,
    stream_id: str,
    session: SessionDep,
    settings: SettingsDep,
    principal: PartnerDep,
) -> LiveStreamWithKey:
    """A new stream key (shown once); the old one is refused from now on. **Who:** the
    league's partners, admins."""
    stream, key = live_streams.rotate_key(session, principal, stream_id)
    session.commit()
    return _with_key(stream, key, request, settings)


@router.delete("/{stream_id}/key", status_code=status.HTTP_204_NO_CONTENT)
def revoke_stream_key(stream_id: str, session: SessionDep, principal: PartnerDep) -> None:
    """No key at all: every publish is refused until a new key is issued. **Who:** the
    league's partners, admins."""
    live_streams.revoke_key(session, principal, stream_id)
    session.commit()


# --- hooks from the RTMP edge ----------------------------------------------------------------


@hooks_router.post("/on_publish")
def on_publish(
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str, Query(max_length=100)],
    name: Annotated[str, Form(max_length=256)],
    addr: Annotated[str, Form(max_length=64)] = "",
    via: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """nginx-rtmp's ``on_publish``: 3xx renames the stream to its id, 403 refuses it."""
    live_streams.check_hook_token(settings, token)
    publisher = Publisher(key=name, addr=addr, protocol="whip" if via == "whip" else "rtmp")
    try:
        stream = live_streams.accept_publisher(session, settings, publisher, datetime.now(UTC))
    except PublishRefused:
        session.rollback()
        raise
    session.commit()
    return Response(status_code=status.HTTP_302_FOUND, headers={"Location": stream.id})


@hooks_router.post("/on_play")
def on_play(
    settings: SettingsDep,
    token: Annotated[str, Query(max_length=100)],
    name: Annotated[str, Form(max_length=256)],
    pull: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """nginx-rtmp's ``on_play``: only pullers with the stream's pull token (live workers,
    WHEP previews) may read a feed; 403 refuses anyone else."""
    live_streams.check_hook_token(settings, token)
    live_streams.check_puller(settings, name, pull)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@hooks_router.post("/on_publish_done")
def on_publish_done(
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str, Query(max_length=100)],
    name: Annotated[str, Form(max_length=256)],
) -> Response:
    """nginx-rtmp's ``on_publish_done``: the publisher left."""
    live_streams.check_hook_token(settings, token)
    live_streams.publisher_left(session, name, datetime.now(UTC))
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
