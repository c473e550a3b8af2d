"""``comments``: live-comment fan-out to 2,000 WebSocket clients over two API processes.

Two API processes run as production runs them (``courtside serve``'s uvicorn options: one
worker each, the sans-I/O WebSocket protocol without permessage-deflate, uvloop and
httptools, access log off, ``environment=production``) on 127.0.0.1, sharing a fresh
PostgreSQL database and Redis db 5, so a message posted through one reaches the other's
clients through Redis pub/sub. The channel is a READY highlight (``bench.rights.seed``: a
GB-only grant); readers connect anonymously from GB (``X-Forwarded-For`` through the trusted
proxy 127.0.0.1).

A load client in a separate process (asyncio and websockets on uvloop; its fd limit raised)
opens ``WARM`` reader connections to ``/v1/comments/{channel}/ws``, alternating between the
two processes, and says so; the benchmark reads the API processes' RSS from ``/proc`` (their
one-time costs are paid by then); the client opens the other readers, and once they are
connected and idle the RSS is read again. Then ``POSTERS`` signed-in posters post at
``RATE_PER_S`` messages/s in all for ``POST_S`` seconds, each through its own WebSocket. They
are moderators, whom the per-author rate limit (3 messages in 2 s) exempts; fans could not
post this often. Each message is a unique text whose send time the load client keeps; every
reader matches what it receives by text (each distinct frame is parsed once).

Figures: ``deliveries_per_s`` (messages received by the readers, from the first post to the
last delivery), ``p50_ms`` / ``p99_ms`` post-to-receive latency over every delivery,
``kib_per_conn`` (RSS increase per idle reader past the warm ones), ``clients``; and beside
them ``delivery_ratio`` (deliveries over accepted posts times readers), ``accepted`` and
``refused`` posts, ``lagging_closes`` (readers closed with 4008 or 1012 that resumed with
``?after=``), ``ack_p50_ms`` / ``ack_p99_ms`` (post to the poster's ack: rules, Redis, the
SQL commit), the cores used by the servers, by the load client and by other work on the
machine while posting (on a shared machine other work is what moves the latency). Targets on
a 2-core machine: ≥ 100,000 deliveries/s, p99 ≤ 250 ms, ≤ 50 KiB per idle connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import selectors
import subprocess  # noqa: TID251 - the benchmark runs real API servers and a load client
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

import redis
from sqlalchemy import create_engine, make_url, text

from bench import rights as rights_bench
from bench.harness import Measurement, benchmark
from bench.playback import machine_busy_s, process_cpu_s
from bench.rights import GB_IP, HOST, BenchmarkFailed, percentile
from core import auth, migrate
from core.db import engine_for, make_sessionmaker, session_scope
from core.models import Role
from core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = "redis://127.0.0.1:6379/5"
PG_ADMIN_URL = os.environ.get(
    "COURTSIDE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PROCESSES = 2
CLIENTS = 2_000
POSTERS = 10
RATE_PER_S = 60.0  # 120,000 deliveries/s to 2,000 readers when nothing is late
POST_S = 10.0
DRAIN_S = 3.0
IDLE_S = 3.0  # readers connected and silent before the RSS is read
WS_PROTOCOL = "websockets-sansio"  # as web.cli's serve runs it
WARM = 100  # readers connected before the first RSS reading
CONNECT_CONCURRENCY = 64  # handshakes in flight at once
CONNECT_TIMEOUT_S = 180.0
RUN_TIMEOUT_S = 300.0
PASSWORD = "bench-comments-password"  # noqa: S105 - a throwaway account in a temp database
READER_HEADERS = {"X-Forwarded-For": GB_IP}
DELIVERIES_TARGET = 100_000
P99_TARGET_MS = 250.0
KIB_PER_CONN_TARGET = 50.0
TEXT_PREFIX = "bench "


@benchmark("comments")
def comments_benchmark() -> Measurement:
    if not (rights_bench.CITY_DB.is_file() and rights_bench.ANONYMOUS_DB.is_file()):
        raise BenchmarkFailed(
            f"the MaxMind test databases are missing from {rights_bench.GEOIP_DIR}"
        )
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="courtside-bench-comments-") as tmp:
        figures = measure(Path(tmp), Plan())
    inputs = run_inputs(Plan()) | {
        "load_1m_before": load_before,
        "load_1m_after": round(os.getloadavg()[0], 2),
    }
    return Measurement(inputs=inputs, figures=figures)


@dataclass(frozen=True)
class Plan:
    """What one run does (the module's constants unless a test asks for less)."""

    clients: int = CLIENTS
    posters: int = POSTERS
    rate_per_s: float = RATE_PER_S
    post_s: float = POST_S
    drain_s: float = DRAIN_S
    idle_s: float = IDLE_S


def settings_values(tmp: Path, database_url: str) -> dict[str, object]:
    """``bench.rights``' server settings as production runs them, on PostgreSQL (every
    accepted post is committed there before its ack) and our own Redis database."""
    return rights_bench.settings_values(tmp) | {
        "environment": "production",
        "database_url": database_url,
        "redis_url": REDIS_URL,
    }


@contextmanager
def fresh_database(name: str) -> Iterator[str]:
    """A new PostgreSQL database ``name`` migrated to head, dropped afterwards."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        migrate.upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def measure(tmp: Path, plan: Plan) -> dict[str, float]:
    raise_fd_limit()
    with fresh_database(f"courtside_bench_comments_{os.getpid()}") as database_url:
        return measure_on(tmp, plan, database_url)


def measure_on(tmp: Path, plan: Plan, database_url: str) -> dict[str, float]:
    values = settings_values(tmp, database_url)
    settings = Settings.model_validate(values)
    redis.Redis.from_url(REDIS_URL).flushdb()
    try:
        channel = rights_bench.seed(settings)
        tokens = seed_posters(settings, plan.posters)
    finally:
        engine_for(settings.db_url).dispose()
    ports = [rights_bench.free_port() for _ in range(PROCESSES)]
    env = rights_bench.server_env(values)
    with ExitStack() as stack:
        pids = [stack.enter_context(running_server(env, port, tmp)) for port in ports]
        check_channel(ports[0], channel)
        config = LoadConfig(
            reader_urls=[ws_url(port, channel) for port in ports],
            poster_urls=[
                ws_url(ports[i % PROCESSES], channel, tok) for i, tok in enumerate(tokens)
            ],
            headers=READER_HEADERS,
            clients=plan.clients,
            rate_per_s=plan.rate_per_s,
            post_s=plan.post_s,
            drain_s=plan.drain_s,
            warm=min(WARM, plan.clients // 2),
        )
        stats, readings = run_load(config, pids, plan.idle_s, tmp)
    return figures_of(stats, readings, plan.clients, config.warm)


def raise_fd_limit() -> None:
    """Soft fd limit up to the hard one: thousands of sockets, in us and our children."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def seed_posters(settings: Settings, count: int) -> list[str]:
    """``count`` signed-in users and their session tokens. They are moderators: the per-user
    rate limit (3 messages in 2 s) is for fans, and the benchmark's posters each post several
    messages a second."""
    tokens = []
    with session_scope(make_sessionmaker(engine_for(settings.db_url))) as session:
        for index in range(count):
            email = f"poster{index}@bench.invalid"
            auth.create_user(
                session,
                email=email,
                handle=f"poster{index}",
                password=PASSWORD,
                role=Role.MODERATOR,
            )
            ttl = timedelta(hours=1)
            tokens.append(auth.sign_in(session, email=email, password=PASSWORD, ttl=ttl))
    return tokens


def ws_url(port: int, channel: str, token: str | None = None) -> str:
    query = f"?{urlencode({'token': token})}" if token else ""
    return f"ws://{HOST}:{port}/v1/comments/{channel}/ws{query}"


def server_command(port: int) -> list[str]:
    """One API process as ``courtside serve`` runs it: one worker, the sans-I/O WebSocket
    protocol without permessage-deflate, access log off."""
    return [
        sys.executable, "-m", "uvicorn", "--factory", "web.app:create_app",
        "--host", HOST, "--port", str(port),
        "--no-proxy-headers", "--no-access-log", "--log-level", "warning",
        "--ws", WS_PROTOCOL, "--ws-per-message-deflate", "false", "--ws-max-size", str(64 * 1024),
    ]  # fmt: skip


@contextmanager
def running_server(env: dict[str, str], port: int, tmp: Path) -> Iterator[int]:
    """One API process answering on ``port`` while this yields its pid; stopped after."""
    log = tmp / f"server-{port}.log"
    with rights_bench.process(server_command(port), env, log) as server:
        rights_bench.wait_for_server(server, port, log)
        yield server.pid


def check_channel(port: int, channel: str) -> None:
    """The channel's history answers the GB reader before the load starts."""
    status, body = rights_bench.http(port, "GET", f"/v1/comments/{channel}", READER_HEADERS)
    if status != 200:
        raise BenchmarkFailed(f"GET /v1/comments/{channel}: {status} {body[:300]!r}")


def rss_kib(pids: Sequence[int], proc: Path = Path("/proc")) -> float:
    """The resident set of ``pids`` together, in KiB (``VmRSS`` of ``/proc/<pid>/status``)."""
    return float(sum(vm_rss_kib((proc / str(pid) / "status").read_text()) for pid in pids))


def vm_rss_kib(status: str) -> int:
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])  # the kernel writes kB, meaning KiB
    raise ValueError("no VmRSS line")


