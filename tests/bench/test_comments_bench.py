"""The ``comments`` benchmark's parts (``make bench B=comments`` runs the benchmark itself):
its figures, the schedule, resuming, RSS reading, and the load client against a small
loopback WebSocket server that speaks the comment protocol (batched frames, acks, 4008)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from websockets.asyncio.server import ServerConnection, serve

from bench import comments
from bench.harness import BENCHMARK_MODULES, load_benchmarks
from bench.rights import BenchmarkFailed


def stats(**changes: Any) -> comments.LoadStats:
    values: dict[str, Any] = {
        "clients": 2000,
        "accepted": 500,
        "refused": 0,
        "deliveries": 1_000_000,
        "span_s": 10.0,
        "p50_ms": 80.0,
        "p99_ms": 200.0,
        "lagging_closes": 0,
    }
    return comments.LoadStats(**(values | changes))


def test_comments_is_registered() -> None:
    assert "bench.comments" in BENCHMARK_MODULES
    assert load_benchmarks()["comments"] is comments.comments_benchmark


READINGS = comments.Readings(
    before_kib=100_000.0,
    idle_kib=157_000.0,
    cold_kib=97_000.0,
    server_cpu_s=8.0,
    client_cpu_s=9.0,
    busy_s=19.0,
    post_wall_s=10.0,
)


def test_figures_name_the_issue_targets() -> None:
    figures = comments.figures_of(stats(), READINGS, clients=2000, warm=100)
    assert figures["deliveries_per_s"] == pytest.approx(100_000.0)
    assert (figures["p50_ms"], figures["p99_ms"]) == (80.0, 200.0)
    # Per connection past the warm ones: the servers' one-time costs are not spread over them.
    assert figures["kib_per_conn"] == pytest.approx(30.0)
    assert figures["kib_per_conn_from_cold"] == pytest.approx(30.0)
    assert (figures["server_cores"], figures["client_cores"]) == (0.8, 0.9)
    assert figures["other_busy_cores"] == pytest.approx(0.2)
    assert figures["clients"] == 2000
    assert figures["delivery_ratio"] == pytest.approx(1.0)


def test_figures_refuse_a_run_with_missing_readers_or_nothing_delivered() -> None:
    with pytest.raises(BenchmarkFailed, match="1999 of 2000"):
        comments.figures_of(stats(clients=1999), READINGS, 2000, 100)
    with pytest.raises(BenchmarkFailed, match="nothing was delivered"):
        comments.figures_of(stats(deliveries=0), READINGS, 2000, 100)


def test_schedule_alternates_posters_at_the_overall_rate() -> None:
    offsets = comments.post_schedule(posters=3, rate_per_s=10.0, seconds=1.0)
    assert [len(o) for o in offsets] == [4, 3, 3]
    merged = sorted(itertools.chain.from_iterable(offsets))
    assert merged == pytest.approx([i / 10 for i in range(10)])
    assert offsets[1][:2] == pytest.approx([0.1, 0.4])


def test_resume_url_replaces_the_last_seen_id() -> None:
    base = "ws://127.0.0.1:1/v1/comments/a/ws"
    assert comments.resume_url(base, None) == base
    assert comments.resume_url(base, "17-0") == base + "?after=17-0"
    again = comments.resume_url(base + "?after=17-0", "18-1")
    assert again == base + "?after=18-1"
    with_token = comments.ws_url(1, "a", "tok")
    assert comments.resume_url(with_token, "1-0") == base + "?token=tok&after=1-0"


def test_tally_counts_only_the_posted_messages_and_keeps_the_last_id() -> None:
    tally = comments.Tally(sent={"bench p0-0": 10.0})
    frame = json.dumps(
        [
            {"type": "message", "id": "1-0", "text": "bench p0-0"},
            {"type": "likes", "id": "1-0", "likes": 2},
            {"type": "message", "id": "2-0", "text": "from someone else"},
        ]
    )
    assert tally.receive(frame, now=10.25) == "2-0"
    assert tally.deliveries == 1
    assert tally.latencies == [pytest.approx(0.25)]
    assert tally.receive("[]", now=11.0) is None
    # Every reader of a process gets the same frame: counted each time, parsed once.
    assert tally.receive(frame.encode(), now=10.5) == "2-0"
    assert tally.receive(frame.encode(), now=10.5) == "2-0"
    assert tally.deliveries == 3
    assert len(tally.parsed) == 3
    answers = [{"type": "ack", "nonce": "p0-0"}, {"type": "error", "code": "x"}]
    tally.answer(json.dumps(answers), now=10.05)
    assert (tally.accepted, dict(tally.errors)) == (1, {"x": 1})
    assert tally.ack_latencies == [pytest.approx(0.05)]


def test_rss_is_read_from_proc() -> None:
    assert comments.vm_rss_kib("Name:\tx\nVmRSS:\t  2048 kB\n") == 2048
    with pytest.raises(ValueError, match="VmRSS"):
        comments.vm_rss_kib("Name:\tx\n")
    assert comments.rss_kib([os.getpid()]) > 1024  # this test process is over 1 MiB


def test_servers_run_as_production_does() -> None:
    command = comments.server_command(8123)
    assert "--workers" not in command  # one worker: uvicorn itself
    assert "--no-access-log" in command
    assert "--no-proxy-headers" in command
    assert command[command.index("--ws") + 1] == "websockets-sansio"  # as web.cli serve does
    assert command[command.index("--ws-per-message-deflate") + 1] == "false"
    values = comments.settings_values(Path("/tmp/x"), "postgresql+psycopg://db/x")  # noqa: S108
    assert values["environment"] == "production"
    assert values["database_url"] == "postgresql+psycopg://db/x"  # the archive as production's


def test_a_fresh_postgresql_database_is_made_and_dropped() -> None:
    name = f"courtside_bench_comments_test_{os.getpid()}"
    with comments.fresh_database(name) as url:
        engine = create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM comment_messages")).scalar() == 0
        engine.dispose()
    admin = create_engine(comments.PG_ADMIN_URL)
    with admin.connect() as conn:
        query = text("SELECT count(*) FROM pg_database WHERE datname = :n")
        assert conn.execute(query, {"n": name}).scalar() == 0
    admin.dispose()


def test_load_config_round_trips() -> None:
    config = comments.LoadConfig(["ws://a"], ["ws://b?token=t"], {"X": "1"}, 3, 5.0, 1.0, 0.5, 1)
    assert comments.LoadConfig.from_json(config.to_json()) == config


@dataclass
class Channel:
    """A comment channel in one process: posts are acked to the poster and broadcast to every
    connection in one JSON array per flush; a reader is closed with 4008 once."""

    connections: set[ServerConnection] = field(default_factory=set)
    pending: list[dict[str, Any]] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    lagged: bool = False
    resumed_after: list[str] = field(default_factory=list)

    async def handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        if "after=" in ws.request.path:
            self.resumed_after.append(ws.request.path.rsplit("after=", 1)[1])
        self.connections.add(ws)
        try:
            async for frame in ws:
                await self.post(ws, json.loads(frame))
        finally:
            self.connections.discard(ws)

    async def post(self, ws: ServerConnection, event: dict[str, Any]) -> None:
        message_id = f"{next(self.ids)}-0"
        self.pending.append({"type": "message", "id": message_id, "text": event["text"]})
        await ws.send(json.dumps([{"type": "ack", "nonce": event["nonce"], "id": message_id}]))
        if not self.lagged and message_id == "6-0":  # after some flushes: it has a last id
            self.lagged = True
            reader = next(c for c in self.connections if "token=" not in str(c.request.path))  # type: ignore[union-attr] # handshake done
            await reader.close(comments.LAGGING, "lagging: resume with ?after=")

    async def flush(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            batch, self.pending = self.pending, []
            if batch:
                frame = json.dumps(batch)
                for connection in list(self.connections):
                    await connection.send(frame)


@asynccontextmanager
async def channel_server() -> AsyncIterator[tuple[Channel, int]]:
    channel = Channel()
    flusher = asyncio.create_task(channel.flush())
    async with serve(channel.handle, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        try:
            yield channel, port
        finally:
            flusher.cancel()


def test_load_client_counts_deliveries_and_resumes_after_lagging() -> None:
    async def scenario() -> tuple[dict[str, Any], Channel]:
        async with channel_server() as (channel, port):
            config = comments.LoadConfig(
                reader_urls=[comments.ws_url(port, "c")],
                poster_urls=[comments.ws_url(port, "c", f"t{i}") for i in range(2)],
                headers={"X-Forwarded-For": "2.125.160.216"},
                clients=20,
                rate_per_s=20.0,
                post_s=1.0,
                drain_s=comments.DRAIN_S,
                warm=5,
            )
            said: list[int] = []

            async def proceed() -> None:
                said.append(len(channel.connections))

            summary = await comments.drive(config, proceed)
            assert said == [5, 20]  # warm readers first, then all of them
            return summary, channel

    summary, channel = asyncio.run(asyncio.wait_for(scenario(), timeout=60))
    assert summary["clients"] == 20
    assert summary["accepted"] == 20
    assert summary["lagging_closes"] == 1
    assert channel.resumed_after  # the lagging reader came back with its last id
    # The resumed reader may miss what was flushed while it was away (no history here).
    assert 19 * 20 <= summary["deliveries"] <= 20 * 20
    assert 0 < summary["p50_ms"] <= summary["p99_ms"] < 1000
    assert summary["span_s"] > 0.9
