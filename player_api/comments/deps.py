"""What every comment endpoint starts from: the service, the hub, and the caller's standing
in the channel (read access checked, author and moderator rights resolved)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.datastructures import State
from starlette.requests import HTTPConnection

from core.auth import ANONYMOUS, Principal, resolve_bearer
from core.deps import PrincipalDep, SessionDep
from core.errors import Forbidden, Unauthenticated
from player_api.access import RightsContext, RightsDep, ViewerDep, viewer_of
from player_api.comments.access import Channel, author_of, open_channel
from player_api.comments.hub import Hub
from player_api.comments.model import Author
from player_api.comments.service import Comments
from rights.model import Viewer


@dataclass(frozen=True)
class Joined:
    """A caller in a channel: ``author`` is None for anonymous readers."""

    channel: Channel
    principal: Principal
    moderator: bool
    author: Author | None
    viewer: Viewer

    def poster(self) -> Author:
        if self.author is None:
            raise Unauthenticated("sign in to comment")
        return self.author

    def require_moderator(self) -> None:
        if not self.moderator:
            raise Forbidden("only the channel's moderators may do this")


def signed_in(principal: PrincipalDep) -> None:
    """For routes that need a caller: anonymous ones get 401 before anything is looked up."""
    if not principal.is_authenticated:
        raise Unauthenticated("sign in or send an API key")


SIGNED_IN = [Depends(signed_in)]


def comments_of(state: State) -> Comments:
    comments: Comments = state.comments
    return comments


def hub_of(state: State) -> Hub:
    hub: Hub = state.comments_hub
    return hub


async def comments_dep(request: Request) -> Comments:
    return comments_of(request.app.state)


CommentsDep = Annotated[Comments, Depends(comments_dep)]


def joined(
    channel_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    rights: RightsDep,
    viewer: ViewerDep,
) -> Joined:
    """The caller in ``channel_id`` (404 if there is none, 451 if they may not watch it)."""
    return _joined(session, principal, rights, viewer, channel_id)


JoinedDep = Annotated[Joined, Depends(joined)]


def _joined(
    session: Session,
    principal: Principal,
    rights: RightsContext,
    viewer: Viewer,
    channel_id: str,
) -> Joined:
    now = datetime.now(UTC)
    channel, moderator = open_channel(session, rights, viewer, principal, channel_id, now)
    author = author_of(session, principal, moderator=moderator) if principal.id else None
    return Joined(channel, principal, moderator, author, viewer)


def join_connection(conn: HTTPConnection, channel_id: str, token: str | None) -> Joined:
    """For WebSocket and SSE clients, which may send ``?token=`` (browsers cannot set
    headers on either); an ``Authorization: Bearer`` header works too."""
    state = conn.app.state
    with state.sessionmaker() as session:
        principal = _principal(session, conn, token)
        viewer = viewer_of(conn, state.rights)
        return _joined(session, principal, state.rights, viewer, channel_id)


def _principal(session: Session, conn: HTTPConnection, token: str | None) -> Principal:
    if not token:
        scheme, _, token = conn.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            token = ""
    return resolve_bearer(session, token.strip()) if token.strip() else ANONYMOUS
