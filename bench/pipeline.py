"""``transcode`` and ``publish``: the highlights pipeline against raw ffmpeg, in one run.

Both use the real stack of ``bench.smoke`` (SQLite, local store, Redis db 12, one Celery
worker process with one pool process, the API in-process) and 60 s 1080p H.264 sources made
here with x264 the way an editor exports (GOP 2 s, about 0.08 bits per pixel).

``transcode`` — upload complete → every rung ready, against, on the same source and ladder:
- ``floor_s``: ONE raw ffmpeg command writing that ladder to local disk (the copied top rung,
  every encoded rung from one decode with ``split``, the audio once): no queue, no database,
  no store, no probe;
- ``per_rung_s``: one ffmpeg process per rung, one after another, each decoding the source
  again (PeerTube's job-per-rung design).

``publish`` — upload complete → first playable: the master playlist fetched through the
player API, its first rung's media playlist and first segment fetched too; ≥ 10 runs.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin

import redis
from fastapi.testclient import TestClient
from sqlalchemy import select

from bench import smoke
from bench.harness import Measurement, benchmark, ratio
from core import migrate
from core.db import engine_for, make_sessionmaker, session_scope
from core.models import League, RightsGrant
from core.settings import Settings
from transcode.commands import FORMAT_WHITELIST, PROTOCOL_WHITELIST
from transcode.ladder import Rendition, renditions_for
from transcode.playlists import parse_master, segment_durations
from transcode.probe import ProbeResult, probe
from transcode.quick import remux_command
from transcode.runner import run_ffmpeg
from web.app import create_app

SOURCE_S = 60
FFMPEG_TIMEOUT_S = 1800.0
PUBLISH_RUNS = 10
POLL_S = 0.05
READY_POLL_S = 1.0
CACHE = Path("var/bench-cache")
SEGMENT_S = 4


def source_argv(ffmpeg_bin: str, out: Path, fps: int) -> list[str]:
    """60 s of 1080p test pattern with a tone, H.264 High with a 2 s GOP, AAC stereo."""
    return [
        ffmpeg_bin, "-nostdin", "-v", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate={fps}:duration={SOURCE_S}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={SOURCE_S}",
        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p",
        "-g", str(2 * fps), "-b:v", f"{5 * fps // 30}M", "-maxrate", f"{6 * fps // 30}M",
        "-bufsize", "12M", "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-shortest", str(out),
    ]  # fmt: skip


def source(ffmpeg_bin: str, fps: int) -> Path:
    """The source for ``fps``, made once and kept in ``var/bench-cache``."""
    path = CACHE / f"source-1080p{fps}-{SOURCE_S}s.mp4"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.mp4")
        run_ffmpeg(source_argv(ffmpeg_bin, partial, fps), timeout_s=FFMPEG_TIMEOUT_S)
        partial.replace(path)
    return path


def encoded_rungs(info: ProbeResult) -> list[Rendition]:
    """The rungs the pipeline encodes: the ladder below the copied top rung."""
    short_side = min(info.display_width, info.display_height)
    return [r for r in renditions_for(info) if min(r.width, r.height) < short_side]


def _x264(index: int, rendition: Rendition) -> list[str]:
    """Encoder options for output video stream ``index`` only (stream 0 of the floor is a
    copy, which refuses encoder options such as a profile)."""
    return [
        f"-c:v:{index}", "libx264", f"-preset:v:{index}", "veryfast",
        f"-profile:v:{index}", "high", f"-pix_fmt:v:{index}", "yuv420p",
        f"-b:v:{index}", f"{rendition.video_kbps}k",
        f"-maxrate:v:{index}", f"{rendition.max_kbps}k",
        f"-bufsize:v:{index}", f"{rendition.bufsize_kbps}k",
    ]  # fmt: skip


def _vf(rendition: Rendition, source_fps: float | None) -> str:
    """Drop frames first (only where the rate changes), then scale: as the pipeline does."""
    rate = f"fps={rendition.fps}," if rendition.fps and rendition.fps != source_fps else ""
    return f"{rate}scale={rendition.width}:{rendition.height},setsar=1"


def _branch(label: str, rendition: Rendition, source_fps: float | None) -> str:
    return f"[{label}]{_vf(rendition, source_fps)}[o{label}]"


def _hls(out: Path, streams: str) -> list[str]:
    return [
        "-force_key_frames", "source", "-sc_threshold", "0", "-g", "100000",
        "-c:a", "copy",  # the sources carry stereo AAC, which the pipeline copies too
        "-f", "hls", "-hls_time", str(SEGMENT_S), "-hls_playlist_type", "vod",
        "-hls_segment_type", "fmp4", "-hls_flags", "independent_segments",
        "-var_stream_map", streams, "-master_pl_name", "master.m3u8",
        "-hls_segment_filename", str(out / "v%v" / "seg_%05d.m4s"), str(out / "v%v" / "index.m3u8"),
    ]  # fmt: skip


def floor_argv(
    ffmpeg_bin: str, src: Path, out: Path, rungs: list[Rendition], source_fps: float | None
) -> list[str]:
    """One raw command for the whole ladder: copy on top, one decode split into the rest."""
    labels = [f"s{i}" for i in range(len(rungs))]
    graph = f"[0:v]split={len(rungs)}" + "".join(f"[{label}]" for label in labels) + ";"
    graph += ";".join(_branch(label, r, source_fps) for label, r in zip(labels, rungs, strict=True))
    argv = [ffmpeg_bin, "-nostdin", "-v", "error", "-y", "-protocol_whitelist",
            PROTOCOL_WHITELIST, "-format_whitelist", FORMAT_WHITELIST, "-i", str(src),
            "-filter_complex", graph, "-map", "0:v:0"]  # fmt: skip
    for label in labels:
        argv += ["-map", f"[o{label}]"]
    argv += ["-map", "0:a:0", "-c:v:0", "copy"]
    for index, rendition in enumerate(rungs, start=1):
        argv += _x264(index, rendition)
    streams = " ".join(f"v:{i},agroup:aud" for i in range(len(rungs) + 1)) + " a:0,agroup:aud"
    return argv + _hls(out, streams)


def per_rung_argvs(
    ffmpeg_bin: str, src: Path, out: Path, rungs: list[Rendition], source_fps: float | None
) -> list[list[str]]:
    """PeerTube-style: the copy (with the audio) in one process, then one process per rung."""
    argvs = [
        remux_command(
            ffmpeg_bin, src, out / "copy", has_audio=True, segment_s=SEGMENT_S, copy_audio=True
        )
    ]
    for index, rendition in enumerate(rungs):
        head = [ffmpeg_bin, "-nostdin", "-v", "error", "-y", "-i", str(src), "-map", "0:v:0"]
        vf = ["-vf", _vf(rendition, source_fps), *_x264(0, rendition)]
        argvs.append([*head, *vf, *_hls(out / f"rung{index}", "v:0")])
    return argvs


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def run_all(argvs: list[list[str]]) -> None:
    for argv in argvs:
        run_ffmpeg(argv, timeout_s=FFMPEG_TIMEOUT_S)


def baselines(settings: Settings, src: Path, tmp: Path) -> dict[str, float]:
    info = probe(src, ffprobe_bin=settings.ffprobe_bin, timeout_s=60)
    rungs = encoded_rungs(info)
    (tmp / "floor").mkdir()
    floor_s = timed(
        lambda: run_ffmpeg(
            floor_argv(settings.ffmpeg_bin, src, tmp / "floor", rungs, info.fps),
            timeout_s=FFMPEG_TIMEOUT_S,
        )
    )
    per_rung = per_rung_argvs(settings.ffmpeg_bin, src, tmp / "per-rung", rungs, info.fps)
    per_rung_s = timed(lambda: run_all(per_rung))
    return {"floor_s": floor_s, "per_rung_s": per_rung_s, "rungs": float(len(rungs) + 1)}


def with_stack(
    tmp: Path, action: Callable[[Settings, TestClient, str, Path], Measurement]
) -> Measurement:
    settings = smoke.bench_settings(tmp)
    migrate.upgrade(settings.db_url)
    redis.Redis.from_url(smoke.REDIS_URL).flushdb()
    try:
        key = smoke.partner_key(settings)
        licence_everywhere(settings)
        log = tmp / "worker.log"
        with smoke.running_worker(settings, log), TestClient(create_app(settings)) as client:
            return action(settings, client, key, log)
    finally:
        engine_for(settings.db_url).dispose()


def licence_everywhere(settings: Settings) -> None:
    """A worldwide highlights grant for the benchmark league: the fan here is on loopback."""
    with session_scope(make_sessionmaker(engine_for(settings.db_url))) as session:
        league = session.scalars(select(League).where(League.slug == smoke.LEAGUE)).one()
        session.add(
            RightsGrant(
                scope_type="league", scope_id=str(league.id), license_type="highlights",
                status="approved", worldwide=True, licensee="bench", created_by="bench",
            )
        )  # fmt: skip


def upload_and_wait(
    client: TestClient, key: str, src: Path
) -> tuple[float, float, dict[str, object]]:
    """Seconds from upload complete to first playable and to ready, and the asset body.

    Ready is read from the asset's ``ready_at`` (the same clock), so the slow poll for it
    takes no CPU from the encode it measures; first playable is polled as a player would.
    """
    _, asset_id = smoke.upload(client, key, src)
    start, uploaded_at = time.perf_counter(), datetime.now(UTC)
    playable_s = first_playable(client, asset_id, start)
    headers = {"Authorization": f"Bearer {key}"}
    while True:
        body = client.get(f"/v1/assets/{asset_id}", headers=headers).json()
        if body["status"] in ("ready", "failed"):
            break
        time.sleep(READY_POLL_S)
    if body["status"] != "ready":
        raise smoke.BenchmarkFailed(f"the asset failed: {body.get('error')}")
    ready_at = datetime.fromisoformat(str(body["ready_at"]))
    return playable_s, (ready_at - uploaded_at).total_seconds(), body


def first_playable(client: TestClient, asset_id: str, start: float) -> float:
    """Poll as a fan's player would: playback → master → first rung → its first segment."""
    deadline = start + smoke.READY_TIMEOUT_S
    while time.perf_counter() < deadline:
        if _plays(client, asset_id):
            return time.perf_counter() - start
        time.sleep(POLL_S)
    raise smoke.BenchmarkFailed("never playable")


