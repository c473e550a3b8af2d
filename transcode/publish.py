"""Process one asset: source → first playable rung → full ladder → ``ready``, atomically.

Everything of an attempt is written under ``hls/<asset>/<attempt>/``, media before playlists
and the master last, and the row points at a master only once every file it names is stored.
Publication happens twice for a source we can stream-copy: the copied rung (playable within
a second or two of the upload, ``asset.playable``), then the full ladder (``asset.ready``).
A master the row points at is never deleted by its own attempt: a crash or a retry leaves it
playable, and the storage reconciler removes it once a later attempt has replaced it.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session, lazyload, sessionmaker

from core.db import session_scope
from core.errors import CourtsideError, PublishRefused, Retryable, StorageError
from core.events import ASSET_FAILED, ASSET_PLAYABLE, ASSET_READY, emit
from core.logging import fields
from core.models import Asset, AssetStatus, Rendition, utcnow
from core.storage import ObjectStore
from transcode.chunks import ChunkJob, split_and_upload, work_prefix
from transcode.commands import HlsOptions, Keyframes
from transcode.errors import TranscodeError
from transcode.ladder import Rendition as LadderRendition
from transcode.ladder import renditions_for
from transcode.master import MASTER, VideoRung, write_master
from transcode.probe import ProbeResult, probe
from transcode.progress import ProgressWriter
from transcode.steps import StepOutput, Steps, ThumbnailFiles
from transcode.validate import DEFAULT_LIMITS, InputLimits

log = logging.getLogger(__name__)
INTERNAL_ERROR = (
    "Processing failed on our side. We have been alerted; you do not need to re-upload."
)
GAVE_UP = (
    "Processing failed on our side after several tries ({reason}). We have been alerted; your "
    "upload is kept, so you can retry it later without uploading again."
)
PROBE_TIMEOUT_S = 60.0

# Asked before an asset is first published: (session, asset id, duration in s, now) → raises
# PublishRefused if it may not be published (the rights module's clip limits, for one).
PublishGate = Callable[[Session, str, float, datetime], None]


def _open_gate(_session: Session, _asset_id: str, _duration_s: float, _now: datetime) -> None:
    return None


@dataclass(frozen=True)
class Chunking:
    """Long sources go to chunk tasks: over ``threshold_s``, in chunks of about ``chunk_s``;
    ``start(asset_id, attempt, n_chunks)`` sends the chord (the task layer provides it)."""

    threshold_s: float
    chunk_s: int
    start: Callable[[str, int, int], object]


@dataclass(frozen=True)
class Toolbox:
    """What processing needs, passed in (the Celery task builds it from settings)."""

    sessions: sessionmaker[Session]
    store: ObjectStore
    ffmpeg_bin: str
    ffprobe_bin: str
    timeout_s: float
    work_dir: Path | None = None
    gate: PublishGate = _open_gate
    segment_s: int = 4
    limits: InputLimits = DEFAULT_LIMITS
    stuck_after_s: float = 900.0
    chunking: Chunking | None = None

    def steps(self) -> Steps:
        return Steps(self.ffmpeg_bin, self.ffprobe_bin, self.timeout_s, self.segment_s)


def process_asset(tools: Toolbox, asset_id: str, task_id: str | None = None) -> None:
    """Run one processing attempt. Unsupported input ends as ``failed`` with its reason;
    anything else propagates so that the task can retry it. ``task_id`` is the Celery task's."""
    attempt = _begin(tools, asset_id, task_id)
    if attempt is None:
        return
    prefix = f"hls/{asset_id}/{attempt}"
    try:
        with tempfile.TemporaryDirectory(prefix="courtside-", dir=tools.work_dir) as tmp:
            _run(tools, asset_id, attempt, prefix, Path(tmp))
    except (TranscodeError, PublishRefused) as exc:
        fail(tools.sessions, tools.store, asset_id, prefix, (exc.code, str(exc)))
    except Retryable:
        _requeue(tools, asset_id, prefix)
        raise
    except Exception:
        log.exception("processing crashed", extra=fields(asset_id=asset_id))
        fail(tools.sessions, tools.store, asset_id, prefix, ("internal_error", INTERNAL_ERROR))
        raise


def _begin(tools: Toolbox, asset_id: str, task_id: str | None) -> int | None:
    """Claim the asset for a new attempt, or None if there is nothing to do or another
    worker is on it (a duplicate message while that attempt's heartbeat is fresh)."""
    with session_scope(tools.sessions) as session:
        # Lock only the asset row (PostgreSQL refuses FOR UPDATE across the league outer join).
        asset = session.get(Asset, asset_id, with_for_update=True, options=[lazyload(Asset.league)])
        if asset is None or asset.status in (AssetStatus.READY, AssetStatus.DELETED):
            log.info("nothing to process", extra=fields(asset_id=asset_id))
            return None
        if _running_elsewhere(asset, task_id, tools.stuck_after_s):
            log.info("another worker is processing", extra=fields(asset_id=asset_id))
            return None
        asset.status, asset.task_id = AssetStatus.PROCESSING, task_id
        asset.attempt += 1
        asset.progress, asset.eta_s, asset.heartbeat_at = 0, None, utcnow()
        asset.error_code = asset.error_message = None
        return asset.attempt


