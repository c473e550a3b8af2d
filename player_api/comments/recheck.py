"""Rights change while comment connections are open: every few seconds each process asks
again, per channel it serves, whether each connected viewer may still watch the item, and
closes those who may not (4451), as playback re-checks every playlist request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from player_api.access import RightsContext, decide
from player_api.comments.hub import Hub, Listener
from rights.model import ItemRights

NOT_AVAILABLE = 4451
log = logging.getLogger(__name__)


def _rights(
    sessions: sessionmaker[Session], rights: RightsContext, channels: list[str]
) -> dict[str, ItemRights | None]:
    with sessions() as session:
        return {channel: rights.cache.rights_for_id(session, channel) for channel in channels}


def sweep(
    hub: Hub, items: dict[str, ItemRights | None], rights: RightsContext, now: datetime
) -> int:
    """Stop every listener whose viewer may no longer watch its channel; how many."""
    stopped = 0
    for channel, item in items.items():
        room = hub.rooms.get(channel)
        for listener in [*room.listeners] if room else []:
            if listener.viewer is not None and not _allowed(item, listener, rights, now):
                hub.drop(channel, listener, NOT_AVAILABLE)
                stopped += 1
    return stopped


def _allowed(
    item: ItemRights | None, listener: Listener, rights: RightsContext, now: datetime
) -> bool:
    assert listener.viewer is not None  # noqa: S101 - checked by the caller
    return decide(item, listener.viewer, now, rights.decisions).allowed


async def recheck_forever(
    hub: Hub,
    sessions: sessionmaker[Session],
    rights: RightsContext,
    interval_s: float,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    while True:
        await asyncio.sleep(interval_s)
        channels = list(hub.rooms)
        if not channels:
            continue
        try:
            items = await run_in_threadpool(_rights, sessions, rights, channels)
        except SQLAlchemyError as exc:
            log.warning("comment rights re-check skipped: %s", exc)
            continue
        sweep(hub, items, rights, clock())
