"""Objects as files in a local directory: development, tests and single-host installs."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from core.errors import InvalidKey, ObjectNotFound, StorageError, StorageUnavailable
from core.storage.base import (
    DEFAULT_CHUNK_SIZE,
    MultipartUnsupported,
    ObjectInfo,
    ObjectStore,
    PartInfo,
    _check_max_bytes,
    _check_range,
    _chunks,
    _describe,
    _LimitedReader,
    _validate_prefix,
    guess_content_type,
    validate_key,
)

__all__ = ["LocalObjectStore"]

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

    def create_multipart(self, key: str, *, content_type: str | None = None) -> str | None:
        self._path(key)
        return None  # no native multipart: callers keep parts as plain objects

    def presigned_part_url(self, key: str, upload_id: str, number: int, *, expires_s: int) -> str:
        raise MultipartUnsupported("the local store has no multipart uploads")

    def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        raise MultipartUnsupported("the local store has no multipart uploads")

    def complete_multipart(self, key: str, upload_id: str, parts: Sequence[PartInfo]) -> None:
        raise MultipartUnsupported("the local store has no multipart uploads")

    def abort_multipart(self, key: str, upload_id: str) -> None:
        raise MultipartUnsupported("the local store has no multipart uploads")

    def check(self) -> None:
        if not self._root.is_dir():
            raise StorageUnavailable(f"storage root {self._root} is not a directory")
        if not os.access(self._root, os.W_OK | os.X_OK):
            raise StorageUnavailable(f"storage root {self._root} is not writable")
