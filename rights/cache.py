"""Per-process cache of item rights, invalidated everywhere at once by a Redis epoch.

Every playlist and segment request re-evaluates rights, so loading them must be cheap: a
rights change bumps the epoch (one INCR), and each API process drops what it cached under
the old one on its next request. Without Redis the cache is bypassed, never trusted stale.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import redis
from sqlalchemy.orm import Session

from core.models import Asset
from rights.model import ItemRights
from rights.records import load_item_rights

EPOCH_KEY = "courtside:rights:epoch"
log = logging.getLogger(__name__)


class RightsCache:
    def __init__(self, client: redis.Redis | None, max_items: int = 20_000) -> None:
        self._client = client
        self._max_items = max_items
        self._epoch: bytes | None = None
        self._items: dict[str, ItemRights] = {}

    def _current_epoch(self) -> bytes | None:
        if self._client is None:
            return None
        try:
            value = self._client.get(EPOCH_KEY)
        except redis.RedisError:
            log.warning("rights cache: Redis unavailable, loading rights from the database")
            return None
        return value if isinstance(value, bytes) else b"0"

    def rights_for(self, session: Session, assets: Sequence[Asset]) -> dict[str, ItemRights]:
        """Rights of ``assets``, from the cache when it is current."""
        epoch = self._current_epoch()
        if epoch is None:
            return load_item_rights(session, assets)
        if epoch != self._epoch or len(self._items) > self._max_items:
            self._epoch, self._items = epoch, {}
        missing = [a for a in assets if a.id not in self._items]
        if missing:
            self._items.update(load_item_rights(session, missing))
        return {a.id: self._items[a.id] for a in assets}

    def rights_for_id(self, session: Session, asset_id: str) -> ItemRights | None:
        """Rights of one asset by id; a warm cache answers without touching the database."""
        epoch = self._current_epoch()
        if epoch is not None and epoch == self._epoch and asset_id in self._items:
            return self._items[asset_id]
        asset = session.get(Asset, asset_id)
        return None if asset is None else self.rights_for(session, [asset])[asset_id]

    def invalidate(self) -> None:
        """After a committed rights change: every process reloads on its next request."""
        self._items = {}
        if self._client is not None:
            self._client.incr(EPOCH_KEY)
