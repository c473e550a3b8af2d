"""The live side: ``GET /v1/comments/{channel}/ws`` (WebSocket: post, like, report; every
server frame is a JSON array of events) and ``GET /v1/comments/{channel}/events``
(Server-Sent Events, read-only, one ``data:`` array per batch, ``id:`` its last message id).

Both accept ``?token=<session token or API key>`` (browsers cannot set headers on either)
and resume with ``?after=<last message id seen>`` (SSE: ``Last-Event-ID`` too). A refused
WebSocket is accepted then closed: 4401 bad token, 4403 forbidden, 4404 no such channel,
4451 not available where the viewer is, 1013 comments unavailable (try again); 4008 means
"you fell behind" and 1012 "the server lost its feed": reconnect with ``?after=``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, WebSocket
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from core.errors import CourtsideError, Forbidden, NotFound, Unauthenticated
from player_api.access import NotAvailable
from player_api.comments.deps import Joined, comments_of, hub_of, join_connection
from player_api.comments.hub import GOING_AWAY, LAGGING, RESUME, Hub, Listener, pump
from player_api.comments.model import CommentsUnavailable, State, dumps, error_event, is_id
from player_api.comments.recheck import NOT_AVAILABLE
from player_api.comments.schemas import ClientFrame, LikeIn, PostIn, ReportIn
from player_api.comments.service import Comments
from rights.model import Viewer

router = APIRouter(prefix="/v1/comments", tags=["comments"])

AfterQuery = Annotated[str | None, Query(max_length=40, pattern=r"^\d{1,20}-\d{1,10}$")]
TokenQuery = Annotated[str | None, Query(max_length=200)]
# How long a joining client waits for this process's fan-out to be subscribed.
READY_TIMEOUT_S = 5.0
SSE_KEEPALIVE_S = 15.0
CLOSE_TIMEOUT_S = 30.0
_CLOSE_CODES: tuple[tuple[type[CourtsideError], int], ...] = (
    (NotAvailable, 4451),
    (Unauthenticated, 4401),
    (Forbidden, 4403),
    (NotFound, 4404),
)


def _rechecked(caller: Joined) -> Viewer | None:
    """Whose rights the process re-checks while connected (moderators read regardless)."""
    return None if caller.moderator else caller.viewer


def close_code(exc: CourtsideError) -> int:
    return next((code for cls, code in _CLOSE_CODES if isinstance(exc, cls)), 1013)


@router.websocket("/{channel_id}/ws")
async def comments_socket(
    websocket: WebSocket, channel_id: str, after: AfterQuery = None, token: TokenQuery = None
) -> None:
    """Post and receive a channel's comments live. **Who:** anyone who may watch the item
    reads (anonymous too); signed-in users and API keys post."""
    await websocket.accept()
    try:
        caller = await run_in_threadpool(join_connection, websocket, channel_id, token)
    except CourtsideError as exc:
        await websocket.close(close_code(exc), str(exc)[:120])
        return
    await _serve(websocket, caller, after)


async def _serve(websocket: WebSocket, caller: Joined, after: str | None) -> None:
    comments, hub = comments_of(websocket.app.state), hub_of(websocket.app.state)
    channel = caller.channel.id
    listener = hub.join(channel, moderator=caller.moderator, sse=False, viewer=_rechecked(caller))
    try:
        await _start(comments, hub, listener, caller, after)
    except CommentsUnavailable as exc:
        hub.leave(channel, listener)
        await websocket.close(1013, str(exc)[:120])
        return
    try:
        await _run(websocket, comments, listener, caller)
    finally:
        hub.leave(channel, listener)


async def _start(
    comments: Comments, hub: Hub, listener: Listener, caller: Joined, after: str | None
) -> str | None:
    """First frame: the channel's mode and its history; then whatever arrived meanwhile."""
    try:
        await asyncio.wait_for(hub.ready.wait(), READY_TIMEOUT_S)
    except TimeoutError:
        raise CommentsUnavailable("comments are unavailable for a moment") from None
    frame, last_id = await _history_frame(comments, caller, after)
    listener.queue.put_nowait(frame)
    hub.release(listener, last_id)
    return last_id


async def _history_frame(
    comments: Comments, caller: Joined, after: str | None
) -> tuple[str, str | None]:
    channel = caller.channel.id
    limits = comments.limits
    limit = limits.history_max if after else limits.join_history
    page = await comments.history(channel, after=after, limit=limit, moderator=caller.moderator)
    settings = await comments.settings(channel)
    return dumps([settings.event(), *page.messages]), page.last_id