# --- the run, seen from the benchmark's side -----------------------------------------------


@dataclass(frozen=True)
class LoadConfig:
    """What the load client does; written to a file it reads (tokens stay off argv)."""

    reader_urls: list[str]
    poster_urls: list[str]
    headers: Mapping[str, str]
    clients: int
    rate_per_s: float
    post_s: float
    drain_s: float
    warm: int = 0  # readers connected first; the RSS per connection is measured past them

    def to_json(self) -> str:
        return json.dumps(self.__dict__ | {"headers": dict(self.headers)})

    @classmethod
    def from_json(cls, text: str) -> LoadConfig:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class LoadStats:
    """What the load client measured."""

    clients: int
    accepted: int
    refused: int
    deliveries: int
    span_s: float  # first post to last delivery
    p50_ms: float
    p99_ms: float
    lagging_closes: int
    ack_p50_ms: float = 0.0
    ack_p99_ms: float = 0.0
    first_p50_ms: float = 0.0
    first_p99_ms: float = 0.0
    errors: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Readings:
    """The API processes' RSS with the first ``warm`` readers connected and with all of them
    (idle), and the CPU time of the servers and of the load client while posting."""

    before_kib: float
    idle_kib: float
    cold_kib: float  # before the load client connected anything
    server_cpu_s: float
    client_cpu_s: float
    busy_s: float  # the whole machine's busy CPU time meanwhile
    post_wall_s: float


