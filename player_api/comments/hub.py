"""This process's fan-out: one Redis pattern subscription for every channel, events batched
per channel for a flush interval and encoded once per batch (a JSON array string shared by
every connection), then offered to each connection's bounded queue. A connection whose
queue is full is stopped with 4008 (it resumes with ``?after=``), so memory stays bounded
whatever a slow client does."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.cancellation import raise_if_cancelling
from player_api.comments.model import parse_id
from player_api.comments.redis_store import EVERYONE, LIVE_PREFIX
from rights.model import Viewer

log = logging.getLogger(__name__)

# Close codes a client acts on: both mean "reconnect with ?after=<last id seen>".
LAGGING = 4008
RESUME = 1012  # "service restart": the fan-out lost Redis; events may have been missed
GOING_AWAY = 1001  # the server is stopping
_RECONNECT_DELAY_S = 0.5


@dataclass(frozen=True)
class Item:
    """One event as published: audience (EVERYONE or MODERATORS), message id or "", JSON."""

    audience: str
    id: str
    json: str

    @classmethod
    def parse(cls, envelope: str) -> Item:
        head, _, body = envelope.partition(" ")
        return cls(head[:1], head[1:], body)


class Batch:
    """A flush's events for one channel, each wire form built at most once."""

    def __init__(self, items: list[Item]) -> None:
        self.items = items
        self._frames: dict[tuple[bool, bool], str | None] = {}

    def frame(self, moderator: bool, sse: bool) -> str | None:
        key = (moderator, sse)
        if key not in self._frames:
            self._frames[key] = _frame(self.items, moderator, sse)
        return self._frames[key]


def _frame(items: list[Item], moderator: bool, sse: bool) -> str | None:
    shown = [item for item in items if moderator or item.audience == EVERYONE]
    if not shown:
        return None
    array = "[" + ",".join(item.json for item in shown) + "]"
    if not sse:
        return array
    last_id = next((item.id for item in reversed(shown) if item.id), "")
    return (f"id: {last_id}\n" if last_id else "") + f"data: {array}\n\n"


@dataclass(eq=False)
class Listener:
    """One WebSocket or SSE connection's view of a channel."""

    moderator: bool
    sse: bool
    queue: asyncio.Queue[str]
    # Whose rights are re-checked while connected (None: moderators, who are exempt).
    viewer: Viewer | None = None
    # Events that arrived while the connection's history was being read (None once live).
    held: list[Item] | None = field(default_factory=list)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int = 1000

    def offer(self, batch: Batch) -> bool:
        """Queue the batch's frame; False when the queue is full (the caller stops us)."""
        if self.held is not None:
            self.held.extend(batch.items)
            return True
        frame = batch.frame(self.moderator, self.sse)
        if frame is None:
            return True
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            return False
        return True

    def stop(self, code: int) -> None:
        if not self.stopped.is_set():
            self.close_code = code
            self.stopped.set()
            while not self.queue.empty():  # free what it will never send
                self.queue.get_nowait()
            self.queue.put_nowait("")  # wakes the sender, which stops on it


@dataclass
class Room:
    listeners: set[Listener] = field(default_factory=set)
    pending: list[Item] = field(default_factory=list)


class Hub:
    """Created by the composition root; ``run()`` is the reader and flusher for the life of
    the server."""

    def __init__(self, client: aioredis.Redis, *, flush_s: float, queue_frames: int) -> None:
        self.client = client
        self.flush_s = flush_s
        self.queue_frames = queue_frames
        self.rooms: dict[str, Room] = {}
        self.ready = asyncio.Event()
        self._due = asyncio.Event()

    def join(
        self, channel: str, *, moderator: bool, sse: bool, viewer: Viewer | None = None
    ) -> Listener:
        """A listener that holds live events back until ``release`` (after its history)."""
        listener = Listener(moderator, sse, asyncio.Queue(self.queue_frames), viewer)
        self.rooms.setdefault(channel, Room()).listeners.add(listener)
        return listener

    def release(self, listener: Listener, cutoff: str | None) -> None:
        """Go live: queue what arrived meanwhile, less what the history already held."""
        held, listener.held = listener.held or [], None
        if cutoff is not None:
            last = parse_id(cutoff)
            held = [item for item in held if not item.id or parse_id(item.id) > last]
        if held and not listener.offer(Batch(held)):
            listener.stop(LAGGING)

    def leave(self, channel: str, listener: Listener) -> None:
        room = self.rooms.get(channel)
        if room is None:
            return
        room.listeners.discard(listener)
        if not room.listeners and not room.pending:
            del self.rooms[channel]

    def deliver(self, channel: str, item: Item) -> None:
        room = self.rooms.get(channel)
        if room is not None:
            room.pending.append(item)
            self._due.set()

    def flush(self) -> None:
        """Offer every channel's pending batch to its listeners (encoded once per form)."""
        for channel, room in list(self.rooms.items()):
            if not room.pending:
                continue
            batch, room.pending = Batch(room.pending), []
            for listener in [*room.listeners]:
                if not listener.offer(batch):
                    self.drop(channel, listener, LAGGING)

    def drop(self, channel: str, listener: Listener, code: int) -> None:
        listener.stop(code)
        self.leave(channel, listener)

    def drop_all(self, code: int) -> None:
        for channel, room in list(self.rooms.items()):
            for listener in [*room.listeners]:
                self.drop(channel, listener, code)

    async def run(self) -> None:
        await asyncio.gather(self._read_forever(), self._flush_forever())

    async def _flush_forever(self) -> None:
        while True:
            await self._due.wait()
            await asyncio.sleep(self.flush_s)  # let the batch gather
            self._due.clear()
            self.flush()

    async def _read_forever(self) -> None:
        while True:
            try:
                await self._read()
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                raise_if_cancelling()
                log.warning("comment fan-out lost Redis (%s); clients must resume", exc)
            except Exception:
                raise_if_cancelling()
                # Never leave the process without its fan-out: start again, clients resume.
                log.exception("comment fan-out failed; clients must resume")
            self.ready.clear()
            # Anything published while we were away is missed: clients resume from history.
            self.drop_all(RESUME)
            await asyncio.sleep(_RECONNECT_DELAY_S)

    async def _read(self) -> None:
        pubsub = self.client.pubsub()
        try:
            await pubsub.psubscribe(LIVE_PREFIX + "*")
            await self._consume(pubsub.listen())
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped

    async def _consume(self, messages: AsyncIterator[dict[str, Any]]) -> None:
        skip = len(LIVE_PREFIX)
        async for message in messages:
            if message["type"] == "pmessage":
                self.deliver(message["channel"][skip:], Item.parse(message["data"]))
            elif message["type"] == "psubscribe":
                self.ready.set()


async def pump(listener: Listener, send: Callable[[str], Awaitable[None]]) -> None:
    """Send the listener's frames in order until it is stopped (or cancelled)."""
    while frame := await listener.queue.get():
        await send(frame)
