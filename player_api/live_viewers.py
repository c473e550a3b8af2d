"""Who is watching each live stream: counted from the playlist requests of running
playbacks, without a Redis write per request.

Each API process remembers the playback sessions it served a live playlist to, and at most
every ``flush_every_s`` hands them to Redis in one pipeline: a sorted set per stream (session →
last seen), trimmed to the last ``window_s``, and its size under ``live:viewers:<id>`` for the
live task's health report. Processes share the sorted set, so the count is across all of them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis

log = logging.getLogger(__name__)
MAX_SESSIONS_PER_FLUSH = 100_000
# stream id → playback session → when last seen
Seen = dict[str, dict[str, float]]


def count_key(stream_id: str) -> str:
    return f"live:viewers:{stream_id}"


def _set_key(stream_id: str) -> str:
    return f"live:viewers:z:{stream_id}"


class LiveViewers:
    def __init__(
        self,
        client: redis.Redis,
        *,
        window_s: float = 30.0,
        flush_every_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._window_s = window_s
        self._flush_every_s = flush_every_s
        self._clock = clock
        self._seen: dict[str, dict[str, float]] = {}
        self._pending = 0
        self._last_flush = clock()

    def seen(self, stream_id: str, session_id: str) -> Seen | None:
        """Note a playlist request. When a flush is due, the batch to hand to ``flush`` (off
        the event loop); it is taken out here, on the caller's thread, so nothing else
        touches it."""
        now = self._clock()
        if self._pending < MAX_SESSIONS_PER_FLUSH:
            self._seen.setdefault(stream_id, {})[session_id] = now
            self._pending += 1
        if now - self._last_flush < self._flush_every_s:
            return None
        batch, self._seen, self._pending, self._last_flush = self._seen, {}, 0, now
        return batch

    def flush(self, seen: Seen) -> None:
        """Hand a batch to Redis; a Redis outage loses only these counts."""
        now = self._clock()
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for stream_id, sessions in seen.items():
                    key = _set_key(stream_id)
                    pipe.zadd(key, sessions)
                    pipe.zremrangebyscore(key, "-inf", now - self._window_s)
                    pipe.expire(key, int(self._window_s * 2))
                    pipe.zcard(key)
                results = pipe.execute()
            with self._client.pipeline(transaction=False) as pipe:
                for stream_id, count in zip(seen, results[3::4], strict=True):
                    pipe.set(count_key(stream_id), int(count), ex=int(self._window_s * 2))
                pipe.execute()
        except redis.RedisError:
            log.warning("live viewer counts not flushed: Redis unavailable", exc_info=True)

    def count(self, stream_id: str) -> int:
        value = self._client.get(count_key(stream_id))
        return int(value) if value is not None else 0
