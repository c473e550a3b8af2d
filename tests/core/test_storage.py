"""The ObjectStore contract, run against a real directory and a real (moto) S3 server."""

from __future__ import annotations

import io
import os
import re
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.errors import (
    InvalidInput,
    InvalidKey,
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
    TooLarge,
)
from core.settings import Settings
from core.storage import (
    LocalObjectStore,
    ObjectStore,
    S3ObjectStore,
    guess_content_type,
    make_object_store,
    make_s3_client,
    validate_key,
)
from tests.s3server import closed_port, moto_s3_server, moto_settings

MIB = 1024 * 1024
BAD_KEYS = ["../x", "/abs", "a//b", "a\\b", "", "a/./b", "a/../b", "a/", "a\x00b", "a\nb"]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with moto_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_settings(s3_endpoint: str) -> Settings:
    # A fresh bucket per test: the server (and its state) is shared by the whole session.
    return moto_settings(s3_endpoint, f"test-{uuid.uuid4().hex}")


@pytest.fixture
def s3_store(s3_settings: Settings) -> S3ObjectStore:
    store = make_object_store(s3_settings)
    assert isinstance(store, S3ObjectStore)
    store.ensure_bucket()
    return store


@pytest.fixture
def local_store(tmp_path: Path) -> LocalObjectStore:
    store = make_object_store(Settings(storage_backend="local", media_dir=tmp_path / "media"))
    assert isinstance(store, LocalObjectStore)
    return store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    backend: ObjectStore = request.getfixturevalue(f"{request.param}_store")
    return backend


def _payload(size: int) -> bytes:
    # Not all one byte value, so a misplaced offset shows up as a mismatch.
    return (bytes(range(256)) * (size // 256 + 1))[:size]


class TrickleStream(io.BytesIO):
    """A stream that says it cannot seek and whose reads come back short, like a socket."""

    def __init__(self, data: bytes, max_read: int = 64 * 1024) -> None:
        super().__init__(data)
        self._max_read = max_read

    def seekable(self) -> bool:
        return False

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > self._max_read:
            size = self._max_read
        return super().read(size)


# --- round trips ---------------------------------------------------------------------------


def test_put_bytes_round_trip(store: ObjectStore) -> None:
    store.put_bytes("videos/1/meta.json", b'{"a": 1}')
    assert store.get_bytes("videos/1/meta.json") == b'{"a": 1}'


def test_put_bytes_overwrites(store: ObjectStore) -> None:
    store.put_bytes("a.txt", b"old")
    store.put_bytes("a.txt", b"new!")
    assert store.get_bytes("a.txt") == b"new!"
    assert store.stat("a.txt").size == 4


def test_put_stream_round_trip_returns_size(store: ObjectStore) -> None:
    data = _payload(3 * MIB + 17)
    written = store.put_stream("videos/1/source.mp4", io.BytesIO(data))
    assert written == len(data)
    assert store.get_bytes("videos/1/source.mp4") == data


def test_put_stream_of_nothing(store: ObjectStore) -> None:
    assert store.put_stream("empty.bin", io.BytesIO(b"")) == 0
    assert store.get_bytes("empty.bin") == b""
    assert store.stat("empty.bin").size == 0


def test_put_stream_with_short_reads_spanning_parts(store: ObjectStore) -> None:
    # Over the 8 MiB multipart threshold, fed 64 KiB at a time: s3transfer would otherwise take
    # the first short read for the whole object or send undersized parts.
    data = _payload(9 * MIB + 5)
    stream = TrickleStream(data)
    assert len(stream.read(1 * MIB)) == 64 * 1024  # really short
    stream.seek(0)
    assert store.put_stream("videos/2/source.mp4", stream) == len(data)
    assert store.get_bytes("videos/2/source.mp4") == data


def test_put_file_and_download_file_round_trip(store: ObjectStore, tmp_path: Path) -> None:
    data = _payload(200_000)
    source = tmp_path / "in.mp4"
    source.write_bytes(data)
    store.put_file("videos/3/in.mp4", source)

    target = tmp_path / "out.mp4"
    store.download_file("videos/3/in.mp4", target)
    assert target.read_bytes() == data
    assert not [p for p in tmp_path.iterdir() if p.name not in ("in.mp4", "out.mp4", "media")]


def test_put_file_missing_source_is_plain_file_not_found(
    store: ObjectStore, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError) as info:
        store.put_file("x.mp4", tmp_path / "nope.mp4")
    assert not isinstance(info.value, ObjectNotFound)
    assert not store.exists("x.mp4")


# --- metadata ------------------------------------------------------------------------------


def test_stat_reports_size_and_hls_content_type(store: ObjectStore) -> None:
    playlist = b"#EXTM3U\n#EXT-X-VERSION:7\n"
    store.put_bytes("videos/1/hls/master.m3u8", playlist)
    info = store.stat("videos/1/hls/master.m3u8")
    assert info.key == "videos/1/hls/master.m3u8"
    assert info.size == len(playlist)
    assert info.content_type == "application/vnd.apple.mpegurl"
    assert info.etag


def test_etag_changes_when_object_is_replaced(store: ObjectStore) -> None:
    store.put_bytes("seg.m4s", b"one")
    first = store.stat("seg.m4s").etag
    store.put_bytes("seg.m4s", b"two!")
    assert store.stat("seg.m4s").etag != first


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("a/master.m3u8", "application/vnd.apple.mpegurl"),
        ("a/seg_001.m4s", "video/iso.segment"),
        ("a/init.MP4", "video/mp4"),
        ("a/subs.vtt", "text/vtt"),
        ("a/poster.jpg", "image/jpeg"),
        ("a/blob", "application/octet-stream"),
    ],
)
def test_guess_content_type(key: str, expected: str) -> None:
    assert guess_content_type(key) == expected


