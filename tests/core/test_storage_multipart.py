"""Native multipart uploads on a real (moto) S3 server, and the local store's refusal of them."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from core.errors import InvalidInput, ObjectNotFound, StorageUnavailable
from core.settings import Settings
from core.storage import LocalObjectStore, S3ObjectStore, make_s3_client
from core.storage.base import MultipartUnsupported
from tests.s3server import closed_port, moto_s3_server, moto_settings

MIB = 1024 * 1024
PART = 5 * MIB  # S3's minimum for every part but the last


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_settings(s3_endpoint: str) -> Settings:
    return moto_settings(s3_endpoint, f"mp-{uuid.uuid4().hex}")


@pytest.fixture
def s3_store(s3_settings: Settings) -> S3ObjectStore:
    store = S3ObjectStore.from_settings(s3_settings)
    store.ensure_bucket()
    return store


def _payload(size: int, seed: int = 0) -> bytes:
    return (bytes((seed + i) % 256 for i in range(256)) * (size // 256 + 1))[:size]


def _open_uploads(settings: Settings) -> list[str]:
    listing = make_s3_client(settings).list_multipart_uploads(Bucket=settings.s3_bucket)
    return [upload["UploadId"] for upload in listing.get("Uploads", [])]


def _put(url: str, data: bytes) -> str:
    response = httpx2.put(url, content=data, timeout=30)
    assert response.status_code == 200, response.text
    return response.headers["ETag"]


def test_parts_put_to_presigned_urls_join_into_the_object(
    s3_store: S3ObjectStore, s3_settings: Settings
) -> None:
    first, last = _payload(PART, 1), _payload(1234, 2)
    upload_id = s3_store.create_multipart("sources/a/original", content_type="video/mp4")
    assert upload_id
    etags = [
        _put(s3_store.presigned_part_url("sources/a/original", upload_id, n, expires_s=60), data)
        for n, data in ((1, first), (2, last))
    ]
    parts = s3_store.list_parts("sources/a/original", upload_id)
    assert [(p.number, p.size) for p in parts] == [(1, PART), (2, 1234)]
    assert [p.etag for p in parts] == etags
    assert parts[0].etag.strip('"') == hashlib.md5(first).hexdigest()  # noqa: S324 - S3's ETag
    s3_store.complete_multipart("sources/a/original", upload_id, parts)
    assert s3_store.get_bytes("sources/a/original") == first + last
    assert s3_store.stat("sources/a/original").content_type == "video/mp4"
    assert _open_uploads(s3_settings) == []


def test_a_part_sent_again_replaces_the_first(s3_store: S3ObjectStore) -> None:
    upload_id = s3_store.create_multipart("k")
    assert upload_id
    url = s3_store.presigned_part_url("k", upload_id, 1, expires_s=60)
    _put(url, b"first try")
    _put(url, b"second")
    assert [p.size for p in s3_store.list_parts("k", upload_id)] == [6]


def test_abort_discards_the_upload_and_is_idempotent(
    s3_store: S3ObjectStore, s3_settings: Settings
) -> None:
    upload_id = s3_store.create_multipart("k")
    assert upload_id
    _put(s3_store.presigned_part_url("k", upload_id, 1, expires_s=60), b"bytes")
    assert _open_uploads(s3_settings) == [upload_id]
    s3_store.abort_multipart("k", upload_id)
    assert _open_uploads(s3_settings) == []
    with pytest.raises(ObjectNotFound, match="no such multipart upload"):
        s3_store.list_parts("k", upload_id)
    s3_store.abort_multipart("k", upload_id)  # a second abort is not an error
    assert not s3_store.exists("k")


def test_listing_an_unknown_upload_is_not_found(s3_store: S3ObjectStore) -> None:
    # (moto answers 500 rather than NoSuchUpload to completing an unknown upload, so only
    # listing is checked here; both go through the same translation.)
    with pytest.raises(ObjectNotFound, match="no such multipart upload"):
        s3_store.list_parts("k", "no-such-upload")


@pytest.mark.parametrize("number", [0, 10_001])
def test_part_numbers_outside_s3s_range_are_refused(s3_store: S3ObjectStore, number: int) -> None:
    with pytest.raises(InvalidInput, match="part number"):
        s3_store.presigned_part_url("k", "id", number, expires_s=60)


@pytest.mark.parametrize("expires_s", [0, 8 * 24 * 3600])
def test_part_url_expiry_must_be_signable(s3_store: S3ObjectStore, expires_s: int) -> None:
    with pytest.raises(InvalidInput, match="expires_s"):
        s3_store.presigned_part_url("k", "id", 1, expires_s=expires_s)


def test_unreachable_s3_is_storage_unavailable() -> None:
    settings = moto_settings(f"http://127.0.0.1:{closed_port()}", "nowhere")
    client = make_s3_client(settings, max_attempts=1, connect_timeout=1, read_timeout=1)
    store = S3ObjectStore(client, "nowhere")
    with pytest.raises(StorageUnavailable, match="start multipart upload"):
        store.create_multipart("k")
    with pytest.raises(StorageUnavailable):
        store.list_parts("k", "id")


def test_local_store_has_no_native_multipart(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    assert store.create_multipart("sources/a/original") is None
    with pytest.raises(MultipartUnsupported):
        store.presigned_part_url("k", "id", 1, expires_s=60)
    with pytest.raises(NotImplementedError):  # also the builtin it resembles
        store.list_parts("k", "id")
    with pytest.raises(MultipartUnsupported):
        store.complete_multipart("k", "id", [])
    with pytest.raises(MultipartUnsupported):
        store.abort_multipart("k", "id")
    assert list(store.list_keys("")) == []
