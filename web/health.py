"""Liveness and readiness."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime

import redis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings
from core.storage import ObjectStore

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up. **Who:** anyone."""
    return {"status": "ok"}


def _check_db(request: Request) -> None:
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    with factory() as session:
        session.execute(text("SELECT 1"))


def _check_redis(request: Request) -> None:
    settings: Settings = request.app.state.settings
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


def _check_store(request: Request) -> None:
    store: ObjectStore = request.app.state.store
    store.check()


def _check_ffmpeg(request: Request) -> None:
    settings: Settings = request.app.state.settings
    for binary in (settings.ffmpeg_bin, settings.ffprobe_bin):
        if shutil.which(binary) is None:
            raise FileNotFoundError(f"{binary} not found on PATH")


def _check_geoip(request: Request) -> None:
    """An old GeoIP database misplaces viewers (kaltura/server#2300): alert past the limit."""
    settings: Settings = request.app.state.settings
    age = request.app.state.rights.geo.age_days(datetime.now(UTC))
    if age is not None and age > settings.geoip_max_age_days:
        raise RuntimeError(
            f"GeoIP database is {age:.0f} days old (limit {settings.geoip_max_age_days}); "
            "refresh it (see README, Rights)"
        )


CHECKS: dict[str, Callable[[Request], None]] = {
    "database": _check_db,
    "redis": _check_redis,
    "store": _check_store,
    "ffmpeg": _check_ffmpeg,
    "geoip": _check_geoip,
}


def _run(check: Callable[[Request], None], request: Request) -> str:
    try:
        check(request)
    except Exception as exc:  # noqa: BLE001 - a probe reports any failure as "not ready", it must not raise
        return f"error: {type(exc).__name__}: {exc}"[:300]
    return "ok"


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """Every dependency answers: database, Redis, object store, ffmpeg. **Who:** anyone."""
    results = {name: _run(check, request) for name, check in CHECKS.items()}
    ready = all(result == "ok" for result in results.values())
    body = {"status": "ready" if ready else "not_ready", "checks": results}
    return JSONResponse(body, status_code=200 if ready else 503)
