"""Resumable uploads: a clip sent in parts straight to the store, resumable after any drop.

One protocol for both backends. The client creates an upload, asks for part URLs, PUTs each
part's bytes to its URL, asks which parts the server holds (after a dropped connection), and
completes. What differs is who receives the bytes:

- **S3**: a native multipart upload. Part URLs are presigned ``UploadPart`` requests, so the
  bytes never pass through the API; S3's ListParts is the record of what arrived, and
  CompleteMultipartUpload joins the parts into the asset's source object.
- **Local directory**: the store has no multipart uploads (``create_multipart`` answers
  ``None``), so the API receives the parts itself, behind URLs signed like S3's (an HMAC over
  upload, part number and expiry: no API key travels with the bytes). Each part is a plain
  object ``uploads/<upload id>/part-00001``; the ``UploadPart`` rows are the record, and
  completing streams the parts one after the other into the source object, then deletes them.
  Re-implementing S3's bookkeeping inside the local store would buy nothing over this.

Either way the server, not the client, decides which parts are present and whether their
sizes add up to the declared size. Every part but the last is exactly ``part_size`` bytes.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import io
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import Principal, require_league, require_role
from core.errors import Conflict, Forbidden, InvalidInput, NotFound, ObjectNotFound, StorageError
from core.errors import TooLarge as TooLargeError
from core.models import Asset, AssetStatus, ResumableUpload, Role, UploadPart, new_id, utcnow
from core.storage import ObjectStore
from core.storage.base import MAX_PART_NUMBER, PartInfo
from ingest.uploads import UploadMeta, check_meta, league_by_slug, queue_processing, source_key

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

log = logging.getLogger(__name__)

MAX_URLS_PER_CALL = 100
# Part URLs live an hour (never past the upload's own expiry): long enough for a 16 MiB part
# over a poor link, short enough that a leaked URL is soon useless. Clients ask again.
PART_URL_TTL_S = 3600
MAX_TEAMS = 10
MAX_TEAM_CHARS = 100
EXPIRE_BATCH = 200
LOCAL_PART_PATH = "/v1/uploads/{upload_id}/parts/{number}"
_SIGNING_CONTEXT = b"courtside-upload-part\n"
_COPY_CHUNK = 1 << 20


class UploadState(enum.StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    ABORTED = "aborted"
    EXPIRED = "expired"


class UploadClosed(Conflict):
    code = "upload_closed"


class UploadExpired(Conflict):
    code = "upload_expired"


class PartsMissing(Conflict):
    """Completing before every part arrived; ``details`` names the parts to send (again)."""

    code = "parts_missing"

    def __init__(self, message: str, details: dict[str, list[int]]) -> None:
        super().__init__(message)
        self.details = details


class BadSignature(Forbidden):
    code = "bad_signature"


class UrlExpired(Forbidden):
    code = "url_expired"


class WrongPartSize(InvalidInput):
    code = "wrong_part_size"


class LengthRequired(InvalidInput):
    code = "length_required"


class TooManyParts(InvalidInput):
    code = "too_many_parts"


class EmptyUpload(InvalidInput):
    code = "empty_upload"


@dataclass(frozen=True)
class NewUpload:
    """What a partner declares when starting an upload."""

    meta: UploadMeta
    size: int
    teams: tuple[str, ...] = ()


@dataclass(frozen=True)
class UploadLimits:
    part_size: int
    expiry_s: int
    max_bytes: int


@dataclass(frozen=True)
class PartUrl:
    number: int
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class UploadReport:
    """What the server holds of an upload: received parts, and what is still needed."""

    upload: ResumableUpload
    parts: list[PartInfo]
    missing: list[int] = field(default_factory=list)
    wrong_size: list[int] = field(default_factory=list)

    @property
    def bytes_received(self) -> int:
        return sum(part.size for part in self.parts)


# --- sizes and keys --------------------------------------------------------------------------


def count_parts(size: int, part_size: int) -> int:
    return max(1, math.ceil(size / part_size))


def part_count(upload: ResumableUpload) -> int:
    return count_parts(upload.declared_size, upload.part_size)


def expected_part_size(upload: ResumableUpload, number: int) -> int:
    """Every part is ``part_size`` bytes except the last, which holds the remainder."""
    count = part_count(upload)
    if not 1 <= number <= count:
        raise InvalidInput(f"part number {number} is not in 1..{count} for this upload")
    if number < count:
        return upload.part_size
    return upload.declared_size - (count - 1) * upload.part_size


def part_key(upload_id: str, number: int) -> str:
    return f"{part_prefix(upload_id)}part-{number:05d}"


def part_prefix(upload_id: str) -> str:
    return f"uploads/{upload_id}/"


# --- signed part URLs (local backend) ---------------------------------------------------------


def sign_part(secret: bytes, upload_id: str, number: int, expires: int) -> str:
    """The HMAC a local part URL carries: it binds upload, part number and expiry."""
    message = _SIGNING_CONTEXT + f"{upload_id}\n{number}\n{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def verify_part_signature(
    secret: bytes, upload_id: str, number: int, *, expires: int, signature: str, now: datetime
) -> None:
    """Refuse a part URL that was not signed by us, or whose time is up."""
    expected = sign_part(secret, upload_id, number, expires)
    if not hmac.compare_digest(expected, signature.lower()):
        raise BadSignature("this part URL is not valid; ask for new part URLs")
    if expires < now.timestamp():
        raise UrlExpired("this part URL has expired; ask for new part URLs")


# --- creating and finding uploads ------------------------------------------------------------


def create_upload(
    session: Session,
    store: ObjectStore,
    principal: Principal,
    new: NewUpload,
    limits: UploadLimits,
) -> ResumableUpload:
    """A new asset (status ``uploading``) and its open upload; on S3, the multipart upload."""
    require_role(principal, Role.PARTNER)
    league = league_by_slug(session, new.meta.league)
    require_league(principal, league.id)
    check_meta(new.meta)
    _check_size(new.size, limits)
    asset = Asset(
        league=league,
        title=new.meta.title.strip(),
        description=new.meta.description,
        source_filename=new.meta.filename[:300],
        created_by=principal.label,
        origin="resumable",
        teams=_clean_teams(new.teams),
    )
    session.add(asset)
    session.flush()
    return _open_upload(session, store, asset, new, limits)


def _open_upload(
    session: Session, store: ObjectStore, asset: Asset, new: NewUpload, limits: UploadLimits
) -> ResumableUpload:
    key = source_key(asset.id)
    # Started before the row is written: if the commit then fails, the multipart upload is
    # orphaned, which a bucket lifecycle rule (AbortIncompleteMultipartUpload) cleans up.
    upload_id = store.create_multipart(key, content_type=new.meta.content_type)
    now = utcnow()
    upload = ResumableUpload(
        id=new_id(),
        asset_id=asset.id,
        league_id=asset.league_id,
        declared_size=new.size,
        content_type=new.meta.content_type[:200],
        part_size=limits.part_size,
        key=key,
        s3_upload_id=upload_id,
        status=UploadState.OPEN,
        created_by=asset.created_by,
        created_at=now,
        expires_at=now + timedelta(seconds=limits.expiry_s),
    )
    session.add(upload)
    session.flush()
    return upload


def _check_size(size: int, limits: UploadLimits) -> None:
    if size <= 0:
        raise EmptyUpload("the declared size is 0 bytes; send a video file")
    if size > limits.max_bytes:
        raise TooLargeError(f"the file is larger than the limit of {limits.max_bytes} bytes")
    if count_parts(size, limits.part_size) > MAX_PART_NUMBER:
        raise TooManyParts(f"the file needs more than {MAX_PART_NUMBER} parts")


def _clean_teams(teams: Iterable[str]) -> list[str]:
    cleaned = [team.strip() for team in teams if team.strip()]
    if len(cleaned) > MAX_TEAMS or any(len(team) > MAX_TEAM_CHARS for team in cleaned):
        raise InvalidInput(f"name at most {MAX_TEAMS} teams of at most {MAX_TEAM_CHARS} characters")
    return list(dict.fromkeys(cleaned))


def get_upload_for(
    session: Session, principal: Principal, upload_id: str, *, lock: bool = False
) -> ResumableUpload:
    """An upload its league's partners (and admins) may act on; locked for update if asked."""
    require_role(principal, Role.PARTNER)
    upload = _find(session, upload_id, lock=lock)
    require_league(principal, upload.league_id)
    return upload


