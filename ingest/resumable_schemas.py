"""Request and response bodies of the resumable upload API (``/v1/uploads``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from core.storage.base import MAX_PART_NUMBER
from ingest.resumable import MAX_TEAMS, MAX_URLS_PER_CALL, PartUrl, UploadReport
from ingest.resumable import part_count as count_of
from ingest.uploads import MAX_DESCRIPTION, MAX_TITLE


class UploadIn(BaseModel):
    league: str = Field(max_length=64)
    title: str = Field(max_length=MAX_TITLE)
    description: str = Field(default="", max_length=MAX_DESCRIPTION)
    filename: str = Field(default="", max_length=300)
    content_type: str = Field(max_length=200)
    # Checked for 0 and the configured limit by the logic, for a clearer message.
    size: int = Field(ge=0, le=2**63 - 1)
    # Each name's length is checked by the logic, once trimmed.
    teams: list[str] = Field(default_factory=list, max_length=MAX_TEAMS)


class UploadCreated(BaseModel):
    upload_id: str
    asset_id: str
    part_size: int
    part_count: int
    expires_at: datetime
    status: str


class PartsIn(BaseModel):
    numbers: list[int] = Field(min_length=1, max_length=MAX_URLS_PER_CALL)


class PartUrlOut(BaseModel):
    number: int
    url: str
    method: str = "PUT"
    expires_at: datetime

    @classmethod
    def of(cls, part: PartUrl) -> PartUrlOut:
        return cls(number=part.number, url=part.url, expires_at=part.expires_at)


class PartUrlsOut(BaseModel):
    parts: list[PartUrlOut]


class PartOut(BaseModel):
    number: int = Field(ge=1, le=MAX_PART_NUMBER)
    size: int
    etag: str


class UploadStatusOut(BaseModel):
    upload_id: str
    asset_id: str
    status: str
    declared_size: int
    part_size: int
    part_count: int
    parts: list[PartOut]
    missing: list[int]
    wrong_size: list[int]
    bytes_received: int
    expires_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, found: UploadReport) -> UploadStatusOut:
        upload = found.upload
        return cls(
            upload_id=upload.id,
            asset_id=upload.asset_id,
            status=upload.status,
            declared_size=upload.declared_size,
            part_size=upload.part_size,
            part_count=count_of(upload),
            parts=[PartOut(number=p.number, size=p.size, etag=p.etag) for p in found.parts],
            missing=found.missing,
            wrong_size=found.wrong_size,
            bytes_received=found.bytes_received,
            expires_at=upload.expires_at,
            completed_at=upload.completed_at,
        )


__all__ = [
    "PartUrlOut",
    "PartUrlsOut",
    "PartsIn",
    "UploadCreated",
    "UploadIn",
    "UploadStatusOut",
]
