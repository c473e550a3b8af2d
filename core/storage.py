"""Object storage for media: a local directory in development, S3 (or an S3 clone) in production.

This is the only module allowed to import boto3 (ruff's banned-api rule enforces it). Everything
else talks to an :class:`ObjectStore` and only ever sees the project's own errors from
:mod:`core.errors`, never a botocore exception.
"""

from __future__ import annotations

import mimetypes
import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Protocol, cast

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from core.errors import (
    InvalidInput,
    InvalidKey,
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
    TooLarge,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

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

MAX_KEY_BYTES = 1024  # S3's own limit on key length, applied to both backends
DEFAULT_CHUNK_SIZE = 1 << 20
MAX_PRESIGN_EXPIRY_S = 7 * 24 * 3600  # SigV4 refuses to sign for longer than a week
_COPY_CHUNK = 1 << 20

# HLS types first: the stdlib table lacks some of them or disagrees between Python versions.
_EXPLICIT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".vtt": "text/vtt",
    ".ts": "video/mp2t",
}
# A private table built from the stdlib's defaults only, so the answer does not depend on the
# host's /etc/mime.types.
_STDLIB_TYPES = mimetypes.MimeTypes().types_map[True]
_FALLBACK_TYPE = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What :meth:`ObjectStore.stat` knows about a stored object."""

    key: str
    size: int
    content_type: str | None
    etag: str | None


class ObjectStore(Protocol):
    """Where media objects live, addressed by ``/``-separated keys.

    Keys are checked by :func:`validate_key` (:class:`~core.errors.InvalidKey` otherwise).
    Failures are the project's own: :class:`~core.errors.ObjectNotFound` (also a
    ``FileNotFoundError``) for a missing object, :class:`~core.errors.StorageUnavailable` when the
    backend cannot be reached, :class:`~core.errors.StorageError` for anything else.
    """

    def put_stream(
        self,
        key: str,
        stream: BinaryIO,
        *,
        content_type: str | None = None,
        max_bytes: int | None = None,
    ) -> int:
        """Store everything read from ``stream`` at ``key``; return the number of bytes written.

        The stream is consumed in bounded chunks, never held whole in memory. If it holds more
        than ``max_bytes`` bytes, raise :class:`~core.errors.TooLarge` and leave ``key`` as it
        was (absent if it did not exist). ``content_type`` defaults to a guess from the key.
        """
        ...

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        """Store the local file at ``path`` under ``key``."""
        ...

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        """Store ``data`` under ``key``."""
        ...

    def get_bytes(self, key: str) -> bytes:
        """Return the whole object; meant for small objects such as playlists."""
        ...

    def download_file(self, key: str, path: Path) -> None:
        """Copy the object to the local file ``path`` (its directory must exist)."""
        ...

    def iter_range(
        self,
        key: str,
        start: int = 0,
        end: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> Iterator[bytes]:
        """Yield the bytes ``start``..``end`` of the object in chunks of at most ``chunk_size``.

        ``end`` is inclusive, like an HTTP Range; ``None`` means to the end. A range running past
        the end of the object is cut short; one starting past it yields nothing. Arguments are
        checked at the call, but I/O (and so :class:`~core.errors.ObjectNotFound`) happens when
        iteration starts.
        """
        ...

    def stat(self, key: str) -> ObjectInfo:
        """Size, content type and ETag of the object."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored at ``key``."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing key is not an error."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with ``prefix``; return how many.

        ``prefix`` must not be empty: emptying the whole store is never what a caller meant.
        """
        ...

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Yield, in ascending order, the keys that start with ``prefix`` (``""`` lists all).

        ``prefix`` is a plain string prefix, as in S3: ``"a/b"`` matches ``"a/b/c"`` and
        ``"a/bc"``.
        """
        ...

    def presigned_get_url(
        self, key: str, *, expires_s: int, content_type: str | None = None
    ) -> str | None:
        """A URL a client may GET the object from directly for ``expires_s`` seconds.

        ``None`` when the backend has no such thing (local storage: the API serves the bytes
        itself). ``content_type`` overrides the Content-Type of the response.
        """
        ...

    def check(self) -> None:
        """Readiness probe: return if the store is usable, else raise a
        :class:`~core.errors.StorageError` (:class:`~core.errors.StorageUnavailable` when
        unreachable)."""
        ...


