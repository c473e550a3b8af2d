"""Object storage for media: a local directory in development, S3 (or an S3 clone) in production.

Everything outside this package talks to an :class:`ObjectStore` and only ever sees the
project's own errors from :mod:`core.errors`, never a botocore exception. The package is split
into :mod:`core.storage.base` (the protocol and what both backends share),
:mod:`core.storage.local` and :mod:`core.storage.s3`; the last is the only module allowed to
import boto3 (ruff's banned-api rule enforces it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.storage.base import ObjectInfo, ObjectStore, guess_content_type, validate_key
from core.storage.local import LocalObjectStore
from core.storage.s3 import S3ObjectStore, make_s3_client

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = [
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectStore",
    "S3ObjectStore",
    "guess_content_type",
    "make_object_store",
    "make_s3_client",
    "validate_key",
]


def make_object_store(settings: Settings) -> ObjectStore:
    """The store ``settings.storage_backend`` names; the local root is created if missing."""
    if settings.storage_backend == "s3":
        return S3ObjectStore.from_settings(settings)
    root = settings.local_media_dir
    root.mkdir(parents=True, exist_ok=True)
    return LocalObjectStore(root)