def run_load(
    config: LoadConfig, pids: Sequence[int], idle_s: float, tmp: Path
) -> tuple[LoadStats, Readings]:
    """Start the load client; read the RSS once its first readers are connected (the
    servers' one-time costs paid) and once all are connected and idle; let it post."""
    path = tmp / "load.json"
    path.write_text(config.to_json())
    cold = rss_kib(pids)
    command = [sys.executable, "-m", "bench.comments", "load", "--config", str(path)]
    with (tmp / "load.log").open("wb") as log:
        client = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log
        )
    try:
        assert client.stdin is not None  # piped above
        assert client.stdout is not None
        expect_event(client.stdout, "warm", CONNECT_TIMEOUT_S, tmp / "load.log")
        time.sleep(idle_s)
        before = rss_kib(pids)
        tell(client.stdin, "more")
        expect_event(client.stdout, "connected", CONNECT_TIMEOUT_S, tmp / "load.log")
        time.sleep(idle_s)
        idle = rss_kib(pids)
        start = cpu_s(pids), cpu_s([client.pid]), busy_s(), time.monotonic()
        tell(client.stdin, "go")
        done = expect_event(client.stdout, "done", RUN_TIMEOUT_S, tmp / "load.log")
        end = cpu_s(pids), cpu_s([client.pid]), busy_s(), time.monotonic()
    finally:
        rights_bench.stop(client)
    spent = [b - a for a, b in zip(start, end, strict=True)]
    return load_stats(done), Readings(before, idle, cold, *spent)


def tell(stream: IO[bytes], line: str) -> None:
    stream.write(line.encode() + b"\n")
    stream.flush()


def busy_s() -> float:
    return machine_busy_s(Path("/proc/stat").read_text(), os.sysconf("SC_CLK_TCK"))


def cpu_s(pids: Sequence[int]) -> float:
    """utime + stime of ``pids`` so far (``/proc/<pid>/stat``), in seconds."""
    hz = os.sysconf("SC_CLK_TCK")
    return sum(process_cpu_s(Path(f"/proc/{pid}/stat").read_text(), hz) for pid in pids)


