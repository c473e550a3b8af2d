"""``rights``: rights decisions per second in-process, and what the check costs a playlist request.

In-process, single-threaded (so "per core"):
- ``decisions_per_s_per_core``: ``rights.evaluate.evaluate`` over one ``ItemRights`` of three
  levels (league → match → asset) × two grants each (an expanded EU group, a subdivision, a
  window relative to the match's final whistle, platform lists), for a mix of viewers (GB web,
  SE iOS, CN, unknown location, a US-CA subdivision), cycling through them;
- ``viewer_resolutions_per_s``: ``rights.viewer.resolve_viewer`` with the MaxMind City and
  Anonymous-IP test databases (``../shared/geoip``), the client behind a trusted proxy;
- ``token_verifications_per_s`` (``tokens.verify``, what every stream request runs) and
  ``token_signs_per_s``.

Through the API, one run, side by side: a real uvicorn server (one worker, a subprocess) on
127.0.0.1 over a fresh SQLite database, the local store in a temp dir and Redis db 11, with a
GB-only highlights grant and a READY asset whose 15-segment media playlist sits in the store.
A load generator in another process (``wrk -t1`` when installed, else this module's asyncio
one) drives, for the same time and concurrency:
- ``playlist``: ``/v1/stream/<token>/v0/index.m3u8``, the full check (token, viewer, rights);
- ``nocheck``: the same bytes from the same store through a route this benchmark adds to the
  same app (``baseline_app``), with the same shape (a sync route, the store dependency,
  ``object_key``, ``playlist_response``) and no check at all;
- ``trivial``: ``/healthz``.

``check_cost_fraction`` = (1/playlist_rps − 1/nocheck_rps) / (1/playlist_rps): the share of a
playlist request's time that the check takes, end to end (its dependencies included).
Two cross-checks:
- ``check_cost_fraction_cpu``: the same from the server process's CPU time per request
  (``/proc/<pid>/stat``) instead of throughput, so other work on a shared machine, which
  lowers both throughputs unevenly, matters less (``other_busy_cores_max`` says how much
  there was: busy cores besides the server and the load generator, Redis included);
- ``check_cost_fraction_inprocess``: the calls the route makes for its check (``tokens.verify``
  + ``viewer_of`` + a session + ``check_stream``), timed in this process against an app
  built from the same settings, over the server's CPU time per playlist request; it leaves out
  FastAPI's dependency resolution. The ``check_us_*`` figures split it up.

In-process rates are per second of the timing thread's CPU time (``time.thread_time``): per
core, and less affected by other processes than wall time (a busy sibling hyperthread or VM
host still slows them); ``*_wall`` figures are wall-clock.

Viewers reach the server from 127.0.0.1, a trusted proxy here, with ``X-Forwarded-For`` naming
a GB address of the City test database, so the territory check and a real GeoIP lookup run on
every request. (``COURTSIDE_DEV_LOOPBACK_COUNTRY`` cannot serve: it sets the country but keeps
ip=127.0.0.1, and ``evaluate`` treats a non-global address as "location unknown", so a
territory-limited item is refused; the benchmark records that in its inputs.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import subprocess  # noqa: TID251 - the benchmark runs a real API server and a load generator
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.client import HTTPConnection
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import urlsplit

import redis
from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from bench.harness import Measurement, benchmark, ratio
from core import migrate
from core.db import engine_for, make_sessionmaker, session_scope
from core.deps import StoreDep
from core.errors import NotFound, ObjectNotFound
from core.models import Asset, AssetStatus, League, Rendition, RightsGrant
from core.settings import Settings
from core.storage import make_object_store
from player_api import playback
from player_api.access import RightsContext, decide, viewer_of
from player_api.media_response import playlist_response
from rights import tokens
from rights.evaluate import evaluate
from rights.geoip import GeoDatabases
from rights.memo import TokenMemo
from rights.model import (
    CLIP_LICENSES,
    EventAnchor,
    EventTimes,
    Grant,
    ItemRights,
    LicenseType,
    Reason,
    ScopeLevel,
    Viewer,
    Window,
    WindowEdge,
)
from rights.territories import expand
from rights.viewer import TrustedProxies, resolve_viewer
from web.app import create_app

ROOT = Path(__file__).resolve().parents[1]
GEOIP_DIR = Path(__file__).resolve().parents[2] / "shared" / "geoip"
CITY_DB = GEOIP_DIR / "GeoIP2-City-Test.mmdb"
ANONYMOUS_DB = GEOIP_DIR / "GeoIP2-Anonymous-IP-Test.mmdb"

REDIS_URL = "redis://127.0.0.1:6379/11"
# 40 characters, for a throwaway database in a temp dir, never anything real.
DUMMY_SECRET = "bench-rights-dummy-secret-0123456789abcd"  # noqa: S105
HOST = "127.0.0.1"
# Addresses of the MaxMind test databases (see ../shared/geoip/*.source.json).
GB_IP = "2.125.160.216"  # GB, GB-ENG, not flagged anonymous
SE_IP = "89.160.20.112"
CN_IP = "175.16.199.0"
US_IP = "216.160.83.56"  # US-WA
ANON_IP = "81.2.69.142"  # GB, flagged anonymous
UNKNOWN_IP = "8.8.8.8"  # in neither database
PROXY_PEER = "10.0.0.7"

EVALUATE_S = 2.0
RESOLVE_S = 2.0
TOKEN_S = 1.0
CHECK_PART_S = 1.0
MAX_CALLS = 50_000_000  # a bound on every timing loop besides its time
LOAD_S = 8.0
WARMUP_S = 1.0
CONNECTIONS = 32
WORKERS = 1
SEGMENTS = 15
SEGMENT_S = 4
SERVER_START_TIMEOUT_S = 60.0
SERVER_STOP_TIMEOUT_S = 10.0
HTTP_TIMEOUT_S = 5.0
BASELINE_PREFIX = "/bench/nocheck"
DECISIONS_TARGET = 50_000
CHECK_FRACTION_TARGET = 0.10


class BenchmarkFailed(RuntimeError):
    """The stack did not answer as the benchmark needs; the message says what happened."""


@benchmark("rights")
def rights_benchmark() -> Measurement:
    load_before = round(os.getloadavg()[0], 2)
    inputs: dict[str, str | int | float | bool | None] = {}
    figures: dict[str, float] = {}
    inputs |= measure_decisions(figures)
    inputs |= measure_tokens(figures)
    if not (CITY_DB.is_file() and ANONYMOUS_DB.is_file()):
        message = f"skipped: MaxMind test databases not found in {GEOIP_DIR}"
        inputs |= {"viewer_resolution": message, "api": message + " (a GB grant needs GeoIP)"}
    else:
        inputs |= measure_viewer_resolution(figures)
        with tempfile.TemporaryDirectory(prefix="courtside-bench-rights-") as tmp:
            inputs |= measure_api(Path(tmp), figures)
    inputs["load_1m_before"] = load_before
    return Measurement(inputs=inputs, figures=figures)


# --- timing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """Calls per second of wall-clock time, and per second of the timing thread's CPU time."""

    wall_per_s: float
    cpu_per_s: float

    @property
    def cpu_us(self) -> float:
        return 1e6 / self.cpu_per_s

    @property
    def wall_us(self) -> float:
        return 1e6 / self.wall_per_s


