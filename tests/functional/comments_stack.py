"""Several API processes (real uvicorn) sharing one database and one Redis, for the comment
tests: no worker, nothing else. Also a redis-server of the test's own, to kill and restart."""

from __future__ import annotations

import itertools
import secrets
import subprocess  # noqa: TID251 - the tests start the real service processes
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import redis
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from core.auth import SESSION_PREFIX, hash_secret
from core.db import session_scope
from core.models import League, Role, User, UserSession, utcnow
from tests.conftest import drop_database, fresh_database, unique_name, worldwide_highlights
from tests.functional.stack import _env, _start, _stop, _wait_healthy, free_port
from tests.published import add_asset

# The comment tests' own Redis database on the machine's server (unit tests use 7).
COMMENTS_E2E_REDIS_URL = "redis://127.0.0.1:6379/8"
_NUMBERS = itertools.count()


@dataclass(frozen=True)
class CommentStack:
    base_urls: list[str]
    pids: list[int]
    sessions: sessionmaker[Session]
    channel: str  # a ready highlight, licensed worldwide

    def ws_url(self, process: int, query: str = "") -> str:
        base = self.base_urls[process].replace("http://", "ws://")
        return f"{base}/v1/comments/{self.channel}/ws" + (f"?{query}" if query else "")

    def user(self, handle: str, role: Role = Role.FAN) -> tuple[str, str]:
        """A new user's author id and session token."""
        token = SESSION_PREFIX + secrets.token_urlsafe(16)
        with session_scope(self.sessions) as session:
            user = User(
                email=f"{handle}@example.com",
                handle=handle,
                password_hash="unused",
                role=role,
                created_at=utcnow() - timedelta(days=30),
            )
            session.add(user)
            session.flush()
            session.add(
                UserSession(
                    user_id=user.id,
                    secret_hash=hash_secret(token),
                    expires_at=utcnow() + timedelta(days=1),
                )
            )
            return f"user:{user.id}", token


@contextmanager
def comment_servers(
    tmp: Path, *, processes: int = 2, redis_url: str, overrides: Mapping[str, str] | None = None
) -> Iterator[CommentStack]:
    name = unique_name(f"courtside_comments_{next(_NUMBERS)}")
    database_url = fresh_database(name)
    env = _env(tmp, database_url, None) | {"COURTSIDE_REDIS_URL": redis_url}
    env |= {"COURTSIDE_LOG_LEVEL": "WARNING", **(overrides or {})}
    ports = [free_port() for _ in range(processes)]
    servers = [
        _start(["serve", "--port", str(port)], env, tmp / f"api{i}.log")
        for i, port in enumerate(ports)
    ]
    engine = create_engine(database_url)
    try:
        base_urls = [f"http://127.0.0.1:{port}" for port in ports]
        for i, (url, server) in enumerate(zip(base_urls, servers, strict=True)):
            _wait_healthy(url, server, tmp / f"api{i}.log")
        sessions = sessionmaker(engine, expire_on_commit=False)
        pids = [server.pid for server in servers]
        yield CommentStack(base_urls, pids, sessions, _channel(sessions))
    finally:
        for server in servers:
            _stop(server)
        engine.dispose()
        drop_database(name)


def _channel(sessions: sessionmaker[Session]) -> str:
    with session_scope(sessions) as session:
        league = League(slug="comments", name="Comments League")
        session.add(league)
        session.flush()
        session.add(worldwide_highlights(league))
        session.commit()
        return add_asset(session, league, title="a goal").id


def clear_comment_keys(url: str) -> None:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter("comments:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


class OwnRedis:
    """A redis-server on a free loopback port with no persistence: a restart loses every
    key, the worst case for the comments (history and settings come back from SQL)."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(self.directory)]
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@contextmanager
def own_redis(directory: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(directory)
    server.start()
    try:
        yield server
    finally:
        server.kill()
