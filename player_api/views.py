"""View counting: once per playback token, in Redis, flushed to SQL by a beat task.

The player reports a view after a few seconds of play. ``SET NX`` on a key derived from the
token (expiring with it) makes later reports of the same playback no-ops; counted views are
``HINCRBY``'d into one hash that ``take_pending`` empties atomically for the flush, so the
database sees one UPDATE per asset per flush, never a write per view or segment.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any, cast

import redis

log = logging.getLogger(__name__)

PENDING_KEY = "courtside:views:pending"
SEEN_PREFIX = "courtside:views:seen:"
# Empty the hash and return what it held, in one step: a view counted between a read and a
# delete would otherwise be lost.
_TAKE = """
local counts = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return counts
"""


class ViewCounter:
    """Counts views in Redis; built once per process (see ``counter_for``)."""

    def __init__(self, client: redis.Redis, *, prefix: str = "") -> None:
        self._client = client
        self._pending = prefix + PENDING_KEY
        self._seen = prefix + SEEN_PREFIX

    @property
    def pending_key(self) -> str:
        return self._pending

    def seen_key(self, token: str) -> str:
        # A digest, not the token: the key is short and Redis never holds a usable token.
        return self._seen + hashlib.sha256(token.encode()).hexdigest()[:32]

    def count(self, token: str, asset_id: str, *, ttl_s: int) -> bool:
        """Count one view of ``asset_id`` for the playback ``token`` unless it already
        counted; True when this call counted it."""
        first = self._client.set(self.seen_key(token), b"1", nx=True, ex=max(1, ttl_s))
        if not first:
            return False
        self._client.hincrby(self._pending, asset_id, 1)
        return True

    def take_pending(self) -> dict[str, int]:
        """Every pending count (asset id → views), removed from Redis atomically."""
        flat = cast(list[bytes], self._client.eval(_TAKE, 1, self._pending))
        pairs = zip(flat[::2], flat[1::2], strict=True)
        return {key.decode(): int(value) for key, value in pairs}

    def restore(self, counts: Mapping[str, int]) -> None:
        """Put taken counts back (the flush could not store them); added to any new ones."""
        if not counts:
            return
        pipe = self._client.pipeline(transaction=True)
        for asset_id, views in counts.items():
            pipe.hincrby(self._pending, asset_id, views)
        pipe.execute()

    def pending(self) -> dict[str, int]:
        """The counts waiting for the next flush (for tests and operators)."""
        raw = cast(dict[Any, Any], self._client.hgetall(self._pending))
        return {key.decode(): int(value) for key, value in raw.items()}


def counter_for(redis_url: str) -> ViewCounter:
    """A counter on the Redis at ``redis_url`` with short timeouts: counting a view is never
    worth stalling a request for."""
    client = redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
    return ViewCounter(client)