def rate(step: Callable[[], object], calls_per_step: int, seconds: float) -> Rate:
    """How many calls a second ``step`` (which makes ``calls_per_step`` calls) manages, run
    back to back for about ``seconds`` of wall time (never more than ``MAX_CALLS`` calls).

    The CPU rate counts this thread's CPU time only, so other processes on a shared machine
    do not lower it: for single-threaded CPU-bound code it is the rate per core. Waiting (a
    Redis round trip) shows in the wall rate only."""
    step()  # warm caches (lru_cache, lazy imports) outside the clock
    calls = 0
    wall, cpu = time.perf_counter(), time.thread_time()
    deadline = wall + seconds
    while calls < MAX_CALLS:
        for _ in range(64):
            step()
        calls += 64 * calls_per_step
        if time.perf_counter() >= deadline:
            break
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    return Rate(calls / wall, calls / max(cpu, 1e-9))


# --- in-process: decisions, viewers, tokens --------------------------------------------------

NOW = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)


def sample_item() -> ItemRights:
    """Three levels × two grants, as the rights tables would load them for one highlight."""
    eu_gb_us = expand(["EU", "GB", "US"])[0]
    after_match = Window(
        start=WindowEdge(event=EventAnchor.FINAL_WHISTLE),
        end=WindowEdge(event=EventAnchor.FINAL_WHISTLE, lag_s=7 * 86_400),
    )
    league = ScopeLevel(
        "league",
        "1",
        (
            Grant(1, LicenseType.HIGHLIGHTS, territories=eu_gb_us),
            Grant(2, LicenseType.FULL_REPLAY, territories=frozenset({"GB"}), platforms=_APPS),
        ),
    )
    match = ScopeLevel(
        "match",
        "77",
        (
            Grant(3, LicenseType.HIGHLIGHTS, territories=eu_gb_us, window=after_match),
            Grant(
                4,
                LicenseType.NEWS_ACCESS,
                excluded=frozenset({"CN"}),
                window=Window(end=WindowEdge(event=EventAnchor.FINAL_WHISTLE, lag_s=86_400)),
            ),
        ),
    )
    asset = ScopeLevel(
        "asset",
        "a1",
        (
            Grant(5, LicenseType.HIGHLIGHTS, territories=expand(["EU", "GB"])[0], platforms=_APPS),
            Grant(6, LicenseType.HIGHLIGHTS, territories=frozenset({"US-CA"})),
        ),
    )
    events = EventTimes(
        kickoff=NOW - timedelta(hours=3), final_whistle=NOW - timedelta(hours=1, minutes=5)
    )
    return ItemRights("a1", (league, match, asset), events)