def _running_elsewhere(asset: Asset, task_id: str | None, stuck_after_s: float) -> bool:
    """A live attempt of another task. Our own task's redelivery (its worker died) takes over
    at once; another task waits until the heartbeat is stale (the watchdog's rule)."""
    if asset.status is not AssetStatus.PROCESSING or asset.heartbeat_at is None:
        return False
    if task_id is not None and task_id == asset.task_id:
        return False
    return (utcnow() - asset.heartbeat_at).total_seconds() < stuck_after_s


def _run(tools: Toolbox, asset_id: str, attempt: int, prefix: str, tmp: Path) -> None:
    steps, progress = tools.steps(), ProgressWriter(tools.sessions, asset_id)
    source = _download_source(tools, asset_id, tmp / "source")
    info = probe(
        source, ffprobe_bin=tools.ffprobe_bin, timeout_s=PROBE_TIMEOUT_S, limits=tools.limits
    )
    with session_scope(tools.sessions) as session:
        tools.gate(session, asset_id, info.duration_s, utcnow())
    out = tmp / "out"
    keyframes = steps.keyframes(source)
    copied = steps.copy_top_rung(source, out, info, keyframes)
    if copied is not None:
        _upload(tools.store, out, prefix, copied.files)
        first = Publication(prefix, out, info.duration_s, copied.rungs, copied.audio_playlist)
        publish(tools.sessions, tools.store, asset_id, first, final=False)
    progress.write(10)
    thumbs = steps.thumbnails(source, out, info, keyframes)
    _upload(tools.store, out, prefix, thumbs.files)
    plan = LadderPlan.of(info, copied)
    if tools.chunking is not None and info.duration_s > tools.chunking.threshold_s:
        _start_chunked(tools, asset_id, attempt, source, tmp, info, plan, thumbs)
        return
    ladder = steps.encode_ladder(
        source,
        out,
        info,
        plan.renditions,
        with_audio=plan.audio is None,
        aligned=copied is not None,
        on_progress=progress.phase(15, 95),
    )
    _upload(tools.store, out, prefix, ladder.files)
    rungs, audio = [*plan.kept, *ladder.rungs], plan.audio or ladder.audio_playlist
    whole = Publication(
        prefix, out, info.duration_s, rungs, audio, thumbs.poster, thumbs.storyboard
    )
    publish(tools.sessions, tools.store, asset_id, whole, final=True)


@dataclass(frozen=True)
class LadderPlan:
    """What is left to encode once the copied rung (if any) is published: the renditions,
    the copied rung if it stays on top of the final ladder, and the audio it brought."""

    renditions: list[LadderRendition]
    kept: list[VideoRung]
    audio: str | None

    @classmethod
    def of(cls, info: ProbeResult, copied: StepOutput | None) -> LadderPlan:
        renditions = renditions_for(info)
        if copied is None:
            return cls(renditions, [], None)
        if not copied.keep:  # a camera original: fans get an encoded top rung in the end
            return cls(renditions, [], copied.audio_playlist)
        top = copied.rungs[0]
        below = [r for r in renditions if min(r.width, r.height) < min(top.width, top.height)]
        return cls(below, copied.rungs, copied.audio_playlist)


def _start_chunked(
    tools: Toolbox,
    asset_id: str,
    attempt: int,
    source: Path,
    tmp: Path,
    info: ProbeResult,
    plan: LadderPlan,
    thumbs: ThumbnailFiles,
) -> None:
    """Hand a long source to chunk tasks (the chord's join publishes the full ladder)."""
    assert tools.chunking is not None  # noqa: S101 - the caller checked
    with session_scope(tools.sessions) as session:
        source_key = session.get_one(Asset, asset_id).source_key or ""
    keyframes: Keyframes = "source" if plan.audio else "interval"
    job = ChunkJob(
        source_key=source_key,
        info=info,
        renditions=tuple(plan.renditions),
        options=HlsOptions(segment_s=tools.segment_s, keyframes=keyframes),
        with_audio=plan.audio is None,
        kept_rungs=tuple(plan.kept),
        kept_audio=plan.audio,
        poster=thumbs.poster,
        storyboard=thumbs.storyboard,
    )
    prefix = work_prefix(asset_id, attempt)
    stored = split_and_upload(
        tools.store,
        prefix,
        source,
        tmp,
        job,
        ffmpeg_bin=tools.ffmpeg_bin,
        chunk_s=tools.chunking.chunk_s,
        timeout_s=tools.timeout_s,
    )
    tools.chunking.start(asset_id, attempt, len(stored.chunk_keys))


def _download_source(tools: Toolbox, asset_id: str, path: Path) -> Path:
    with session_scope(tools.sessions) as session:
        source_key = session.get_one(Asset, asset_id).source_key
    tools.store.download_file(source_key or "", path)
    return path