def _find(session: Session, upload_id: str, *, lock: bool) -> ResumableUpload:
    upload = session.get(ResumableUpload, upload_id, with_for_update=lock, populate_existing=lock)
    if upload is None:
        raise NotFound("no such upload")
    return upload


def _require_open(upload: ResumableUpload, now: datetime) -> None:
    if upload.status != UploadState.OPEN:
        raise UploadClosed(f"this upload is {upload.status}; start a new upload to send the clip")
    if upload.expires_at <= now:
        raise UploadExpired("this upload has expired; start a new upload to send the clip")


# --- part URLs -------------------------------------------------------------------------------


def part_urls(
    store: ObjectStore,
    upload: ResumableUpload,
    numbers: Sequence[int],
    *,
    secret: bytes,
    base_url: str,
    now: datetime | None = None,
) -> list[PartUrl]:
    """URLs to PUT the given parts to: presigned S3 URLs, or the API's own signed ones."""
    now = now or utcnow()
    _require_open(upload, now)
    wanted = _check_numbers(upload, numbers)
    expires_at = min(now + timedelta(seconds=PART_URL_TTL_S), upload.expires_at)
    expires_s = max(1, int((expires_at - now).total_seconds()))
    return [
        PartUrl(
            number, _part_url(store, upload, number, expires_s, secret, base_url, now), expires_at
        )
        for number in wanted
    ]