_APPS = frozenset({"web", "ios", "android"})

# (viewer, the reason evaluate must give): checked before timing, so the mix is what it says.
SAMPLE_VIEWERS: tuple[tuple[Viewer, Reason], ...] = (
    (Viewer("GB", "GB-ENG", ip_address(GB_IP)), Reason.ALLOWED),
    (Viewer("SE", "SE-E", ip_address(SE_IP), platform="ios"), Reason.ALLOWED),
    (Viewer("CN", "CN-22", ip_address(CN_IP)), Reason.TERRITORY),
    (Viewer(None, None, ip_address(UNKNOWN_IP)), Reason.UNKNOWN_LOCATION),
    (Viewer("US", "CA", ip_address("216.160.83.57")), Reason.ALLOWED),  # GeoIP2 style "CA"
)


def measure_decisions(figures: dict[str, float]) -> dict[str, str | int | float | bool | None]:
    item = sample_item()
    viewers = [viewer for viewer, _ in SAMPLE_VIEWERS]
    for viewer, expected in SAMPLE_VIEWERS:
        got = evaluate(item, viewer, NOW, CLIP_LICENSES).reason
        if got is not expected:
            raise BenchmarkFailed(f"sample viewer {viewer}: {got}, expected {expected}")

    def mix() -> None:
        for viewer in viewers:
            evaluate(item, viewer, NOW, CLIP_LICENSES)

    allowed = [v for v, r in SAMPLE_VIEWERS if r is Reason.ALLOWED]
    denied = [v for v, r in SAMPLE_VIEWERS if r is not Reason.ALLOWED]
    decisions = rate(mix, len(viewers), EVALUATE_S)
    figures["decisions_per_s_per_core"] = decisions.cpu_per_s
    figures["decisions_per_s_wall"] = decisions.wall_per_s
    figures["evaluate_allowed_us"] = rate(
        lambda: [evaluate(item, v, NOW, CLIP_LICENSES) for v in allowed], len(allowed), 0.5
    ).cpu_us
    figures["evaluate_denied_us"] = rate(
        lambda: [evaluate(item, v, NOW, CLIP_LICENSES) for v in denied], len(denied), 0.5
    ).cpu_us
    return {
        "decisions": (
            "evaluate(), 3 levels x 2 grants (EU group expanded, US-CA, window = final whistle"
            " +7 d, platforms), viewers GB web / SE ios / CN / unknown / US-CA, single thread,"
            f" {EVALUATE_S:.0f} s"
        ),
        "decisions_target_per_s": DECISIONS_TARGET,
    }


def measure_viewer_resolution(
    figures: dict[str, float],
) -> dict[str, str | int | float | bool | None]:
    proxies = TrustedProxies(["10.0.0.0/8"])
    clients = [GB_IP, SE_IP, CN_IP, US_IP, ANON_IP, UNKNOWN_IP]
    requests = [
        {"x-forwarded-for": f"{ip}, {PROXY_PEER}", "host": "play.example", "user-agent": "bench"}
        for ip in clients
    ]
    with GeoDatabases.open(city=CITY_DB, anonymous=ANONYMOUS_DB) as geo:
        gb = resolve_viewer(
            peer=PROXY_PEER,
            headers=requests[0],
            platform="web",
            geo=geo,
            proxies=proxies,
            cdn_country_header=None,
            dev_loopback_country=None,
        )
        if gb.country != "GB":
            raise BenchmarkFailed(f"the City test database placed {GB_IP} in {gb.country}")

        def resolve_all() -> None:
            for headers in requests:
                resolve_viewer(
                    peer=PROXY_PEER,
                    headers=headers,
                    platform="web",
                    geo=geo,
                    proxies=proxies,
                    cdn_country_header=None,
                    dev_loopback_country=None,
                )

        figures["viewer_resolutions_per_s"] = rate(resolve_all, len(requests), RESOLVE_S).cpu_per_s
    return {
        "viewer_resolution": (
            "resolve_viewer(), City + Anonymous-IP test DBs, peer a trusted proxy, client from"
            f" X-Forwarded-For (GB, SE, CN, US, anonymous, not in the DB), {RESOLVE_S:.0f} s"
        )
    }


