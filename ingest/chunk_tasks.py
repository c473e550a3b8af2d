"""Celery tasks of chunked encoding: one task per chunk, then one join, as a chord.

The attempt's processing task splits a long source and stores the chunks and ``job.json``
under ``work/<asset>/<attempt>/`` (:func:`transcode.chunks.split_and_upload`), then calls
:func:`start_chunked`. Every ``transcode.encode_chunk`` encodes one chunk into every rung;
once all have succeeded, ``transcode.join_chunks`` joins them, publishes the full ladder
(``ready``) and removes the working objects. A task whose attempt is no longer the asset's
current one (deleted, re-processed) does nothing.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from celery import Task, chord
from celery.canvas import Signature
from celery.result import AsyncResult
from sqlalchemy.orm import Session, sessionmaker

from core.celery_app import app, app_settings
from core.db import engine_for, make_sessionmaker, session_scope
from core.errors import Retryable
from core.models import Asset, AssetStatus
from core.storage import ObjectStore, make_object_store
from transcode.chunks import (
    MAX_CHUNKS,
    Joined,
    PublishJoined,
    encode_stored_chunk,
    join_stored_chunks,
    load_job,
    work_prefix,
)
from transcode.errors import TranscodeError
from transcode.progress import ProgressWriter
from transcode.publish import Publication, fail, publish

log = logging.getLogger(__name__)
ENCODE_TASK = "transcode.encode_chunk"
JOIN_TASK = "transcode.join_chunks"
# Overall progress: the split and the quick rung come before ENCODE_FROM, the join after
# ENCODE_TO; chunks move it in equal steps in between.
ENCODE_FROM, ENCODE_TO, JOIN_TO = 15, 90, 99


@dataclass(frozen=True)
class ChunkTools:
    """What the chunk tasks need, passed in (the Celery tasks build it from settings)."""

    sessions: sessionmaker[Session]
    store: ObjectStore
    ffmpeg_bin: str
    timeout_s: float
    work_dir: Path | None = None


# The final publication of a joined attempt: (tools, asset id, attempt) → hook for the join.
PublisherFor = Callable[[ChunkTools, str, int], PublishJoined]


def run_encode(tools: ChunkTools, asset_id: str, attempt: int, index: int) -> bool:
    """Encode chunk ``index`` of the attempt; False if the attempt is no longer current."""
    if not _is_current(tools.sessions, asset_id, attempt):
        return False
    prefix = work_prefix(asset_id, attempt)
    with tempfile.TemporaryDirectory(prefix="courtside-chunk-", dir=tools.work_dir) as tmp:
        encode_stored_chunk(
            tools.store, prefix, index, Path(tmp), ffmpeg_bin=tools.ffmpeg_bin,
            timeout_s=tools.timeout_s,
        )  # fmt: skip
    done = len({key.split("/")[-2] for key in tools.store.list_keys(f"{prefix}/enc/")})
    total = len(load_job(tools.store, prefix).chunk_keys)
    # Also the heartbeat: the watchdog leaves a long chunked attempt alone while chunks land.
    ProgressWriter(tools.sessions, asset_id).write(
        ENCODE_FROM + (ENCODE_TO - ENCODE_FROM) * min(done, total) // total
    )
    return True


def run_join(tools: ChunkTools, asset_id: str, attempt: int, publish: PublishJoined) -> bool:
    """Join the encoded chunks, hand the result to ``publish``, drop the working objects.

    False (and nothing published) if the attempt is no longer current.
    """
    prefix = work_prefix(asset_id, attempt)
    if not _is_current(tools.sessions, asset_id, attempt):
        tools.store.delete_prefix(prefix + "/")
        return False
    progress = ProgressWriter(tools.sessions, asset_id)
    with tempfile.TemporaryDirectory(prefix="courtside-join-", dir=tools.work_dir) as tmp:
        joined = join_stored_chunks(
            tools.store, prefix, Path(tmp), ffmpeg_bin=tools.ffmpeg_bin,
            timeout_s=tools.timeout_s, on_progress=progress.phase(ENCODE_TO, JOIN_TO),
        )  # fmt: skip
        publish(joined)
    tools.store.delete_prefix(prefix + "/")
    return True


def _is_current(sessions: sessionmaker[Session], asset_id: str, attempt: int) -> bool:
    with session_scope(sessions) as session:
        asset = session.get(Asset, asset_id)
        current = asset is not None and asset.attempt == attempt
        return current and asset is not None and asset.status is AssetStatus.PROCESSING


def hls_prefix(asset_id: str, attempt: int) -> str:
    """The attempt's published objects (the same prefix the one-process path uses)."""
    return f"hls/{asset_id}/{attempt}"