# --- ranges --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, None, slice(0, None)),
        (10, 19, slice(10, 20)),
        (1000, None, slice(1000, None)),
        (0, 0, slice(0, 1)),
        (5000, 99_999, slice(5000, None)),  # end past the object is cut short
        (10_240, None, slice(0, 0)),  # starts exactly at the end: nothing
        (20_000, 30_000, slice(0, 0)),  # starts past the end: nothing
    ],
)
def test_iter_range(store: ObjectStore, start: int, end: int | None, expected: slice) -> None:
    data = _payload(10_240)
    store.put_bytes("r.bin", data)
    chunks = list(store.iter_range("r.bin", start, end, chunk_size=1000))
    assert b"".join(chunks) == data[expected]
    assert all(0 < len(chunk) <= 1000 for chunk in chunks)


@pytest.mark.parametrize(("start", "end", "chunk"), [(-1, None, 10), (5, 4, 10), (0, None, 0)])
def test_iter_range_refuses_bad_arguments(
    store: ObjectStore, start: int, end: int | None, chunk: int
) -> None:
    with pytest.raises(InvalidInput):
        store.iter_range("r.bin", start, end, chunk_size=chunk)


# --- exists, delete, list ------------------------------------------------------------------


def test_exists_and_delete(store: ObjectStore) -> None:
    assert not store.exists("d/x.ts")
    store.put_bytes("d/x.ts", b"x")
    assert store.exists("d/x.ts")
    store.delete("d/x.ts")
    assert not store.exists("d/x.ts")
    store.delete("d/x.ts")  # again: missing is fine
    assert list(store.list_keys("")) == []


def test_prefix_is_not_an_object(store: ObjectStore) -> None:
    store.put_bytes("v/1/a.ts", b"a")
    assert not store.exists("v/1")
    store.delete("v/1")  # a "directory" locally; nothing on S3
    assert store.exists("v/1/a.ts")
    with pytest.raises(ObjectNotFound):
        store.get_bytes("v/1")


def test_delete_prefix_counts_and_spares_other_prefixes(store: ObjectStore) -> None:
    for key in ["v/1/a.ts", "v/1/hls/b.ts", "v/10/c.ts", "v/2/d.ts", "w/e.ts"]:
        store.put_bytes(key, b"x")
    assert store.delete_prefix("v/1/") == 2
    assert list(store.list_keys("")) == ["v/10/c.ts", "v/2/d.ts", "w/e.ts"]
    assert store.delete_prefix("v/1/") == 0


def test_delete_prefix_in_batches(store: ObjectStore) -> None:
    # More than one page of list_objects_v2 / one DeleteObjects call on S3.
    keys = [f"many/{i:05d}.ts" for i in range(1005)]
    for key in keys:
        store.put_bytes(key, b"")
    store.put_bytes("keep/me.ts", b"k")
    assert store.delete_prefix("many/") == 1005
    assert list(store.list_keys("")) == ["keep/me.ts"]


def test_delete_prefix_refuses_empty_prefix(store: ObjectStore) -> None:
    store.put_bytes("a.ts", b"a")
    with pytest.raises(InvalidKey):
        store.delete_prefix("")
    assert store.exists("a.ts")


def test_list_keys_is_sorted_and_uses_string_prefixes(store: ObjectStore) -> None:
    for key in ["v/2/b.ts", "v/10/a.ts", "v/1/z.ts", "v/1/a/b.ts", "x.ts"]:
        store.put_bytes(key, b"")
    assert list(store.list_keys("v/1/")) == ["v/1/a/b.ts", "v/1/z.ts"]
    assert list(store.list_keys("v/1")) == ["v/1/a/b.ts", "v/1/z.ts", "v/10/a.ts"]
    assert list(store.list_keys("")) == ["v/1/a/b.ts", "v/1/z.ts", "v/10/a.ts", "v/2/b.ts", "x.ts"]
    assert list(store.list_keys("nothing/")) == []


