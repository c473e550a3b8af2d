"""The comments service's life inside a server: its Redis clients belong to the server's
event loop, so they are made when it starts (not by create_app) and closed when it stops."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import State

from core.settings import Settings
from player_api.comments import archive
from player_api.comments.archiver import Archiver
from player_api.comments.hub import GOING_AWAY, Hub
from player_api.comments.recheck import recheck_forever
from player_api.comments.redis_store import RateConfig, RedisComments
from player_api.comments.service import Comments, Limits


def _archive_writer(sessions: sessionmaker[Session]) -> archive.Writer:
    def write(batch: archive.Batch) -> None:
        with sessions.begin() as session:
            archive.archive(session, batch)

    return write


@asynccontextmanager
async def comments_running(state: State) -> AsyncIterator[None]:
    """Puts ``comments`` and ``comments_hub`` on ``state`` while the server runs."""
    settings: Settings = state.settings
    client, subscriber = _clients(settings.redis_url)
    archiver = Archiver(_archive_writer(state.sessionmaker))
    state.comments = Comments(
        _store(client, settings), state.sessionmaker, archiver, _limits(settings)
    )
    state.comments_hub = hub = Hub(
        subscriber,
        flush_s=settings.comments_flush_ms / 1000,
        queue_frames=settings.comments_queue_frames,
    )
    recheck = recheck_forever(
        hub, state.sessionmaker, state.rights, settings.comments_rights_recheck_s
    )
    tasks = [hub.run(), archiver.run(), recheck]
    running = [asyncio.ensure_future(task) for task in tasks]
    try:
        yield
    finally:
        hub.drop_all(GOING_AWAY)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await client.aclose()
        await subscriber.aclose()


def _clients(url: str) -> tuple[aioredis.Redis, aioredis.Redis]:
    """Commands, and the subscriber: it reads with no timeout (a quiet channel is not an
    error) and never reconnects by itself (the hub must know when it may have missed
    events)."""
    client = aioredis.Redis.from_url(
        url, decode_responses=True, socket_connect_timeout=1, socket_timeout=5
    )
    subscriber = aioredis.Redis.from_url(
        url, decode_responses=True, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    return client, subscriber


def _store(client: aioredis.Redis, settings: Settings) -> RedisComments:
    rate = RateConfig(
        settings.comments_rate_messages,
        settings.comments_rate_window_s,
        settings.comments_cooldown_s,
    )
    return RedisComments(client, history_max=settings.comments_history_max, rate=rate)


def _limits(settings: Settings) -> Limits:
    return Limits(
        max_chars=settings.comments_max_chars,
        history_max=settings.comments_history_max,
        join_history=settings.comments_join_history,
    )
