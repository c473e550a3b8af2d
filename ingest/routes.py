"""Partner API for clips: ``POST /v1/assets`` (multipart upload) and ``GET /v1/assets/{id}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, UploadFile, status

from core.deps import PartnerDep, SessionDep, SettingsDep, StoreDep
from ingest import lifecycle
from ingest.schemas import AssetOut
from ingest.uploads import UploadMeta, accept_upload, get_asset_for, retry_processing

router = APIRouter(prefix="/v1/assets", tags=["assets"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AssetOut)
def upload_asset(
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    principal: PartnerDep,
    file: UploadFile,
    league: Annotated[str, Form(max_length=64)],
    title: Annotated[str, Form(max_length=300)],
    description: Annotated[str, Form(max_length=5000)] = "",
) -> AssetOut:
    """Upload a clip. **Who:** partners of ``league`` and admins. The file is streamed to the
    store; processing starts once the request commits. Poll ``GET /v1/assets/{id}``."""
    meta = UploadMeta(
        league=league,
        title=title,
        description=description,
        filename=file.filename or "",
        content_type=file.content_type or "application/octet-stream",
    )
    asset = accept_upload(
        session, store, principal, meta, file.file, max_bytes=settings.max_upload_bytes
    )
    session.commit()
    return AssetOut.of(asset)


@router.get("/{asset_id}", response_model=AssetOut)
def get_asset(session: SessionDep, principal: PartnerDep, asset_id: str) -> AssetOut:
    """Status, progress (0–100), error and renditions. **Who:** partners of the asset's
    league and admins."""
    return AssetOut.of(get_asset_for(session, principal, asset_id))


@router.post("/{asset_id}/retry", response_model=AssetOut, status_code=status.HTTP_202_ACCEPTED)
def retry_asset(session: SessionDep, principal: PartnerDep, asset_id: str) -> AssetOut:
    """Process a failed asset again from its stored source. **Who:** partners of the asset's
    league and admins."""
    asset = retry_processing(session, principal, asset_id)
    session.commit()
    return AssetOut.of(asset)


@router.delete("/{asset_id}", response_model=AssetOut, status_code=status.HTTP_202_ACCEPTED)
def delete_asset(session: SessionDep, principal: PartnerDep, asset_id: str) -> AssetOut:
    """Delete a clip: fans lose it at once, its files are removed shortly after (202).
    **Who:** partners of the asset's league and admins."""
    asset = lifecycle.delete_asset(session, principal, asset_id)
    session.commit()
    return AssetOut.of(asset)
