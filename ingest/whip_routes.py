"""WHIP endpoints (RFC 9725): ``POST /v1/live/{id}/whip`` with an SDP offer and the stream
key as a bearer token → 201, the SDP answer and a ``Location`` to DELETE when done.

No trickle ICE and no ICE restart: the answer carries every candidate, and PATCH on the
session URL answers 405 (the router's own, since no PATCH route exists)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from starlette.concurrency import run_in_threadpool

from core.deps import SessionDep
from core.errors import TooLarge, Unauthenticated
from ingest.uploads import UnsupportedMediaType
from ingest.whip import MAX_OFFER_BYTES, WhipSessions, authorize_publisher

router = APIRouter(prefix="/v1/live", tags=["live"])

SDP_TYPE = "application/sdp"
_SDP_RESPONSES: dict[int | str, dict[str, object]] = {
    201: {"content": {SDP_TYPE: {}}, "description": "The SDP answer; Location: the session"},
}


def bearer_secret(request: Request, what: str) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(f"send the {what} as 'Authorization: Bearer <{what}>'")
    return token.strip()


async def read_sdp(request: Request) -> str:
    """The request's SDP offer, refused unless ``application/sdp`` and at most 64 KiB."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != SDP_TYPE:
        raise UnsupportedMediaType(f"send the SDP offer as {SDP_TYPE}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_OFFER_BYTES:
        raise TooLarge(f"an SDP offer may be at most {MAX_OFFER_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_OFFER_BYTES:
            raise TooLarge(f"an SDP offer may be at most {MAX_OFFER_BYTES} bytes")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsupportedMediaType("the SDP offer is not UTF-8 text") from None


def whip_sessions(request: Request) -> WhipSessions:
    sessions: WhipSessions = request.app.state.whip
    return sessions


@router.post(
    "/{stream_id}/whip",
    status_code=status.HTTP_201_CREATED,
    response_class=Response,
    responses=_SDP_RESPONSES,
    openapi_extra={"requestBody": {"content": {SDP_TYPE: {"schema": {"type": "string"}}}}},
)
async def whip_publish(stream_id: str, request: Request, session: SessionDep) -> Response:
    """Publish over WebRTC: the body is the SDP offer (``application/sdp``, at most 64 KiB),
    the stream key goes in ``Authorization: Bearer``. The media is republished into the live
    pipeline exactly like an RTMP feed. **Who:** holders of the stream's key."""
    key = bearer_secret(request, "stream key")
    await run_in_threadpool(authorize_publisher, session, stream_id, key)
    session.close()  # no database work from here on; the negotiation takes a while
    offer = await read_sdp(request)
    whip, answer = await whip_sessions(request).open(stream_id, key, offer)
    return Response(
        answer,
        status_code=status.HTTP_201_CREATED,
        media_type=SDP_TYPE,
        headers={"Location": f"/v1/live/{stream_id}/whip/{whip.id}"},
    )


@router.delete("/{stream_id}/whip/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def whip_end(stream_id: str, session_id: str, request: Request) -> Response:
    """End a WHIP session (the same stream key as its POST). The stream then waits out its
    reconnect grace like any publisher that left. **Who:** holders of the stream's key."""
    key = bearer_secret(request, "stream key")
    await whip_sessions(request).end(session_id, stream_id, key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
