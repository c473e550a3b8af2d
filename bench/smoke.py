"""``smoke``: seconds from upload complete to ``ready`` for one 10 s 720p30 clip, end to end.

Real parts only, started here in a temp dir: a fresh SQLite database migrated with Alembic,
the local store, Redis (db 12, flushed first), a real Celery worker process
(``courtside worker -Q ingest,transcode,default -c 1``) and the API in-process
(``TestClient(create_app(settings))``). The clip is uploaded through ``POST /v1/assets`` and
``GET /v1/assets/{id}`` is polled until ``ready``.

Baselines, measured on the same clip in the same run before the worker starts:
- ``baseline_ffmpeg_copy_s``: a plain ``ffmpeg -c copy`` remux to HLS, the floor for any HLS
  output (what "first playable fast" could approach);
- ``baseline_direct_transcode_s``: ``transcode_to_hls`` called directly, the same ladder
  without the queue, the database or the store, so the ratio is the pipeline's overhead.
"""

from __future__ import annotations

import os
import signal
import subprocess  # noqa: TID251 - the benchmark starts a real Celery worker process, like production
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from fastapi.testclient import TestClient

from bench.harness import Measurement, benchmark, ratio
from core import migrate
from core.auth import create_api_key
from core.celery_app import configure_celery
from core.db import engine_for, make_sessionmaker, session_scope
from core.models import League, Role
from core.settings import Settings
from transcode.commands import HlsOptions
from transcode.hls import transcode_to_hls
from transcode.probe import probe
from transcode.runner import run_capture, run_ffmpeg
from web.app import create_app
from web.demo import DemoClip, clip_argv

CLIP = DemoClip(
    "Smoke benchmark clip", "10 s of lavfi test pattern", "testsrc2=s=1280x720:r=30", 10
)
CLIP_DESCRIPTION = "lavfi testsrc2 1280x720 30 fps, H.264 veryfast + AAC 48 kHz, 10 s"
REDIS_URL = "redis://127.0.0.1:6379/12"
# 40 characters, for a throwaway database in a temp dir, never anything real.
DUMMY_SECRET = "bench-smoke-dummy-secret-0123456789abcde"  # noqa: S105
WORKER_ARGS = ("worker", "-Q", "ingest,transcode,default", "-c", "1")
LEAGUE = "bench"
POLL_S = 0.1
FFMPEG_TIMEOUT_S = 600.0
WORKER_START_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 900.0
WORKER_STOP_TIMEOUT_S = 20.0


class BenchmarkFailed(RuntimeError):
    """The stack did not produce a ready asset; the message says what happened."""


@benchmark("smoke")
def smoke() -> Measurement:
    with tempfile.TemporaryDirectory(prefix="courtside-bench-smoke-") as tmp:
        return measure(Path(tmp))


def measure(tmp: Path) -> Measurement:
    settings = bench_settings(tmp)
    migrate.upgrade(settings.db_url)
    redis.Redis.from_url(REDIS_URL).flushdb()
    try:
        return _measure(settings, tmp)
    finally:
        engine_for(settings.db_url).dispose()  # the file goes away with the temp dir


def _measure(settings: Settings, tmp: Path) -> Measurement:
    # Other work on the machine shows up in every figure; the load says how much there was.
    load_before = round(os.getloadavg()[0], 2)
    clip = tmp / "clip.mp4"
    run_ffmpeg(clip_argv(settings.ffmpeg_bin, CLIP, clip), timeout_s=FFMPEG_TIMEOUT_S)
    clip_s = probe(clip, ffprobe_bin=settings.ffprobe_bin, timeout_s=60).duration_s
    copy_s = timed(lambda: copy_remux(settings.ffmpeg_bin, clip, tmp / "copy"))
    direct_s = timed(lambda: direct_transcode(settings, clip, tmp / "direct"))
    key = partner_key(settings)
    log = tmp / "worker.log"
    with running_worker(settings, log) as worker, TestClient(create_app(settings)) as client:
        upload_s, asset_id = upload(client, key, clip)
        ready_s, asset = wait_ready(client, key, asset_id, worker, log)
    renditions = [str(r["name"]) for r in asset["renditions"]]
    return Measurement(
        inputs={
            "clip": CLIP_DESCRIPTION,
            "clip_bytes": clip.stat().st_size,
            "renditions": " ".join(renditions),
            "worker": " ".join(["courtside", *WORKER_ARGS]),
            "stack": "SQLite, local store, Redis db 12, API in-process (TestClient)",
            "poll_interval_s": POLL_S,
            "ffmpeg": ffmpeg_version(settings.ffmpeg_bin),
            "load_1m_before": load_before,
        },
        figures={
            "clip_duration_s": clip_s,
            "upload_s": upload_s,
            "upload_to_ready_s": ready_s,
            "ratio_ready_vs_realtime": ratio(ready_s, clip_s),
            "baseline_ffmpeg_copy_s": copy_s,
            "ratio_vs_copy_baseline": ratio(ready_s, copy_s),
            "baseline_direct_transcode_s": direct_s,
            "ratio_vs_direct_transcode": ratio(ready_s, direct_s),
        },
    )


def bench_settings(tmp: Path) -> Settings:
    return Settings.model_validate(
        {
            "environment": "test",
            "secret_key": DUMMY_SECRET,
            "var_dir": tmp,
            "database_url": f"sqlite:///{tmp / 'courtside.db'}",
            "redis_url": REDIS_URL,
            "storage_backend": "local",
            "log_json": False,
            "log_level": "WARNING",
        }
    )


