"""Fan accounts: register, sign in, sign out, who am I."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, EmailStr, Field

from core import auth
from core.deps import PrincipalDep, SessionDep, SettingsDep
from core.errors import Unauthenticated

router = APIRouter(prefix="/v1", tags=["accounts"])


class RegisterIn(BaseModel):
    email: EmailStr
    handle: str = Field(min_length=3, max_length=40, pattern=r"^[A-Za-z0-9_]+$")
    password: str = Field(min_length=8, max_length=256)


class SignInIn(BaseModel):
    email: EmailStr
    password: str = Field(min_length=1, max_length=256)


class SessionOut(BaseModel):
    token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type name, not a secret


class MeOut(BaseModel):
    kind: str
    id: int | None
    role: str | None
    handle: str
    leagues: list[int]


@router.post("/accounts", status_code=status.HTTP_201_CREATED, response_model=SessionOut)
def register(session: SessionDep, settings: SettingsDep, body: RegisterIn) -> SessionOut:
    """Create a fan account and sign it in. **Who:** anyone."""
    auth.create_user(session, email=body.email, handle=body.handle, password=body.password)
    ttl = timedelta(seconds=settings.session_ttl_s)
    token = auth.sign_in(session, email=body.email, password=body.password, ttl=ttl)
    session.commit()
    return SessionOut(token=token)


@router.post("/sessions", response_model=SessionOut)
def sign_in(session: SessionDep, settings: SettingsDep, body: SignInIn) -> SessionOut:
    """Exchange email and password for a session token. **Who:** anyone."""
    ttl = timedelta(seconds=settings.session_ttl_s)
    token = auth.sign_in(session, email=body.email, password=body.password, ttl=ttl)
    session.commit()
    return SessionOut(token=token)


@router.delete("/sessions/current", status_code=status.HTTP_204_NO_CONTENT)
def sign_out(request: Request, session: SessionDep, principal: PrincipalDep) -> None:
    """End the current session. **Who:** a signed-in user."""
    if principal.kind != "user":
        raise Unauthenticated("sign in first")
    auth.sign_out(session, request.headers["authorization"].partition(" ")[2].strip())
    session.commit()


@router.get("/me", response_model=MeOut)
def me(principal: PrincipalDep) -> MeOut:
    """Who the bearer token belongs to. **Who:** anyone (anonymous gets kind=anonymous)."""
    return MeOut(
        kind=principal.kind,
        id=principal.id,
        role=principal.role.value if principal.role else None,
        handle=principal.handle,
        leagues=sorted(principal.league_ids),
    )
