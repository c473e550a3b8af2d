"""Progress of a processing attempt as partners see it: 0–100, an ETA, a heartbeat.

Encoding reports fractions of its own phase; :class:`ProgressWriter` maps them into the
asset's overall span, writes at most once a second (the heartbeat the watchdog reads), and
emits ``asset.progress`` events only every ``EVENT_STEP`` points so webhooks stay quiet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.events import ASSET_PROGRESS, emit
from core.models import Asset, utcnow

WRITE_INTERVAL_S = 1.0
EVENT_STEP = 10


def eta_s(fraction: float, elapsed_s: float) -> int | None:
    """Seconds left if the rest goes as fast as what is done; None until there is a basis."""
    if fraction <= 0.02 or elapsed_s <= 0:
        return None
    return max(0, round(elapsed_s * (1 - fraction) / fraction))


@dataclass
class ProgressWriter:
    """Writes one asset's progress; ``phase(start, end)`` gives a callback for one phase."""

    sessions: sessionmaker[Session]
    asset_id: str
    clock: Callable[[], float] = time.monotonic
    _last_write: float = field(default=float("-inf"), init=False)
    _last_event: int = field(default=0, init=False)

    def phase(self, start: int, end: int) -> Callable[[float], None]:
        """A callback taking the phase's own 0..1 fraction; the ETA covers this phase."""
        began = self.clock()

        def report(fraction: float) -> None:
            now = self.clock()
            if now - self._last_write < WRITE_INTERVAL_S and fraction < 1.0:
                return
            self._last_write = now
            self.write(round(start + (end - start) * fraction), eta_s(fraction, now - began))

        return report

    def write(self, progress: int, eta: int | None = None) -> None:
        """Set progress (never lower), ETA and heartbeat; emit an event every few points."""
        with session_scope(self.sessions) as session:
            asset = session.get_one(Asset, self.asset_id)
            asset.progress = max(asset.progress, min(progress, 100))
            asset.eta_s, asset.heartbeat_at = eta, utcnow()
            if asset.progress >= self._last_event + EVENT_STEP and asset.progress < 100:
                self._last_event = asset.progress - asset.progress % EVENT_STEP
                emit(session, asset.league_id, ASSET_PROGRESS, asset.id, _data(asset))


def _data(asset: Asset) -> dict[str, object]:
    return {"asset_id": asset.id, "progress": asset.progress, "eta_s": asset.eta_s}
