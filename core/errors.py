"""The project's own errors.

Each also inherits the builtin it resembles, so callers may catch either.
"""

from __future__ import annotations


class CourtsideError(Exception):
    """Base of every error the project raises on purpose."""

    code = "error"


class NotFound(CourtsideError, LookupError):
    code = "not_found"


class Conflict(CourtsideError):
    code = "conflict"


class Unauthenticated(CourtsideError, PermissionError):
    code = "unauthenticated"


class Forbidden(CourtsideError, PermissionError):
    code = "forbidden"


class InvalidInput(CourtsideError, ValueError):
    code = "invalid_input"


class TooLarge(InvalidInput):
    code = "too_large"


class Retryable(CourtsideError):
    """A failure worth another attempt (a network blip, a busy service)."""

    code = "retryable"


class PublishRefused(CourtsideError):
    """A finished item may not be published (e.g. it breaks a licence's clip limits)."""

    code = "publish_refused"


class StorageError(CourtsideError, OSError):
    code = "storage_error"


class ObjectNotFound(StorageError, FileNotFoundError):
    code = "object_not_found"


class InvalidKey(StorageError, ValueError):
    code = "invalid_key"


class StorageUnavailable(StorageError, Retryable, ConnectionError):
    code = "storage_unavailable"
