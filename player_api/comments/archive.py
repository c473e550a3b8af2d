"""The SQL side of comments: the durable archive of accepted messages (history when Redis
no longer has it, highlight replay), channel settings, bans, likes, reports, blocked terms.
Plain functions over a Session; the caller commits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.models import (
    BlockedTerm,
    CommentBan,
    CommentChannel,
    CommentLike,
    CommentMessage,
    CommentReport,
)
from player_api.comments.model import ChannelSettings, Draft, Mode, State, iso_ms, parse_id


@dataclass(frozen=True)
class Accepted:
    """A message Redis gave an id to, on its way into the archive."""

    id: str
    draft: Draft


Batch = Sequence[Accepted]
Writer = Callable[[Batch], None]


def archive(session: Session, accepted: Batch) -> None:
    """Insert a batch in one statement (group commit: see service.Archiver)."""
    if accepted:
        session.execute(insert(CommentMessage), [_row(item) for item in accepted])


def _row(item: Accepted) -> dict[str, Any]:
    draft = item.draft
    ms, seq = parse_id(item.id)
    return {
        "channel_id": draft.channel,
        "stream_id": item.id,
        "ms": ms,
        "seq": seq,
        "author_key": draft.author.key,
        "author_handle": draft.author.handle,
        "author_badge": draft.author.badge,
        "text": draft.text,
        "media_ms": draft.media_ms,
        "state": str(draft.state),
        "likes": 0,
        "created_at": draft.server_time,
    }


def as_event(row: CommentMessage) -> dict[str, Any]:
    return {
        "type": "message",
        "id": row.stream_id,
        "channel": row.channel_id,
        "author": {"id": row.author_key, "handle": row.author_handle, "badge": row.author_badge},
        "text": row.text,
        "server_time": iso_ms(row.created_at),
        "media_ms": row.media_ms,
        "state": row.state,
        "likes": row.likes,
    }


def history(
    session: Session, channel: str, *, after: str | None, limit: int
) -> list[dict[str, Any]]:
    """Messages after ``after`` (the oldest ``limit``), or the latest ``limit``; oldest
    first, every state (the caller filters)."""
    query = select(CommentMessage).where(CommentMessage.channel_id == channel)
    key = tuple_(CommentMessage.ms, CommentMessage.seq)
    if after is not None:
        ms, seq = parse_id(after)
        rows = session.scalars(query.where(key > tuple_(ms, seq)).order_by(*_ASC).limit(limit))
        return [as_event(row) for row in rows]
    latest = session.scalars(query.order_by(*_DESC).limit(limit)).all()
    return [as_event(row) for row in reversed(latest)]


_ASC = (CommentMessage.ms, CommentMessage.seq)
_DESC = (CommentMessage.ms.desc(), CommentMessage.seq.desc())


def message(session: Session, channel: str, message_id: str) -> CommentMessage | None:
    return session.scalar(
        select(CommentMessage).where(
            CommentMessage.channel_id == channel, CommentMessage.stream_id == message_id
        )
    )


def set_state(session: Session, channel: str, ids: Sequence[str], state: State) -> None:
    session.execute(
        update(CommentMessage)
        .where(CommentMessage.channel_id == channel, CommentMessage.stream_id.in_(ids))
        .values(state=str(state))
    )


def hide_author(session: Session, channel: str, author: str) -> list[str]:
    """Hide every message ``author`` posted in the channel; the ids newly hidden."""
    ids = session.scalars(
        select(CommentMessage.stream_id).where(
            CommentMessage.channel_id == channel,
            CommentMessage.author_key == author,
            CommentMessage.state != str(State.HIDDEN),
        )
    ).all()
    set_state(session, channel, ids, State.HIDDEN)
    return list(ids)


def channel_settings(session: Session, channel: str) -> tuple[ChannelSettings, list[str]]:
    """Settings (defaults when never set) and the banned authors."""
    row = session.get(CommentChannel, channel)
    bans = session.scalars(select(CommentBan.author_key).where(CommentBan.channel_id == channel))
    if row is None:
        return ChannelSettings(), list(bans)
    return ChannelSettings(Mode(row.mode), row.min_account_age_s, row.slow_mode_s), list(bans)


def save_settings(session: Session, channel: str, settings: ChannelSettings) -> None:
    row = session.get(CommentChannel, channel) or CommentChannel(channel_id=channel)
    row.mode = str(settings.mode)
    row.min_account_age_s = settings.min_account_age_s
    row.slow_mode_s = settings.slow_mode_s
    session.add(row)


def ban(session: Session, channel: str, author: str, by: str) -> list[str]:
    """Ban ``author`` from the channel and hide their earlier messages (their ids)."""
    if session.get(CommentBan, (channel, author)) is None:
        session.add(CommentBan(channel_id=channel, author_key=author, created_by=by))
    return hide_author(session, channel, author)


def unban(session: Session, channel: str, author: str) -> None:
    session.execute(
        delete(CommentBan).where(CommentBan.channel_id == channel, CommentBan.author_key == author)
    )


def like(session: Session, channel: str, message_id: str, author: str) -> int | None:
    """Count one like per viewer: the new count, or None if already liked."""
    try:
        with session.begin_nested():
            session.add(CommentLike(channel_id=channel, stream_id=message_id, author_key=author))
    except IntegrityError:
        return None
    count: int | None = session.scalar(
        update(CommentMessage)
        .where(CommentMessage.channel_id == channel, CommentMessage.stream_id == message_id)
        .values(likes=CommentMessage.likes + 1)
        .returning(CommentMessage.likes)
    )
    return count


def report(session: Session, channel: str, message_id: str, reporter: str, reason: str) -> int:
    """Record a report; the message's report count so far."""
    session.add(
        CommentReport(
            channel_id=channel, stream_id=message_id, reporter_key=reporter, reason=reason
        )
    )
    session.flush()
    count: int = (
        session.scalar(
            select(func.count())
            .select_from(CommentReport)
            .where(CommentReport.channel_id == channel, CommentReport.stream_id == message_id)
        )
        or 0
    )
    return count