def expect_event(stream: IO[bytes], name: str, timeout_s: float, log: Path) -> dict[str, Any]:
    """The next JSON line the load client writes, which must be event ``name``."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            raise BenchmarkFailed(f"the load client sent no {name!r} within {timeout_s:.0f} s")
    line = stream.readline()
    event: dict[str, Any] = json.loads(line) if line.strip() else {}
    if event.get("event") != name:
        tail = log.read_text(errors="replace")[-3000:]
        raise BenchmarkFailed(f"expected {name!r} from the load client, got {line!r}:\n{tail}")
    return event


def load_stats(data: Mapping[str, Any]) -> LoadStats:
    return LoadStats(
        clients=int(data["clients"]),
        accepted=int(data["accepted"]),
        refused=int(data["refused"]),
        deliveries=int(data["deliveries"]),
        span_s=float(data["span_s"]),
        p50_ms=float(data["p50_ms"]),
        p99_ms=float(data["p99_ms"]),
        lagging_closes=int(data["lagging_closes"]),
        ack_p50_ms=float(data["ack_p50_ms"]),
        ack_p99_ms=float(data["ack_p99_ms"]),
        first_p50_ms=float(data["first_p50_ms"]),
        first_p99_ms=float(data["first_p99_ms"]),
        errors=dict(data.get("errors", {})),
    )


def figures_of(stats: LoadStats, readings: Readings, clients: int, warm: int) -> dict[str, float]:
    """The results JSON's figures; a run where readers failed to connect fails."""
    if stats.clients < clients:
        raise BenchmarkFailed(f"only {stats.clients} of {clients} readers connected")
    if stats.accepted == 0 or stats.deliveries == 0 or stats.span_s <= 0:
        raise BenchmarkFailed(f"nothing was delivered: {stats}")
    other = readings.busy_s - readings.server_cpu_s - readings.client_cpu_s
    return {
        "deliveries_per_s": stats.deliveries / stats.span_s,
        "p50_ms": stats.p50_ms,
        "p99_ms": stats.p99_ms,
        "kib_per_conn": max(readings.idle_kib - readings.before_kib, 0.0) / (clients - warm),
        "clients": float(clients),
        "delivery_ratio": stats.deliveries / (stats.accepted * clients),
        "accepted": float(stats.accepted),
        "refused": float(stats.refused),
        "lagging_closes": float(stats.lagging_closes),
        # Post to the poster's ack (accepted: rules checked, in Redis and the SQL archive).
        "ack_p50_ms": stats.ack_p50_ms,
        "ack_p99_ms": stats.ack_p99_ms,
        # Post to the first reader of each process that got it (no fan-out spread yet).
        "first_p50_ms": stats.first_p50_ms,
        "first_p99_ms": stats.first_p99_ms,
        # The same from before any reader, the servers' one-time costs spread over them all.
        "kib_per_conn_from_cold": max(readings.idle_kib - readings.cold_kib, 0.0) / clients,
        "rss_cold_mib": readings.cold_kib / 1024,
        "rss_warm_mib": readings.before_kib / 1024,
        "rss_idle_mib": readings.idle_kib / 1024,
        # Cores kept busy while posting (of 2): what limited the run, when one is near 1.
        "server_cores": readings.server_cpu_s / readings.post_wall_s,
        "client_cores": readings.client_cpu_s / readings.post_wall_s,
        # Cores other work on the machine kept busy meanwhile (a shared machine's noise).
        "other_busy_cores": max(0.0, other / readings.post_wall_s),
    }


def run_inputs(plan: Plan) -> dict[str, str | int | float | bool | None]:
    return {
        "servers": (
            f"{PROCESSES} x uvicorn --factory web.app:create_app (one worker each,"
            f" --ws {WS_PROTOCOL} --ws-per-message-deflate false --no-access-log, uvloop and"
            " httptools when installed), environment=production"
        ),
        "stack": (
            "a fresh PostgreSQL database, Redis db 5 (flushed), the local store in a temp dir;"
            " channel: a READY GB-only highlight"
        ),
        "load_client": "python asyncio + websockets on uvloop, a separate process",
        "clients": plan.clients,
        "posters": f"{plan.posters} signed-in moderators, each on its own WebSocket",
        "rate_per_s": plan.rate_per_s,
        "post_s": plan.post_s,
        "drain_s": plan.drain_s,
        "idle_s": plan.idle_s,
        "target_deliveries_per_s": DELIVERIES_TARGET,
        "target_p99_ms": P99_TARGET_MS,
        "target_kib_per_conn": KIB_PER_CONN_TARGET,
    }


# --- the load client (python -m bench.comments load) ---------------------------------------


