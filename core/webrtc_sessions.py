"""Which API process holds which WebRTC session (WHIP publishers, WHEP viewers), in Redis.

A peer connection lives in the process that answered its POST, but with several API
processes the DELETE may reach another one. Every session is recorded in Redis (its stream
and who may end it, refreshed while it lives, so a crashed process's sessions expire); a
DELETE anywhere checks the record and publishes a close signal that the holding process
acts on. The same records count WHEP viewers per stream across processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.cancellation import raise_if_cancelling

log = logging.getLogger(__name__)

PREFIX = "courtside:webrtc"
CLOSE_CHANNEL = f"{PREFIX}:close"
# A record not refreshed for this long belongs to a process that is gone.
RECORD_TTL_S = 30
REFRESH_EVERY_S = 10.0

CloseHandler = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class SessionRecord:
    kind: str  # "whip" | "whep"
    stream_id: str
    owner: str  # who may end it: a hash of the stream key, or a principal's label


class SessionDirectory:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def add(self, session_id: str, record: SessionRecord) -> None:
        value = json.dumps({"k": record.kind, "s": record.stream_id, "o": record.owner})
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.set(_session_key(session_id), value, ex=RECORD_TTL_S)
            pipe.zadd(_stream_key(record), {session_id: time.time()})
            pipe.expire(_stream_key(record), RECORD_TTL_S)
            await pipe.execute()

    async def refresh(self, session_id: str, record: SessionRecord) -> None:
        await self.add(session_id, record)

    async def remove(self, session_id: str, record: SessionRecord) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.delete(_session_key(session_id))
            pipe.zrem(_stream_key(record), session_id)
            await pipe.execute()

    async def get(self, session_id: str) -> SessionRecord | None:
        raw = await self._client.get(_session_key(session_id))
        if raw is None:
            return None
        data = json.loads(raw)
        return SessionRecord(kind=data["k"], stream_id=data["s"], owner=data["o"])

    async def count(self, kind: str, stream_id: str) -> int:
        """Live sessions of ``kind`` on a stream, in every process."""
        key = _stream_key(SessionRecord(kind, stream_id, ""))
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", time.time() - RECORD_TTL_S)
            pipe.zcard(key)
            _removed, count = await pipe.execute()
        return int(count)

    async def signal_close(self, session_id: str) -> None:
        await self._client.publish(CLOSE_CHANNEL, session_id)


def _session_key(session_id: str) -> str:
    return f"{PREFIX}:session:{session_id}"


def _stream_key(record: SessionRecord) -> str:
    return f"{PREFIX}:{record.kind}:stream:{record.stream_id}"


async def listen_for_close(client: aioredis.Redis, on_close: CloseHandler) -> None:
    """Call ``on_close(session_id)`` for each close signal, until cancelled; reconnects
    after a Redis failure (signals sent meanwhile are lost: the record still expires and
    the session's own idle and ICE checks still end it)."""
    while True:
        try:
            await _listen_once(client, on_close)
        except RedisError as exc:
            raise_if_cancelling()
            log.warning("webrtc close signals: %s; reconnecting", exc)
            await asyncio.sleep(1.0)


async def _listen_once(client: aioredis.Redis, on_close: CloseHandler) -> None:
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(CLOSE_CHANNEL)
        async for message in pubsub.listen():
            data = message.get("data")
            if isinstance(data, bytes):
                await on_close(data.decode())
    finally:
        with contextlib.suppress(RedisError):
            # redis-py leaves PubSub.aclose unannotated.
            await pubsub.aclose()  # type: ignore[no-untyped-call]
