"""An asset's end of life, and the sweepers that keep processing and storage honest.

- Deleting: the row turns ``deleted`` at once (fans lose the clip with that commit: catalog
  and playback only serve ready or playable assets), ``asset.deleted`` is emitted, and
  ``ingest.purge_asset`` removes every object of the asset afterwards.
- ``ingest.watchdog`` (beat, every minute): a processing attempt silent for
  ``stuck_after_s`` is re-queued, or failed as ``stuck`` after its third attempt; an asset
  queued for twice that long has its lost message sent again.
- ``ingest.reconcile_storage`` (beat, hourly): objects under ``hls/``, ``sources/``,
  ``thumbs/``, ``work/`` and ``live/`` that belong to no live asset, and attempt prefixes that
  lost (published output or chunk work), are deleted.

A live stream's asset is its live task's business while the stream is on (it stays
``processing`` for hours, heartbeating the stream row, not the asset): the watchdog leaves it
alone until the stream has ended or errored. Its ``live/<id>/`` objects go only with the
asset (deleted, or vanished past the grace).

The object store keeps no modification times we can read, so "old enough" comes from the
database for known assets (their last update or heartbeat) and, for keys whose asset does not
exist (an upload still streaming has no committed row yet), from the reconciler's own marks:
such a prefix is deleted only once it has been an orphan for the whole grace period.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import chain

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.orm import Session, lazyload, sessionmaker

from core.auth import Principal
from core.celery_app import app, app_settings, enqueue_after_commit
from core.db import engine_for, make_sessionmaker, session_scope
from core.errors import ObjectNotFound
from core.events import ASSET_DELETED, ASSET_FAILED, emit
from core.logging import fields
from core.models import Asset, AssetStatus, LiveState, LiveStream, ResumableUpload, utcnow
from core.storage import ObjectStore, make_object_store
from ingest.resumable import UploadState, part_prefix
from ingest.uploads import PROCESS_TASK, get_asset_for

log = logging.getLogger(__name__)

PURGE_TASK = "ingest.purge_asset"
WATCHDOG_TASK = "ingest.watchdog"
RECONCILE_TASK = "ingest.reconcile_storage"

MAX_ATTEMPTS = 3
STUCK_CODE = "stuck"
STUCK_MESSAGE = (
    "Processing stopped responding three times, so we stopped trying. The source is kept: "
    "retry the clip, and contact support if it happens again."
)
WATCHDOG_BATCH = 200
# Longer than any upload or processing attempt lasts: nothing younger is touched.
RECONCILE_GRACE_S = 24 * 3600
MEDIA_ROOTS = ("hls/", "sources/", "thumbs/", "work/", "live/")
# Roots whose folders are per attempt: ``hls/<id>/<n>/`` (published output) and
# ``work/<id>/<n>/`` (chunks of a long source, removed by the join).
ATTEMPT_ROOTS = ("hls", "work")
MARKS_KEY = "reconcile/orphans.json"
MAX_MARKS = 100_000
_ASSET_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


# --- deleting ---------------------------------------------------------------------------------


def delete_asset(session: Session, principal: Principal, asset_id: str) -> Asset:
    """Mark the asset deleted, close its open uploads, emit ``asset.deleted`` and purge its
    objects after the commit. Deleting it again is a 404, like any missing asset."""
    asset = get_asset_for(session, principal, asset_id)
    asset.status = AssetStatus.DELETED
    for upload in _uploads_of(session, asset.id):
        if upload.status == UploadState.OPEN:
            # Closed so that completing it later cannot queue a deleted clip again.
            upload.status = UploadState.ABORTED
    emit(session, asset.league_id, ASSET_DELETED, asset.id, {"title": asset.title})
    enqueue_after_commit(session, PURGE_TASK, [asset.id])
    return asset


def _uploads_of(session: Session, asset_id: str) -> list[ResumableUpload]:
    return list(
        session.scalars(select(ResumableUpload).where(ResumableUpload.asset_id == asset_id))
    )


@dataclass(frozen=True)
class UploadLeftovers:
    key: str
    part_prefix: str
    s3_upload_id: str | None


def purge_asset(sessions: sessionmaker[Session], store: ObjectStore, asset_id: str) -> int:
    """Delete every object of a deleted (or vanished) asset; return how many. Idempotent.
    An asset that is not deleted is left alone: a purge never takes a live clip."""
    if not _ASSET_ID.match(asset_id):
        raise ValueError(f"not an asset id: {asset_id!r}")
    with session_scope(sessions) as session:
        asset = session.get(Asset, asset_id, options=[lazyload(Asset.league)])
        if asset is not None and asset.status is not AssetStatus.DELETED:
            log.warning("purge refused: asset is live", extra=fields(asset_id=asset_id))
            return 0
        leftovers = [
            UploadLeftovers(u.key, part_prefix(u.id), u.s3_upload_id)
            for u in _uploads_of(session, asset_id)
        ]
    # The store is worked on with no transaction open.
    removed = sum(store.delete_prefix(f"{root}{asset_id}/") for root in MEDIA_ROOTS)
    return removed + sum(_discard_upload(store, leftover) for leftover in leftovers)


def _discard_upload(store: ObjectStore, leftover: UploadLeftovers) -> int:
    if leftover.s3_upload_id is not None:
        store.abort_multipart(leftover.key, leftover.s3_upload_id)
    removed = store.delete_prefix(leftover.part_prefix)
    if store.exists(leftover.key):
        store.delete(leftover.key)
        removed += 1
    return removed


# --- watchdog ---------------------------------------------------------------------------------


@dataclass
class WatchdogReport:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)


def watchdog(
    session: Session, now: datetime, *, stuck_after_s: int, queued_after_s: int
) -> WatchdogReport:
    """Re-queue (or fail, after ``MAX_ATTEMPTS``) processing attempts with no sign of life for
    ``stuck_after_s``; re-send the task of assets queued for ``queued_after_s`` with no
    pickup. A live worker writes its heartbeat every second or so and is never touched.
    The caller commits (tasks are sent after that)."""
    report = WatchdogReport()
    for asset in _silent_processing(session, now - timedelta(seconds=stuck_after_s)):
        if asset.attempt < MAX_ATTEMPTS:
            _requeue(session, asset, now)
            report.requeued.append(asset.id)
        else:
            _fail_stuck(session, asset)
            report.failed.append(asset.id)
    for asset in _forgotten_queued(session, now - timedelta(seconds=queued_after_s)):
        # Touched so that the message is sent once per period, not on every run.
        asset.updated_at = now
        enqueue_after_commit(session, PROCESS_TASK, [asset.id])
        report.resent.append(asset.id)
    return report


def _not_on_air() -> ColumnElement[bool]:
    """No live stream that has not ended stands behind the asset, nor one whose replay has
    no source yet: until ``transcode.live_replay`` stores it there is nothing to process,
    and the asset plays from its DVR playlists meanwhile."""
    live = select(LiveStream.id).where(LiveStream.id == Asset.id)
    on_air = live.where(LiveStream.state.not_in((LiveState.ENDED, LiveState.ERRORED)))
    return ~exists(on_air) & or_(~exists(live), Asset.source_key.is_not(None))


def _locked_assets(session: Session, *conditions: ColumnElement[bool]) -> list[Asset]:
    query = (
        select(Asset)
        .where(*conditions, _not_on_air())
        .options(lazyload(Asset.league))
        .order_by(Asset.updated_at)
        .limit(WATCHDOG_BATCH)
        # A worker that wakes up and writes meanwhile wins; we look again next minute.
        .with_for_update(of=Asset, skip_locked=True)
    )
    return list(session.scalars(query))


def _silent_processing(session: Session, silent_since: datetime) -> list[Asset]:
    # Both clocks must be stale: a fresh attempt may still carry the last one's heartbeat.
    return _locked_assets(
        session,
        Asset.status == AssetStatus.PROCESSING,
        Asset.updated_at < silent_since,
        or_(Asset.heartbeat_at.is_(None), Asset.heartbeat_at < silent_since),
    )


def _forgotten_queued(session: Session, queued_since: datetime) -> list[Asset]:
    return _locked_assets(
        session, Asset.status == AssetStatus.QUEUED, Asset.updated_at < queued_since
    )


def _requeue(session: Session, asset: Asset, now: datetime) -> None:
    # Queued as of now: the check for lost queue messages starts counting from here.
    asset.status, asset.eta_s, asset.updated_at = AssetStatus.QUEUED, None, now
    enqueue_after_commit(session, PROCESS_TASK, [asset.id])
    log.warning("stuck attempt re-queued", extra=fields(asset_id=asset.id, attempt=asset.attempt))


def _fail_stuck(session: Session, asset: Asset) -> None:
    asset.status, asset.eta_s = AssetStatus.FAILED, None
    asset.error_code, asset.error_message = STUCK_CODE, STUCK_MESSAGE
    emit(
        session,
        asset.league_id,
        ASSET_FAILED,
        asset.id,
        {"code": STUCK_CODE, "message": STUCK_MESSAGE},
    )
    log.warning("stuck asset failed", extra=fields(asset_id=asset.id, attempt=asset.attempt))


# --- storage reconciler -----------------------------------------------------------------------


@dataclass
class ReconcileReport:
    scanned_keys: int = 0
    deleted_prefixes: list[str] = field(default_factory=list)
    deleted_objects: int = 0
    waiting_orphans: int = 0


@dataclass(frozen=True)
class AssetView:
    """What the reconciler needs of an asset row."""

    status: AssetStatus
    attempt: int
    last_activity: datetime
    referenced: frozenset[str]


def group_prefixes(keys: Iterable[str]) -> dict[str, dict[str, int]]:
    """Keys by asset id, then by prefix: ``hls/<id>/<n>/`` per attempt, ``<root><id>/`` for
    sources and thumbnails (and any odd ``hls/`` key); values count the keys."""
    groups: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for key in keys:
        parts = key.split("/")
        if len(parts) < 3:
            continue  # not under an asset's folder: not ours to judge
        root, asset_id = parts[0], parts[1]
        per_attempt = root in ATTEMPT_ROOTS and len(parts) > 3 and parts[2].isdigit()
        attempt = parts[2] if per_attempt else None
        prefix = f"{root}/{asset_id}/" + (f"{attempt}/" if attempt else "")
        groups[asset_id][prefix] += 1
    return groups


def _attempt_of(prefix: str) -> int | None:
    parts = prefix.rstrip("/").split("/")
    return int(parts[2]) if parts[0] in ATTEMPT_ROOTS and len(parts) == 3 else None


def keep_prefix(prefix: str, view: AssetView, now: datetime, grace_s: int) -> bool:
    """Whether an asset's prefix stays: nothing of a deleted asset; else its sources and
    thumbnails always, and an attempt if it is the published one, the one in progress, or
    recent enough to be in doubt."""
    if view.status is AssetStatus.DELETED:
        return False
    attempt = _attempt_of(prefix)
    if attempt is None or prefix in view.referenced:
        return True
    if attempt == view.attempt and view.status in (AssetStatus.PROCESSING, AssetStatus.QUEUED):
        return True
    return now - view.last_activity < timedelta(seconds=grace_s)


def _referenced(asset: Asset) -> frozenset[str]:
    keys = [asset.master_key, asset.poster_key, asset.storyboard_key]
    keys += [rendition.playlist_key for rendition in asset.renditions]
    return frozenset(_attempt_folder(key) for key in keys if key)


def _attempt_folder(key: str) -> str:
    parts = key.split("/")
    return "/".join(parts[:3]) + "/" if len(parts) > 3 else key


def _views(sessions: sessionmaker[Session], asset_ids: list[str]) -> dict[str, AssetView]:
    views: dict[str, AssetView] = {}
    with session_scope(sessions) as session:
        for start in range(0, len(asset_ids), 500):
            batch = asset_ids[start : start + 500]
            for asset in session.scalars(select(Asset).where(Asset.id.in_(batch))):
                activity = max(asset.updated_at, asset.heartbeat_at or asset.updated_at)
                views[asset.id] = AssetView(
                    asset.status, asset.attempt, activity, _referenced(asset)
                )
    return views


def _load_marks(store: ObjectStore) -> dict[str, str]:
    try:
        marks = json.loads(store.get_bytes(MARKS_KEY))
    except (ObjectNotFound, ValueError):
        return {}
    return {str(k): str(v) for k, v in marks.items()} if isinstance(marks, dict) else {}


def reconcile_storage(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    now: datetime,
    grace_s: int = RECONCILE_GRACE_S,
) -> ReconcileReport:
    """Delete what no live asset needs: every object of a deleted asset; a vanished asset's
    objects once they have been orphans for ``grace_s``; attempt prefixes other than the
    published and the running one, once the asset has been quiet for ``grace_s``."""
    groups = group_prefixes(chain.from_iterable(store.list_keys(r) for r in MEDIA_ROOTS))
    views = _views(sessions, sorted(groups))
    old_marks, marks = _load_marks(store), dict[str, str]()
    report = ReconcileReport(scanned_keys=sum(sum(p.values()) for p in groups.values()))
    for asset_id, prefixes in groups.items():
        view = views.get(asset_id)
        for prefix in prefixes:
            if view is None:
                doomed = _orphan_is_due(old_marks, marks, prefix, now, grace_s)
            else:
                doomed = not keep_prefix(prefix, view, now, grace_s)
            if doomed:
                report.deleted_objects += store.delete_prefix(prefix)
                report.deleted_prefixes.append(prefix)
    report.waiting_orphans = len(marks)
    _save_marks(store, marks)
    log.info("storage reconciled", extra=fields(**_summary(report)))
    return report


def _orphan_is_due(
    old_marks: dict[str, str], marks: dict[str, str], prefix: str, now: datetime, grace_s: int
) -> bool:
    """An orphan goes once it has been one for ``grace_s``; until then it is (re)marked."""
    first_seen = old_marks.get(prefix, now.isoformat())
    if now - datetime.fromisoformat(first_seen) >= timedelta(seconds=grace_s):
        return True
    marks[prefix] = first_seen
    return False


def _save_marks(store: ObjectStore, marks: dict[str, str]) -> None:
    kept = dict(sorted(marks.items(), key=lambda item: item[1])[:MAX_MARKS])
    store.put_bytes(MARKS_KEY, json.dumps(kept).encode(), content_type="application/json")


def _summary(report: ReconcileReport) -> dict[str, object]:
    return {
        "scanned_keys": report.scanned_keys,
        "deleted_prefixes": len(report.deleted_prefixes),
        "deleted_objects": report.deleted_objects,
        "waiting_orphans": report.waiting_orphans,
    }


# --- tasks ------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _sessions() -> sessionmaker[Session]:
    return make_sessionmaker(engine_for(app_settings().db_url))


@lru_cache(maxsize=1)
def _store() -> ObjectStore:
    return make_object_store(app_settings())


@app.task(name=PURGE_TASK, acks_late=True)
def purge_asset_task(asset_id: str) -> int:
    """Delete every object of a deleted asset."""
    return purge_asset(_sessions(), _store(), asset_id)


@app.task(name=WATCHDOG_TASK)
def watchdog_task() -> dict[str, int]:
    """Beat: re-queue or fail stuck processing, re-send lost queue messages."""
    stuck_after_s = app_settings().stuck_after_s
    with session_scope(_sessions()) as session:
        report = watchdog(
            session, utcnow(), stuck_after_s=stuck_after_s, queued_after_s=2 * stuck_after_s
        )
    return {
        "requeued": len(report.requeued),
        "failed": len(report.failed),
        "resent": len(report.resent),
    }


@app.task(name=RECONCILE_TASK)
def reconcile_storage_task() -> dict[str, object]:
    """Beat: delete objects no live asset needs."""
    return _summary(reconcile_storage(_sessions(), _store(), utcnow()))
