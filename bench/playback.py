"""``playback``: playlist requests per second of one playback session, against the floor.

The API runs as production runs it (README, "Scaling out"): uvicorn with ``WORKERS`` worker
processes, access log off, uvloop and httptools (what ``uvicorn[standard]`` brings), on
127.0.0.1 over a fresh SQLite database, the local store in a temp dir and Redis db 9. The
store holds one READY asset with a master playlist and a 15-segment fMP4 media playlist
(``bench.rights.seed``: a league-level highlights grant limited to GB). The benchmark starts
one playback session (``POST /v1/playback/{id}``) as a GB viewer (``X-Forwarded-For`` through
the trusted proxy 127.0.0.1, a real GeoIP lookup per request), then a load generator in a
separate process (``wrk -t1`` when installed, else this module's asyncio one) drives, with the
same connections and duration, in alternating rounds:

- ``playlist``: the session's master and media playlist URLs in turn, each request with the
  full check (token signature and expiry, viewer, rights, path validation);
- ``floor``: ``GET /v1/ping`` of the same server, a constant answer through the same
  middleware: what the server manages when a request does nothing.

Figures: ``playlist_rps`` and ``floor_rps`` (mean over the rounds), ``ratio_vs_floor``,
``p50_ms`` and ``p99_ms`` of the playlist requests (``p50`` the median of the rounds', ``p99``
the worst round's), the same for the floor. Throughput on a shared machine moves with other
work; ``ratio_cpu_vs_floor`` (the server's CPU time per floor request over that per playlist
request, uvicorn and its workers from ``/proc``) moves less, and ``other_busy_cores_max``
says how many cores other work kept busy during the worst run. Targets: ratio ≥ 0.6 and
≥ 3,000 playlist requests/s on a 2-core machine where the load generator shares the cores
with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess  # noqa: TID251 - the benchmark runs a real API server and a load generator
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from bench import rights as rights_bench
from bench.harness import Measurement, benchmark, ratio
from bench.rights import GB_IP, HOST, SE_IP, BenchmarkFailed, LoadStats
from core import migrate
from core.db import engine_for
from core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = "redis://127.0.0.1:6379/9"
WORKERS = 2
CONNECTIONS = 64
ROUNDS = 2
ROUND_S = 5.0
WARMUP_S = 1.0
PING_PATH = "/v1/ping"
PLAYLIST_RPS_TARGET = 3_000
RATIO_TARGET = 0.6
VIEWER_HEADERS = {"X-Forwarded-For": GB_IP}
MAX_PATHS = 16  # a bound on what the load generators cycle through


@benchmark("playback")
def playback_benchmark() -> Measurement:
    if not (rights_bench.CITY_DB.is_file() and rights_bench.ANONYMOUS_DB.is_file()):
        raise BenchmarkFailed(
            f"the MaxMind test databases are missing from {rights_bench.GEOIP_DIR}"
        )
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="courtside-bench-playback-") as tmp:
        inputs, figures = measure(Path(tmp))
    inputs["load_1m_before"] = load_before
    inputs["load_1m_after"] = round(os.getloadavg()[0], 2)
    return Measurement(inputs=inputs, figures=figures)


def settings_values(tmp: Path) -> dict[str, object]:
    """``bench.rights``' server settings with our own Redis database, as production runs."""
    return rights_bench.settings_values(tmp) | {"environment": "production", "redis_url": REDIS_URL}


def measure(tmp: Path) -> tuple[dict[str, str | int | float | bool | None], dict[str, float]]:
    values = settings_values(tmp)
    settings = Settings.model_validate(values)
    migrate.upgrade(settings.db_url)
    redis.Redis.from_url(REDIS_URL).flushdb()
    asset_id = rights_bench.seed(settings)
    port = rights_bench.free_port()
    try:
        with running_server(rights_bench.server_env(values), port, tmp / "server.log") as pid:
            token = rights_bench.start_playback(port, asset_id, VIEWER_HEADERS)
            targets = {"playlist": stream_paths(token), "floor": [PING_PATH]}
            check_endpoints(port, targets)
            pids = server_pids(pid)
            # The workers, and multiprocessing's resource tracker beside them.
            if len(pids) < WORKERS + 1:
                raise BenchmarkFailed(f"expected uvicorn and {WORKERS} workers, found {pids}")
            runs = run_rounds(port, targets, pids, tmp)
    finally:
        engine_for(settings.db_url).dispose()
    playlist, floor = runs["playlist"], runs["floor"]
    figures = figures_of([r.load for r in playlist], [r.load for r in floor])
    return run_inputs(), figures | cpu_figures(playlist, floor)


