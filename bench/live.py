"""``live``: ingest-to-playlist latency, CPU per live stream, WHEP frame latency.

The whole live path runs as ``make run`` runs it, on 127.0.0.1: the API, a live worker
(``-Q live``), the RTMP edge (nginx-rtmp), SQLite, the local store and Redis db 8. An ffmpeg
publisher pushes a 1280×720 30 fps test pattern with a tone over RTMP, as OBS would
(x264 veryfast, zerolatency, 1 s GOP), with every frame's number burnt into its pixels
(bench.frame_code). It runs in real time (``-re``), so frame N is captured at T0 + N / 30;
T0 is the earliest of (wall clock − ffmpeg's reported output time) over its progress reports.

A fan's player is simulated: one playback started through the player API
(``POST /v1/playback/{id}``), the top rung's live playlist polled through the API every
``POLL_S``. When a segment is first listed, its init and media segment are fetched through the
API too, the first frame decoded and its number read: latency = listed − captured, for the
segment's first frame (the one that waited longest). Figures over ``DURATION_S`` (default
120 s, ``COURTSIDE_BENCH_LIVE_S`` to change it): ``ingest_to_playlist_p50_s`` and ``_p95_s``
(target ≤ 4 s with 1 s segments), ``cpu_cores_per_stream`` (CPU of the live task's process
and its ffmpeg over the run, per wall second), ``encoder_speed`` (ffmpeg's own, from the
stream's health), and ``whep_latency_ms`` (bench.live_webrtc; target ≤ 500 ms)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess  # noqa: TID251 - the benchmark runs the real service and an ffmpeg publisher
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urljoin

import redis

from bench import frame_code
from bench.harness import Measurement, benchmark
from bench.live_webrtc import measure_whep_latency
from bench.rights import (
    HOST,
    BenchmarkFailed,
    free_port,
    http,
    process,
    stop,
    wait_for_server,
)
from core import migrate
from core.auth import create_api_key
from core.db import engine_for, make_sessionmaker, session_scope
from core.models import League, RightsGrant, Role

REDIS_URL = "redis://127.0.0.1:6379/8"
FPS = 30
SIZE = f"{frame_code.WIDTH}x{frame_code.HEIGHT}"
FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
DURATION_S = float(os.environ.get("COURTSIDE_BENCH_LIVE_S", "120"))
POLL_S = 0.1
START_TIMEOUT_S = 60.0
TARGET_LATENCY_S = 4.0
TARGET_WHEP_MS = 500.0
_OUT_TIME = re.compile(rb"^out_time_us=(\d+)$", re.MULTILINE)


@benchmark("live")
def live_benchmark() -> Measurement:
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="courtside-bench-live-") as tmp:
        figures, inputs = measure(Path(tmp))
    # Other work on the machine moves latency and speed: say how busy it was.
    inputs |= {"load_1m_before": load_before, "load_1m_after": round(os.getloadavg()[0], 2)}
    return Measurement(inputs=inputs, figures=figures)


def measure(tmp: Path) -> tuple[dict[str, float], dict[str, str | int | float | bool | None]]:
    port, rtmp_port = free_port(), free_port()
    env = service_env(tmp, port, rtmp_port)
    rtmp_url = env["COURTSIDE_RTMP_PUBLIC_URL"]
    migrate.upgrade(f"sqlite:///{tmp / 'courtside.db'}")
    redis.Redis.from_url(REDIS_URL).flushdb()
    partner = seed(f"sqlite:///{tmp / 'courtside.db'}")
    with ExitStack() as stack:
        api = stack.enter_context(service(["serve", "--port", str(port)], env, tmp / "api.log"))
        wait_for_server(api, port, tmp / "api.log")
        stack.enter_context(service(["worker", "-Q", "live", "-c", "1"], env, tmp / "live.log"))
        stack.enter_context(service(["rtmp-edge"], env, tmp / "rtmp.log"))
        wait_for_port(rtmp_port)
        stream_id, key = create_stream(port, partner)
        with publishing(f"{rtmp_url}/{key}", tmp / "publisher.log") as publisher:
            player = LivePlayer(port, wait_for_playback(port, stream_id, publisher))
            started = time.monotonic()
            cpu = CpuMeter(stream_id)
            latencies = player.follow(publisher, DURATION_S)
            cores = cpu.cores()
            health = stream_health(port, partner, stream_id)
            wall = time.monotonic() - started
        # WHEP on a stream of its own, once the HLS publisher has stopped.
        whep_ms = measure_whep_latency(
            f"http://{HOST}:{port}", rtmp_url, *create_stream(port, partner), partner
        )
    figures = latency_figures(latencies) | {
        "cpu_cores_per_stream": round(cores, 3),
        "encoder_speed": float(str(health.get("encoder_speed", 0.0) or 0.0)),
        "whep_latency_ms": round(whep_ms, 1),
    }
    inputs: dict[str, str | int | float | bool | None] = {
        "duration_s": round(wall, 1),
        "input": f"{frame_code.WIDTH}x{frame_code.HEIGHT}@{FPS} x264 veryfast zerolatency + AAC",
        "segment_s": 1.0,
        "poll_s": POLL_S,
        "ladder": json.dumps(health.get("rungs")),
        "preset": str(health.get("preset")),
        "target_latency_s": TARGET_LATENCY_S,
        "target_whep_ms": TARGET_WHEP_MS,
    }
    return figures, inputs


def service_env(tmp: Path, port: int, rtmp_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURTSIDE_")}
    rtmp = f"rtmp://{HOST}:{rtmp_port}/live"
    return env | {
        "COURTSIDE_VAR_DIR": str(tmp),
        "COURTSIDE_REDIS_URL": REDIS_URL,
        "COURTSIDE_LOG_JSON": "false",
        "COURTSIDE_LOG_LEVEL": "INFO",
        "COURTSIDE_RTMP_LISTEN": f"{HOST}:{rtmp_port}",
        "COURTSIDE_RTMP_PUBLIC_URL": rtmp,
        "COURTSIDE_RTMP_PULL_URL": rtmp,
        "COURTSIDE_RTMP_HOOK_BASE_URL": f"http://{HOST}:{port}",
        "COURTSIDE_LIVE_SEGMENT_S": "1",
        "COURTSIDE_LIVE_RECONNECT_GRACE_S": "3",
        # WebRTC on loopback only (aioice leaves loopback out unless told).
        "COURTSIDE_WEBRTC_HOST_ADDRESSES": '["127.0.0.1"]',
        "COURTSIDE_WEBRTC_PEER_NETWORKS": '["127.0.0.0/8"]',
    }


def seed(db_url: str) -> str:
    """A league licensed for live worldwide, and a partner key for it."""
    with session_scope(make_sessionmaker(engine_for(db_url))) as session:
        league = League(slug="bench-live", name="Live bench")
        session.add(league)
        session.flush()
        session.add(
            RightsGrant(
                scope_type="league",
                scope_id=str(league.id),
                license_type="live",
                status="approved",
                worldwide=True,
            )
        )
        _key, secret = create_api_key(session, role=Role.PARTNER, leagues=[league])
    engine_for(db_url).dispose()
    return secret


def service(
    args: list[str], env: dict[str, str], log: Path
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """A ``courtside`` command (``python -m web.cli``), stopped when the context ends."""
    return process([sys.executable, "-m", "web.cli", *args], env, log)


def request_json(
    port: int, method: str, path: str, key: str, body: dict[str, object] | None = None
) -> dict[str, object]:
    """A partner's JSON request; anything but 2xx fails the benchmark."""
    conn = HTTPConnection(HOST, port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        conn.request(method, path, body=json.dumps(body) if body else None, headers=headers)
        response = conn.getresponse()
        text = response.read()
    finally:
        conn.close()
    if response.status >= 300:
        raise BenchmarkFailed(f"{method} {path}: {response.status} {text[:300]!r}")
    data: dict[str, object] = json.loads(text)
    return data


def create_stream(port: int, partner: str) -> tuple[str, str]:
    """(stream id, stream key) of a new stream."""
    body: dict[str, object] = {"league": "bench-live", "title": "Live bench"}
    data = request_json(port, "POST", "/v1/live", partner, body)
    return str(data["id"]), str(data["stream_key"])


@dataclass
class Publisher:
    """The ffmpeg publisher and its clock: frame N was captured at ``t0 + N / FPS``."""

    process: subprocess.Popen[bytes]
    t0: float = float("inf")
    lock: threading.Lock = field(default_factory=threading.Lock)

    def captured_at(self, frame: int) -> float:
        with self.lock:
            return self.t0 + frame / FPS


def publisher_command(url: str) -> list[str]:
    return [
        FFMPEG, "-hide_banner", "-loglevel", "error", "-nostats",
        "-re", "-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate={FPS}",
        "-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-filter_complex", frame_code.overlay_filter(FPS), "-map", "[v]", "-map", "1:a",
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
        "-g", str(FPS), "-b:v", "3M", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "128k",
        "-progress", "pipe:1", "-f", "flv", url,
    ]  # fmt: skip


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise BenchmarkFailed(f"nothing listens on {HOST}:{port}")


@contextmanager
def publishing(url: str, log: Path) -> Iterator[Publisher]:
    with log.open("wb") as errors:
        process = subprocess.Popen(
            publisher_command(url),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            start_new_session=True,
        )
    publisher = Publisher(process)
    reader = threading.Thread(target=_read_progress, args=(publisher,), daemon=True)
    reader.start()
    try:
        yield publisher
    finally:
        stop(process)


def _read_progress(publisher: Publisher) -> None:
    """T0 from each progress report: the wall clock now, less the output time reached."""
    stdout = publisher.process.stdout
    assert stdout is not None
    for line in stdout:
        found = _OUT_TIME.match(line.strip())
        if found is None:
            continue
        t0 = time.time() - int(found.group(1)) / 1e6
        with publisher.lock:
            publisher.t0 = min(publisher.t0, t0)


def wait_for_playback(port: int, stream_id: str, publisher: Publisher) -> str:
    """The master URL's path once the stream is playable."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if publisher.process.poll() is not None:
            raise BenchmarkFailed(f"the publisher exited with {publisher.process.returncode}")
        status, body = http(port, "POST", f"/v1/playback/{stream_id}")
        if status == 200:
            master = str(json.loads(body)["master_url"])
            return "/" + master.split("/", 3)[3]
        time.sleep(0.5)
    raise BenchmarkFailed(f"the stream was not playable within {START_TIMEOUT_S:.0f} s")


class LivePlayer:
    """A fan's player reduced to what the measurement needs."""

    def __init__(self, port: int, master_path: str) -> None:
        self.port = port
        status, body = http(port, "GET", master_path)
        if status != 200:
            raise BenchmarkFailed(f"master playlist: {status}")
        top = next(line for line in body.decode().splitlines() if line and line[0] != "#")
        self.media_path = urljoin(master_path, top)
        self.seen: set[str] = set()

    def follow(self, publisher: Publisher, seconds: float) -> list[float]:
        latencies: list[float] = []
        deadline = time.monotonic() + seconds
        first = True
        while time.monotonic() < deadline:
            status, body = http(self.port, "GET", self.media_path)
            listed = time.time()
            if status != 200:
                raise BenchmarkFailed(f"live playlist: {status} {body[:200]!r}")
            new = self._new_segments(body.decode())
            if not first:  # the first poll lists a backlog, not segments that just arrived
                latencies += [listed - self._captured(publisher, *s) for s in new]
            first = False
            time.sleep(POLL_S)
        if len(latencies) < seconds / 4:
            raise BenchmarkFailed(f"only {len(latencies)} new segments in {seconds:.0f} s")
        return latencies

    def _new_segments(self, playlist: str) -> list[tuple[str, str]]:
        found, init = [], ""
        for line in playlist.splitlines():
            if line.startswith("#EXT-X-MAP:"):
                init = line.split('URI="', 1)[1].split('"', 1)[0]
            elif line and not line.startswith("#") and line not in self.seen:
                self.seen.add(line)
                found.append((init, line))
        return found

    def _captured(self, publisher: Publisher, init: str, segment: str) -> float:
        data = b"".join(self._get(urljoin(self.media_path, name)) for name in (init, segment))
        argv = [
            FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "mp4", "-i", "pipe:0",
            "-frames:v", "1", "-vf", frame_code.crop_filter(), "-f", "rawvideo", "pipe:1",
        ]  # fmt: skip
        strip = subprocess.run(argv, input=data, capture_output=True, timeout=20, check=True).stdout
        return publisher.captured_at(frame_code.read_code(strip))

    def _get(self, path: str) -> bytes:
        status, body = http(self.port, "GET", path)
        if status != 200:
            raise BenchmarkFailed(f"{path}: {status}")
        return body


class CpuMeter:
    """CPU seconds of the processes working on the stream: the live worker's pool and the
    encoder ffmpeg (found by the stream id on its command line)."""

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        self.hz = os.sysconf("SC_CLK_TCK")
        self.start = time.monotonic()
        self.before = self._sample()

    def _sample(self) -> dict[int, float]:
        found = {}
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                command = cmdline.read_bytes()
                if self.stream_id.encode() not in command and b"-Q\0live" not in command:
                    continue
                stat = (cmdline.parent / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            found[int(cmdline.parent.name)] = (int(fields[11]) + int(fields[12])) / self.hz
        return found

    def cores(self) -> float:
        after = self._sample()
        used = sum(cpu - self.before.get(pid, 0.0) for pid, cpu in after.items())
        return used / (time.monotonic() - self.start)


def stream_health(port: int, partner: str, stream_id: str) -> dict[str, object]:
    health = request_json(port, "GET", f"/v1/live/{stream_id}", partner).get("health") or {}
    return health if isinstance(health, dict) else {}


def latency_figures(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "ingest_to_playlist_p50_s": round(statistics.median(ordered), 3),
        "ingest_to_playlist_p95_s": round(p95, 3),
        "ingest_to_playlist_max_s": round(ordered[-1], 3),
        "segments_measured": float(len(ordered)),
    }
