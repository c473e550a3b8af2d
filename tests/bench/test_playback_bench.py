"""The ``playback`` benchmark's parts (``make bench B=playback`` runs the benchmark itself):
its figures, the wrk script and the fallback load generator, against a loopback server."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess  # noqa: TID251 - the test runs wrk, the real load generator
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bench import playback
from bench.harness import BENCHMARK_MODULES, load_benchmarks
from bench.rights import LoadStats, parse_wrk

PATHS = ["/v1/stream/tok/master.m3u8", "/v1/stream/tok/v0/index.m3u8"]


def stats(rps: float, p50: float, p99: float, requests: int = 1000) -> LoadStats:
    return LoadStats(rps=rps, p50_ms=p50, p99_ms=p99, requests=requests, errors=0)


def test_playback_is_registered() -> None:
    assert "bench.playback" in BENCHMARK_MODULES
    assert load_benchmarks()["playback"] is playback.playback_benchmark


def test_figures_compare_the_playlists_with_the_floor() -> None:
    playlist = [stats(3000.0, 10.0, 40.0), stats(3400.0, 12.0, 30.0)]
    floor = [stats(5000.0, 6.0, 20.0), stats(5400.0, 7.0, 25.0)]
    figures = playback.figures_of(playlist, floor)
    assert figures["playlist_rps"] == pytest.approx(3200.0)
    assert figures["floor_rps"] == pytest.approx(5200.0)
    assert figures["ratio_vs_floor"] == pytest.approx(3200.0 / 5200.0)
    # p50: the median of the rounds'; p99: the worst round's, never an average of tails.
    assert (figures["p50_ms"], figures["p99_ms"]) == (11.0, 40.0)
    assert (figures["floor_p50_ms"], figures["floor_p99_ms"]) == (6.5, 25.0)
    assert figures["playlist_requests"] == 2000


def test_combine_refuses_no_rounds() -> None:
    with pytest.raises(ValueError, match="no rounds"):
        playback.combine([])


def test_stream_paths_are_the_master_then_the_media_playlist() -> None:
    assert playback.stream_paths("abc") == [
        "/v1/stream/abc/master.m3u8",
        "/v1/stream/abc/v0/index.m3u8",
    ]


def test_server_runs_as_production_does() -> None:
    command = playback.server_command(8123)
    assert command[command.index("--workers") + 1] == "2"
    assert "--no-access-log" in command
    assert "--no-proxy-headers" in command  # client addresses only through trusted proxies


def test_wrk_script_bounds_its_paths() -> None:
    script = playback.wrk_script(PATHS)
    assert '"/v1/stream/tok/master.m3u8", "/v1/stream/tok/v0/index.m3u8"' in script
    with pytest.raises(ValueError, match="paths"):
        playback.wrk_script([])
    with pytest.raises(ValueError, match="paths"):
        playback.wrk_script(["/x"] * (playback.MAX_PATHS + 1))


class Recorder:
    """A minimal HTTP/1.1 keep-alive server on loopback recording each request's path and
    X-Forwarded-For; answers 200 "ok", or 404 for paths under /missing."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.forwarded: set[str] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                lines = head.decode().split("\r\n")
                path = lines[0].split()[1]
                self.paths.append(path)
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.lower() == "x-forwarded-for":
                        self.forwarded.add(value.strip())
                status = "404 Not Found" if path.startswith("/missing") else "200 OK"
                writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nok".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def alternates(paths: list[str]) -> bool:
    """Whether the recorded paths cover both playlists in near-equal numbers."""
    counts = [paths.count(p) for p in PATHS]
    return min(counts) > 0 and abs(counts[0] - counts[1]) <= len(paths) // 10 + 2


