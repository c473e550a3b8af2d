"""What both storage backends share: the :class:`ObjectStore` protocol, key validation,
content types, argument checks and the counting upload reader."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from core.errors import InvalidInput, InvalidKey, StorageError, TooLarge

MAX_KEY_BYTES = 1024  # S3's own limit on key length, applied to both backends
DEFAULT_CHUNK_SIZE = 1 << 20
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


class MultipartUnsupported(StorageError, NotImplementedError):
    """The backend has no native multipart uploads (see :meth:`ObjectStore.create_multipart`)."""

    code = "multipart_unsupported"


@dataclass(frozen=True, slots=True)
class PartInfo:
    """One part of a multipart upload, as the store holds it: number (1-based), size, ETag."""

    number: int
    size: int
    etag: str


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

    # Native multipart uploads (S3's CreateMultipartUpload and friends). A backend without
    # them (the local directory) answers ``None`` from create_multipart and refuses the rest
    # with MultipartUnsupported; the caller then keeps parts as plain objects (ingest.resumable
    # does, behind the API's own signed part URLs), since nothing would be gained by
    # re-implementing S3's bookkeeping on a filesystem.

    def create_multipart(self, key: str, *, content_type: str | None = None) -> str | None:
        """Start a multipart upload that will become ``key``; return its upload id, or
        ``None`` when the backend has no native multipart uploads."""
        ...

    def presigned_part_url(self, key: str, upload_id: str, number: int, *, expires_s: int) -> str:
        """A URL a client may PUT part ``number`` (1..10000) to for ``expires_s`` seconds,
        without credentials of its own. The response carries the part's ``ETag`` header."""
        ...

    def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        """The parts received so far, by ascending number. An unknown (completed, aborted)
        upload raises :class:`~core.errors.ObjectNotFound`."""
        ...

    def complete_multipart(self, key: str, upload_id: str, parts: Sequence[PartInfo]) -> None:
        """Join ``parts`` (ascending numbers, as listed) into the object at ``key``."""
        ...

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Discard the upload and every part received; an unknown upload is not an error."""
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


MAX_PART_NUMBER = 10_000  # S3's limit on parts per upload, applied to both backends


def check_part_number(number: int) -> int:
    """Return ``number`` if it can name a part (1..10000), else raise InvalidInput."""
    if not 1 <= number <= MAX_PART_NUMBER:
        raise InvalidInput(f"part number {number} is not in 1..{MAX_PART_NUMBER}")
    return number


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