def _plays(client: TestClient, asset_id: str) -> bool:
    playback = client.post(f"/v1/playback/{asset_id}")
    if playback.status_code in (401, 403, 451):  # never going to play: say so, don't spin
        raise smoke.BenchmarkFailed(f"playback refused: {playback.text}")
    if playback.status_code != 200:
        return False
    master_url = playback.json()["master_url"]
    master = client.get(master_url)
    variants = parse_master(master.text) if master.status_code == 200 else []
    if not variants:
        return False
    media_url = urljoin(master_url, variants[0].uri)
    media = client.get(media_url)
    segments = segment_durations(media.text) if media.status_code == 200 else []
    return bool(segments) and client.get(urljoin(media_url, segments[0][1])).status_code == 200


@benchmark("transcode")
def transcode_bench() -> Measurement:
    figures: dict[str, float] = {}
    inputs: dict[str, str | int | float | bool | None] = {}
    for fps in (30, 60):
        src = source("ffmpeg", fps)
        with tempfile.TemporaryDirectory(prefix="courtside-bench-transcode-") as tmp:
            measured = _transcode_one(Path(tmp), src)
        suffix = "" if fps == 30 else "_60fps"
        figures |= {f"{k}{suffix}": v for k, v in measured.figures.items()}
        inputs |= {f"{k}{suffix}": v for k, v in measured.inputs.items()}
    return Measurement(inputs=inputs, figures=figures)