def publisher_for(tools: ChunkTools, asset_id: str, attempt: int) -> PublishJoined:
    """The final publication: upload the joined rungs, then publish the whole ladder (the
    rungs kept from before chunking first) the way the one-process path does."""

    def publish_joined(joined: Joined) -> None:
        prefix = hls_prefix(asset_id, attempt)
        for relative in joined.files:
            tools.store.put_file(f"{prefix}/{relative}", joined.root / relative)
        _fetch_kept(tools.store, prefix, joined)
        job = joined.job
        whole = Publication(
            prefix=prefix,
            root=joined.root,
            duration_s=job.info.duration_s,
            rungs=[*job.kept_rungs, *joined.rungs],
            audio_playlist=job.kept_audio or joined.audio_playlist,
            poster=job.poster,
            storyboard=job.storyboard,
        )
        publish(tools.sessions, tools.store, asset_id, whole, final=True)

    return publish_joined


def _fetch_kept(store: ObjectStore, prefix: str, joined: Joined) -> None:
    """Download what the attempt published before chunking (the stream-copied rung and its
    audio): the master's bandwidths are measured from the segments on disk."""
    folders = {Path(p).parent.as_posix() for p in (r.playlist for r in joined.job.kept_rungs)}
    if joined.job.kept_audio:
        folders.add(Path(joined.job.kept_audio).parent.as_posix())
    for folder in folders:
        for key in store.list_keys(f"{prefix}/{folder}/"):
            target = joined.root / key.removeprefix(prefix + "/")
            target.parent.mkdir(parents=True, exist_ok=True)
            store.download_file(key, target)


def fail_attempt(tools: ChunkTools, asset_id: str, attempt: int, error: TranscodeError) -> None:
    """A chunk or the join failed for good: the asset fails with the reason (if this attempt
    is still current) and the attempt's objects go."""
    if _is_current(tools.sessions, asset_id, attempt):
        prefix = hls_prefix(asset_id, attempt)
        fail(tools.sessions, tools.store, asset_id, prefix, (error.code, str(error)))
    tools.store.delete_prefix(work_prefix(asset_id, attempt) + "/")


# --- Celery ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _tools() -> ChunkTools:
    settings = app_settings()
    return ChunkTools(
        sessions=make_sessionmaker(engine_for(settings.db_url)),
        store=make_object_store(settings),
        ffmpeg_bin=settings.ffmpeg_bin,
        timeout_s=settings.transcode_timeout_s,
    )


# Results are kept (unlike the app's default): the chord's join waits on them in Redis.
@app.task(name=ENCODE_TASK, bind=True, ignore_result=False, max_retries=3, acks_late=True)
def encode_chunk(
    self: Task[[str, int, int], None], asset_id: str, attempt: int, index: int
) -> None:
    """Encode one chunk of a long source into every rung."""
    try:
        run_encode(_tools(), asset_id, attempt, index)
    except Retryable as exc:
        raise self.retry(exc=exc, countdown=10 * (self.request.retries + 1)) from exc
    except TranscodeError as exc:
        fail_attempt(_tools(), asset_id, attempt, exc)
        raise


@app.task(name=JOIN_TASK, bind=True, max_retries=3, acks_late=True)
def join_chunks(self: Task[[str, int], None], asset_id: str, attempt: int) -> None:
    """Join every encoded chunk of a long source and publish the full ladder."""
    tools = _tools()
    try:
        run_join(tools, asset_id, attempt, publisher_for(tools, asset_id, attempt))
    except Retryable as exc:
        raise self.retry(exc=exc, countdown=10 * (self.request.retries + 1)) from exc
    except TranscodeError as exc:
        fail_attempt(tools, asset_id, attempt, exc)


def chunked_signature(asset_id: str, attempt: int, n_chunks: int) -> Signature[None]:
    """The chord: one encode task per chunk, then the join once all of them succeeded."""
    if not 1 <= n_chunks <= MAX_CHUNKS:
        raise ValueError(f"n_chunks must be 1 to {MAX_CHUNKS} (got {n_chunks})")
    header = [encode_chunk.si(asset_id, attempt, index) for index in range(n_chunks)]
    return chord(header, join_chunks.si(asset_id, attempt))


def start_chunked(asset_id: str, attempt: int, n_chunks: int) -> AsyncResult[None]:
    """Send the chord of :func:`chunked_signature` (after the chunks and job are stored)."""
    result: AsyncResult[None] = chunked_signature(asset_id, attempt, n_chunks).apply_async()
    return result