def _upload(store: ObjectStore, out_dir: Path, prefix: str, files: Sequence[str]) -> None:
    """Upload in the order given: media first, playlists after them."""
    for relative in files:
        # No content type given: the store derives it from the extension (.m3u8, .m4s, .mp4).
        store.put_file(f"{prefix}/{relative}", out_dir / relative)


@dataclass(frozen=True)
class Publication:
    """What one publication of an attempt lists, on disk under ``root`` (to be measured):
    rungs and audio playlist relative to it, and the thumbnails already stored."""

    prefix: str
    root: Path
    duration_s: float
    rungs: Sequence[VideoRung]
    audio_playlist: str | None
    poster: str | None = None
    storyboard: str | None = None


def publish(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    asset_id: str,
    publication: Publication,
    *,
    final: bool,
) -> None:
    """Write the master last, then point the row at it: ``asset.playable`` the first time,
    ``asset.ready`` (and ``ready``) when ``final``. A deleted asset stays deleted, and only
    the asset's current attempt is published."""
    prefix, root = publication.prefix, publication.root
    bandwidths = write_master(root, publication.rungs, publication.audio_playlist)
    store.put_file(f"{prefix}/{MASTER}", root / MASTER)
    with session_scope(sessions) as session:
        asset = session.get_one(Asset, asset_id)
        if asset.status is AssetStatus.DELETED or prefix != f"hls/{asset.id}/{asset.attempt}":
            # Deleted while processing, or a later attempt took over (the watchdog re-queued
            # this one): the purge or the reconciler removes these files.
            log.info("not published", extra=fields(asset_id=asset_id, prefix=prefix))
            return
        asset.renditions = []
        session.flush()  # the old rows go first: names are unique per asset
        _describe(asset, publication, bandwidths)
        now = utcnow()
        asset.master_key, asset.playable_at = f"{prefix}/{MASTER}", asset.playable_at or now
        if final:
            asset.status, asset.progress, asset.eta_s = AssetStatus.READY, 100, None
            asset.ready_at = now
        event = ASSET_READY if final else ASSET_PLAYABLE
        emit(session, asset.league_id, event, asset.id, _summary(asset))
    log.info(event, extra=fields(asset_id=asset_id, prefix=prefix))


def _describe(asset: Asset, publication: Publication, bandwidths: dict[str, int]) -> None:
    prefix = publication.prefix
    asset.renditions = [
        Rendition(
            name=rung.name,
            width=rung.width,
            height=rung.height,
            bandwidth=bandwidths[rung.playlist],
            codecs=rung.codecs,
            playlist_key=f"{prefix}/{rung.playlist}",
        )
        for rung in publication.rungs
    ]
    top = max(publication.rungs, key=lambda rung: rung.height)
    asset.width, asset.height, asset.duration_s = top.width, top.height, publication.duration_s
    if publication.poster and publication.storyboard:
        asset.poster_key = f"{prefix}/{publication.poster}"
        asset.storyboard_key = f"{prefix}/{publication.storyboard}"


def _summary(asset: Asset) -> dict[str, object]:
    return {
        "asset_id": asset.id,
        "status": str(asset.status),
        "renditions": [r.name for r in asset.renditions],
        "duration_s": asset.duration_s,
    }


def fail(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    asset_id: str,
    prefix: str,
    error: tuple[str, str],
) -> None:
    """Mark failed with ``error`` (code, message): fans lose the asset at once; then remove
    the attempt's objects under ``prefix``."""
    code, message = error
    with session_scope(sessions) as session:
        asset = session.get_one(Asset, asset_id)
        if asset.status is AssetStatus.DELETED:
            return
        asset.status, asset.error_code, asset.error_message = AssetStatus.FAILED, code, message
        asset.master_key = asset.playable_at = asset.eta_s = None
        asset.renditions = []
        emit(session, asset.league_id, ASSET_FAILED, asset.id, {"code": code, "message": message})
    store.delete_prefix(prefix + "/")
    log.warning("asset failed", extra=fields(asset_id=asset_id, code=code))


def give_up(tools: Toolbox, asset_id: str, error: CourtsideError) -> None:
    """The last retry failed too: ``failed`` with the error's code and a sentence for the
    partner; the source is kept for a retry. The reconciler sweeps what cannot be removed."""
    with session_scope(tools.sessions) as session:
        attempt = session.get_one(Asset, asset_id).attempt
    message = GAVE_UP.format(reason=error.code.replace("_", " "))
    with contextlib.suppress(StorageError):  # the store may still be the thing that is down
        fail(
            tools.sessions,
            tools.store,
            asset_id,
            f"hls/{asset_id}/{attempt}",
            (error.code, message),
        )


def _requeue(tools: Toolbox, asset_id: str, prefix: str) -> None:
    """Back to ``queued`` for the task's retry; a master already published stays playable."""
    with session_scope(tools.sessions) as session:
        asset = session.get_one(Asset, asset_id)
        if asset.status is not AssetStatus.DELETED:
            asset.status = AssetStatus.QUEUED
        published = (asset.master_key or "").startswith(prefix + "/")
    if not published:
        tools.store.delete_prefix(prefix + "/")
