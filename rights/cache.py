"""Per-process cache of item rights, invalidated everywhere by a Redis epoch.

Every playlist and segment request re-evaluates rights, so loading them must be cheap: a
rights change bumps the epoch (one INCR), and each API process drops what it cached under
the old one. A process reads the epoch at most every ``recheck_s`` (a quarter of a second by
default), so a change reaches running playback everywhere within that, and a warm request
costs no network round trip. Without Redis the cache is bypassed, never trusted stale, and
whatever happens to the epoch, nothing is kept longer than ``max_age_s``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import redis
from sqlalchemy.orm import Session

from core.models import Asset
from rights.model import ItemRights
from rights.records import load_item_rights

EPOCH_KEY = "courtside:rights:epoch"
log = logging.getLogger(__name__)


class RightsCache:
    def __init__(
        self,
        client: redis.Redis | None,
        *,
        max_items: int = 20_000,
        recheck_s: float = 0.25,
        max_age_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._max_items = max_items
        self._recheck_s = recheck_s
        self._max_age_s = max_age_s
        self._filled_at = float("-inf")  # when ``_items`` started for this epoch
        self._clock = clock
        self._epoch: bytes | None = None  # the epoch ``_items`` belong to
        self._seen: bytes | None = None  # the epoch Redis last answered
        self._seen_at = float("-inf")
        self._items: dict[str, ItemRights] = {}

    def _current_epoch(self) -> bytes | None:
        if self._client is None:
            return None
        now = self._clock()
        if now - self._seen_at < self._recheck_s:
            return self._seen
        try:
            value = self._client.get(EPOCH_KEY)
        except redis.RedisError:
            log.warning("rights cache: Redis unavailable, loading rights from the database")
            return None  # not remembered: the next request asks again
        self._seen = value if isinstance(value, bytes) else b"0"
        self._seen_at = now
        return self._seen

    def cached(self, asset_id: str) -> ItemRights | None:
        """The asset's rights if the cache holds them for the current epoch (no I/O then)."""
        epoch = self._current_epoch()
        if epoch is None or epoch != self._epoch or self._expired():
            return None
        return self._items.get(asset_id)

    def _expired(self) -> bool:
        # A bound on staleness even if an epoch bump was lost (Redis failed mid-change).
        return self._clock() - self._filled_at > self._max_age_s

    def rights_for(self, session: Session, assets: Sequence[Asset]) -> dict[str, ItemRights]:
        """Rights of ``assets``, from the cache when it is current."""
        epoch = self._current_epoch()
        if epoch is None:
            return load_item_rights(session, assets)
        if epoch != self._epoch or len(self._items) > self._max_items or self._expired():
            self._epoch, self._items, self._filled_at = epoch, {}, self._clock()
        missing = [a for a in assets if a.id not in self._items]
        if missing:
            self._items.update(load_item_rights(session, missing))
        return {a.id: self._items[a.id] for a in assets}

    def rights_for_id(self, session: Session, asset_id: str) -> ItemRights | None:
        """Rights of one asset by id, loading them if the cache does not hold them."""
        hit = self.cached(asset_id)
        if hit is not None:
            return hit
        asset = session.get(Asset, asset_id)
        return None if asset is None else self.rights_for(session, [asset])[asset_id]

    def invalidate(self) -> None:
        """After a committed rights change: this process reloads at once, the others within
        ``recheck_s``."""
        self._items = {}
        self._seen_at = float("-inf")
        if self._client is None:
            return
        try:
            self._client.incr(EPOCH_KEY)
        except redis.RedisError:
            # The change is committed; other processes catch up within max_age_s.
            log.error(
                "rights cache: could not bump the epoch; other processes may serve the "
                "old rights for up to %.0f s",
                self._max_age_s,
            )