def measure_tokens(figures: dict[str, float]) -> dict[str, str | int | float | bool | None]:
    keys = tokens.SigningKeys.single(DUMMY_SECRET.encode())
    claims = {"a": "0" * 32, "p": f"hls/{'0' * 32}/1", "c": "GB", "g": 12, "s": "abcdefghijkl"}
    token = tokens.sign(keys, claims, ttl_s=3600)
    figures["token_verifications_per_s"] = rate(
        lambda: tokens.verify(keys, token, leeway_s=30), 1, TOKEN_S
    ).cpu_per_s
    figures["token_signs_per_s"] = rate(
        lambda: tokens.sign(keys, claims, ttl_s=3600), 1, TOKEN_S
    ).cpu_per_s
    return {"tokens": "HMAC-SHA256 playback token with the claims start_playback puts in"}


# --- through the API ----------------------------------------------------------------------


def settings_values(tmp: Path) -> dict[str, object]:
    """The server's settings; the benchmark builds its in-process app from the same values."""
    return {
        "environment": "test",
        "secret_key": DUMMY_SECRET,
        "var_dir": tmp,
        "media_dir": tmp / "media",
        "database_url": f"sqlite:///{tmp / 'courtside.db'}",
        "redis_url": REDIS_URL,
        "storage_backend": "local",
        "geoip_city_db": CITY_DB,
        "geoip_anonymous_db": ANONYMOUS_DB,
        # The load comes from 127.0.0.1 as if through our proxy, X-Forwarded-For naming the
        # viewer (see the module docstring for why not COURTSIDE_DEV_LOOPBACK_COUNTRY).
        "trusted_proxies": ["127.0.0.1/32"],
        "log_level": "WARNING",
        "log_json": False,
    }


def server_env(values: dict[str, object]) -> dict[str, str]:
    """The server's environment: ours, never a COURTSIDE_* left in the caller's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURTSIDE_")}
    for key, value in values.items():
        text = json.dumps(value) if isinstance(value, list) else str(value)
        env[f"COURTSIDE_{key.upper()}"] = text
    return env


def media_playlist(segments: int = SEGMENTS, segment_s: int = SEGMENT_S) -> bytes:
    """A VOD fMP4 media playlist of ``segments`` segments, as the transcoder writes them."""
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{segment_s}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        '#EXT-X-MAP:URI="init.mp4"',
    ]
    for index in range(segments):
        lines += [f"#EXTINF:{segment_s:.6f},", f"seg_{index:05d}.m4s"]
    return ("\n".join([*lines, "#EXT-X-ENDLIST"]) + "\n").encode()


MASTER = (
    b"#EXTM3U\n#EXT-X-VERSION:7\n"
    b'#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS="avc1.4d401e,mp4a.40.2"\n'
    b"v0/index.m3u8\n"
)


def seed(settings: Settings) -> str:
    """A league with an approved GB-only highlights grant and a READY asset whose playlists
    and segments are in the local store; returns the asset's id."""
    with session_scope(make_sessionmaker(engine_for(settings.db_url))) as session:
        league = League(slug="bench", name="Benchmark League")
        session.add(league)
        session.flush()
        session.add(
            RightsGrant(
                scope_type="league",
                scope_id=str(league.id),
                license_type="highlights",
                status="approved",
                worldwide=False,
                territories=["GB"],
                licensee="bench",
            )
        )
        asset = Asset(
            league_id=league.id, title="Rights bench", status=AssetStatus.READY, ready_at=NOW
        )
        session.add(asset)
        session.flush()
        prefix = f"hls/{asset.id}/1"
        asset.master_key = f"{prefix}/master.m3u8"
        asset.renditions.append(
            Rendition(
                name="360p",
                width=640,
                height=360,
                bandwidth=800_000,
                codecs="avc1.4d401e,mp4a.40.2",
                playlist_key=f"{prefix}/v0/index.m3u8",
            )
        )
        asset_id = asset.id
    store = make_object_store(settings)
    store.put_bytes(f"{prefix}/master.m3u8", MASTER)
    store.put_bytes(f"{prefix}/v0/index.m3u8", media_playlist())
    store.put_bytes(f"{prefix}/v0/init.mp4", b"\0" * 800)
    for index in range(SEGMENTS):
        store.put_bytes(f"{prefix}/v0/seg_{index:05d}.m4s", bytes([index]) * 4096)
    return asset_id


