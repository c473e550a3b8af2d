"""Partner API for clips from live: ``POST /v1/live/{id}/clips``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Self

from fastapi import APIRouter, Request, status
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from core.deps import PartnerDep, SessionDep, SettingsDep, StoreDep
from ingest.live_clips import ClipAsk, request_clip
from ingest.schemas import AssetOut
from ingest.uploads import MAX_DESCRIPTION, MAX_TITLE

router = APIRouter(prefix="/v1/live", tags=["live"])
# Seconds into a stream: a DVR window is at most 6 h, so anything beyond is a mistake.
MAX_OFFSET_S = 7 * 24 * 3600


class LiveClipIn(BaseModel):
    """A span of the stream: ``start``/``end`` as program date times (ISO 8601 with a time
    zone, as in the playlists' ``EXT-X-PROGRAM-DATE-TIME``), or ``start_s``/``end_s`` in
    seconds from the first segment the DVR still holds."""

    title: str = Field(min_length=1, max_length=MAX_TITLE, examples=["Goal, 23'"])
    description: str = Field(default="", max_length=MAX_DESCRIPTION)
    start: AwareDatetime | None = Field(default=None, examples=["2026-11-30T20:23:05.200Z"])
    end: AwareDatetime | None = Field(default=None, examples=["2026-11-30T20:23:25.200Z"])
    start_s: float | None = Field(default=None, ge=0, le=MAX_OFFSET_S)
    end_s: float | None = Field(default=None, ge=0, le=MAX_OFFSET_S)

    @model_validator(mode="after")
    def _one_kind_of_span(self) -> Self:
        dates, seconds = (self.start, self.end), (self.start_s, self.end_s)
        uses_dates = any(value is not None for value in dates)
        if uses_dates == any(value is not None for value in seconds):
            raise ValueError("give start and end, or start_s and end_s")
        if None in (dates if uses_dates else seconds):
            raise ValueError("give both ends of the span")
        return self


class LiveClipOut(AssetOut):
    status_url: str = Field(description="Poll it: playable once playable_at is set")


@router.post("/{stream_id}/clips", status_code=status.HTTP_202_ACCEPTED)
def create_live_clip(
    request: Request,
    stream_id: str,
    body: LiveClipIn,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    principal: PartnerDep,
) -> LiveClipOut:
    """Cut a clip from a live stream (on air, or ended while its DVR is stored) into a new
    highlight of the same league and match. Segments inside the span are copied and only
    the two edges re-encoded, so it is playable within seconds. Refused (422) outside the
    DVR window, over ``live_clip_max_s``, or against the league's clip limits. **Who:** the
    stream league's partners, admins."""
    ask = ClipAsk(
        title=body.title,
        description=body.description,
        start=body.start,
        end=body.end,
        start_s=body.start_s,
        end_s=body.end_s,
    )
    asset = request_clip(
        session,
        store,
        principal,
        stream_id,
        ask,
        max_s=settings.live_clip_max_s,
        now=datetime.now(UTC),
    )
    session.commit()
    # Behind a proxy or CDN the public address is configured; else the one asked.
    base = (settings.public_base_url or str(request.base_url)).rstrip("/")
    url = f"{base}/v1/assets/{asset.id}"
    return LiveClipOut(**AssetOut.of(asset).model_dump(), status_url=url)