def _check_numbers(upload: ResumableUpload, numbers: Sequence[int]) -> list[int]:
    if not 1 <= len(numbers) <= MAX_URLS_PER_CALL:
        raise InvalidInput(f"ask for 1 to {MAX_URLS_PER_CALL} part numbers at a time")
    for number in numbers:
        expected_part_size(upload, number)  # refuses a number outside the upload
    return list(dict.fromkeys(numbers))


def _part_url(
    store: ObjectStore,
    upload: ResumableUpload,
    number: int,
    expires_s: int,
    secret: bytes,
    base_url: str,
    now: datetime,
) -> str:
    if upload.s3_upload_id is not None:
        return store.presigned_part_url(
            upload.key, upload.s3_upload_id, number, expires_s=expires_s
        )
    expires = int(now.timestamp()) + expires_s
    path = LOCAL_PART_PATH.format(upload_id=upload.id, number=number)
    signature = sign_part(secret, upload.id, number, expires)
    return f"{base_url.rstrip('/')}{path}?exp={expires}&sig={signature}"


# --- receiving a part (local backend) --------------------------------------------------------


def expected_part_for(
    session: Session, upload_id: str, number: int, *, now: datetime | None = None
) -> int:
    """The exact size part ``number`` must have; refuses a closed or expired upload.

    Called before any byte of the part is read, so a doomed PUT fails at once.
    """
    upload = _find(session, upload_id, lock=False)
    _require_open(upload, now or utcnow())
    if upload.s3_upload_id is not None:
        raise Conflict("this upload's parts go to the URLs the API hands out, not here")
    return expected_part_size(upload, number)


def check_part_length(expected: int, length: int | None) -> None:
    """Check a part's declared Content-Length against the size it must have."""
    if length is None:
        raise LengthRequired("send the part with a Content-Length header")
    if length > expected:
        raise TooLargeError(f"this part must be {expected} bytes; {length} were sent")
    if length != expected:
        raise WrongPartSize(
            f"this part must be {expected} bytes; only the last part may be shorter"
        )