# --- missing objects and bad keys ----------------------------------------------------------


def test_missing_object_raises_object_not_found(store: ObjectStore, tmp_path: Path) -> None:
    calls: list[Callable[[], object]] = [
        lambda: store.get_bytes("no/such.ts"),
        lambda: store.stat("no/such.ts"),
        lambda: store.download_file("no/such.ts", tmp_path / "out.ts"),
        lambda: list(store.iter_range("no/such.ts")),
    ]
    for call in calls:
        with pytest.raises(ObjectNotFound, match=re.escape("no/such.ts")) as info:
            call()
        assert isinstance(info.value, FileNotFoundError)
    assert not (tmp_path / "out.ts").exists()


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys_are_refused_everywhere(store: ObjectStore, key: str, tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(b"x")
    calls: list[Callable[[], object]] = [
        lambda: store.put_bytes(key, b"x"),
        lambda: store.put_stream(key, io.BytesIO(b"x")),
        lambda: store.put_file(key, source),
        lambda: store.get_bytes(key),
        lambda: store.stat(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: store.iter_range(key),
        lambda: store.download_file(key, tmp_path / "out"),
        lambda: store.presigned_get_url(key, expires_s=60),
    ]
    for call in calls:
        with pytest.raises(InvalidKey):
            call()
    assert list(store.list_keys("")) == []


def test_validate_key_limits() -> None:
    assert validate_key("videos/1/hls/720p/seg_00001.m4s") == "videos/1/hls/720p/seg_00001.m4s"
    assert validate_key("é" * 512) == "é" * 512  # 1024 bytes exactly
    with pytest.raises(InvalidKey, match="1024"):
        validate_key("é" * 512 + "x")
    with pytest.raises(InvalidKey):
        validate_key("a/..")
    with pytest.raises(InvalidKey):
        validate_key("a\x7fb")


def test_local_key_cannot_escape_through_a_symlink(local_store: LocalObjectStore) -> None:
    outside = local_store.root.parent / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    os.symlink(outside, local_store.root / "link")
    with pytest.raises(InvalidKey, match="outside"):
        local_store.get_bytes("link/secret.txt")
    with pytest.raises(InvalidKey):
        local_store.put_bytes("link/new.txt", b"x")
    assert not (outside / "new.txt").exists()


def test_local_partial_files_are_never_listed(local_store: LocalObjectStore) -> None:
    local_store.put_bytes("v/a.ts", b"a")
    (local_store.root / "v" / ".abc.courtside-partial").write_bytes(b"half")
    assert list(local_store.list_keys("")) == ["v/a.ts"]
    with pytest.raises(InvalidKey):
        local_store.put_bytes("v/x.courtside-partial", b"x")


def test_local_delete_prunes_empty_directories(local_store: LocalObjectStore) -> None:
    local_store.put_bytes("v/1/hls/a.ts", b"a")
    local_store.put_bytes("v/2/b.ts", b"b")
    local_store.delete_prefix("v/1/")
    assert sorted(p.name for p in (local_store.root / "v").iterdir()) == ["2"]


# --- upload limits -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "limit"),
    [(1000, 1000), (9 * MIB, 9 * MIB)],
    ids=["small", "multipart"],
)
def test_put_stream_exactly_at_limit_is_accepted(store: ObjectStore, size: int, limit: int) -> None:
    data = _payload(size)
    assert store.put_stream("up/at-limit.mp4", io.BytesIO(data), max_bytes=limit) == size
    assert store.get_bytes("up/at-limit.mp4") == data


@pytest.mark.parametrize(
    ("size", "limit"),
    [(1001, 1000), (9 * MIB, 8 * MIB + MIB // 2)],
    ids=["small", "multipart"],
)
def test_put_stream_over_limit_raises_and_leaves_nothing(
    store: ObjectStore, size: int, limit: int
) -> None:
    with pytest.raises(TooLarge, match=f"{limit} bytes"):
        store.put_stream("up/too-big.mp4", io.BytesIO(_payload(size)), max_bytes=limit)
    assert not store.exists("up/too-big.mp4")
    assert list(store.list_keys("")) == []


def test_put_stream_over_limit_keeps_previous_object(store: ObjectStore) -> None:
    store.put_bytes("up/v.mp4", b"previous")
    with pytest.raises(TooLarge):
        store.put_stream("up/v.mp4", io.BytesIO(b"x" * 11), max_bytes=10)
    assert store.get_bytes("up/v.mp4") == b"previous"


def _recording_store(settings: Settings, bucket: str) -> tuple[S3ObjectStore, list[str]]:
    """A store on a client of our own, plus the names of the S3 operations it calls."""
    client = make_s3_client(settings)
    operations: list[str] = []

    def record(model: Any, **_: Any) -> None:
        operations.append(model.name)

    client.meta.events.register("before-call.s3", record)
    return S3ObjectStore(client, bucket), operations


def test_s3_over_limit_multipart_upload_is_aborted(
    s3_store: S3ObjectStore, s3_settings: Settings
) -> None:
    store, operations = _recording_store(s3_settings, s3_store.bucket)
    with pytest.raises(TooLarge):
        store.put_stream("up/big.mp4", io.BytesIO(_payload(17 * MIB)), max_bytes=12 * MIB)

    # The first 8 MiB fit, so a multipart upload was opened before the limit was crossed.
    # (Whether its first part was sent by then is a race between s3transfer's threads.)
    assert "CreateMultipartUpload" in operations
    assert "AbortMultipartUpload" in operations
    assert "CompleteMultipartUpload" not in operations
    # Parts left behind would be billed as storage if the upload stayed open.
    client = make_s3_client(s3_settings)
    assert client.list_multipart_uploads(Bucket=s3_store.bucket).get("Uploads", []) == []
    assert not s3_store.exists("up/big.mp4")


def test_s3_short_reads_still_stream_in_parts(
    s3_store: S3ObjectStore, s3_settings: Settings
) -> None:
    # s3transfer takes a short first read for "smaller than the threshold" and then reads the
    # rest in one call, into memory, as a single PUT. The store must fill its reads instead.
    store, operations = _recording_store(s3_settings, s3_store.bucket)
    data = _payload(17 * MIB)
    assert store.put_stream("up/trickle.mp4", TrickleStream(data)) == len(data)
    assert "PutObject" not in operations
    assert operations.count("UploadPart") == 3  # 8 + 8 + 1 MiB
    assert store.get_bytes("up/trickle.mp4") == data


def test_s3_objects_keep_the_content_type_given(s3_store: S3ObjectStore) -> None:
    s3_store.put_bytes("a/clip", b"x", content_type="video/mp4")
    s3_store.put_stream("a/live.m3u8", io.BytesIO(b"#EXTM3U\n"))
    assert s3_store.stat("a/clip").content_type == "video/mp4"
    assert s3_store.stat("a/live.m3u8").content_type == "application/vnd.apple.mpegurl"


# --- presigned URLs ------------------------------------------------------------------------


def test_local_has_no_presigned_url(local_store: LocalObjectStore) -> None:
    local_store.put_bytes("v/a.ts", b"a")
    assert local_store.presigned_get_url("v/a.ts", expires_s=60) is None


def test_s3_presigned_url_serves_the_object(s3_store: S3ObjectStore, s3_endpoint: str) -> None:
    data = _payload(5000)
    s3_store.put_bytes("v/1/seg.m4s", data)
    url = s3_store.presigned_get_url("v/1/seg.m4s", expires_s=60, content_type="video/mp4")
    assert url is not None
    assert url.startswith(f"{s3_endpoint}/{s3_store.bucket}/v/1/seg.m4s?")
    assert "X-Amz-Signature=" in url
    # Only ever the loopback moto server, never a URL from outside the test.
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
        assert response.read() == data
        assert response.headers["Content-Type"] == "video/mp4"


def test_s3_presigned_url_expiry_is_bounded(s3_store: S3ObjectStore) -> None:
    with pytest.raises(InvalidInput):
        s3_store.presigned_get_url("v/a.ts", expires_s=0)
    with pytest.raises(InvalidInput):
        s3_store.presigned_get_url("v/a.ts", expires_s=8 * 24 * 3600)


# --- readiness -----------------------------------------------------------------------------


def test_check_passes(store: ObjectStore) -> None:
    store.check()
    store.put_bytes("after-check.txt", b"ok")
    assert store.exists("after-check.txt")


def test_local_check_fails_without_root(tmp_path: Path) -> None:
    with pytest.raises(StorageUnavailable):
        LocalObjectStore(tmp_path / "missing").check()


def test_s3_check_fails_for_missing_bucket(s3_settings: Settings) -> None:
    store = S3ObjectStore.from_settings(s3_settings)  # bucket never created
    with pytest.raises(StorageError, match="does not exist") as info:
        store.check()
    assert not isinstance(info.value, ObjectNotFound)


def test_s3_unreachable_is_storage_unavailable() -> None:
    settings = moto_settings(f"http://127.0.0.1:{closed_port()}", "nowhere")
    client = make_s3_client(settings, max_attempts=2, connect_timeout=1, read_timeout=1)
    store = S3ObjectStore(client, "nowhere")
    with pytest.raises(StorageUnavailable, match="unreachable") as info:
        store.check()
    assert isinstance(info.value, ConnectionError)
    with pytest.raises(StorageUnavailable, match=re.escape("a.ts")):
        store.get_bytes("a.ts")
