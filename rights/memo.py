"""Short-lived memos for the per-request checks of a running playback.

A player asks for a playlist or a segment every few seconds with the same token, from the
same place: verifying the token and evaluating the rights again each time gives the same
answer. These memos keep the answer for at most ``ttl_s`` (a second by default), never past
the moment it could change (a token's expiry, a grant's window end, a start that is due), and
only for the very ``ItemRights`` object it was computed from, which the rights cache replaces
on any rights change.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rights import tokens
from rights.evaluate import evaluate
from rights.model import Decision, ItemRights, LicenseType, Viewer

_Key = tuple[object, ...]


class DecisionMemo:
    def __init__(self, *, ttl_s: float = 1.0, max_items: int = 50_000) -> None:
        self._ttl = timedelta(seconds=ttl_s)
        self._max_items = max_items
        self._entries: dict[_Key, tuple[ItemRights, Decision, datetime]] = {}

    def decide(
        self, item: ItemRights, viewer: Viewer, now: datetime, licenses: frozenset[LicenseType]
    ) -> Decision:
        """``evaluate(item, viewer, now, licenses)``, remembered briefly."""
        key = _key(item, viewer, licenses)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is item and now < entry[2]:
            return entry[1]
        decision = evaluate(item, viewer, now, licenses)
        if len(self._entries) >= self._max_items:
            self._entries.clear()
        self._entries[key] = (item, decision, _fresh_until(decision, now + self._ttl))
        return decision


def _key(item: ItemRights, viewer: Viewer, licenses: frozenset[LicenseType]) -> _Key:
    locatable = viewer.ip is None or viewer.ip.is_global
    # The address itself matters only to blackouts (IP networks); leave it out otherwise so
    # one entry serves everyone in the same place.
    address = viewer.ip if item.blackouts else None
    where = (viewer.country, viewer.subdivision, viewer.anonymous, viewer.platform, locatable)
    return (item.item_id, licenses, address, *where)


def _fresh_until(decision: Decision, limit: datetime) -> datetime:
    edges = [t for t in (decision.valid_until, decision.available_from) if t is not None]
    return min([limit, *edges])


class TokenMemo:
    """Verified token claims by token string; the expiry is still checked on every use."""

    def __init__(self, keys: tokens.SigningKeys, *, max_items: int = 50_000) -> None:
        self._keys = keys
        self._max_items = max_items
        self._claims: dict[str, dict[str, Any]] = {}

    def verify(self, token: str, *, now: float, leeway_s: int) -> dict[str, Any]:
        claims = self._claims.get(token)
        if claims is None:
            claims = tokens.verify(self._keys, token, now=now, leeway_s=leeway_s)
            if len(self._claims) >= self._max_items:
                self._claims.clear()
            self._claims[token] = claims
        elif claims["exp"] + leeway_s <= now:
            raise tokens.InvalidToken("playback token has expired; request playback again")
        return claims
