"""Project errors → HTTP responses with one shape: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import (
    Conflict,
    CourtsideError,
    Forbidden,
    InvalidInput,
    InvalidKey,
    NotFound,
    StorageUnavailable,
    TooLarge,
    Unauthenticated,
)
from ingest.uploads import UnsupportedMediaType
from ingest.whip import CapacityReached
from player_api.access import NotAvailable
from player_api.comments.archiver import ArchiveFailed
from player_api.comments.model import CommentsUnavailable, CommentTextRefused, RateLimited
from player_api.media_response import RangeNotSatisfiable

# Most specific first: the first match wins.
STATUS_BY_ERROR: tuple[tuple[type[CourtsideError], int], ...] = (
    (NotAvailable, 451),
    (RateLimited, 429),  # a comment refused by the rate limit or slow mode
    (CommentTextRefused, 422),  # before Forbidden: an empty or too long comment
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (TooLarge, 413),
    (UnsupportedMediaType, 415),
    (RangeNotSatisfiable, 416),
    (InvalidInput, 422),
    (InvalidKey, 422),  # a path the store refuses to name
    (StorageUnavailable, 503),
    (CapacityReached, 503),
    (CommentsUnavailable, 503),
    (ArchiveFailed, 503),
)


def error_body(code: str, message: str, details: object = None) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "details": details}}


def status_for(exc: CourtsideError) -> int:
    return next((status for cls, status in STATUS_BY_ERROR if isinstance(exc, cls)), 500)


async def _courtside_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CourtsideError)  # noqa: S101 - registered for this type only
    status = status_for(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    details = getattr(exc, "details", None)
    return JSONResponse(
        error_body(exc.code, str(exc), details), status_code=status, headers=headers
    )


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for this type only
    fields = [".".join(str(p) for p in err["loc"] if p != "body") for err in exc.errors()]
    message = "invalid or missing fields: " + ", ".join(dict.fromkeys(fields))
    details = [{"field": f, "problem": e["msg"]} for f, e in zip(fields, exc.errors(), strict=True)]
    return JSONResponse(error_body("validation_error", message, details), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for this type only
    if isinstance(exc.__cause__, CourtsideError):
        # FastAPI wraps errors raised while reading a form (e.g. the body limit) in a 400.
        return await _courtside_error(request, exc.__cause__)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CourtsideError, _courtside_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