def _transcode_one(tmp: Path, src: Path) -> Measurement:
    base = baselines(smoke.bench_settings(tmp), src, tmp)

    def run(_s: Settings, client: TestClient, key: str, _log: Path) -> Measurement:
        playable_s, pipeline_s, body = upload_and_wait(client, key, src)
        names = " ".join(str(r["name"]) for r in body["renditions"])  # type: ignore[attr-defined]
        return Measurement(
            inputs={"source": src.name, "renditions": names, "worker": "1 process, -c 1"},
            figures={
                "pipeline_s": pipeline_s,
                "first_playable_s": playable_s,
                "floor_s": base["floor_s"],
                "per_rung_s": base["per_rung_s"],
                "ratio_vs_floor": ratio(pipeline_s, base["floor_s"]),
                "ratio_vs_per_rung": ratio(pipeline_s, base["per_rung_s"]),
            },
        )

    return with_stack(tmp / "stack", run)


@benchmark("publish")
def publish_bench() -> Measurement:
    src = source("ffmpeg", 30)
    with tempfile.TemporaryDirectory(prefix="courtside-bench-publish-") as tmp:

        def run(_s: Settings, client: TestClient, key: str, _log: Path) -> Measurement:
            times = [upload_and_wait(client, key, src)[0] for _ in range(PUBLISH_RUNS)]
            return Measurement(
                inputs={"source": src.name, "poll_interval_s": POLL_S},
                figures={
                    "first_playable_p50_s": statistics.median(times),
                    "first_playable_p90_s": statistics.quantiles(times, n=10)[-1],
                    "first_playable_min_s": min(times),
                    "runs": float(len(times)),
                },
            )

        return with_stack(Path(tmp), run)