@dataclass
class Tally:
    """What the readers and posters saw; one event loop, so no locks."""

    sent: dict[str, float] = field(default_factory=dict)  # text -> monotonic send time
    latencies: list[float] = field(default_factory=list)
    ack_latencies: list[float] = field(default_factory=list)  # post to its ack, per post
    first_latencies: list[float] = field(default_factory=list)  # post to a process's first
    deliveries: int = 0
    first_post: float = 0.0
    last_delivery: float = 0.0
    accepted: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    lagging_closes: int = 0
    connected: int = 0
    # A process's readers all receive the same frames (a batch is encoded once per flush):
    # each distinct frame is parsed once, so the client spends its time receiving.
    parsed: dict[str | bytes, tuple[str | None, list[float]]] = field(default_factory=dict)

    def receive(self, frame: str | bytes, now: float) -> str | None:
        """Count one frame's messages that a poster sent; the last message id in it."""
        found = self.parsed.get(frame)
        if found is None:
            found = self.parsed[frame] = self._parse(frame)
            # The first reader of a process to get a batch: accept, Redis, the flush wait.
            self.first_latencies.extend([now - sent_at for sent_at in found[1]])
            if len(self.parsed) > PARSED_FRAMES:
                del self.parsed[next(iter(self.parsed))]  # the oldest
        last_id, sent_times = found
        if sent_times:
            self.deliveries += len(sent_times)
            self.latencies.extend([now - sent_at for sent_at in sent_times])
            self.last_delivery = now
        return last_id

    def _parse(self, frame: str | bytes) -> tuple[str | None, list[float]]:
        last_id, sent_times = None, []
        for event in json.loads(frame):
            if event.get("type") != "message":
                continue
            last_id = str(event["id"])
            sent_at = self.sent.get(event.get("text", ""))
            if sent_at is not None:
                sent_times.append(sent_at)
        return last_id, sent_times

    def answer(self, frame: str | bytes, now: float) -> None:
        """A poster's frame: count its acks (and time them) and its refusals (by code)."""
        for event in json.loads(frame):
            if event.get("type") == "ack":
                self.accepted += 1
                sent_at = self.sent.get(TEXT_PREFIX + str(event.get("nonce")))
                if sent_at is not None:
                    self.ack_latencies.append(now - sent_at)
            elif event.get("type") == "error":
                self.errors[str(event.get("code", "?"))] += 1

    def summary(self, clients: int) -> dict[str, Any]:
        latencies, acks = sorted(self.latencies), sorted(self.ack_latencies)
        first = sorted(self.first_latencies)
        return {
            "event": "done",
            "clients": clients,
            "accepted": self.accepted,
            "refused": sum(self.errors.values()),
            "errors": dict(self.errors),
            "deliveries": self.deliveries,
            "span_s": max(self.last_delivery - self.first_post, 0.0),
            "p50_ms": 1000 * percentile(latencies, 0.50) if latencies else 0.0,
            "p99_ms": 1000 * percentile(latencies, 0.99) if latencies else 0.0,
            "lagging_closes": self.lagging_closes,
            "ack_p50_ms": 1000 * percentile(acks, 0.50) if acks else 0.0,
            "ack_p99_ms": 1000 * percentile(acks, 0.99) if acks else 0.0,
            "first_p50_ms": 1000 * percentile(first, 0.50) if first else 0.0,
            "first_p99_ms": 1000 * percentile(first, 0.99) if first else 0.0,
        }


def resume_url(url: str, last_id: str | None) -> str:
    """``url`` with ``after=<last seen id>`` (replacing any earlier one) to resume from."""
    base = url.split("?after=")[0].split("&after=")[0]
    if last_id is None:
        return base
    return f"{base}{'&' if '?' in base else '?'}{urlencode({'after': last_id})}"


def post_schedule(posters: int, rate_per_s: float, seconds: float) -> list[list[float]]:
    """Send offsets (s from the start) of each poster: messages alternate between posters,
    one every ``1 / rate_per_s`` seconds in all."""
    total = round(rate_per_s * seconds)
    offsets: list[list[float]] = [[] for _ in range(posters)]
    for index in range(total):
        offsets[index % posters].append(index / rate_per_s)
    return offsets


LAGGING = 4008  # the reader fell behind
RESUME_CODES = (LAGGING, 1012)  # 1012: the server's fan-out lost Redis for a moment
PARSED_FRAMES = 256


