"""A whole Courtside on loopback for end-to-end tests: the API and a Celery worker as real
processes, PostgreSQL, Redis and the local store in a temp dir."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess  # noqa: TID251 - the tests start the real service processes
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
import redis
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from core.auth import create_api_key
from core.db import session_scope
from core.models import League, RightsGrant, Role
from core.settings import Settings
from ingest import live_streams
from rights.cache import RightsCache
from tests.conftest import (
    TEST_SECRET,
    drop_database,
    fresh_database,
    unique_name,
    worldwide_highlights,
    worldwide_live,
)

E2E_REDIS_URL = "redis://127.0.0.1:6379/14"
_STACK_NUMBERS = itertools.count()
# The S3 stack runs beside the local one: its own Redis database, so neither worker takes
# the other's tasks.
E2E_S3_REDIS_URL = "redis://127.0.0.1:6379/13"
# The live stack (RTMP edge, live worker, beat) has its own too.
E2E_LIVE_REDIS_URL = "redis://127.0.0.1:6379/12"


@dataclass(frozen=True)
class Stack:
    base_url: str
    sessions: sessionmaker[Session]
    media_dir: Path
    logs: Path
    worker_pid: int = 0
    # With ``live=True``: where publishers push (``<rtmp_url>/<stream key>``) and the live
    # worker's pid (its pool children run the live tasks).
    rtmp_url: str = ""
    live_worker_pid: int = 0

    def pull_url(self, stream_id: str) -> str:
        """Where a stream's feed is read from the edge (with its pull token, as workers do)."""
        settings = Settings(secret_key=TEST_SECRET, rtmp_pull_url=self.rtmp_url)
        return live_streams.pull_url(settings, stream_id)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(tmp: Path, database_url: str, s3_endpoint: str | None) -> dict[str, str]:
    env = {
        **os.environ,
        "COURTSIDE_ENVIRONMENT": "test",
        "COURTSIDE_SECRET_KEY": TEST_SECRET,
        "COURTSIDE_VAR_DIR": str(tmp),
        "COURTSIDE_DATABASE_URL": database_url,
        "COURTSIDE_REDIS_URL": E2E_REDIS_URL if s3_endpoint is None else E2E_S3_REDIS_URL,
        "COURTSIDE_LOG_JSON": "false",
        # Clips and feeds in these tests are served from loopback.
        "COURTSIDE_PULL_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
    }
    if s3_endpoint is not None:
        env |= {
            "COURTSIDE_STORAGE_BACKEND": "s3",
            "COURTSIDE_S3_ENDPOINT_URL": s3_endpoint,
            "COURTSIDE_S3_BUCKET": "e2e",
            "COURTSIDE_S3_ACCESS_KEY_ID": "test",
            "COURTSIDE_S3_SECRET_ACCESS_KEY": "test",
        }
    return env


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "web.cli", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_healthy(base_url: str, api: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if api.poll() is not None:
            raise RuntimeError(f"the API exited: {log.read_text()[-2000:]}")
        try:
            if httpx2.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the API did not become healthy")


@contextmanager
def running_stack(
    tmp: Path,
    *,
    s3_endpoint: str | None = None,
    overrides: Mapping[str, str] | None = None,
    concurrency: int = 1,
    live: bool = False,
) -> Iterator[Stack]:
    """API and worker processes on a fresh database; the local store unless ``s3_endpoint``
    (a loopback S3 server) is given; ``overrides`` of the environment (a stack running beside
    another needs its own ``COURTSIDE_REDIS_URL``). ``live`` adds the RTMP edge (nginx), a
    live worker pool and beat, on a Redis database of their own."""
    # Several stacks run in one test process (local, S3, chunking): one database each.
    database_name = unique_name(f"courtside_e2e_{next(_STACK_NUMBERS)}")
    database_url = fresh_database(database_name)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = _env(tmp, database_url, s3_endpoint)
    if live:
        env |= _live_env(base_url)
    env |= dict(overrides or {})
    redis.Redis.from_url(env["COURTSIDE_REDIS_URL"]).flushdb()
    worker = _start(
        ["worker", "-Q", "ingest,transcode,default", "-c", str(concurrency)],
        env,
        tmp / "worker.log",
    )
    processes = [worker, _start(["serve", "--port", str(port)], env, tmp / "api.log")]
    if live:
        processes += _start_live(env, tmp)
    engine = create_engine(database_url)
    try:
        _wait_healthy(base_url, processes[1], tmp / "api.log")
        sessions = sessionmaker(engine, expire_on_commit=False)
        yield Stack(
            base_url,
            sessions,
            tmp / "media",
            tmp,
            worker_pid=worker.pid,
            rtmp_url=env.get("COURTSIDE_RTMP_PUBLIC_URL", ""),
            live_worker_pid=processes[2].pid if live else 0,
        )
    finally:
        for process in reversed(processes):
            _stop(process)
        engine.dispose()
        drop_database(database_name)


def _live_env(base_url: str) -> dict[str, str]:
    rtmp = f"rtmp://127.0.0.1:{free_port()}/live"
    return {
        "COURTSIDE_REDIS_URL": E2E_LIVE_REDIS_URL,
        "COURTSIDE_RTMP_LISTEN": rtmp.removeprefix("rtmp://").split("/")[0],
        "COURTSIDE_RTMP_PUBLIC_URL": rtmp,
        "COURTSIDE_RTMP_PULL_URL": rtmp,
        "COURTSIDE_RTMP_HOOK_BASE_URL": base_url,
    }


def _start_live(env: dict[str, str], tmp: Path) -> list[subprocess.Popen[bytes]]:
    """The live worker pool (one process per stream), beat (the supervisor of lost live
    tasks) and the RTMP edge; the edge is up once its port answers."""
    live_worker = _start(["worker", "-Q", "live", "-c", "2"], env, tmp / "live-worker.log")
    beat = _start(["beat"], env, tmp / "beat.log")
    edge = _start(["rtmp-edge"], env, tmp / "rtmp.log")
    host, _, port = env["COURTSIDE_RTMP_LISTEN"].rpartition(":")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, int(port)), timeout=0.5).close()
            return [live_worker, beat, edge]
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the RTMP edge did not start: {(tmp / 'rtmp.log').read_text()[-2000:]}")


