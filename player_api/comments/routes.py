"""REST for comments: history, highlight replay, posting, moderation, blocked terms.
The live side (WebSocket, Server-Sent Events) is in ``player_api.comments.sockets``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import JSONResponse

from core.auth import require_role
from core.deps import PrincipalDep
from core.errors import InvalidInput
from core.models import Role
from player_api.comments.deps import SIGNED_IN, CommentsDep, JoinedDep
from player_api.comments.model import ChannelSettings, Mode, State
from player_api.comments.schemas import (
    BanIn,
    BlockedTermsIn,
    PostIn,
    ReasonIn,
    SettingsIn,
    TimeoutIn,
    author_key,
)

router = APIRouter(prefix="/v1/comments", tags=["comments"])

MAX_PAGE = 200
AfterQuery = Annotated[str | None, Query(max_length=40, pattern=r"^\d{1,20}-\d{1,10}$")]


@router.get("/blocked-terms", dependencies=SIGNED_IN)
async def get_blocked_terms(principal: PrincipalDep, comments: CommentsDep) -> dict[str, Any]:
    """The blocked terms (global), in their normalised form. **Who:** moderators, admins."""
    require_role(principal, Role.MODERATOR)
    return {"terms": await comments.blocked_terms()}


@router.put("/blocked-terms", dependencies=SIGNED_IN)
async def put_blocked_terms(
    body: BlockedTermsIn, principal: PrincipalDep, comments: CommentsDep
) -> dict[str, Any]:
    """Replace the blocked terms. Each is stored normalised (NFKC, case folded, invisible
    characters removed) and matched the same way; a message containing one is held for
    review. Other API processes apply the list within 5 s. **Who:** moderators, admins."""
    require_role(principal, Role.MODERATOR)
    return {"terms": await comments.set_blocked_terms(body.terms)}


@router.get("/{channel_id}")
async def get_history(
    caller: JoinedDep,
    comments: CommentsDep,
    after: AfterQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    include: Annotated[str | None, Query(pattern="^held$")] = None,
) -> dict[str, Any]:
    """Visible messages, oldest first: the latest ``limit``, or the ``limit`` after the
    message id ``after`` (``next_after`` continues: hidden messages are skipped, so a page
    may hold fewer); ``include=held`` adds held ones (moderators). ``viewer`` says
    whether the caller moderates this channel (moderators, admins, the league's partners)
    and their author id. **Who:** anyone who may watch the item (anonymous too)."""
    if include:
        caller.require_moderator()
    channel = caller.channel.id
    page = await comments.history(channel, after=after, limit=limit, moderator=include is not None)
    settings = await comments.settings(channel)
    author = caller.author.key if caller.author else None
    viewer = {"moderator": caller.moderator, "author_id": author}
    return {
        "channel": channel,
        "messages": page.messages,
        "next_after": page.last_id,
        "settings": settings.event(),
        "viewer": viewer,
    }


@router.get("/{channel_id}/replay")
async def get_replay(
    caller: JoinedDep,
    comments: CommentsDep,
    from_ms: Annotated[int, Query(ge=0)] = 0,
    to_ms: Annotated[int, Query(ge=1)] = 3_600_000,
    per_s: Annotated[int, Query(ge=1, le=50)] = 5,
) -> dict[str, Any]:
    """Comments by media time for replay in step with the video (danmaku): visible messages
    with ``from_ms <= media_ms < to_ms`` in one bucket per second of video, at most
    ``per_s`` each (the most liked first). The range is at most one hour. **Who:** anyone
    who may watch the item (anonymous too)."""
    if not from_ms < to_ms <= from_ms + 3_600_000:
        raise InvalidInput("from_ms must be before to_ms, at most an hour apart")
    channel = caller.channel.id
    buckets = await comments.replay(channel, from_ms=from_ms, to_ms=to_ms, per_s=per_s)
    return {"channel": channel, "from_ms": from_ms, "to_ms": to_ms, "buckets": buckets}


@router.post("/{channel_id}", status_code=status.HTTP_201_CREATED, dependencies=SIGNED_IN)
async def post_comment(body: PostIn, caller: JoinedDep, comments: CommentsDep) -> JSONResponse:
    """Post a message (the same rules as over the WebSocket): 201 with the message, or 202
    when it is held for review; 429 ``rate_limited``/``slow_mode`` with
    ``details.retry_after_ms``; 403 ``banned``, ``timed_out``, ``channel_closed``,
    ``account_too_new``, ``verified_only``; 422 ``empty``/``too_long``. **Who:** signed-in
    users and API keys that may watch the item."""
    posted = await comments.post(caller.channel, caller.poster(), body.text, body.media_ms)
    held = posted.state is State.HELD
    return JSONResponse(posted.event(), status_code=202 if held else 201)


@router.put("/{channel_id}/settings", dependencies=SIGNED_IN)
async def put_settings(body: SettingsIn, caller: JoinedDep, comments: CommentsDep) -> Any:
    """Channel mode (``open``, ``account_age`` with ``min_account_age_s``, ``verified``:
    accounts with a role badge, ``closed``) and slow mode (seconds between one author's
    messages; 0 is off). Clients get a ``mode`` event at once. **Who:** the channel's
    moderators (moderators, admins, the league's partners)."""
    caller.require_moderator()
    settings = ChannelSettings(Mode(body.mode), body.min_account_age_s, body.slow_mode_s)
    await comments.change_settings(caller.channel.id, settings)
    return settings.event()


@router.get("/{channel_id}/reports", dependencies=SIGNED_IN)
async def get_reports(
    caller: JoinedDep, comments: CommentsDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> dict[str, Any]:
    """Fans' reports on the channel's messages, newest first. **Who:** the channel's
    moderators."""
    caller.require_moderator()
    channel = caller.channel.id
    return {"reports": await comments.reports(channel, limit)}


@router.delete(
    "/{channel_id}/{message_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=SIGNED_IN
)
async def delete_comment(message_id: str, caller: JoinedDep, comments: CommentsDep) -> Response:
    """Hide a message; clients get a ``hide`` event at once. **Who:** the channel's
    moderators."""
    caller.require_moderator()
    await comments.delete(caller.channel.id, message_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{channel_id}/{message_id}/approve", dependencies=SIGNED_IN)
async def approve_comment(
    message_id: str, caller: JoinedDep, comments: CommentsDep
) -> dict[str, Any]:
    """A held message becomes visible (clients get it as a ``message`` event). **Who:** the
    channel's moderators."""
    caller.require_moderator()
    return await comments.approve(caller.channel.id, message_id)


@router.post("/{channel_id}/{message_id}/likes", dependencies=SIGNED_IN)
async def like_comment(message_id: str, caller: JoinedDep, comments: CommentsDep) -> Any:
    """Like a message once; clients get a ``likes`` event. **Who:** signed-in users and API
    keys that may watch the item."""
    likes = await comments.like(caller.channel.id, message_id, caller.poster().key)
    return {"id": message_id, "liked": likes is not None, "likes": likes}


@router.post(
    "/{channel_id}/{message_id}/reports",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=SIGNED_IN,
)
async def report_comment(
    message_id: str, body: ReasonIn, caller: JoinedDep, comments: CommentsDep
) -> dict[str, Any]:
    """Report a message to the channel's moderators. **Who:** signed-in users and API keys
    that may watch the item."""
    await comments.report(caller.channel.id, message_id, caller.poster().key, body.reason)
    return {"id": message_id, "reported": True}


@router.post(
    "/{channel_id}/timeouts", status_code=status.HTTP_204_NO_CONTENT, dependencies=SIGNED_IN
)
async def timeout_author(body: TimeoutIn, caller: JoinedDep, comments: CommentsDep) -> Response:
    """Stop an author posting in the channel for ``seconds``. **Who:** the channel's
    moderators."""
    caller.require_moderator()
    await comments.timeout(caller.channel.id, author_key(body.user_id), body.seconds)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{channel_id}/bans", dependencies=SIGNED_IN)
async def ban_author(body: BanIn, caller: JoinedDep, comments: CommentsDep) -> dict[str, Any]:
    """Ban an author from the channel and hide every message they posted there (clients
    get one ``hide`` event with their ids). **Who:** the channel's moderators."""
    caller.require_moderator()
    author = author_key(body.user_id)
    hidden = await comments.ban(caller.channel.id, author, caller.principal.label)
    return {"user_id": author, "hidden": hidden}


@router.delete(
    "/{channel_id}/bans/{user_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=SIGNED_IN
)
async def unban_author(user_id: str, caller: JoinedDep, comments: CommentsDep) -> Response:
    """Lift a ban (hidden messages stay hidden). **Who:** the channel's moderators."""
    caller.require_moderator()
    await comments.unban(caller.channel.id, author_key(user_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