def receive_part(
    session: Session,
    store: ObjectStore,
    upload_id: str,
    number: int,
    body: BinaryIO,
    *,
    size: int,
    etag: str,
    now: datetime | None = None,
) -> None:
    """Store one part's bytes (already checked to be ``size`` bytes with MD5 ``etag``) and
    record it. The signed URL authorised the caller, so there is no principal here."""
    now = now or utcnow()
    if expected_part_for(session, upload_id, number, now=now) != size:
        raise WrongPartSize("this part has the wrong size; only the last part may be shorter")
    key = part_key(upload_id, number)
    store.put_stream(key, body, max_bytes=size)
    # Locked only now, not while the bytes stream in, so parts may arrive side by side. An
    # abort or expiry that ran meanwhile wins: the part just written goes too.
    upload = _find(session, upload_id, lock=True)
    if upload.status != UploadState.OPEN:
        store.delete(key)
        raise UploadClosed(f"this upload is {upload.status}; start a new upload to send the clip")
    _record_part(upload, number, size, etag)


def _record_part(upload: ResumableUpload, number: int, size: int, etag: str) -> None:
    known = next((part for part in upload.parts if part.number == number), None)
    if known is None:
        upload.parts.append(UploadPart(number=number, size=size, etag=etag, received_at=utcnow()))
    else:  # a part sent again replaces the earlier one, as on S3
        known.size, known.etag, known.received_at = size, etag, utcnow()


# --- status, completing, aborting ------------------------------------------------------------


def report(store: ObjectStore, upload: ResumableUpload) -> UploadReport:
    """The received parts as the store knows them (S3 ListParts while open), and what's
    missing or has the wrong size."""
    parts = [part for part in _received(store, upload) if part.number <= part_count(upload)]
    sizes = {part.number: part.size for part in parts}
    numbers = range(1, part_count(upload) + 1)
    return UploadReport(
        upload=upload,
        parts=parts,
        missing=[n for n in numbers if n not in sizes],
        wrong_size=[n for n in numbers if n in sizes and sizes[n] != expected_part_size(upload, n)],
    )


def _received(store: ObjectStore, upload: ResumableUpload) -> list[PartInfo]:
    if upload.s3_upload_id is not None and upload.status == UploadState.OPEN:
        return store.list_parts(upload.key, upload.s3_upload_id)
    return [PartInfo(number=p.number, size=p.size, etag=p.etag) for p in upload.parts]


def complete_upload(
    session: Session,
    store: ObjectStore,
    principal: Principal,
    upload_id: str,
    *,
    now: datetime | None = None,
) -> UploadReport:
    """Join the parts into the asset's source and queue its processing (after the commit).
    Completing a completed upload returns the same report and does nothing else."""
    now = now or utcnow()
    upload = get_upload_for(session, principal, upload_id, lock=True)
    if upload.status == UploadState.COMPLETED:
        return report(store, upload)
    _require_open(upload, now)
    found = report(store, upload)
    if found.missing or found.wrong_size:
        raise PartsMissing(
            _missing_message(found), {"missing": found.missing, "wrong_size": found.wrong_size}
        )
    _join_parts(store, upload, found.parts)
    _finish(session, upload, found.parts, now)
    return report(store, upload)


def _missing_message(found: UploadReport) -> str:
    problems = []
    if found.missing:
        problems.append(f"{len(found.missing)} parts have not arrived")
    if found.wrong_size:
        problems.append(f"{len(found.wrong_size)} parts have the wrong size")
    return "; ".join(problems) + ": send those parts (again), then complete"


def _join_parts(store: ObjectStore, upload: ResumableUpload, parts: Sequence[PartInfo]) -> None:
    if upload.s3_upload_id is not None:
        store.complete_multipart(upload.key, upload.s3_upload_id, parts)
        return
    keys = [part_key(upload.id, part.number) for part in parts]
    joined = io.BufferedReader(_ConcatStream(store, keys), buffer_size=_COPY_CHUNK)
    store.put_stream(
        upload.key, joined, content_type=upload.content_type, max_bytes=upload.declared_size
    )
    store.delete_prefix(part_prefix(upload.id))


