"""Partner API for resumable uploads (``/v1/uploads``); see :mod:`ingest.resumable`.

The flow: ``POST /v1/uploads`` → ``POST /v1/uploads/{id}/parts`` (URLs) → ``PUT`` each part's
bytes to its URL → ``GET /v1/uploads/{id}`` after a drop to see what is missing →
``POST /v1/uploads/{id}/complete``. The part PUT route below serves the local backend only.
"""

from __future__ import annotations

import hashlib
import tempfile
from typing import Annotated, BinaryIO, cast

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from core.deps import PartnerDep, SessionDep, SettingsDep, StoreDep
from core.errors import InvalidInput, TooLarge
from core.models import utcnow
from core.settings import Settings
from core.storage import ObjectStore
from ingest import resumable
from ingest.resumable_schemas import (
    PartsIn,
    PartUrlOut,
    PartUrlsOut,
    UploadCreated,
    UploadIn,
    UploadStatusOut,
)
from ingest.uploads import UploadMeta

router = APIRouter(prefix="/v1/uploads", tags=["uploads"])

_SPOOL_IN_MEMORY = 1 << 20  # a part's first MiB stays in memory, the rest goes to a temp file


def _limits(settings: Settings) -> resumable.UploadLimits:
    return resumable.UploadLimits(
        part_size=settings.upload_part_bytes,
        expiry_s=settings.upload_expiry_s,
        max_bytes=settings.max_upload_bytes,
    )


def _new_upload(body: UploadIn) -> resumable.NewUpload:
    meta = UploadMeta(
        league=body.league,
        title=body.title,
        description=body.description,
        filename=body.filename,
        content_type=body.content_type,
    )
    return resumable.NewUpload(meta=meta, size=body.size, teams=tuple(body.teams))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=UploadCreated)
def create_upload(
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    principal: PartnerDep,
    body: UploadIn,
) -> UploadCreated:
    """Start a resumable upload of a clip of ``size`` bytes. **Who:** partners of ``league``
    and admins. Then ask for part URLs, PUT the parts, and complete."""
    upload = resumable.create_upload(
        session, store, principal, _new_upload(body), _limits(settings)
    )
    session.commit()
    return UploadCreated(
        upload_id=upload.id,
        asset_id=upload.asset_id,
        part_size=upload.part_size,
        part_count=resumable.part_count(upload),
        expires_at=upload.expires_at,
        status=upload.status,
    )


@router.post("/{upload_id}/parts", response_model=PartUrlsOut)
def get_part_urls(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    principal: PartnerDep,
    upload_id: str,
    body: PartsIn,
) -> PartUrlsOut:
    """URLs to PUT parts ``numbers`` to (at most 100 per call), each valid for an hour at
    most. **Who:** partners of the upload's league and admins. The PUT needs no API key; its
    response's ``ETag`` header is the part's checksum."""
    upload = resumable.get_upload_for(session, principal, upload_id)
    urls = resumable.part_urls(
        store,
        upload,
        body.numbers,
        secret=settings.secret_key.get_secret_value().encode(),
        base_url=settings.public_base_url or str(request.base_url),
    )
    return PartUrlsOut(parts=[PartUrlOut.of(url) for url in urls])


@router.put("/{upload_id}/parts/{number}", status_code=status.HTTP_200_OK)
async def put_part(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    upload_id: str,
    number: int,
    exp: Annotated[int, Query(ge=0, le=2**42)],
    sig: Annotated[str, Query(max_length=128)],
) -> Response:
    """Receive one part's bytes (local storage; on S3 the part URLs point at S3 itself).
    **Who:** holders of a signed part URL from ``POST /v1/uploads/{id}/parts``; no API key.
    Needs a ``Content-Length`` of exactly the part's size (only the last part is shorter);
    answers with the part's MD5 as ``ETag``, like S3."""
    secret = settings.secret_key.get_secret_value().encode()
    resumable.verify_part_signature(
        secret, upload_id, number, expires=exp, signature=sig, now=utcnow()
    )
    expected = await run_in_threadpool(resumable.expected_part_for, session, upload_id, number)
    resumable.check_part_length(expected, _content_length(request))
    spool, etag = await _spool_body(request, expected)
    with spool:
        await run_in_threadpool(
            _receive, session, store, upload_id, number, cast(BinaryIO, spool), expected, etag
        )
    return Response(status_code=status.HTTP_200_OK, headers={"ETag": etag})


def _receive(
    session: Session,
    store: ObjectStore,
    upload_id: str,
    number: int,
    body: BinaryIO,
    size: int,
    etag: str,
) -> None:
    resumable.receive_part(session, store, upload_id, number, body, size=size, etag=etag)
    session.commit()


def _content_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None or not raw.isdigit() or len(raw) > 19:
        return None
    return int(raw)


async def _spool_body(
    request: Request, size: int
) -> tuple[tempfile.SpooledTemporaryFile[bytes], str]:
    """The request body in a temporary file, checked to be ``size`` bytes, and its quoted MD5."""
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115 - returned
    digest = hashlib.md5(usedforsecurity=False)  # an ETag like S3's, not a security check
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > size:
                raise TooLarge(f"this part must be {size} bytes; more were sent")
            digest.update(chunk)
            spool.write(chunk)
    except ClientDisconnect as exc:
        spool.close()
        raise InvalidInput("the connection dropped during the part; send it again") from exc
    except BaseException:
        spool.close()
        raise
    if received != size:
        spool.close()
        raise InvalidInput(f"this part must be {size} bytes; {received} arrived; send it again")
    spool.seek(0)
    return spool, f'"{digest.hexdigest()}"'


@router.get("/{upload_id}", response_model=UploadStatusOut)
def get_upload(
    session: SessionDep, store: StoreDep, principal: PartnerDep, upload_id: str
) -> UploadStatusOut:
    """Status, received parts (asked of the store: the server is the record, not the client),
    missing part numbers and bytes received. **Who:** partners of the upload's league and
    admins. After a dropped connection, send the ``missing`` parts, then complete."""
    upload = resumable.get_upload_for(session, principal, upload_id)
    return UploadStatusOut.of(resumable.report(store, upload))


@router.post("/{upload_id}/complete", response_model=UploadStatusOut)
def complete_upload(
    session: SessionDep, store: StoreDep, principal: PartnerDep, upload_id: str
) -> UploadStatusOut:
    """Join the parts into the clip and queue its processing; poll ``GET /v1/assets/{id}``.
    **Who:** partners of the upload's league and admins. 409 ``parts_missing`` lists the
    parts to send first. Completing twice returns the same answer."""
    found = resumable.complete_upload(session, store, principal, upload_id)
    session.commit()
    return UploadStatusOut.of(found)


@router.delete("/{upload_id}", response_model=UploadStatusOut)
def abort_upload(
    session: SessionDep, store: StoreDep, principal: PartnerDep, upload_id: str
) -> UploadStatusOut:
    """Cancel the upload: its parts are deleted and the asset fails with ``upload_aborted``.
    **Who:** partners of the upload's league and admins."""
    upload = resumable.abort_upload(session, store, principal, upload_id)
    session.commit()
    return UploadStatusOut.of(resumable.report(store, upload))