def make_partner(stack: Stack, slug: str, *, live: bool = False) -> str:
    """A partner key for a new league licensed worldwide for highlights (and live streams)."""
    with session_scope(stack.sessions) as session:
        league = League(slug=slug, name=slug.title())
        session.add(league)
        session.flush()
        session.add(worldwide_highlights(league))
        if live:
            session.add(worldwide_live(league))
        _key, secret = create_api_key(session, role=Role.PARTNER, leagues=[league])
    return secret


def wait_for_status(
    client: httpx2.Client, asset_id: str, key: str, statuses: set[str], timeout_s: float = 120
) -> dict[str, object]:
    """Poll the partner API until the asset reaches one of ``statuses``; returns its body."""
    deadline = time.monotonic() + timeout_s
    seen_progress: list[int] = []
    while time.monotonic() < deadline:
        body: dict[str, object] = client.get(
            f"/v1/assets/{asset_id}", headers={"Authorization": f"Bearer {key}"}
        ).json()
        seen_progress.append(int(str(body["progress"])))
        if body["status"] in statuses:
            body["_progress_seen"] = seen_progress
            return body
        time.sleep(0.25)
    raise AssertionError(f"asset {asset_id} did not reach {statuses}: last {body}")


def revoke_league_grants(stack: Stack, slug: str) -> None:
    """Revoke every grant of a league, as a rights manager would, and tell the API processes."""
    with session_scope(stack.sessions) as session:
        league = session.scalars(select(League).where(League.slug == slug)).one()
        for grant in session.scalars(
            select(RightsGrant).where(RightsGrant.scope_id == str(league.id))
        ):
            grant.status = "revoked"
    RightsCache(redis.Redis.from_url(E2E_REDIS_URL)).invalidate()
    time.sleep(0.4)  # API processes re-read the rights epoch at most every 0.25 s
