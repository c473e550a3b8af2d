"""FastAPI dependencies shared by every router, as typed aliases (``SessionDep`` …).

They read what the composition root (web.app.create_app) put on ``app.state``; nothing here
builds a connection at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from core.auth import ANONYMOUS, Principal, require_role, resolve_bearer
from core.errors import Unauthenticated
from core.models import Role
from core.settings import Settings
from core.storage import ObjectStore


# Trivial dependencies are ``async`` so FastAPI calls them on the event loop: a sync one costs
# a thread-pool hand-off on every request, which dominated the playlist route's time.
async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> ObjectStore:
    store: ObjectStore = request.app.state.store
    return store


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; committed by the route (or rolled back on error)."""
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    with factory() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StoreDep = Annotated[ObjectStore, Depends(get_store)]
SessionDep = Annotated[Session, Depends(get_session)]


def get_principal(request: Request, session: SessionDep) -> Principal:
    """The caller from ``Authorization: Bearer …``; anonymous when the header is absent.
    A header that is present but wrong is an error, never a silent downgrade."""
    header = request.headers.get("authorization")
    if header is None:
        return ANONYMOUS
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("use 'Authorization: Bearer <API key or session token>'")
    return resolve_bearer(session, token.strip())


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def requires(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that admits only ``roles`` (and admins). It runs before the body is
    validated, so an anonymous caller gets 401 whatever it sent."""

    def check(principal: PrincipalDep) -> Principal:
        require_role(principal, *roles)
        return principal

    return check


PartnerDep = Annotated[Principal, Depends(requires(Role.PARTNER))]
RightsManagerDep = Annotated[Principal, Depends(requires(Role.RIGHTS_MANAGER))]
