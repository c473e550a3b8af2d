"""Posting and moderation: the rules in order (text, channel mode, bans and timeouts, slow
mode, rate limit, blocked terms), then Redis (history and fan-out, atomically) and the
archive. Moderation changes the archive first, then Redis, then tells every client."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from core.db import session_scope
from core.errors import NotFound
from player_api.comments import archive
from player_api.comments.access import Channel
from player_api.comments.archive import Accepted
from player_api.comments.archiver import ArchiveFailed, Archiver
from player_api.comments.model import (
    Author,
    ChannelSettings,
    CommentRefused,
    CommentsUnavailable,
    CommentTextRefused,
    Draft,
    Mode,
    RateLimited,
    State,
    message_event,
    parse_id,
)
from player_api.comments.redis_store import RedisComments
from player_api.comments.text import TextRefused, clean, find_blocked, normalise

T = TypeVar("T")
# Blocked terms changed through another process apply here within this many seconds.
TERMS_MAX_AGE_S = 5.0
# A live comment's media time (a program date time, ms) may be at most this far from now.
LIVE_MEDIA_SLACK_MS = 6 * 3600 * 1000

_REFUSALS: dict[str, tuple[type[CommentRefused], str]] = {
    "banned": (CommentRefused, "you are banned from this channel"),
    "timed_out": (CommentRefused, "you are timed out in this channel"),
    "slow_mode": (RateLimited, "slow mode: wait before posting again"),
    "rate_limited": (RateLimited, "too many messages: wait a moment"),
}


@dataclass(frozen=True)
class Limits:
    max_chars: int
    history_max: int
    join_history: int


@dataclass(frozen=True)
class Page:
    """Messages a reader may see, and the last id looked at (hidden ones included): where
    the next page, or the live stream, carries on."""

    messages: list[dict[str, Any]]
    last_id: str | None


@dataclass(frozen=True)
class Posted:
    id: str
    state: State
    draft: Draft

    def event(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(message_event(self.id, self.draft.body()))
        return loaded


class Comments:
    """The comments service of one API process."""

    def __init__(
        self,
        store: RedisComments,
        sessions: sessionmaker[Session],
        archiver: Archiver,
        limits: Limits,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.archiver = archiver
        self.limits = limits
        self.clock = clock
        self._terms: tuple[float, list[str]] = (0.0, [])

    async def _db(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a unit of work on the thread pool (the loop never blocks on SQL)."""

        def run() -> T:
            with session_scope(self.sessions) as session:
                return work(session)

        return await run_in_threadpool(run)

    # Posting

    async def post(
        self, channel: Channel, author: Author, text: str, media_ms: int | None
    ) -> Posted:
        """Accept a message (visible, or held for review) or raise CommentRefused."""
        try:
            cleaned = clean(text, self.limits.max_chars)
        except TextRefused as exc:
            raise CommentTextRefused(exc.code, str(exc)) from None
        now = self.clock()
        settings = await self.settings(channel.id)
        check_mode(settings, author, now)
        verdict, retry_ms = await self.store.admit(
            channel.id, author.key, slow_mode_s=settings.slow_mode_s, exempt=author.moderator
        )
        if verdict != "ok":
            kind, message = _REFUSALS[verdict]
            raise kind(verdict, message, retry_ms)
        held = find_blocked(cleaned, await self.blocked_terms()) is not None
        state = State.HELD if held and not author.moderator else State.VISIBLE
        draft = Draft(channel.id, author, cleaned, now, media_time(channel, media_ms, now), state)
        message_id = await self.store.append(draft, moderators_only=state is State.HELD)
        try:
            await self.archiver.add(Accepted(message_id, draft))
        except ArchiveFailed:
            # Not durable, so not accepted: take back what clients were already shown.
            with contextlib.suppress(CommentsUnavailable):
                await self._hide(channel.id, [message_id])
            raise
        return Posted(message_id, state, draft)

    async def settings(self, channel: str) -> ChannelSettings:
        cached = await self.store.settings(channel)
        if cached is not None:
            return cached
        settings, bans = await self._db(lambda s: archive.channel_settings(s, channel))
        await self.store.cache_settings(channel, settings, bans)
        return settings

    async def blocked_terms(self) -> list[str]:
        loaded_at, terms = self._terms
        if time.monotonic() - loaded_at > TERMS_MAX_AGE_S:
            terms = await self._db(archive.blocked_terms)
            self._terms = (time.monotonic(), terms)
        return terms

    # History

    async def history(
        self, channel: str, *, after: str | None, limit: int, moderator: bool
    ) -> Page:
        """Recent messages (or those after ``after``), oldest first: from Redis, merged with
        the archive when Redis no longer reaches back that far (the archive alone could miss
        a message Redis has and the archive is still committing). Held ones for moderators
        only, hidden ones never."""
        if after is None:
            found, complete = await self.store.recent(channel, limit)
        else:
            found, complete = await self.store.after(channel, after, limit)
        if not complete:
            older = await self._db(lambda s: archive.history(s, channel, after=after, limit=limit))
            found = merged(older, found, limit, oldest=after is not None)
        shown = {str(State.VISIBLE), str(State.HELD)} if moderator else {str(State.VISIBLE)}
        last = found[-1]["id"] if found else after
        return Page([message for message in found if message["state"] in shown], last)

    async def replay(
        self, channel: str, *, from_ms: int, to_ms: int, per_s: int
    ) -> list[dict[str, Any]]:
        return await self._db(
            lambda s: archive.replay(s, channel, from_ms=from_ms, to_ms=to_ms, per_s=per_s)
        )

    # Moderation

    async def reports(self, channel: str, limit: int) -> list[dict[str, Any]]:
        return await self._db(lambda s: archive.reports(s, channel, limit))

    async def change_settings(self, channel: str, settings: ChannelSettings) -> None:
        def save(session: Session) -> list[str]:
            archive.save_settings(session, channel, settings)
            return archive.channel_settings(session, channel)[1]

        bans = await self._db(save)
        await self.store.cache_settings(channel, settings, bans)
        await self.store.publish(channel, settings.event())

    async def delete(self, channel: str, message_id: str) -> None:
        await self._require_message(channel, message_id)
        await self._db(lambda s: archive.set_state(s, channel, [message_id], State.HIDDEN))
        await self._hide(channel, [message_id])

    async def _hide(self, channel: str, ids: Sequence[str]) -> None:
        await self.store.set_state(channel, ids, str(State.HIDDEN))
        if ids:
            await self.store.publish(channel, {"type": "hide", "ids": list(ids)})

    async def timeout(self, channel: str, author: str, seconds: int) -> None:
        await self.store.timeout(channel, author, seconds)
        event = {"type": "timeout", "author": author, "seconds": seconds}
        await self.store.publish(channel, event, moderators_only=True)

    async def ban(self, channel: str, author: str, by: str) -> list[str]:
        """Ban and hide the author's earlier messages everywhere at once; their ids."""
        ids = await self._db(lambda s: archive.ban(s, channel, author, by))
        await self.store.ban(channel, author)
        await self._hide(channel, ids)
        return ids

    async def unban(self, channel: str, author: str) -> None:
        await self._db(lambda s: archive.unban(s, channel, author))
        await self.store.unban(channel, author)

    async def approve(self, channel: str, message_id: str) -> dict[str, Any]:
        """A held message becomes visible and reaches every client as a new message."""

        def approve_row(session: Session) -> dict[str, Any]:
            row = archive.message(session, channel, message_id)
            if row is None or row.state != str(State.HELD):
                raise NotFound("no held message with that id")
            row.state = str(State.VISIBLE)
            return archive.as_event(row)

        event = await self._db(approve_row)
        await self.store.set_state(channel, [message_id], str(State.VISIBLE))
        await self.store.publish(channel, event)
        return event

    async def like(self, channel: str, message_id: str, author: str) -> int | None:
        """One like per viewer; the new count (published), or None if already liked."""
        await self._require_message(channel, message_id)
        likes = await self._db(lambda s: archive.like(s, channel, message_id, author))
        if likes is not None:
            await self.store.set_likes(channel, message_id, likes)
            await self.store.publish(channel, {"type": "likes", "id": message_id, "likes": likes})
        return likes

    async def report(self, channel: str, message_id: str, reporter: str, reason: str) -> None:
        await self._require_message(channel, message_id)
        count = await self._db(lambda s: archive.report(s, channel, message_id, reporter, reason))
        event = {"type": "report", "id": message_id, "reason": reason, "reports": count}
        await self.store.publish(channel, event, moderators_only=True)

    async def _require_message(self, channel: str, message_id: str) -> None:
        found = await self._db(lambda s: archive.message(s, channel, message_id) is not None)
        if not found:
            raise NotFound("no message with that id in this channel")

    async def set_blocked_terms(self, terms: Sequence[str]) -> list[str]:
        normalised = sorted({normalise(term) for term in terms} - {""})
        await self._db(lambda s: archive.replace_blocked_terms(s, normalised))
        self._terms = (time.monotonic(), normalised)
        return normalised


