"""Messages, channel settings, the errors a poster gets, and the JSON events clients read."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from core.errors import CourtsideError, Forbidden, InvalidInput, Retryable


class State(StrEnum):
    VISIBLE = "visible"
    HELD = "held"
    HIDDEN = "hidden"


class Mode(StrEnum):
    OPEN = "open"
    ACCOUNT_AGE = "account_age"
    VERIFIED = "verified"
    CLOSED = "closed"


class CommentRefused(Forbidden):
    """A post (or like, or report) the channel's rules refuse; ``code`` says which rule."""

    def __init__(self, code: str, message: str, retry_after_ms: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after_ms = retry_after_ms
        self.details = {"retry_after_ms": retry_after_ms} if retry_after_ms is not None else None


class RateLimited(CommentRefused):
    """Too many messages (``rate_limited``) or too soon in slow mode (``slow_mode``): 429."""


class CommentTextRefused(CommentRefused, InvalidInput):
    """Empty or too long: 422."""


class CommentsUnavailable(Retryable):
    """Redis cannot be reached: nothing was accepted, try again (503)."""

    code = "comments_unavailable"


@dataclass(frozen=True)
class ChannelSettings:
    mode: Mode = Mode.OPEN
    min_account_age_s: int = 0
    slow_mode_s: int = 0

    def event(self) -> dict[str, Any]:
        return {
            "type": "mode",
            "mode": str(self.mode),
            "min_account_age_s": self.min_account_age_s,
            "slow_mode_s": self.slow_mode_s,
        }


@dataclass(frozen=True)
class Author:
    """Who posts: ``key`` is the principal's label (``user:5``, ``api_key:2``)."""

    key: str
    handle: str
    badge: str | None
    created_at: datetime
    verified: bool
    # Moderators and admins everywhere; a league's partners on that league's channels.
    moderator: bool = False

    def public(self) -> dict[str, Any]:
        return {"id": self.key, "handle": self.handle, "badge": self.badge}


@dataclass(frozen=True)
class Draft:
    """An accepted message before Redis has given it its id."""

    channel: str
    author: Author
    text: str
    server_time: datetime
    media_ms: int | None
    state: State

    def body(self) -> str:
        """The message event's JSON without its opening ``{"type":…,"id":…,`` (the id comes
        from Redis, which prepends those inside the same atomic script)."""
        event = {
            "channel": self.channel,
            "author": self.author.public(),
            "text": self.text,
            "server_time": iso_ms(self.server_time),
            "media_ms": self.media_ms,
            "state": str(self.state),
            "likes": 0,
        }
        return dumps(event)[1:]


def message_event(message_id: str, body: str) -> str:
    """The full ``message`` event from an id and a Draft.body()."""
    return f'{{"type":"message","id":"{message_id}",{body}'


def iso_ms(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def parse_id(message_id: str) -> tuple[int, int]:
    """A message id (a Redis Stream id ``<ms>-<seq>``) as a sortable pair."""
    ms, _, seq = message_id.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        raise InvalidInput(f"not a comment id: {message_id[:40]!r}") from None


def is_id(message_id: str) -> bool:
    try:
        parse_id(message_id)
    except InvalidInput:
        return False
    return True


def error_event(nonce: str | None, exc: CourtsideError) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "error", "nonce": nonce, "code": exc.code, "message": str(exc)}
    retry = getattr(exc, "retry_after_ms", None)
    if retry is not None:
        event["retry_after_ms"] = retry
    return event
