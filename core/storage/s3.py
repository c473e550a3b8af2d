"""Objects in an S3 bucket (or an S3 clone such as MinIO).

This is the only module allowed to import boto3 and botocore (ruff's banned-api rule enforces
it for boto3). Every botocore exception is translated here into the project's own errors from
:mod:`core.errors`, so nothing else ever sees one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, cast

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from core.errors import InvalidInput, ObjectNotFound, StorageError, StorageUnavailable
from core.storage.base import (
    DEFAULT_CHUNK_SIZE,
    ObjectInfo,
    ObjectStore,
    PartInfo,
    _check_max_bytes,
    _check_range,
    _describe,
    _LimitedReader,
    _validate_prefix,
    check_part_number,
    guess_content_type,
    validate_key,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, ObjectIdentifierTypeDef

    from core.settings import Settings

__all__ = ["S3ObjectStore", "make_s3_client"]

MAX_PRESIGN_EXPIRY_S = 7 * 24 * 3600  # SigV4 refuses to sign for longer than a week

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


@contextmanager
def _multipart_errors(what: str) -> Iterator[None]:
    # S3 names an unknown multipart upload NoSuchUpload; callers treat it like a missing key.
    try:
        yield
    except ClientError as exc:
        if _error_code(exc) == "NoSuchUpload":
            raise ObjectNotFound(f"{what}: no such multipart upload") from exc
        raise _translate(exc, what) from exc
    except BotoCoreError as exc:
        raise _translate(exc, what) from exc


def _check_expiry(expires_s: int) -> None:
    if not 0 < expires_s <= MAX_PRESIGN_EXPIRY_S:
        raise InvalidInput(f"expires_s must be in 1..{MAX_PRESIGN_EXPIRY_S}, not {expires_s}")


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

    # --- native multipart uploads (resumable partner uploads) ----------------------------------

    def create_multipart(self, key: str, *, content_type: str | None = None) -> str | None:
        validate_key(key)
        with _s3_errors(f"start multipart upload {_describe(key)}"):
            created = self._client.create_multipart_upload(
                Bucket=self._bucket, Key=key, ContentType=content_type or guess_content_type(key)
            )
        return created["UploadId"]

    def presigned_part_url(self, key: str, upload_id: str, number: int, *, expires_s: int) -> str:
        validate_key(key)
        check_part_number(number)
        _check_expiry(expires_s)
        params = {"Bucket": self._bucket, "Key": key, "UploadId": upload_id, "PartNumber": number}
        with _s3_errors(f"presign part {number} of {_describe(key)}"):
            return self._client.generate_presigned_url(
                "upload_part", Params=params, ExpiresIn=expires_s
            )

    def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        validate_key(key)
        paginator = self._client.get_paginator("list_parts")
        parts: list[PartInfo] = []
        with _multipart_errors(f"list parts of {_describe(key)}"):
            # Pages hold at most 1000 parts; an upload may have 10000.
            for page in paginator.paginate(Bucket=self._bucket, Key=key, UploadId=upload_id):
                parts.extend(
                    PartInfo(number=part["PartNumber"], size=part["Size"], etag=part["ETag"])
                    for part in page.get("Parts", [])
                )
        return sorted(parts, key=lambda part: part.number)

    def complete_multipart(self, key: str, upload_id: str, parts: Sequence[PartInfo]) -> None:
        validate_key(key)
        listing: list[CompletedPartTypeDef] = [
            {"PartNumber": part.number, "ETag": part.etag} for part in parts
        ]
        with _multipart_errors(f"complete multipart upload {_describe(key)}"):
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": listing},
            )

    def abort_multipart(self, key: str, upload_id: str) -> None:
        validate_key(key)
        try:
            with _multipart_errors(f"abort multipart upload {_describe(key)}"):
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=key, UploadId=upload_id
                )
        except ObjectNotFound:
            return  # already completed, aborted or expired by a lifecycle rule: nothing left

    def check(self) -> None:
        what = f"check bucket {self._bucket!r}"
        try:
            with _s3_errors(what):
                self._client.head_bucket(Bucket=self._bucket)
        except ObjectNotFound as exc:  # HEAD on a missing bucket is a bare 404
            raise StorageError(f"{what}: the bucket does not exist") from exc