async def _run(
    websocket: WebSocket, comments: Comments, listener: Listener, caller: Joined
) -> None:
    """Receive here, send from one task of the connection's own (the lighter the idle
    connection, the more a process holds): the sender closes with the stop's code, which
    ends the receiving too."""
    sender = asyncio.ensure_future(_send(websocket, listener))
    try:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await _receive(websocket, comments, listener, caller)
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)


async def _send(websocket: WebSocket, listener: Listener) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await pump(listener, websocket.send_text)
        await _close(websocket, listener.close_code)


_REASONS = {
    LAGGING: "lagging: resume with ?after=",
    RESUME: "resume with ?after=",
    NOT_AVAILABLE: "not available where you are",
    GOING_AWAY: "the server is stopping",
}


async def _close(websocket: WebSocket, code: int) -> None:
    reason = _REASONS.get(code, "")
    # The close frame queues behind what the kernel still holds for a slow client; it gets a
    # while to read that far (its queue is already freed), then the connection is dropped.
    with contextlib.suppress(TimeoutError, RuntimeError, OSError, WebSocketDisconnect):
        await asyncio.wait_for(websocket.close(code, reason), CLOSE_TIMEOUT_S)


async def _receive(
    websocket: WebSocket, comments: Comments, listener: Listener, caller: Joined
) -> None:
    while True:
        raw = await websocket.receive_text()
        reply = await _handle(comments, caller, raw)
        try:
            listener.queue.put_nowait(dumps([reply]))
        except asyncio.QueueFull:
            listener.stop(LAGGING)
            return


async def _handle(comments: Comments, caller: Joined, raw: str) -> dict[str, Any]:
    """One client frame → the reply for its sender (``ack``, ``liked``, ``error``...)."""
    try:
        frame = ClientFrame.validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return {"type": "error", "nonce": None, "code": "invalid_frame", "message": where}
    nonce = frame.nonce if isinstance(frame, PostIn) else None
    try:
        return await _act(comments, caller, frame)
    except CourtsideError as exc:
        return error_event(nonce, exc)


async def _act(
    comments: Comments, caller: Joined, frame: PostIn | LikeIn | ReportIn
) -> dict[str, Any]:
    channel = caller.channel.id
    if isinstance(frame, PostIn):
        posted = await comments.post(caller.channel, caller.poster(), frame.text, frame.media_ms)
        if posted.state is State.HELD:
            message = "held for review by the channel's moderators"
            return {"type": "error", "nonce": frame.nonce, "code": "held_for_review",
                    "message": message, "id": posted.id}  # fmt: skip
        return {"type": "ack", "nonce": frame.nonce, "id": posted.id}
    if isinstance(frame, LikeIn):
        likes = await comments.like(channel, frame.id, caller.poster().key)
        return {"type": "liked", "id": frame.id, "likes": likes}
    await comments.report(channel, frame.id, caller.poster().key, frame.reason)
    return {"type": "reported", "id": frame.id}


@router.get("/{channel_id}/events", response_class=StreamingResponse)
async def comment_events(
    request: Request,
    channel_id: str,
    after: AfterQuery = None,
    token: TokenQuery = None,
    last_event_id: Annotated[str | None, Header(max_length=40)] = None,
) -> StreamingResponse:
    """The channel's events as Server-Sent Events (read-only fallback for the WebSocket):
    each ``data:`` is a JSON array of events, ``id:`` its last message id, so a browser's
    automatic reconnect (``Last-Event-ID``) resumes where it stopped. **Who:** anyone who may
    watch the item (anonymous too)."""
    caller = await run_in_threadpool(join_connection, request, channel_id, token)
    resume = after or (last_event_id if last_event_id and is_id(last_event_id) else None)
    comments, hub = comments_of(request.app.state), hub_of(request.app.state)
    listener = hub.join(caller.channel.id, moderator=False, sse=True, viewer=_rechecked(caller))
    try:
        last_id = await _start(comments, hub, listener, caller, resume)
    except CommentsUnavailable:
        hub.leave(caller.channel.id, listener)
        raise
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        _sse(hub, caller.channel.id, listener, last_id),
        media_type="text/event-stream",
        headers=headers,
    )


async def _sse(
    hub: Hub, channel: str, listener: Listener, last_id: str | None
) -> AsyncIterator[str]:
    """Until the client leaves or falls behind (then its browser reconnects by itself)."""
    try:
        first = listener.queue.get_nowait()
        yield (f"id: {last_id}\n" if last_id else "") + f"data: {first}\n\n"
        while not listener.stopped.is_set():
            try:
                frame = await asyncio.wait_for(listener.queue.get(), SSE_KEEPALIVE_S)
            except TimeoutError:
                frame = ": keep-alive\n\n"
            if frame:
                yield frame
    finally:
        hub.leave(channel, listener)
