"""What the partner API returns for an asset."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from core.models import Asset, AssetStatus, Rendition


class RenditionOut(BaseModel):
    name: str
    width: int
    height: int
    bandwidth: int
    codecs: str

    @classmethod
    def of(cls, rendition: Rendition) -> RenditionOut:
        return cls(
            name=rendition.name,
            width=rendition.width,
            height=rendition.height,
            bandwidth=rendition.bandwidth,
            codecs=rendition.codecs,
        )


class AssetError(BaseModel):
    code: str
    message: str


class AssetOut(BaseModel):
    id: str
    league: str
    title: str
    description: str
    status: AssetStatus
    progress: int
    # Seconds of encoding left (None when not encoding); an estimate from ffmpeg's speed.
    eta_s: int | None
    error: AssetError | None
    duration_s: float | None
    renditions: list[RenditionOut]
    origin: str
    teams: list[str]
    created_at: datetime
    # Playable from here on (the first rung is published); ready once the whole ladder is.
    playable_at: datetime | None
    ready_at: datetime | None

    @classmethod
    def of(cls, asset: Asset) -> AssetOut:
        error = None
        if asset.error_code:
            error = AssetError(code=asset.error_code, message=asset.error_message or "")
        return cls(
            id=asset.id,
            league=asset.league.slug,
            title=asset.title,
            description=asset.description,
            status=asset.status,
            progress=asset.progress,
            eta_s=asset.eta_s,
            error=error,
            duration_s=asset.duration_s,
            renditions=[RenditionOut.of(r) for r in asset.renditions],
            origin=asset.origin,
            teams=list(asset.teams or []),
            created_at=asset.created_at,
            playable_at=asset.playable_at,
            ready_at=asset.ready_at,
        )