def reports(session: Session, channel: str, limit: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(CommentReport)
        .where(CommentReport.channel_id == channel)
        .order_by(CommentReport.id.desc())
        .limit(limit)
    )
    return [
        {
            "id": row.stream_id,
            "reporter": row.reporter_key,
            "reason": row.reason,
            "created_at": iso_ms(row.created_at),
        }
        for row in rows
    ]


def replay(
    session: Session, channel: str, *, from_ms: int, to_ms: int, per_s: int
) -> list[dict[str, Any]]:
    """Visible messages with media time in [from_ms, to_ms), at most ``per_s`` per second
    of video (the most liked first, then the earliest), in buckets by second."""
    second = (CommentMessage.media_ms // 1000).label("second")
    rank = (
        func.row_number()
        .over(partition_by=second, order_by=(CommentMessage.likes.desc(), *_ASC))
        .label("rank")
    )
    ranked = (
        select(CommentMessage.id, second, rank)
        .where(
            CommentMessage.channel_id == channel,
            CommentMessage.state == str(State.VISIBLE),
            CommentMessage.media_ms >= from_ms,
            CommentMessage.media_ms < to_ms,
        )
        .subquery()
    )
    rows = session.execute(
        select(CommentMessage, ranked.c.second)
        .join(ranked, ranked.c.id == CommentMessage.id)
        .where(ranked.c.rank <= per_s)
        .order_by(CommentMessage.media_ms, *_ASC)
    ).all()
    return _buckets((int(sec), as_event(row)) for row, sec in rows)


def _buckets(items: Any) -> list[dict[str, Any]]:
    buckets: dict[int, list[dict[str, Any]]] = {}
    for sec, event in items:
        buckets.setdefault(sec, []).append(event)
    return [{"second": sec, "messages": events} for sec, events in buckets.items()]


def blocked_terms(session: Session) -> list[str]:
    return list(session.scalars(select(BlockedTerm.term).order_by(BlockedTerm.term)))


def replace_blocked_terms(session: Session, terms: Sequence[str]) -> None:
    session.execute(delete(BlockedTerm))
    session.add_all(BlockedTerm(term=term) for term in dict.fromkeys(terms))