def _finish(
    session: Session, upload: ResumableUpload, parts: Sequence[PartInfo], now: datetime
) -> None:
    if upload.s3_upload_id is not None:  # keep ListParts' answer: S3 forgets it on completion
        upload.parts = [UploadPart(number=p.number, size=p.size, etag=p.etag) for p in parts]
    upload.status = UploadState.COMPLETED
    upload.completed_at = now
    asset = _asset_of(session, upload)
    asset.source_key = upload.key
    asset.source_size = upload.declared_size
    queue_processing(session, asset)


def _asset_of(session: Session, upload: ResumableUpload) -> Asset:
    asset = session.get(Asset, upload.asset_id)
    if asset is None:  # the foreign key cascades deletes, so this means a broken database
        raise NotFound("the upload's asset no longer exists")
    return asset


def abort_upload(
    session: Session, store: ObjectStore, principal: Principal, upload_id: str
) -> ResumableUpload:
    """Discard the parts and fail the asset (``upload_aborted``). Aborting an aborted or
    expired upload changes nothing; a completed one cannot be aborted."""
    upload = get_upload_for(session, principal, upload_id, lock=True)
    if upload.status in (UploadState.ABORTED, UploadState.EXPIRED):
        return upload
    if upload.status == UploadState.COMPLETED:
        raise UploadClosed("this upload is complete and its clip is processing; delete the asset")
    _discard_parts(store, upload)
    _close(session, upload, UploadState.ABORTED, "upload_aborted", "The upload was cancelled.")
    return upload


def _discard_parts(store: ObjectStore, upload: ResumableUpload) -> None:
    if upload.s3_upload_id is not None:
        store.abort_multipart(upload.key, upload.s3_upload_id)
    else:
        store.delete_prefix(part_prefix(upload.id))


def _close(
    session: Session, upload: ResumableUpload, state: UploadState, code: str, message: str
) -> None:
    upload.status = state
    upload.parts = []
    asset = _asset_of(session, upload)
    asset.status = AssetStatus.FAILED
    asset.error_code = code
    asset.error_message = message


# --- expiry ----------------------------------------------------------------------------------


def expire_uploads(
    session: Session, store: ObjectStore, *, now: datetime | None = None, limit: int = EXPIRE_BATCH
) -> int:
    """Abort open uploads past their expiry: parts discarded, upload ``expired``, asset failed
    with ``upload_expired``. Returns how many; the caller commits. An upload whose parts the
    store cannot discard now stays open for the next run."""
    now = now or utcnow()
    stale = session.scalars(
        select(ResumableUpload)
        .where(ResumableUpload.status == UploadState.OPEN, ResumableUpload.expires_at <= now)
        .order_by(ResumableUpload.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)  # two beat runs never fight over one upload
    ).all()
    return sum(_expire(session, store, upload) for upload in stale)


def _expire(session: Session, store: ObjectStore, upload: ResumableUpload) -> bool:
    try:
        _discard_parts(store, upload)
    except StorageError:
        log.warning("could not discard the parts of expired upload %s", upload.id, exc_info=True)
        return False
    _close(session, upload, UploadState.EXPIRED, "upload_expired", _expired_message(upload))
    return True


def _expired_message(upload: ResumableUpload) -> str:
    hours = max(1, round((upload.expires_at - upload.created_at).total_seconds() / 3600))
    return (
        f"The upload was not finished within {hours} hours, so the parts received were "
        "deleted. Start a new upload to send this clip again."
    )


# --- joining local parts ---------------------------------------------------------------------


class _ConcatStream(io.RawIOBase):
    """The stored parts read one after another as one stream, a chunk at a time."""

    def __init__(self, store: ObjectStore, keys: Sequence[str]) -> None:
        self._chunks = _chunks_of(store, keys)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        if not self._pending:
            self._pending = next(self._chunks, b"")
        target = memoryview(buffer).cast("B")
        size = min(len(target), len(self._pending))
        target[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _chunks_of(store: ObjectStore, keys: Sequence[str]) -> Iterator[bytes]:
    for key in keys:
        try:
            yield from store.iter_range(key, chunk_size=_COPY_CHUNK)
        except ObjectNotFound as exc:
            # A recorded part whose file is gone: the partner must send it again.
            raise Conflict(f"a received part is no longer stored ({key}); send it again") from exc
