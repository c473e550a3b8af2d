"""WHEP endpoints: ``POST /v1/live/{id}/whep`` (SDP offer) → 201 + answer + ``Location``;
``DELETE`` that location ends the preview."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response, status
from starlette.concurrency import run_in_threadpool

from core.deps import PrincipalDep, SessionDep
from core.errors import Unauthenticated
from ingest.whip_routes import SDP_TYPE, read_sdp
from player_api.access import RightsDep, ViewerDep
from player_api.whep import WhepViewers, authorize_viewer

router = APIRouter(prefix="/v1/live", tags=["live"])

_SDP_RESPONSES: dict[int | str, dict[str, object]] = {
    201: {"content": {SDP_TYPE: {}}, "description": "The SDP answer; Location: the session"},
}


def whep_viewers(request: Request) -> WhepViewers:
    viewers: WhepViewers = request.app.state.whep
    return viewers


@router.post(
    "/{stream_id}/whep",
    status_code=status.HTTP_201_CREATED,
    response_class=Response,
    responses=_SDP_RESPONSES,
    openapi_extra={"requestBody": {"content": {SDP_TYPE: {"schema": {"type": "string"}}}}},
)
async def whep_view(
    stream_id: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    rights: RightsDep,
    viewer: ViewerDep,
) -> Response:
    """Preview a stream that is on air over WebRTC, well under a second behind the
    publisher: the body is a recvonly SDP offer (``application/sdp``, at most 64 KiB).
    Rights are checked as for playback (451 with the reason). At most ``whep_max_viewers``
    per stream (503 beyond). **Who:** the league's partners and rights managers,
    moderators, admins."""
    now = datetime.now(UTC)
    await run_in_threadpool(authorize_viewer, session, rights, principal, viewer, stream_id, now)
    session.close()
    offer = await read_sdp(request)
    found, answer = await whep_viewers(request).open(stream_id, principal.label, offer)
    return Response(
        answer,
        status_code=status.HTTP_201_CREATED,
        media_type=SDP_TYPE,
        headers={"Location": f"/v1/live/{stream_id}/whep/{found.id}"},
    )


@router.delete("/{stream_id}/whep/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def whep_end(
    stream_id: str, session_id: str, request: Request, principal: PrincipalDep
) -> Response:
    """End a preview. **Who:** the same caller as its POST."""
    if not principal.is_authenticated:
        raise Unauthenticated("sign in or send an API key")
    await whep_viewers(request).end(session_id, stream_id, principal.label)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
