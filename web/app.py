"""The composition root: ``create_app(settings)`` wires every dependency once."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from os import PathLike, stat_result
from pathlib import Path

import redis
import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

from core.celery_app import configure_celery
from core.db import engine_for, make_sessionmaker
from core.logging import configure_logging
from core.settings import Settings, get_settings
from core.storage import make_object_store
from core.webrtc import restrict_host_addresses, restrict_peer_networks
from core.webrtc_sessions import SessionDirectory, listen_for_close
from ingest.feed_routes import pull_router
from ingest.feed_routes import router as feeds_router
from ingest.live_clip_routes import router as live_clips_router
from ingest.live_routes import hooks_router as live_hooks_router
from ingest.live_routes import router as live_router
from ingest.resumable_routes import router as uploads_router
from ingest.routes import router as assets_router
from ingest.team_routes import router as teams_router
from ingest.webhook_routes import router as webhooks_router
from ingest.whip import WhipConfig, WhipSessions
from ingest.whip_routes import router as whip_router
from player_api.access import RightsContext
from player_api.accounts import router as accounts_router
from player_api.comments.routes import router as comments_router
from player_api.comments.runtime import comments_running
from player_api.comments.sockets import router as comment_sockets_router
from player_api.routes import router as playback_router
from player_api.sports_routes import sports_router
from player_api.whep import WhepConfig, WhepViewers
from player_api.whep_routes import router as whep_router
from rights.cache import RightsCache
from rights.fixtures import router as fixtures_router
from rights.memo import TokenMemo
from rights.routes import router as rights_router
from rights.tokens import SigningKeys
from web.errors import install_error_handlers
from web.health import router as health_router
from web.middleware import BodyLimitMiddleware, RequestIdMiddleware

STATIC_DIR = Path(str(files("web") / "static"))


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API and the fan pages, for ``settings`` (the environment's when omitted)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, as_json=settings.log_json)
    configure_celery(settings)
    app = FastAPI(title="Courtside API", version="1", docs_url="/docs", lifespan=_lifespan)
    app.state.settings = settings
    app.state.sessionmaker = make_sessionmaker(engine_for(settings.db_url))
    app.state.store = make_object_store(settings)
    app.state.signing_keys = SigningKeys.single(settings.secret_key.get_secret_value().encode())
    app.state.token_memo = TokenMemo(app.state.signing_keys)
    app.state.rights_cache = RightsCache(
        _redis(settings), max_age_s=settings.rights_cache_max_age_s
    )
    app.state.rights = RightsContext.from_settings(settings, app.state.rights_cache)
    _add_webrtc(app, settings)
    install_error_handlers(app)
    routers = (
        health_router, assets_router, playback_router, accounts_router, rights_router,
        fixtures_router, uploads_router, webhooks_router, pull_router, feeds_router,
        sports_router, teams_router, live_hooks_router, live_router, whip_router, whep_router,
        live_clips_router, comments_router, comment_sockets_router,
    )  # fmt: skip
    for router in routers:
        app.include_router(router)
    _add_middleware(app, settings)
    _add_pages(app)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with _webrtc_running(app), comments_running(app.state):
        settle_gc()
        yield
    app.state.rights.geo.close()


# Comment connections keep many objects alive (thousands per process): with CPython's default
# thresholds a full collection came every few seconds under load and walked all of them,
# stalling the event loop and every fan-out behind it (bench comments, 2,000 readers on a
# quiet machine: p99 313 ms, 166 ms with these).
GC_THRESHOLDS = (50_000, 20, 20)


def settle_gc() -> None:
    """Once start-up is done: what it built lives as long as the process, so collections
    never walk it again (``gc.freeze``), and collections come less often."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _add_webrtc(app: FastAPI, settings: Settings) -> None:
    """WHIP publishers and WHEP viewers held by this process. ICE offers only the configured
    host addresses (process-wide: see core.webrtc)."""
    if settings.webrtc_host_addresses:
        restrict_host_addresses(settings.webrtc_host_addresses)
    if settings.webrtc_peer_networks:
        restrict_peer_networks(settings.webrtc_peer_networks)
    app.state.whip = WhipSessions(WhipConfig.from_settings(settings), None)
    app.state.whep = WhepViewers(WhepConfig.from_settings(settings), None)


@asynccontextmanager
async def _webrtc_running(app: FastAPI) -> AsyncIterator[None]:
    """The Redis session directory (its client belongs to this event loop), close signals
    from other processes, record refreshes; every session ends with the server."""
    settings: Settings = app.state.settings
    whip: WhipSessions = app.state.whip
    whep: WhepViewers = app.state.whep
    client = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=1)
    whip.directory = whep.directory = SessionDirectory(client)

    async def close(session_id: str) -> None:
        await whip.close(session_id, "deleted") or await whep.close(session_id, "deleted")

    tasks = [
        asyncio.ensure_future(listen_for_close(client, close)),
        asyncio.ensure_future(whip.refresh_records()),
        asyncio.ensure_future(whep.refresh_records()),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await whip.close_all("server_stopping")
        await whep.close_all("server_stopping")
        whip.directory = whep.directory = None
        await client.aclose()


def _redis(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url, socket_timeout=1, socket_connect_timeout=1)


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    # Players on other origins (embeds, apps' web views) fetch playlists and segments;
    # credentials are never sent cross-origin, the token is in the URL.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        # PUT: resumable-upload parts from a partner's browser; ETag is each part's receipt.
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "Range"],
        expose_headers=["Content-Length", "Content-Range", "ETag", "Location"],
    )
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_upload_bytes)
    app.add_middleware(RequestIdMiddleware)


class RevalidatedStaticFiles(StaticFiles):
    """Static files that browsers revalidate on each use (a cheap 304 by ETag): the ES
    modules import each other by unversioned names, so a heuristically cached one could run
    beside a newer one after a deploy."""

    def file_response(
        self,
        full_path: str | PathLike[str],
        stat_result: stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        return response


# The fan pages share one shell; the client-side router (static/app.js) renders each path.
FAN_PAGES = (
    "/", "/league/{slug}", "/team/{league}/{team}", "/search", "/watch/{asset_id}",
    "/live/{asset_id}",
)  # fmt: skip


# The studio page handles a stream key: no caching, no referrer, never framed by others.
STUDIO_HEADERS = {
    "Cache-Control": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}


def _add_pages(app: FastAPI) -> None:
    app.mount("/static", RevalidatedStaticFiles(directory=STATIC_DIR), name="static")

    def fan_shell() -> FileResponse:
        # Revalidated on every visit (ETag), so a deploy's new scripts reach fans at once.
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    for path in FAN_PAGES:
        app.add_api_route(path, fan_shell, methods=["GET"], include_in_schema=False)

    def studio_page() -> FileResponse:
        # The partner's go-live page (WHIP from the browser). It is static: the stream key is
        # typed into it and sent only with the WHIP requests, so the page itself needs no auth.
        return FileResponse(STATIC_DIR / "studio.html", headers=STUDIO_HEADERS)

    app.add_api_route("/studio/{stream_id}", studio_page, methods=["GET"], include_in_schema=False)