async def reader(
    url: str, headers: Mapping[str, str], tally: Tally, gate: asyncio.Semaphore
) -> None:
    """One reader until cancelled: connect (at most ``CONNECT_CONCURRENCY`` handshakes at
    once), count what arrives, and resume with ``?after=`` when closed for lagging."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    last_id: str | None = None
    first = True
    while True:
        async with gate:
            ws = await connect(
                resume_url(url, last_id),
                additional_headers=dict(headers),
                ping_interval=None,  # the server pings; answering is enough
                compression=None,
                max_size=None,
            )
        if first:
            tally.connected += 1
            first = False
        try:
            while True:
                frame = await ws.recv(decode=False)  # JSON parses bytes: no UTF-8 decoding
                last_id = tally.receive(frame, time.monotonic()) or last_id
        except ConnectionClosed as closed:
            if closed.rcvd is None or closed.rcvd.code not in RESUME_CODES:
                raise
            tally.lagging_closes += 1


async def poster(url: str, offsets: Sequence[float], start: float, name: str, tally: Tally) -> None:
    """Post one unique text at each offset after ``start``, stamping its send time, while
    counting the acks and refusals that come back."""
    from websockets.asyncio.client import connect

    async with connect(url, ping_interval=None, compression=None, max_size=None) as ws:
        answers = asyncio.create_task(_answers(ws, tally))
        for index, offset in enumerate(offsets):
            await asyncio.sleep(max(0.0, start + offset - time.monotonic()))
            nonce = f"{name}-{index}"
            text = TEXT_PREFIX + nonce
            tally.sent[text] = time.monotonic()
            message = {"type": "post", "text": text, "media_ms": None, "nonce": nonce}
            await ws.send(json.dumps(message))
        await asyncio.sleep(DRAIN_S)
        answers.cancel()


async def _answers(ws: Any, tally: Tally) -> None:
    async for frame in ws:
        tally.answer(frame, time.monotonic())


async def drive(config: LoadConfig, proceed: Callable[[], Awaitable[object]]) -> dict[str, Any]:
    """The whole load: the first ``warm`` readers, "warm" said, ``proceed()`` (a line on
    stdin), the other readers, "connected" said, ``proceed()``, post, drain, the summary."""
    tally = Tally()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    urls = config.reader_urls
    readers: list[asyncio.Task[None]] = []

    def add(count: int) -> None:
        for _ in range(count):
            url = urls[len(readers) % len(urls)]
            readers.append(asyncio.create_task(reader(url, config.headers, tally, gate)))

    try:
        add(config.warm)
        await _all_connected(readers, tally, config.warm)
        say({"event": "warm", "clients": tally.connected})
        await proceed()
        add(config.clients - config.warm)
        await _all_connected(readers, tally, config.clients)
        say({"event": "connected", "clients": tally.connected})
        await proceed()
        offsets = post_schedule(len(config.poster_urls), config.rate_per_s, config.post_s)
        start = time.monotonic() + 0.5
        tally.first_post = start
        await asyncio.gather(
            *(
                poster(url, offsets[i], start, f"p{i}", tally)
                for i, url in enumerate(config.poster_urls)
            )
        )
        await asyncio.sleep(max(0.0, config.drain_s - DRAIN_S))
        _raise_failed(readers)
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    return tally.summary(tally.connected)


async def _all_connected(readers: Sequence[asyncio.Task[None]], tally: Tally, clients: int) -> None:
    while tally.connected < clients:
        _raise_failed(readers)
        await asyncio.sleep(0.1)


def _raise_failed(readers: Sequence[asyncio.Task[None]]) -> None:
    for task in readers:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise BenchmarkFailed(f"a reader failed: {task.exception()!r}")


def say(event: Mapping[str, Any]) -> None:
    print(json.dumps(event), flush=True)


def load_main(argv: Sequence[str]) -> int:
    """``python -m bench.comments load --config FILE``: the load client; JSON lines on
    stdout ("connected", then "done" with the figures) and "go" awaited on stdin between."""
    parser = argparse.ArgumentParser(prog="python -m bench.comments load")
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    raise_fd_limit()
    import uvloop  # uvicorn[standard] brings it; the client should not be the bottleneck

    config = LoadConfig.from_json(args.config.read_text())
    say(uvloop.run(drive(config, lambda: asyncio.to_thread(sys.stdin.readline))))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["load"]:
        sys.exit("usage: python -m bench.comments load --config FILE")
    sys.exit(load_main(sys.argv[2:]))