# --- keys and content types ----------------------------------------------------------------


def _describe(key: str) -> str:
    # Keys end up in log lines and error messages; keep a hostile one from flooding them.
    return repr(key if len(key) <= 120 else key[:120] + "…")


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe object key, else raise :class:`~core.errors.InvalidKey`.

    A key is non-empty, relative, at most 1024 bytes of UTF-8, free of backslashes and control
    characters, and made of non-empty ``/``-separated segments none of which is ``.`` or ``..``.
    Both backends apply the same rule, so a key that works locally works on S3 and cannot
    escape the local root.
    """
    if not key:
        raise InvalidKey("object key is empty")
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates
        raise InvalidKey(f"object key {_describe(key)} is not valid UTF-8") from exc
    if len(encoded) > MAX_KEY_BYTES:
        raise InvalidKey(f"object key {_describe(key)} is longer than {MAX_KEY_BYTES} bytes")
    if key.startswith("/"):
        raise InvalidKey(f"object key {_describe(key)} is absolute")
    if "\\" in key:
        raise InvalidKey(f"object key {_describe(key)} contains a backslash")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in key):
        raise InvalidKey(f"object key {_describe(key)} contains a control character")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidKey(f"object key {_describe(key)} has an empty, '.' or '..' segment")
    return key


def _validate_prefix(prefix: str, *, allow_empty: bool) -> str:
    # A prefix is a key, or a key followed by one "/", or (when listing) nothing at all.
    if not prefix:
        if allow_empty:
            return prefix
        raise InvalidKey("prefix is empty")
    validate_key(prefix.removesuffix("/"))
    return prefix


def guess_content_type(key: str) -> str:
    """The Content-Type for ``key``, from its extension; ``application/octet-stream`` if unknown."""
    suffix = PurePosixPath(key).suffix.lower()
    return _EXPLICIT_TYPES.get(suffix) or _STDLIB_TYPES.get(suffix) or _FALLBACK_TYPE


def _check_range(start: int, end: int | None, chunk_size: int) -> None:
    if start < 0:
        raise InvalidInput(f"range start {start} is negative")
    if end is not None and end < start:
        raise InvalidInput(f"range end {end} is before start {start}")
    if chunk_size <= 0:
        raise InvalidInput(f"chunk size {chunk_size} is not positive")


def _check_max_bytes(max_bytes: int | None) -> None:
    if max_bytes is not None and max_bytes < 0:
        raise InvalidInput(f"max_bytes {max_bytes} is negative")


def _too_large(key: str, max_bytes: int) -> TooLarge:
    return TooLarge(f"upload to {_describe(key)} is larger than the limit of {max_bytes} bytes")


class _LimitedReader:
    """Reads a stream for upload, counting bytes and refusing to go past a limit.

    Each ``read(n)`` returns exactly ``n`` bytes unless the stream ends: s3transfer takes a short
    first read as the whole object (then reads the rest in one go, into memory) and short later
    reads as undersized multipart parts, which S3 rejects. Sockets and request bodies do return
    short reads. Only ``read`` is offered so s3transfer treats it as non-seekable, buffering one
    part at a time.
    """

    def __init__(self, stream: BinaryIO, *, key: str, max_bytes: int | None) -> None:
        self._stream = stream
        self._key = key
        self._max_bytes = max_bytes
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        want = None if size is None or size < 0 else size
        parts: list[bytes] = []
        got = 0
        while want is None or got < want:
            chunk = self._stream.read(_COPY_CHUNK if want is None else want - got)
            if not chunk:
                break
            got += len(chunk)
            self._count(len(chunk))
            parts.append(chunk)
        return b"".join(parts)

    def _count(self, size: int) -> None:
        self.bytes_read += size
        if self._max_bytes is not None and self.bytes_read > self._max_bytes:
            raise _too_large(self._key, self._max_bytes)


def _chunks(source: _LimitedReader | BinaryIO, chunk_size: int = _COPY_CHUNK) -> Iterator[bytes]:
    while chunk := source.read(chunk_size):
        yield chunk


# --- local directory -----------------------------------------------------------------------

# Partial writes carry this suffix until they are renamed into place; listings skip them and
# keys may not use it, so a half-written file is never mistaken for an object.
_TMP_SUFFIX = ".courtside-partial"
_MKDIR_ATTEMPTS = 3


@contextmanager
def _os_errors(what: str, *, missing_is_not_found: bool = True) -> Iterator[None]:
    """Turn filesystem errors into storage errors naming the object."""
    try:
        yield
    except StorageError:
        raise  # already ours (ObjectNotFound is itself a FileNotFoundError)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        # A directory where a key was asked for is a prefix, not an object: "not found".
        if missing_is_not_found:
            raise ObjectNotFound(f"{what}: no such object") from exc
        raise StorageError(f"{what}: {exc.strerror or exc}") from exc
    except OSError as exc:
        raise StorageError(f"{what}: {exc.strerror or exc}") from exc


class LocalObjectStore(ObjectStore):
    """Objects as files under ``root``; for development, tests and single-host installs.

    Writes land in a temporary file beside the target and are renamed into place, so a reader
    sees the old object or the new one, never half of one. Nothing is stored beside the bytes:
    the content type is always guessed from the key's extension.
    """

    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    @property
    def root(self) -> Path:
        """The directory holding the objects."""
        return self._root

    def _path(self, key: str) -> Path:
        validate_key(key)
        if any(segment.endswith(_TMP_SUFFIX) for segment in key.split("/")):
            raise InvalidKey(f"object key {_describe(key)} uses the reserved suffix {_TMP_SUFFIX}")
        path = self._root.joinpath(*key.split("/"))
        # validate_key already rules out "..", but a symlink inside root could still lead out.
        resolved = path.resolve()
        if resolved == self._root or not resolved.is_relative_to(self._root):
            raise InvalidKey(f"object key {_describe(key)} resolves outside the storage root")
        return resolved

    def _write(self, key: str, chunks: Iterable[bytes]) -> int:
        """Write ``chunks`` to ``key`` atomically; errors from the source pass through as-is."""
        target = self._path(key)
        what = f"write {_describe(key)}"
        with _os_errors(what, missing_is_not_found=False):
            fd, tmp = self._open_temp(target.parent)
        written = 0
        try:
            with os.fdopen(fd, "wb") as out:
                # The source is read in the loop header, outside _os_errors: a failing upload
                # stream is the caller's error, not the store's.
                for chunk in chunks:
                    with _os_errors(what, missing_is_not_found=False):
                        out.write(chunk)
                    written += len(chunk)
            with _os_errors(what, missing_is_not_found=False):
                os.replace(tmp, target)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            raise
        return written

    def _open_temp(self, directory: Path) -> tuple[int, Path]:
        # A concurrent delete may prune the freshly made directory before the temp file is
        # created in it; make it again rather than fail the write.
        for attempt in range(_MKDIR_ATTEMPTS):
            directory.mkdir(parents=True, exist_ok=True)
            tmp = directory / f".{secrets.token_hex(8)}{_TMP_SUFFIX}"
            try:
                # O_EXCL: never write through someone else's file; 0o666 lets the umask decide.
                return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
            except FileNotFoundError:
                if attempt == _MKDIR_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _open(self, key: str) -> BinaryIO:
        path = self._path(key)
        with _os_errors(f"read {_describe(key)}"):
            return path.open("rb")

    def put_stream(
        self,
        key: str,
        stream: BinaryIO,
        *,
        content_type: str | None = None,
        max_bytes: int | None = None,
    ) -> int:
        _check_max_bytes(max_bytes)
        return self._write(key, _chunks(_LimitedReader(stream, key=key, max_bytes=max_bytes)))

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        self._path(key)  # refuse a bad key before opening the source
        with path.open("rb") as source:
            self._write(key, _chunks(source))

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        self._write(key, [data])

    def get_bytes(self, key: str) -> bytes:
        with self._open(key) as source, _os_errors(f"read {_describe(key)}"):
            return source.read()

    def download_file(self, key: str, path: Path) -> None:
        # Same promise as boto3's download_file: the destination appears whole or not at all.
        with self._open(key) as source:
            tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}{_TMP_SUFFIX}")
            try:
                with tmp.open("xb") as out:
                    for chunk in _chunks(source):
                        out.write(chunk)
                os.replace(tmp, path)
            except BaseException:
                with suppress(OSError):
                    tmp.unlink()
                raise

    def iter_range(
        self,
        key: str,
        start: int = 0,
        end: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> Iterator[bytes]:
        self._path(key)
        _check_range(start, end, chunk_size)
        return self._iter_range(key, start, end, chunk_size)

    def _iter_range(
        self, key: str, start: int, end: int | None, chunk_size: int
    ) -> Iterator[bytes]:
        # A generator, so the file is opened only once iteration starts and closed when it stops.
        remaining = None if end is None else end - start + 1
        with self._open(key) as source:
            source.seek(start)
            while remaining is None or remaining > 0:
                with _os_errors(f"read {_describe(key)}"):
                    chunk = source.read(
                        chunk_size if remaining is None else min(chunk_size, remaining)
                    )
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        with _os_errors(f"stat {_describe(key)}"):
            info = path.stat()
        if not path.is_file():
            raise ObjectNotFound(f"stat {_describe(key)}: no such object")
        # Not a content hash (that would mean reading the file) but it changes whenever the
        # file is replaced, which is all an HTTP validator needs.
        etag = f'"{info.st_size:x}-{info.st_mtime_ns:x}"'
        return ObjectInfo(
            key=key, size=info.st_size, content_type=guess_content_type(key), etag=etag
        )

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        with _os_errors(f"delete {_describe(key)}", missing_is_not_found=False):
            try:
                path.unlink()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                return  # nothing stored under that key
        self._prune(path.parent)

    def _prune(self, directory: Path) -> None:
        # S3 has no directories; remove the ones deletes leave empty so the local tree does not
        # fill with husks. Stops at the first directory that is not empty (or is the root).
        while directory != self._root and directory.is_relative_to(self._root):
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    def delete_prefix(self, prefix: str) -> int:
        _validate_prefix(prefix, allow_empty=False)
        count = 0
        for key in list(self.list_keys(prefix)):
            self.delete(key)
            count += 1
        return count

    def list_keys(self, prefix: str) -> Iterator[str]:
        _validate_prefix(prefix, allow_empty=True)
        # Only the directory named by the prefix's complete segments can hold matches.
        base = prefix.rpartition("/")[0]
        top = self._path(base) if base else self._root
        keys: list[str] = []
        with _os_errors(f"list {prefix!r}", missing_is_not_found=False):
            for dirpath, dirnames, filenames in os.walk(top):
                rel = Path(dirpath).relative_to(self._root).as_posix()
                stem = "" if rel == "." else rel + "/"
                # Skip subtrees that cannot match, e.g. everything but "b*" for prefix "a/b".
                dirnames[:] = [
                    name
                    for name in dirnames
                    if (stem + name + "/").startswith(prefix)
                    or prefix.startswith(stem + name + "/")
                ]
                keys.extend(
                    stem + name
                    for name in filenames
                    if not name.endswith(_TMP_SUFFIX)
                    and (stem + name).startswith(prefix)
                    and os.path.isfile(os.path.join(dirpath, name))
                )
        return iter(sorted(keys))

    def presigned_get_url(
        self, key: str, *, expires_s: int, content_type: str | None = None
    ) -> str | None:
        validate_key(key)
        return None

    def check(self) -> None:
        if not self._root.is_dir():
            raise StorageUnavailable(f"storage root {self._root} is not a directory")
        if not os.access(self._root, os.W_OK | os.X_OK):
            raise StorageUnavailable(f"storage root {self._root} is not writable")


# --- S3 ------------------------------------------------------------------------------------

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# Still failing after botocore's own retries, but worth another attempt later.
_UNAVAILABLE_CODES = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling"}
)
_MULTIPART_CHUNK = 8 * 1024 * 1024


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _translate(exc: ClientError | BotoCoreError, what: str) -> StorageError:
    """The project error for a botocore one; ``what`` names the operation and key."""
    if isinstance(exc, ClientError):
        code = _error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _NOT_FOUND_CODES:
            return ObjectNotFound(f"{what}: no such object")
        if code in _UNAVAILABLE_CODES or status >= 500:
            return StorageUnavailable(f"{what}: S3 answered {code or status}")
        message = exc.response.get("Error", {}).get("Message", "")
        detail = f"{code or status}: {message}" if message else f"{code or status}"
        return StorageError(f"{what}: S3 answered {detail}")
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        # Connection refused, DNS, TLS, timeouts and dropped connections, after retries.
        return StorageUnavailable(f"{what}: S3 unreachable: {exc}")
    return StorageError(f"{what}: {exc}")


@contextmanager
def _s3_errors(what: str) -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise _translate(exc, what) from exc


def make_s3_client(
    settings: Settings,
    *,
    max_attempts: int = 5,
    connect_timeout: float = 5,
    read_timeout: float = 60,
) -> S3Client:
    """An S3 client configured from ``settings``; the keyword arguments exist for tests."""
    config = Config(
        retries={"max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        signature_version="s3v4",
        # Path style works with every S3 clone (MinIO, moto) and with dotted bucket names.
        s3={"addressing_style": "path"},
    )
    secret = settings.s3_secret_access_key
    # A session of our own: boto3's module-level default session is not safe to create from
    # several threads at once.
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret is not None else None,
        config=config,
    )


class S3ObjectStore(ObjectStore):
    """Objects in one S3 bucket.

    The credentials need ``s3:ListBucket`` as well as object access: without it S3 answers 403
    instead of 404 for a missing key, which surfaces as a StorageError, not ObjectNotFound.
    """

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket
        # Explicit, so behaviour does not change if awscrt happens to be installed: the classic
        # client aborts a failed multipart upload and holds one part per thread in memory.
        self._transfer = TransferConfig(
            multipart_threshold=_MULTIPART_CHUNK,
            multipart_chunksize=_MULTIPART_CHUNK,
            max_concurrency=4,
            preferred_transfer_client="classic",
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> S3ObjectStore:
        """The store for ``settings.s3_bucket`` with the client from :func:`make_s3_client`."""
        return cls(make_s3_client(settings), settings.s3_bucket)

    @property
    def bucket(self) -> str:
        """The bucket holding the objects."""
        return self._bucket

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (development and tests)."""
        with _s3_errors(f"check bucket {self._bucket!r}"):
            try:
                self._client.head_bucket(Bucket=self._bucket)
                return
            except ClientError as exc:
                if _error_code(exc) not in _NOT_FOUND_CODES | {"NoSuchBucket"}:
                    raise
            region = self._client.meta.region_name
            try:
                if region and region != "us-east-1":
                    self._client.create_bucket(
                        Bucket=self._bucket,
                        CreateBucketConfiguration={"LocationConstraint": cast(Any, region)},
                    )
                else:  # us-east-1 refuses an explicit LocationConstraint
                    self._client.create_bucket(Bucket=self._bucket)
            except ClientError as exc:
                if _error_code(exc) != "BucketAlreadyOwnedByYou":  # lost a harmless race
                    raise

    def _extra_args(self, key: str, content_type: str | None) -> dict[str, Any]:
        return {"ContentType": content_type or guess_content_type(key)}

    def put_stream(
        self,
        key: str,
        stream: BinaryIO,
        *,
        content_type: str | None = None,
        max_bytes: int | None = None,
    ) -> int:
        validate_key(key)
        _check_max_bytes(max_bytes)
        reader = _LimitedReader(stream, key=key, max_bytes=max_bytes)
        # TooLarge raised by the reader comes out of upload_fileobj unchanged. Small objects are
        # read whole before the single PUT, so nothing is sent; a multipart upload is aborted by
        # s3transfer on any failure, so no parts linger.
        with _s3_errors(f"write {_describe(key)}"):
            self._client.upload_fileobj(
                cast(IO[Any], reader),  # s3transfer only calls read() on it
                self._bucket,
                key,
                ExtraArgs=self._extra_args(key, content_type),
                Config=self._transfer,
            )
        return reader.bytes_read

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        validate_key(key)
        # upload_fileobj on the open file rather than upload_file: same errors as put_stream,
        # and a missing source is a plain FileNotFoundError, not a storage error.
        with path.open("rb") as source, _s3_errors(f"write {_describe(key)}"):
            self._client.upload_fileobj(
                source,
                self._bucket,
                key,
                ExtraArgs=self._extra_args(key, content_type),
                Config=self._transfer,
            )

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        validate_key(key)
        with _s3_errors(f"write {_describe(key)}"):
            self._client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=data,
                ContentType=content_type or guess_content_type(key),
            )

    def get_bytes(self, key: str) -> bytes:
        validate_key(key)
        with _s3_errors(f"read {_describe(key)}"):
            body = self._client.get_object(Bucket=self._bucket, Key=key)["Body"]
            with body:
                return body.read()

    def download_file(self, key: str, path: Path) -> None:
        validate_key(key)
        with _s3_errors(f"download {_describe(key)}"):
            self._client.download_file(self._bucket, key, str(path), Config=self._transfer)

    def iter_range(
        self,
        key: str,
        start: int = 0,
        end: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> Iterator[bytes]:
        validate_key(key)
        _check_range(start, end, chunk_size)
        return self._iter_range(key, start, end, chunk_size)

    def _iter_range(
        self, key: str, start: int, end: int | None, chunk_size: int
    ) -> Iterator[bytes]:
        what = f"read {_describe(key)}"
        params: dict[str, Any] = {"Bucket": self._bucket, "Key": key}
        if start or end is not None:
            params["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            response = self._client.get_object(**params)
        except ClientError as exc:
            if _error_code(exc) == "InvalidRange":
                return  # starts past the end: the local backend yields nothing too
            raise _translate(exc, what) from exc
        except BotoCoreError as exc:
            raise _translate(exc, what) from exc
        body = response["Body"]
        try:
            with _s3_errors(what):  # the connection can still drop mid-body
                yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        with _s3_errors(f"stat {_describe(key)}"):
            head = self._client.head_object(Bucket=self._bucket, Key=key)
        return ObjectInfo(
            key=key,
            size=head["ContentLength"],
            content_type=head.get("ContentType"),
            etag=head.get("ETag"),
        )

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        validate_key(key)
        with _s3_errors(f"delete {_describe(key)}"):
            self._client.delete_object(Bucket=self._bucket, Key=key)

    def delete_prefix(self, prefix: str) -> int:
        _validate_prefix(prefix, allow_empty=False)
        what = f"delete prefix {_describe(prefix)}"
        count = 0
        paginator = self._client.get_paginator("list_objects_v2")
        with _s3_errors(what):
            # Pages hold at most 1000 keys, which is also DeleteObjects' limit per call.
            for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                objects: list[ObjectIdentifierTypeDef] = [
                    {"Key": item["Key"]} for item in page.get("Contents", [])
                ]
                if not objects:
                    continue
                result = self._client.delete_objects(
                    Bucket=self._bucket, Delete={"Objects": objects, "Quiet": True}
                )
                errors = result.get("Errors", [])
                count += len(objects) - len(errors)
                if errors:
                    first = errors[0]
                    raise StorageError(
                        f"{what}: {len(errors)} objects not deleted, e.g. "
                        f"{_describe(first.get('Key', ''))}: {first.get('Code', '')}"
                    )
        return count

    def list_keys(self, prefix: str) -> Iterator[str]:
        _validate_prefix(prefix, allow_empty=True)
        return self._list_keys(prefix)

    def _list_keys(self, prefix: str) -> Iterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        with _s3_errors(f"list {_describe(prefix)}"):
            for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield item["Key"]

    def presigned_get_url(
        self, key: str, *, expires_s: int, content_type: str | None = None
    ) -> str | None:
        validate_key(key)
        if not 0 < expires_s <= MAX_PRESIGN_EXPIRY_S:
            raise InvalidInput(f"expires_s must be in 1..{MAX_PRESIGN_EXPIRY_S}, not {expires_s}")
        params: dict[str, Any] = {"Bucket": self._bucket, "Key": key}
        if content_type is not None:
            params["ResponseContentType"] = content_type
        # Signing is local computation; it fails only on missing credentials or bad config.
        with _s3_errors(f"presign {_describe(key)}"):
            return self._client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=expires_s
            )

    def check(self) -> None:
        what = f"check bucket {self._bucket!r}"
        try:
            with _s3_errors(what):
                self._client.head_bucket(Bucket=self._bucket)
        except ObjectNotFound as exc:  # HEAD on a missing bucket is a bare 404
            raise StorageError(f"{what}: the bucket does not exist") from exc


def make_object_store(settings: Settings) -> ObjectStore:
    """The store ``settings.storage_backend`` names; the local root is created if missing."""
    if settings.storage_backend == "s3":
        return S3ObjectStore.from_settings(settings)
    root = settings.local_media_dir
    root.mkdir(parents=True, exist_ok=True)
    return LocalObjectStore(root)