def baseline_app() -> FastAPI:
    """The product's app (``create_app()``, settings from the environment) plus one route that
    serves the same playlist bytes the same way as ``/v1/stream`` but without any check: the
    "without check" side of ``check_cost_fraction``. Started by uvicorn as ``--factory``."""
    app = create_app()
    app.add_api_route(
        BASELINE_PREFIX + "/{asset_id}/{path:path}",
        _playlist_without_check,
        methods=["GET"],
        include_in_schema=False,
    )
    return app


async def _playlist_without_check(store: StoreDep, asset_id: str, path: str) -> Response:
    # The stream route's shape (async, the store read in the thread pool) minus the check.
    grant = playback.StreamGrant(asset_id, f"hls/{asset_id}/1", "", None, "")
    key = playback.object_key(grant, path)
    try:
        return await run_in_threadpool(playlist_response, store, key)
    except ObjectNotFound:
        raise NotFound("no such media file") from None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def http(
    port: int, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    conn = HTTPConnection(HOST, port, timeout=HTTP_TIMEOUT_S)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@contextmanager
def running_server(env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """uvicorn with ``baseline_app`` on 127.0.0.1:``port``, one worker, like ``courtside
    serve`` (no proxy headers from uvicorn, no access log); stopped whatever happens."""
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "bench.rights:baseline_app",
        "--host", HOST, "--port", str(port), "--workers", str(WORKERS),
        "--no-proxy-headers", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    with process(command, env, log) as server:
        wait_for_server(server, port, log)
        yield server


@contextmanager
def process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``argv`` run from the project root in a session of its own, its output in ``log``;
    stopped whatever happens (see ``stop``)."""
    with log.open("wb") as out:
        started = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield started
    finally:
        stop(started)


def wait_for_server(server: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise BenchmarkFailed(f"the server exited with {server.returncode}:\n{tail}")
        try:
            if http(port, "GET", "/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise BenchmarkFailed(f"the server did not answer within {SERVER_START_TIMEOUT_S:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=SERVER_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass(frozen=True)
class LoadStats:
    """One load run: throughput and latency percentiles (milliseconds)."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx answers plus socket errors


def measure_api(tmp: Path, figures: dict[str, float]) -> dict[str, str | int | float | bool | None]:
    values = settings_values(tmp)
    settings = Settings.model_validate(values)
    migrate.upgrade(settings.db_url)
    redis.Redis.from_url(REDIS_URL).flushdb()
    asset_id = seed(settings)
    port = free_port()
    viewer_headers = {"X-Forwarded-For": GB_IP}
    try:
        with running_server(server_env(values), port, tmp / "server.log") as server:
            token = start_playback(port, asset_id, viewer_headers)
            paths = {
                "playlist": f"/v1/stream/{token}/v0/index.m3u8",
                "nocheck": f"{BASELINE_PREFIX}/{asset_id}/v0/index.m3u8",
                "trivial": "/healthz",
            }
            check_endpoints(port, paths, viewer_headers)
            inputs = measure_check_inprocess(settings, port, token, paths["playlist"], figures)
            runs = {
                name: run_load(server.pid, port, path, viewer_headers, LOAD_S, warmup_s=WARMUP_S)
                for name, path in paths.items()
            }
    finally:
        engine_for(settings.db_url).dispose()
    for name, run in runs.items():
        figures[f"{name}_rps"] = run.load.rps
        figures[f"{name}_p50_ms"] = run.load.p50_ms
        figures[f"{name}_p99_ms"] = run.load.p99_ms
        figures[f"{name}_server_cpu_us"] = run.server_cpu_us
    playlist, nocheck = runs["playlist"], runs["nocheck"]
    figures["ratio_playlist_vs_trivial"] = ratio(playlist.load.rps, runs["trivial"].load.rps)
    figures["ratio_playlist_vs_nocheck"] = ratio(playlist.load.rps, nocheck.load.rps)
    figures["check_cost_fraction"] = check_fraction(playlist.load.rps, nocheck.load.rps)
    figures["check_cost_fraction_cpu"] = check_fraction(
        1e6 / playlist.server_cpu_us, 1e6 / nocheck.server_cpu_us
    )
    figures["check_cost_fraction_inprocess"] = ratio(
        figures["check_us_total"], playlist.server_cpu_us
    )
    figures["other_busy_cores_max"] = max(run.other_cores for run in runs.values())
    return inputs | {
        "server": f"uvicorn {WORKERS} worker (uvloop, httptools), app = create_app() + nocheck",
        "stack": "SQLite in a temp dir, local store, Redis db 11 (flushed), City + Anon test DBs",
        "grant": "league-level highlights grant, territories [GB], approved",
        "playlist": f"media playlist, {SEGMENTS} segments, {len(media_playlist())} bytes",
        "viewer": f"peer 127.0.0.1 (trusted proxy), X-Forwarded-For {GB_IP} (GB in the City DB)",
        "load_generator": load_generator_name(),
        "connections": CONNECTIONS,
        "duration_s": LOAD_S,
        "warmup_s": WARMUP_S,
        "check_cost_method": (
            "1 - playlist_rps/nocheck_rps; nocheck serves the same bytes through a route of the"
            " same shape (async, store read in the thread pool) without the token/viewer/rights"
            " check (end to end, same server)"
        ),
        "check_cost_cpu_method": (
            "1 - nocheck_server_cpu_us/playlist_server_cpu_us; server CPU time per request"
            " from /proc/<pid>/stat over each run"
        ),
        "check_cost_inprocess_method": (
            "check_us_total / playlist_server_cpu_us; check_us_total = CPU time here of"
            " the route's path: token memo + object_key + viewer_of(Request) + cached rights"
            " + check_stream with the decision memo, on an app from the same settings"
        ),
        "check_fraction_target": CHECK_FRACTION_TARGET,
        "dev_loopback_country_allows_gb_grant": dev_loopback_allows(settings),
        "load_1m_after": round(os.getloadavg()[0], 2),
    }


def start_playback(port: int, asset_id: str, headers: dict[str, str]) -> str:
    status, body = http(port, "POST", f"/v1/playback/{asset_id}", headers)
    if status != 200:
        raise BenchmarkFailed(f"POST /v1/playback: {status} {body[:500]!r}")
    master = urlsplit(str(json.loads(body)["master_url"])).path
    parts = master.split("/")  # /v1/stream/<token>/master.m3u8
    if parts[:3] != ["", "v1", "stream"] or parts[-1] != "master.m3u8":
        raise BenchmarkFailed(f"unexpected master URL {master}")
    return parts[3]


def check_endpoints(port: int, paths: dict[str, str], headers: dict[str, str]) -> None:
    """Every endpoint answers 200 before the load starts, the two playlist routes with the
    same bytes, and the check really runs: the same token from Sweden is refused."""
    expected = media_playlist()
    for name, path in paths.items():
        status, body = http(port, "GET", path, headers)
        if status != 200 or (name != "trivial" and body != expected):
            raise BenchmarkFailed(f"{name} {path}: {status} {body[:300]!r}")
    status, _ = http(port, "GET", paths["playlist"], {"X-Forwarded-For": SE_IP})
    if status != 403:
        raise BenchmarkFailed(f"the playlist from SE answered {status}, expected 403")


def dev_loopback_allows(settings: Settings) -> bool:
    """Whether a loopback viewer placed in GB by dev_loopback_country gets a GB-only grant."""
    with GeoDatabases.open(city=settings.geoip_city_db) as geo:
        viewer = resolve_viewer(
            peer="127.0.0.1",
            headers={},
            platform="web",
            geo=geo,
            proxies=TrustedProxies([]),
            cdn_country_header=None,
            dev_loopback_country="GB",
        )
    grant = Grant(1, LicenseType.HIGHLIGHTS, territories=frozenset({"GB"}))
    item = ItemRights("x", (ScopeLevel("league", "1", (grant,)),))
    return evaluate(item, viewer, datetime.now(UTC), CLIP_LICENSES).allowed


def request_scope(app: FastAPI, port: int, path: str) -> Scope:
    """The ASGI scope uvicorn builds for the load generator's request."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", f"{HOST}:{port}".encode()), (b"x-forwarded-for", GB_IP.encode())],
        "client": (HOST, 50_000),
        "server": (HOST, port),
        "app": app,
    }


def measure_check_inprocess(
    settings: Settings, port: int, token: str, path: str, figures: dict[str, float]
) -> dict[str, str | int | float | bool | None]:
    """What the stream route calls for its check, timed here against an app built from the
    server's settings (same database, Redis, GeoIP files, secret), its cache warmed first."""
    app = create_app(settings)
    try:
        keys: tokens.SigningKeys = app.state.signing_keys
        rights: RightsContext = app.state.rights
        sessions = app.state.sessionmaker
        scope = request_scope(app, port, path)
        media_path = path.split("/", 4)[4]
        leeway = settings.token_leeway_s
        grant = playback.grant_of(tokens.verify(keys, token, leeway_s=leeway))
        viewer = viewer_of(Request(scope), rights)
        with sessions() as session:
            item = rights.cache.rights_for_id(session, grant.asset_id)  # warm the cache
        playback.check_stream(grant, item, viewer, datetime.now(UTC))

        memo: TokenMemo = app.state.token_memo

        def full() -> None:
            # What the route does on a warm cache: no database session, no network.
            now = datetime.now(UTC)
            claims = memo.verify(token, now=now.timestamp(), leeway_s=leeway)
            opened = playback.grant_of(claims)
            playback.object_key(opened, media_path)
            who = viewer_of(Request(scope), rights)
            cached = rights.cache.cached(opened.asset_id)
            playback.check_stream(opened, cached, who, now, rights.decisions)

        def lookup() -> None:
            rights.cache.cached(grant.asset_id)

        total = rate(full, 1, 2 * CHECK_PART_S)
        figures["check_us_total"] = total.cpu_us
        figures["check_us_total_wall"] = total.wall_us
        figures["check_us_token"] = rate(
            lambda: playback.grant_of(tokens.verify(keys, token, leeway_s=leeway)), 1, CHECK_PART_S
        ).cpu_us
        figures["check_us_viewer"] = rate(
            lambda: viewer_of(Request(scope), rights), 1, CHECK_PART_S
        ).cpu_us
        figures["check_us_rights_lookup"] = rate(lookup, 1, CHECK_PART_S).cpu_us
        # The Redis GET behind every lookup, alone: its CPU here, and its round trip.
        epoch = rate(rights.cache._current_epoch, 1, CHECK_PART_S)
        figures["check_us_redis_epoch"] = epoch.cpu_us
        figures["check_us_redis_epoch_wall"] = epoch.wall_us
        figures["check_us_evaluate"] = rate(
            lambda: decide(item, viewer, datetime.now(UTC)), 1, CHECK_PART_S
        ).cpu_us
    finally:
        app.state.rights.geo.close()
    return {"inprocess_viewer": f"{viewer.country} {viewer.subdivision} from {viewer.ip}"}


def check_fraction(playlist_rps: float, nocheck_rps: float) -> float:
    """(1/playlist − 1/nocheck) / (1/playlist): the share of a playlist request's time that
    the check takes, from the throughput with and without it."""
    if playlist_rps <= 0 or nocheck_rps <= 0:
        raise ValueError("throughputs must be positive")
    return (1 / playlist_rps - 1 / nocheck_rps) * playlist_rps


# --- load generation ----------------------------------------------------------------------


def load_generator_name() -> str:
    wrk = shutil.which("wrk")
    if wrk is not None:
        return f"wrk -t1 -c{CONNECTIONS} --latency ({wrk}), a separate process"
    return f"python asyncio, {CONNECTIONS} keep-alive connections, a separate process"


@dataclass(frozen=True)
class CpuSample:
    """CPU clocks at one instant: the server's, the whole machine's, and our waited children's
    (the load generator, once it has exited)."""

    wall_s: float
    server_s: float
    machine_busy_s: float
    children_s: float


def cpu_sample(pid: int) -> CpuSample:
    hz = os.sysconf("SC_CLK_TCK")
    # /proc/<pid>/stat: after the ")" closing the command name, utime and stime are the
    # 12th and 13th fields (fields 14 and 15 of the line), in clock ticks, all threads.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    server = (int(fields[11]) + int(fields[12])) / hz
    # /proc/stat "cpu" line: user nice system idle iowait irq softirq steal (guest in user).
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    busy = (sum(ticks) - ticks[3] - ticks[4]) / hz
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return CpuSample(time.perf_counter(), server, busy, usage.ru_utime + usage.ru_stime)


@dataclass(frozen=True)
class ApiRun:
    load: LoadStats
    server_cpu_us: float  # the server process's CPU time per request
    other_cores: float  # busy cores, on average, besides the server and the load generator


def run_load(
    server_pid: int,
    port: int,
    path: str,
    headers: dict[str, str],
    seconds: float,
    *,
    warmup_s: float,
) -> ApiRun:
    if warmup_s > 0:
        _load_once(port, path, headers, warmup_s)
    before = cpu_sample(server_pid)
    stats = _load_once(port, path, headers, seconds)
    after = cpu_sample(server_pid)
    if stats.errors:
        raise BenchmarkFailed(f"{path}: {stats.errors} of {stats.requests} requests failed")
    if stats.requests < 100:
        raise BenchmarkFailed(f"{path}: only {stats.requests} requests in {seconds} s")
    server = after.server_s - before.server_s
    ours = server + after.children_s - before.children_s
    other = (after.machine_busy_s - before.machine_busy_s - ours) / (after.wall_s - before.wall_s)
    return ApiRun(stats, 1e6 * server / stats.requests, max(other, 0.0))


def _load_once(port: int, path: str, headers: dict[str, str], seconds: float) -> LoadStats:
    url = f"http://{HOST}:{port}{path}"
    timeout = seconds + 60
    wrk = shutil.which("wrk")
    if wrk is not None:
        command = [wrk, "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--latency"]
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        done = subprocess.run(
            [*command, url], capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise BenchmarkFailed(f"wrk exited with {done.returncode}: {done.stderr[-2000:]}")
        return parse_wrk(done.stdout)
    command = [sys.executable, "-m", "bench.rights", "load", "--port", str(port)]
    command += ["--path", path, "--seconds", str(seconds), "--connections", str(CONNECTIONS)]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise BenchmarkFailed(f"load generator exited {done.returncode}: {done.stderr[-2000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return LoadStats(
        rps=float(data["rps"]),
        p50_ms=float(data["p50_ms"]),
        p99_ms=float(data["p99_ms"]),
        requests=int(data["requests"]),
        errors=int(data["errors"]),
    )


_WRK_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(output: str) -> LoadStats:
    """The figures of ``wrk --latency`` output; ``BenchmarkFailed`` when one is missing."""

    def latency(percent: str) -> float:
        match = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
        if match is None:
            raise BenchmarkFailed(f"no {percent}% latency in wrk's output:\n{output}")
        return float(match.group(1)) * _WRK_UNITS_MS[match.group(2)]

    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    total = re.search(r"^\s*(\d+) requests in ", output, re.MULTILINE)
    if rps is None or total is None:
        raise BenchmarkFailed(f"no throughput in wrk's output:\n{output}")
    errors = 0
    if non_2xx := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        errors += int(non_2xx.group(1))
    if sockets := re.search(r"Socket errors: ([^\n]+)", output):
        errors += sum(int(count) for count in re.findall(r"\d+", sockets.group(1)))
    return LoadStats(
        rps=float(rps.group(1)),
        p50_ms=latency("50"),
        p99_ms=latency("99"),
        requests=int(total.group(1)),
        errors=errors,
    )


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values (``fraction`` in 0..1)."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, min(len(sorted_values), math.ceil(fraction * len(sorted_values))))
    return sorted_values[rank - 1]


def content_length(head: bytes) -> int:
    """The Content-Length of a response head; ``ValueError`` when it has none (chunked)."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    raise ValueError("response without Content-Length")


async def _client(
    port: int, request: bytes, deadline: float, budget: list[int], out: list[float]
) -> int:
    """One keep-alive connection sending requests back to back; returns its error count."""
    errors = 0
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while budget[0] > 0 and time.perf_counter() < deadline:
            budget[0] -= 1
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(content_length(head))
            out.append(time.perf_counter() - start)
            if not head.startswith((b"HTTP/1.1 2", b"HTTP/1.0 2")):
                errors += 1
    finally:
        writer.close()
    return errors


async def _generate(
    port: int, path: str, headers: Sequence[str], seconds: float, connections: int
) -> dict[str, float]:
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}", *headers, "", ""]
    request = "\r\n".join(lines).encode()
    latencies: list[float] = []
    budget = [10_000_000]
    start = time.perf_counter()
    deadline = start + seconds
    clients = [_client(port, request, deadline, budget, latencies) for _ in range(connections)]
    errors = sum(await asyncio.gather(*clients))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * percentile(latencies, 0.50),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "requests": len(latencies),
        "errors": errors,
    }


def load_main(argv: Sequence[str]) -> int:
    """``python -m bench.rights load ...``: the fallback load generator when wrk is missing;
    prints one JSON line (rps, p50_ms, p99_ms, requests, errors)."""
    parser = argparse.ArgumentParser(prog="python -m bench.rights load")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args(argv)
    import uvloop  # uvicorn[standard] brings it; the client should not be the bottleneck

    result = uvloop.run(
        _generate(args.port, args.path, args.header, args.seconds, args.connections)
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["load"]:
        sys.exit("usage: python -m bench.rights load --port N --path P --seconds S")
    sys.exit(load_main(sys.argv[2:]))
