"""What clients send: REST bodies and WebSocket frames (``{"type": ...}``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter

# Raw text may be longer than the limit before cleaning (controls, mark floods); this caps
# what is even looked at.
RAW_TEXT_MAX = 20_000
MessageId = Annotated[str, Field(min_length=3, max_length=40, pattern=r"^\d{1,20}-\d{1,10}$")]


class PostIn(BaseModel):
    type: Literal["post"] = "post"
    text: str = Field(max_length=RAW_TEXT_MAX)
    # Highlights: position in the clip (ms); live: the program date time seen (epoch ms).
    media_ms: int | None = Field(default=None, ge=0)
    nonce: str | None = Field(default=None, max_length=64)


class LikeIn(BaseModel):
    type: Literal["like"] = "like"
    id: MessageId


class ReportIn(BaseModel):
    type: Literal["report"] = "report"
    id: MessageId
    reason: str = Field(default="", max_length=300)


ClientFrame = TypeAdapter(Annotated[PostIn | LikeIn | ReportIn, Field(discriminator="type")])


class ReasonIn(BaseModel):
    reason: str = Field(default="", max_length=300)


class SettingsIn(BaseModel):
    mode: Literal["open", "account_age", "verified", "closed"] = "open"
    min_account_age_s: int = Field(default=0, ge=0, le=10 * 365 * 24 * 3600)
    slow_mode_s: int = Field(default=0, ge=0, le=24 * 3600)


class TimeoutIn(BaseModel):
    # An author id as messages carry it ("user:5"), or a user's number.
    user_id: str | int
    seconds: int = Field(ge=1, le=14 * 24 * 3600)


class BanIn(BaseModel):
    user_id: str | int


class BlockedTermsIn(BaseModel):
    terms: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(max_length=5000)


def author_key(user_id: str | int) -> str:
    """``5`` → ``user:5``; an author id (``user:5``, ``api_key:2``) as it is."""
    return f"user:{user_id}" if isinstance(user_id, int) or user_id.isdigit() else user_id
