"""Process one asset: source → HLS ladder → store → ``ready``, atomically.

Renditions are written under a per-attempt prefix (``hls/<asset>/<attempt>/``), the master
playlist last, and the row flips to ``ready`` only after that; a failed attempt's objects are
removed, so a fan can never reach half an output.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session, lazyload, sessionmaker

from core.db import session_scope
from core.errors import PublishRefused, Retryable
from core.logging import fields
from core.models import Asset, AssetStatus, Rendition, utcnow
from core.storage import ObjectStore
from transcode.errors import TranscodeError
from transcode.hls import HlsOutput, transcode_to_hls

log = logging.getLogger(__name__)
INTERNAL_ERROR = (
    "Processing failed on our side. We have been alerted; you do not need to re-upload."
)


# Asked just before an asset goes live: (session, asset id, duration in s, now) → raises
# PublishRefused if it may not be published (the rights module's clip limits, for one).
PublishGate = Callable[[Session, str, float, datetime], None]


def _open_gate(_session: Session, _asset_id: str, _duration_s: float, _now: datetime) -> None:
    return None


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


def process_asset(tools: Toolbox, asset_id: str) -> None:
    """Run one processing attempt. Unsupported input ends as ``failed`` with its reason;
    anything else propagates so that the task can retry it."""
    attempt = _begin(tools.sessions, asset_id)
    if attempt is None:
        return
    prefix = f"hls/{asset_id}/{attempt}"
    try:
        output = _transcode_and_upload(tools, asset_id, prefix)
        _publish(tools, asset_id, prefix, output)
    except (TranscodeError, PublishRefused) as exc:
        tools.store.delete_prefix(prefix + "/")
        _fail(tools.sessions, asset_id, exc.code, str(exc))
        return
    except Retryable:
        tools.store.delete_prefix(prefix + "/")
        _set_status(tools.sessions, asset_id, AssetStatus.QUEUED)
        raise
    except Exception:
        log.exception("processing crashed", extra=fields(asset_id=asset_id))
        tools.store.delete_prefix(prefix + "/")
        _fail(tools.sessions, asset_id, "internal_error", INTERNAL_ERROR)
        raise


def _begin(sessions: sessionmaker[Session], asset_id: str) -> int | None:
    with session_scope(sessions) as session:
        # Lock only the asset row (PostgreSQL refuses FOR UPDATE across the league outer join).
        asset = session.get(Asset, asset_id, with_for_update=True, options=[lazyload(Asset.league)])
        if asset is None or asset.status in (AssetStatus.READY, AssetStatus.DELETED):
            log.info("nothing to process", extra=fields(asset_id=asset_id))
            return None
        asset.status = AssetStatus.PROCESSING
        asset.attempt += 1
        asset.progress = 0
        asset.error_code = asset.error_message = None
        return asset.attempt


def _transcode_and_upload(tools: Toolbox, asset_id: str, prefix: str) -> HlsOutput:
    with tempfile.TemporaryDirectory(prefix="courtside-", dir=tools.work_dir) as tmp:
        source = Path(tmp) / "source"
        with session_scope(tools.sessions) as session:
            source_key = session.get_one(Asset, asset_id).source_key
        tools.store.download_file(source_key or "", source)
        out_dir = Path(tmp) / "out"
        output = transcode_to_hls(
            source,
            out_dir,
            ffmpeg_bin=tools.ffmpeg_bin,
            ffprobe_bin=tools.ffprobe_bin,
            timeout_s=tools.timeout_s,
            on_progress=_progress_writer(tools.sessions, asset_id),
        )
        _upload(tools.store, out_dir, prefix, output.files)
        return output


def _upload(store: ObjectStore, out_dir: Path, prefix: str, files: list[str]) -> None:
    """Upload in the order given: the transcoder lists the master playlist last."""
    for relative in files:
        # No content type given: the store derives it from the extension (.m3u8, .m4s, .mp4).
        store.put_file(f"{prefix}/{relative}", out_dir / relative)


def _progress_writer(sessions: sessionmaker[Session], asset_id: str) -> Callable[[float], None]:
    """Progress 0–95 while encoding (the upload takes the rest), written at most once a second."""
    last_write = 0.0

    def write(fraction: float) -> None:
        nonlocal last_write
        if time.monotonic() - last_write < 1.0 and fraction < 1.0:
            return
        last_write = time.monotonic()
        with session_scope(sessions) as session:
            asset = session.get_one(Asset, asset_id)
            asset.progress = max(asset.progress, min(95, int(fraction * 95)))

    return write


def _publish(tools: Toolbox, asset_id: str, prefix: str, out: HlsOutput) -> None:
    with session_scope(tools.sessions) as session:
        tools.gate(session, asset_id, out.duration_s, utcnow())
        asset = session.get_one(Asset, asset_id)
        asset.renditions = [
            Rendition(
                name=r.name,
                width=r.width,
                height=r.height,
                bandwidth=r.bandwidth,
                codecs=r.codecs,
                playlist_key=f"{prefix}/{r.playlist}",
            )
            for r in out.renditions
        ]
        top = max(out.renditions, key=lambda r: r.height)
        asset.width, asset.height, asset.duration_s = top.width, top.height, out.duration_s
        asset.master_key = f"{prefix}/{out.master}"
        asset.status, asset.progress, asset.ready_at = AssetStatus.READY, 100, utcnow()
    log.info("asset ready", extra=fields(asset_id=asset_id, prefix=prefix))


def _fail(sessions: sessionmaker[Session], asset_id: str, code: str, message: str) -> None:
    with session_scope(sessions) as session:
        asset = session.get_one(Asset, asset_id)
        asset.status, asset.error_code, asset.error_message = AssetStatus.FAILED, code, message
    log.warning("asset failed", extra=fields(asset_id=asset_id, code=code))


def _set_status(sessions: sessionmaker[Session], asset_id: str, status: AssetStatus) -> None:
    with session_scope(sessions) as session:
        session.get_one(Asset, asset_id).status = status