def worker_env(settings: Settings) -> dict[str, str]:
    """The worker's environment: ours, never a COURTSIDE_* left in the caller's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURTSIDE_")}
    return env | {
        "COURTSIDE_ENVIRONMENT": settings.environment,
        "COURTSIDE_SECRET_KEY": settings.secret_key.get_secret_value(),
        "COURTSIDE_VAR_DIR": str(settings.var_dir),
        "COURTSIDE_DATABASE_URL": settings.db_url,
        "COURTSIDE_REDIS_URL": settings.redis_url,
        "COURTSIDE_LOG_JSON": "false",
    }


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def copy_remux_argv(ffmpeg_bin: str, source: Path, out_dir: Path) -> list[str]:
    """Remux without re-encoding into fMP4 HLS with the product's segment length."""
    return [
        ffmpeg_bin, "-nostdin", "-v", "error", "-y", "-i", str(source),
        "-map", "0", "-c", "copy",
        "-f", "hls", "-hls_time", str(HlsOptions().segment_s), "-hls_playlist_type", "vod",
        "-hls_segment_type", "fmp4", "-hls_segment_filename", str(out_dir / "seg_%05d.m4s"),
        "-progress", "pipe:1", str(out_dir / "index.m3u8"),
    ]  # fmt: skip


def copy_remux(ffmpeg_bin: str, source: Path, out_dir: Path) -> None:
    out_dir.mkdir(parents=True)
    run_ffmpeg(copy_remux_argv(ffmpeg_bin, source, out_dir), timeout_s=FFMPEG_TIMEOUT_S)


def direct_transcode(settings: Settings, source: Path, out_dir: Path) -> None:
    transcode_to_hls(
        source,
        out_dir,
        ffmpeg_bin=settings.ffmpeg_bin,
        ffprobe_bin=settings.ffprobe_bin,
        timeout_s=FFMPEG_TIMEOUT_S,
    )


def ffmpeg_version(ffmpeg_bin: str) -> str:
    first = run_capture([ffmpeg_bin, "-version"], timeout_s=30).splitlines()[0]
    return first.split(" Copyright")[0]


def partner_key(settings: Settings) -> str:
    with session_scope(make_sessionmaker(engine_for(settings.db_url))) as session:
        league = League(slug=LEAGUE, name="Benchmark League")
        session.add(league)
        session.flush()
        _key, secret = create_api_key(session, role=Role.PARTNER, leagues=[league], name="bench")
    return secret


@contextmanager
def running_worker(settings: Settings, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker process, ready to consume when this yields, stopped on the way
    out whatever happens (SIGTERM for a warm shutdown, then SIGKILL to its process group)."""
    command = [str(Path(sys.executable).with_name("courtside")), *WORKER_ARGS]
    with log.open("wb") as out:
        worker = subprocess.Popen(
            command,
            env=worker_env(settings),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so the pool children die with it
        )
    try:
        wait_for_worker(settings, worker, log)
        yield worker
    finally:
        stop_worker(worker)


def wait_for_worker(settings: Settings, worker: subprocess.Popen[bytes], log: Path) -> None:
    """Until the worker answers a broker ping, so its start-up is not counted as processing."""
    app = configure_celery(settings)
    deadline = time.monotonic() + WORKER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        _check_alive(worker, log)
        if app.control.ping(timeout=0.5):
            return
    raise BenchmarkFailed(f"the worker did not answer within {WORKER_START_TIMEOUT_S:.0f} s")


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is not None:
        return
    worker.terminate()
    try:
        worker.wait(timeout=WORKER_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def _check_alive(worker: subprocess.Popen[bytes], log: Path) -> None:
    if worker.poll() is not None:
        tail = log.read_text(errors="replace")[-3000:]
        raise BenchmarkFailed(f"the worker exited with {worker.returncode}:\n{tail}")


def upload(client: TestClient, key: str, clip: Path) -> tuple[float, str]:
    """``POST /v1/assets``; returns (seconds, asset id). The clock for ``ready`` starts after."""
    start = time.perf_counter()
    with clip.open("rb") as stream:
        response = client.post(
            "/v1/assets",
            data={"league": LEAGUE, "title": CLIP.title, "description": CLIP.description},
            files={"file": (clip.name, stream, "video/mp4")},
            headers={"Authorization": f"Bearer {key}"},
        )
    elapsed = time.perf_counter() - start
    if response.status_code != 201:
        raise BenchmarkFailed(f"upload refused: {response.status_code} {response.text}")
    return elapsed, str(response.json()["id"])


def wait_ready(
    client: TestClient, key: str, asset_id: str, worker: subprocess.Popen[bytes], log: Path
) -> tuple[float, dict[str, Any]]:
    """Poll ``GET /v1/assets/{id}`` until ``ready``; returns (seconds since upload, body)."""
    start = time.perf_counter()
    headers = {"Authorization": f"Bearer {key}"}
    body: dict[str, Any] = {}
    while time.perf_counter() - start < READY_TIMEOUT_S:
        body = client.get(f"/v1/assets/{asset_id}", headers=headers).json()
        if body.get("status") == "ready":
            return time.perf_counter() - start, body
        if body.get("status") == "failed":
            raise BenchmarkFailed(f"the asset failed: {body.get('error')}")
        _check_alive(worker, log)
        time.sleep(POLL_S)
    raise BenchmarkFailed(f"not ready after {READY_TIMEOUT_S:.0f} s: last {body}")