def stream_paths(token: str) -> list[str]:
    """The two playlists a player asks for in one playback: the master, then the media one."""
    return [f"/v1/stream/{token}/master.m3u8", f"/v1/stream/{token}/v0/index.m3u8"]


def server_command(port: int) -> list[str]:
    """uvicorn as ``courtside serve --workers 2`` runs it in production, access log off."""
    return [
        sys.executable, "-m", "uvicorn", "--factory", "web.app:create_app",
        "--host", HOST, "--port", str(port), "--workers", str(WORKERS),
        "--no-proxy-headers", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


@contextmanager
def running_server(env: dict[str, str], port: int, log: Path) -> Iterator[int]:
    """The API on 127.0.0.1:``port``, answering when this yields uvicorn's pid, stopped
    whatever happens (uvicorn's supervisor stops its workers; SIGKILL to the group if it
    hangs)."""
    with rights_bench.process(server_command(port), env, log) as server:
        rights_bench.wait_for_server(server, port, log)
        yield server.pid


def check_endpoints(port: int, targets: dict[str, list[str]]) -> None:
    """Every path answers 200 before the load starts, the media playlist with the stored
    bytes, and the check really runs: the same token from Sweden is refused."""
    for name, paths in targets.items():
        for path in paths:
            status, body = rights_bench.http(port, "GET", path, VIEWER_HEADERS)
            if status != 200:
                raise BenchmarkFailed(f"{name} {path}: {status} {body[:300]!r}")
    media = targets["playlist"][-1]
    if rights_bench.http(port, "GET", media, VIEWER_HEADERS)[1] != rights_bench.media_playlist():
        raise BenchmarkFailed(f"{media} did not answer the stored media playlist")
    status, _ = rights_bench.http(port, "GET", media, {"X-Forwarded-For": SE_IP})
    if status != 403:
        raise BenchmarkFailed(f"the playlist from SE answered {status}, expected 403")


@dataclass(frozen=True)
class Run:
    """One load run, and what the CPUs did meanwhile."""

    load: LoadStats
    server_cpu_us: float  # CPU time of uvicorn and its workers per request
    other_cores: float  # busy cores on average besides the server and the load generator


def run_rounds(
    port: int, targets: dict[str, list[str]], pids: Sequence[int], tmp: Path
) -> dict[str, list[Run]]:
    """``ROUNDS`` alternating runs of each target after a warm-up of each, so that other work
    on a shared machine falls on both sides rather than on one."""
    for paths in targets.values():
        load(port, paths, WARMUP_S, tmp)
    runs: dict[str, list[Run]] = {name: [] for name in targets}
    for _ in range(ROUNDS):
        for name, paths in targets.items():
            before = cpu_clock(pids)
            stats = load(port, paths, ROUND_S, tmp)
            after = cpu_clock(pids)
            if stats.errors:
                raise BenchmarkFailed(f"{name}: {stats.errors} of {stats.requests} requests failed")
            runs[name].append(measured_run(stats, before, after))
    return runs


@dataclass(frozen=True)
class CpuClock:
    """CPU clocks at one instant: the server processes', the machine's busy time, and our
    waited-for children's (the load generator, once it has exited)."""

    wall_s: float
    server_s: float
    busy_s: float
    children_s: float


def server_pids(supervisor: int, proc: Path = Path("/proc")) -> list[int]:
    """uvicorn's supervisor and its direct children (the workers)."""
    children = []
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == supervisor:  # the field after the state is the parent's pid
            children.append(int(stat.parent.name))
    return [supervisor, *sorted(children)]


def process_cpu_s(stat_line: str, hz: int) -> float:
    """utime + stime of a ``/proc/<pid>/stat`` line, in seconds (fields 14 and 15; the
    command name, in parentheses, may contain spaces)."""
    fields = stat_line.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / hz


def machine_busy_s(proc_stat: str, hz: int) -> float:
    """Busy CPU seconds of all cores from ``/proc/stat``: all but idle and iowait."""
    ticks = [int(v) for v in proc_stat.splitlines()[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / hz


def cpu_clock(pids: Sequence[int]) -> CpuClock:
    hz = os.sysconf("SC_CLK_TCK")
    server = sum(process_cpu_s(Path(f"/proc/{pid}/stat").read_text(), hz) for pid in pids)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = machine_busy_s(Path("/proc/stat").read_text(), hz)
    return CpuClock(time.perf_counter(), server, busy, usage.ru_utime + usage.ru_stime)


def measured_run(stats: LoadStats, before: CpuClock, after: CpuClock) -> Run:
    server = after.server_s - before.server_s
    ours = server + after.children_s - before.children_s
    other = (after.busy_s - before.busy_s - ours) / (after.wall_s - before.wall_s)
    return Run(stats, 1e6 * server / max(stats.requests, 1), max(other, 0.0))


def cpu_figures(playlist: Sequence[Run], floor: Sequence[Run]) -> dict[str, float]:
    """Server CPU per request on each side and their ratio, which other work on a shared
    machine affects less than throughput; and how many cores that other work kept busy."""
    ours = statistics.fmean(r.server_cpu_us for r in playlist)
    base = statistics.fmean(r.server_cpu_us for r in floor)
    return {
        "playlist_server_cpu_us": ours,
        "floor_server_cpu_us": base,
        "ratio_cpu_vs_floor": ratio(base, ours),
        "other_busy_cores_max": max(r.other_cores for r in [*playlist, *floor]),
    }


def combine(rounds: Sequence[LoadStats]) -> LoadStats:
    """One figure set from several rounds: mean throughput, median p50, worst p99."""
    if not rounds:
        raise ValueError("no rounds")
    return LoadStats(
        rps=statistics.fmean(r.rps for r in rounds),
        p50_ms=statistics.median(r.p50_ms for r in rounds),
        p99_ms=max(r.p99_ms for r in rounds),
        requests=sum(r.requests for r in rounds),
        errors=sum(r.errors for r in rounds),
    )


def figures_of(playlist: Sequence[LoadStats], floor: Sequence[LoadStats]) -> dict[str, float]:
    """The results JSON's figures from the rounds of each side."""
    ours, base = combine(playlist), combine(floor)
    return {
        "playlist_rps": ours.rps,
        "floor_rps": base.rps,
        "ratio_vs_floor": ratio(ours.rps, base.rps),
        "p50_ms": ours.p50_ms,
        "p99_ms": ours.p99_ms,
        "floor_p50_ms": base.p50_ms,
        "floor_p99_ms": base.p99_ms,
        "playlist_requests": ours.requests,
        "floor_requests": base.requests,
    }


def run_inputs() -> dict[str, str | int | float | bool | None]:
    have = {name: importlib.util.find_spec(name) is not None for name in ("uvloop", "httptools")}
    return {
        "server": (
            f"uvicorn --factory web.app:create_app --workers {WORKERS} --no-access-log"
            " (loop and http auto: uvloop and httptools when installed)"
        ),
        "uvloop": have["uvloop"],
        "httptools": have["httptools"],
        "stack": "SQLite in a temp dir, local store, Redis db 9 (flushed), City + Anon test DBs",
        "playlist": (
            f"master + media playlist ({rights_bench.SEGMENTS} segments) of one session, in turn"
        ),
        "floor": f"GET {PING_PATH} (constant body) on the same server",
        "viewer": f"peer 127.0.0.1 (trusted proxy), X-Forwarded-For {GB_IP} (GB)",
        "load_generator": load_generator_name(),
        "connections": CONNECTIONS,
        "rounds": ROUNDS,
        "round_s": ROUND_S,
        "warmup_s": WARMUP_S,
        "target_playlist_rps": PLAYLIST_RPS_TARGET,
        "target_ratio_vs_floor": RATIO_TARGET,
    }


# --- load generation ----------------------------------------------------------------------


def load_generator_name() -> str:
    wrk = shutil.which("wrk")
    if wrk is not None:
        return f"wrk -t1 -c{CONNECTIONS} --latency ({wrk}), a separate process"
    return f"python asyncio (uvloop), {CONNECTIONS} keep-alive connections, a separate process"


def wrk_script(paths: Sequence[str]) -> str:
    """A wrk Lua script sending ``paths`` in turn on each connection (the -H headers too)."""
    if not 1 <= len(paths) <= MAX_PATHS:
        raise ValueError(f"between 1 and {MAX_PATHS} paths, got {len(paths)}")
    quoted = ", ".join(json.dumps(path) for path in paths)  # JSON strings are Lua strings here
    return (
        f"local paths = {{{quoted}}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #paths + 1\n"
        "  return wrk.format(nil, paths[i])\n"
        "end\n"
    )


def load(port: int, paths: Sequence[str], seconds: float, tmp: Path) -> LoadStats:
    """One load run against ``paths`` in turn, from a separate process."""
    timeout = seconds + 60
    wrk = shutil.which("wrk")
    if wrk is None:
        return _python_load(port, paths, seconds, timeout)
    script = tmp / "paths.lua"
    script.write_text(wrk_script(paths))
    command = [wrk, "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--latency"]
    for name, value in VIEWER_HEADERS.items():
        command += ["-H", f"{name}: {value}"]
    command += ["-s", str(script), f"http://{HOST}:{port}{paths[0]}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise BenchmarkFailed(f"wrk exited with {done.returncode}: {done.stderr[-2000:]}")
    return rights_bench.parse_wrk(done.stdout)


def _python_load(port: int, paths: Sequence[str], seconds: float, timeout: float) -> LoadStats:
    command = [sys.executable, "-m", "bench.playback", "load", "--port", str(port)]
    command += ["--seconds", str(seconds), "--connections", str(CONNECTIONS)]
    for path in paths:
        command += ["--path", path]
    for name, value in VIEWER_HEADERS.items():
        command += ["--header", f"{name}: {value}"]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise BenchmarkFailed(f"load generator exited {done.returncode}: {done.stderr[-2000:]}")
    return load_stats(json.loads(done.stdout.strip().splitlines()[-1]))


def load_stats(data: dict[str, float]) -> LoadStats:
    return LoadStats(
        rps=float(data["rps"]),
        p50_ms=float(data["p50_ms"]),
        p99_ms=float(data["p99_ms"]),
        requests=int(data["requests"]),
        errors=int(data["errors"]),
    )


def requests_for(port: int, paths: Sequence[str], headers: Sequence[str]) -> list[bytes]:
    """The raw HTTP/1.1 keep-alive requests for ``paths``."""
    return [
        "\r\n".join([f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}", *headers, "", ""]).encode()
        for path in paths
    ]


@dataclass
class _Run:
    deadline: float
    latencies: list[float]
    errors: int = 0


async def _connection(port: int, requests: Sequence[bytes], run: _Run) -> None:
    """One keep-alive connection sending ``requests`` in turn, back to back."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        turn = 0
        while time.perf_counter() < run.deadline and len(run.latencies) < 10_000_000:
            start = time.perf_counter()
            writer.write(requests[turn % len(requests)])
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(rights_bench.content_length(head))
            run.latencies.append(time.perf_counter() - start)
            run.errors += not head.startswith((b"HTTP/1.1 2", b"HTTP/1.0 2"))
            turn += 1
    finally:
        writer.close()


async def generate(
    port: int, paths: Sequence[str], headers: Sequence[str], seconds: float, connections: int
) -> dict[str, float]:
    """Drive ``paths`` in turn over ``connections`` connections for ``seconds``."""
    requests = requests_for(port, paths, headers)
    start = time.perf_counter()
    run = _Run(deadline=start + seconds, latencies=[])
    await asyncio.gather(*(_connection(port, requests, run) for _ in range(connections)))
    elapsed = time.perf_counter() - start
    latencies = sorted(run.latencies)
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * rights_bench.percentile(latencies, 0.50),
        "p99_ms": 1000 * rights_bench.percentile(latencies, 0.99),
        "requests": len(latencies),
        "errors": run.errors,
    }


def load_main(argv: Sequence[str]) -> int:
    """``python -m bench.playback load ...``: the load generator when wrk is missing; prints
    one JSON line (rps, p50_ms, p99_ms, requests, errors)."""
    parser = argparse.ArgumentParser(prog="python -m bench.playback load")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", action="append", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args(argv)
    import uvloop  # uvicorn[standard] brings it; the client should not be the bottleneck

    run = generate(args.port, args.path[:MAX_PATHS], args.header, args.seconds, args.connections)
    print(json.dumps(uvloop.run(run)))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["load"]:
        sys.exit("usage: python -m bench.playback load --port N --path P [--path P] --seconds S")
    sys.exit(load_main(sys.argv[2:]))