def test_python_load_generator_alternates_the_paths() -> None:
    recorder = Recorder()

    async def scenario() -> dict[str, float]:
        server = await asyncio.start_server(recorder.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await playback.generate(port, PATHS, ["X-Forwarded-For: 2.125.160.216"], 0.5, 4)

    result = asyncio.run(scenario())
    assert result["requests"] == len(recorder.paths) > 10
    assert result["errors"] == 0
    assert 0 < result["p50_ms"] <= result["p99_ms"]
    assert alternates(recorder.paths)
    assert recorder.forwarded == {"2.125.160.216"}


def test_python_load_generator_counts_errors() -> None:
    recorder = Recorder()

    async def scenario() -> dict[str, float]:
        server = await asyncio.start_server(recorder.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await playback.generate(port, ["/ok", "/missing"], [], 0.3, 2)

    result = asyncio.run(scenario())
    assert result["errors"] == recorder.paths.count("/missing") > 0


async def shutdown(server: asyncio.Server) -> None:
    """Close the server and end its connections' handlers, so that no transport is left
    for the garbage collector to find open."""
    server.close()
    handlers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in handlers:
        task.cancel()
    await asyncio.gather(*handlers, return_exceptions=True)


@contextmanager
def recorder_thread(recorder: Recorder) -> Iterator[int]:
    """The recorder on its own event loop in a thread, for a client in another process."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: list[asyncio.Server] = []

    async def serve() -> None:
        holder.append(await asyncio.start_server(recorder.handle, "127.0.0.1", 0))
        started.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(serve(), loop)
    assert started.wait(5)
    try:
        yield holder[0].sockets[0].getsockname()[1]
    finally:
        asyncio.run_coroutine_threadsafe(shutdown(holder[0]), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_wrk_with_the_script_alternates_and_parses(tmp_path: Path) -> None:
    recorder = Recorder()
    script = tmp_path / "paths.lua"
    script.write_text(playback.wrk_script(PATHS))
    with recorder_thread(recorder) as port:
        done = subprocess.run(
            ["wrk", "-t1", "-c2", "-d1s", "--latency", "-H", "X-Forwarded-For: 2.125.160.216",
             "-s", str(script), f"http://127.0.0.1:{port}{PATHS[0]}"],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
    figures = parse_wrk(done.stdout)
    assert figures.errors == 0
    assert figures.requests > 10
    assert alternates(recorder.paths)
    assert recorder.forwarded == {"2.125.160.216"}


def test_process_cpu_reads_utime_and_stime_after_the_command_name() -> None:
    # The command name may hold spaces and parentheses; fields count from the last ")".
    line = "4242 (uvicorn (w) 1) S 1 4242 4242 0 -1 4194560 1 0 0 0 250 150 0 0 20 0 3 0"
    assert playback.process_cpu_s(line, 100) == pytest.approx(4.0)


def test_machine_busy_leaves_out_idle_and_iowait() -> None:
    proc_stat = "cpu  100 5 50 1000 40 3 2 0 0 0\ncpu0 50 2 25 500 20 1 1 0 0 0\n"
    assert playback.machine_busy_s(proc_stat, 100) == pytest.approx(1.6)


def test_server_pids_finds_the_children() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        pids = playback.server_pids(os.getpid())
    finally:
        child.kill()
        child.wait()
    assert pids[0] == os.getpid()
    assert child.pid in pids[1:]


def test_cpu_figures_compare_server_time_per_request() -> None:
    start = playback.CpuClock(wall_s=10.0, server_s=5.0, busy_s=20.0, children_s=1.0)
    # 2 s of wall time: the server used 1.2 s for 4000 requests, the load generator 0.4 s,
    # and the machine was busy 2.6 s: 1.0 s of it other work, 0.5 cores.
    end = playback.CpuClock(wall_s=12.0, server_s=6.2, busy_s=22.6, children_s=1.4)
    run = playback.measured_run(stats(2000.0, 1.0, 2.0, requests=4000), start, end)
    assert run.server_cpu_us == pytest.approx(300.0)
    assert run.other_cores == pytest.approx(0.5)
    floor = playback.Run(stats(3000.0, 1.0, 2.0), server_cpu_us=200.0, other_cores=0.1)
    figures = playback.cpu_figures([run], [floor])
    assert figures["ratio_cpu_vs_floor"] == pytest.approx(200.0 / 300.0)
    assert figures["other_busy_cores_max"] == pytest.approx(0.5)