def merged(
    archived: list[dict[str, Any]], recent: list[dict[str, Any]], limit: int, *, oldest: bool
) -> list[dict[str, Any]]:
    """Archive and Redis messages by id (Redis's copy wins: its likes are fresher), in
    order; the oldest ``limit`` (a resume) or the newest (a join)."""
    by_id = {message["id"]: message for message in archived}
    by_id.update((message["id"], message) for message in recent)
    ordered = [by_id[key] for key in sorted(by_id, key=parse_id)]
    return ordered[:limit] if oldest else ordered[-limit:]


def check_mode(settings: ChannelSettings, author: Author, now: datetime) -> None:
    """The channel's mode admits the author (moderators always)."""
    if author.moderator or settings.mode is Mode.OPEN:
        return
    if settings.mode is Mode.CLOSED:
        raise CommentRefused("channel_closed", "this channel is closed to new comments")
    if settings.mode is Mode.VERIFIED and not author.verified:
        raise CommentRefused("verified_only", "only verified accounts may comment here")
    old_enough = author.created_at <= now - timedelta(seconds=settings.min_account_age_s)
    if settings.mode is Mode.ACCOUNT_AGE and not old_enough:
        raise CommentRefused("account_too_new", "your account is too new to comment here")


def media_time(channel: Channel, media_ms: int | None, now: datetime) -> int | None:
    """Highlights: the position in the clip (clamped to it). Live: the program date time
    (epoch ms) the viewer saw; the server's clock when missing or implausible."""
    if channel.live:
        now_ms = int(now.timestamp() * 1000)
        if media_ms is None or abs(media_ms - now_ms) > LIVE_MEDIA_SLACK_MS:
            return now_ms
        return media_ms
    if media_ms is None:
        return None
    upper = channel.duration_ms if channel.duration_ms is not None else media_ms
    return max(0, min(media_ms, upper))
