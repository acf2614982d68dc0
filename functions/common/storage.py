"""S3 adapter: the only place that knows how objects are read, copied, written and signed."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, cast

from common.aws import THROTTLING_CODES, error_code
from common.errors import ServiceThrottled, SourceChanged, SourceMissing

# S3 answers these only to a caller that may also s3:ListBucket the bucket; anyone else gets a 403 for a
# missing object, which stays an error here: a refusal must never pass for "not there".
MISSING_CODES = frozenset({"404", "NoSuchKey", "NoSuchVersion", "NotFound"})
# The largest source S3's CopyObject takes in one request; above it a copy goes part by part.
MAX_SINGLE_COPY_BYTES = 5 * 1024**3


@dataclass(frozen=True)
class ObjectHead:
    size: int  # of the whole object
    data: bytes  # its first bytes


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    etag: str
    version: str | None
    content_type: str | None
    metadata: dict[str, str] = field(default_factory=dict)


class OpenObject:
    """An object whose GET has started: its size from the response, its bytes read in order, then closed."""

    def __init__(self, size: int, body: Any) -> None:
        self.size = size
        self._body = body

    def read(self, length: int) -> bytes:
        """The next ``length`` bytes (fewer only at the end of the object)."""
        parts: list[bytes] = []
        wanted = length
        while wanted > 0:
            part = self._body.read(wanted)
            if not part:
                break
            parts.append(part)
            wanted -= len(part)
        return b"".join(parts)

    def chunks(self, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """The rest of the object's bytes in chunks."""
        while chunk := self._body.read(chunk_size):
            yield chunk

    def as_file(self, already_read: bytes = b"") -> IO[bytes]:
        """A seekable file of the whole object (``already_read`` being what was read so far).

        The rest is fetched only as reads reach it, so whoever reads the file (a decoder) works on the
        first bytes while the later ones are still arriving. All of it is kept in memory.
        """
        return cast(IO[bytes], _ObjectFile(self, already_read))

    def close(self) -> None:
        self._body.close()

    def __enter__(self) -> OpenObject:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class _ObjectFile(io.RawIOBase):
    """``OpenObject.as_file``: the bytes read so far in memory, more read from the object on demand."""

    # Fetched at least this much at a time: few socket reads, yet the first bytes are there soon.
    FETCH_BYTES = 256 * 1024

    def __init__(self, source: OpenObject, already_read: bytes) -> None:
        super().__init__()
        self._source = source
        self._buffer = bytearray(already_read)
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def _fetch_to(self, end: int) -> None:
        end = min(end, self._source.size)
        while len(self._buffer) < end:
            part = self._source.read(max(self.FETCH_BYTES, end - len(self._buffer)))
            if not part:
                return
            self._buffer += part

    def readinto(self, target: Any) -> int:
        view = memoryview(target).cast("B")
        self._fetch_to(self._position + len(view))
        data = self._buffer[self._position : self._position + len(view)]
        view[: len(data)] = data
        self._position += len(data)
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        end = self._source.size if size is None or size < 0 else self._position + size
        self._fetch_to(end)
        data = bytes(self._buffer[self._position : end])
        self._position += len(data)
        return data

    def readall(self) -> bytes:
        return self.read()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._source.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position


@dataclass(frozen=True)
class ObjectSummary:
    key: str
    size: int
    etag: str


class ObjectStore:
    """Reads and writes objects through an injected boto3 S3 client."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def _translate(self, error: Exception, bucket: str, key: str) -> Exception:
        code = error_code(error)
        if code in MISSING_CODES:
            return SourceMissing(f"s3://{bucket}/{key} does not exist (any more)")
        if code in THROTTLING_CODES:
            return ServiceThrottled(f"S3 throttled requests for s3://{bucket}/{key}")
        if code in {"PreconditionFailed", "InvalidArgument"}:
            return SourceChanged(f"s3://{bucket}/{key} changed while it was processed")
        return error

    def _version_args(self, version: str | None) -> dict[str, str]:
        # "null" is S3's own version id for objects written while versioning was off.
        return {"VersionId": version} if version and version != "null" else {}

    def head(self, bucket: str, key: str, version: str | None = None) -> ObjectInfo:
        try:
            response = self._s3.head_object(Bucket=bucket, Key=key, **self._version_args(version))
        except Exception as error:
            raise self._translate(error, bucket, key) from error
        return ObjectInfo(
            size=int(response["ContentLength"]),
            etag=str(response.get("ETag", "")).strip('"'),
            version=response.get("VersionId"),
            content_type=response.get("ContentType"),
            metadata=dict(response.get("Metadata", {})),
        )

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.head(bucket, key)
        except SourceMissing:
            return False
        return True

    def read_head(self, bucket: str, key: str, version: str | None, length: int) -> ObjectHead:
        """The object's size and its first ``length`` bytes (fewer for a shorter object), in one GET."""
        try:
            response = self._s3.get_object(
                Bucket=bucket, Key=key, Range=f"bytes=0-{length - 1}", **self._version_args(version)
            )
        except Exception as error:
            if error_code(error) == "InvalidRange":  # an empty object has no byte 0
                return ObjectHead(size=0, data=b"")
            raise self._translate(error, bucket, key) from error
        data = bytes(response["Body"].read())
        # "bytes 0-8191/5623801": the total follows the slash. Without a range reply, the body is all of it.
        content_range = str(response.get("ContentRange") or "")
        size = int(content_range.rpartition("/")[2]) if "/" in content_range else len(data)
        return ObjectHead(size=size, data=data)

    def read_range(self, bucket: str, key: str, version: str | None, start: int, length: int) -> bytes:
        """``length`` bytes from offset ``start`` (fewer when the object ends sooner)."""
        if length <= 0:
            return b""
        try:
            response = self._s3.get_object(
                Bucket=bucket,
                Key=key,
                Range=f"bytes={start}-{start + length - 1}",
                **self._version_args(version),
            )
        except Exception as error:
            if error_code(error) == "InvalidRange":  # starts at or past the end of the object
                return b""
            raise self._translate(error, bucket, key) from error
        return bytes(response["Body"].read())

    def read_all(self, bucket: str, key: str, version: str | None = None) -> bytes:
        try:
            response = self._s3.get_object(Bucket=bucket, Key=key, **self._version_args(version))
        except Exception as error:
            raise self._translate(error, bucket, key) from error
        return bytes(response["Body"].read())

    def open(self, bucket: str, key: str, version: str | None = None) -> OpenObject:
        """Start reading the object: one GET gives its size and then its bytes, as far as they are read."""
        try:
            response = self._s3.get_object(Bucket=bucket, Key=key, **self._version_args(version))
        except Exception as error:
            raise self._translate(error, bucket, key) from error
        return OpenObject(int(response["ContentLength"]), response["Body"])

    def stream(
        self, bucket: str, key: str, version: str | None = None, chunk_size: int = 1024 * 1024
    ) -> Iterator[bytes]:
        """The object's bytes in chunks, so memory stays flat whatever the object's size."""
        try:
            response = self._s3.get_object(Bucket=bucket, Key=key, **self._version_args(version))
        except Exception as error:
            raise self._translate(error, bucket, key) from error
        body = response["Body"]
        try:
            while chunk := body.read(chunk_size):
                yield chunk
        finally:
            body.close()

    def put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        content_type: str,
        metadata: dict[str, str] | None = None,
    ) -> None:
        try:
            self._s3.put_object(
                Bucket=bucket, Key=key, Body=body, ContentType=content_type, Metadata=metadata or {}
            )
        except Exception as error:
            raise self._translate(error, bucket, key) from error

    def copy(
        self,
        source_bucket: str,
        source_key: str,
        source_version: str | None,
        source_size: int,
        bucket: str,
        key: str,
        content_type: str,
        metadata: dict[str, str],
    ) -> str | None:
        """Server-side copy with new headers: one CopyObject, or the transfer manager's parts above 5 GiB.

        Returns the copy's version id (None in an unversioned bucket).
        """
        source: dict[str, str] = {"Bucket": source_bucket, "Key": source_key}
        source.update(self._version_args(source_version))
        headers = {"ContentType": content_type, "Metadata": metadata, "MetadataDirective": "REPLACE"}
        try:
            if source_size <= MAX_SINGLE_COPY_BYTES:
                # The transfer manager would first HEAD the source for its size, which the caller knows.
                response = self._s3.copy_object(CopySource=source, Bucket=bucket, Key=key, **headers)
                return response.get("VersionId")
            self._s3.copy(source, bucket, key, ExtraArgs=headers)
        except Exception as error:
            raise self._translate(error, source_bucket, source_key) from error
        # The transfer manager does not say which version its multipart copy made.
        return self.head(bucket, key).version

    def metadata(self, bucket: str, key: str) -> dict[str, str] | None:
        """User metadata of an object, or None when it does not exist."""
        try:
            response = self._s3.head_object(Bucket=bucket, Key=key)
        except Exception as error:
            translated = self._translate(error, bucket, key)
            if isinstance(translated, SourceMissing):
                return None
            raise translated from error
        return dict(response.get("Metadata", {}))

    def delete(self, bucket: str, key: str, version: str | None = None) -> None:
        try:
            self._s3.delete_object(Bucket=bucket, Key=key, **self._version_args(version))
        except Exception as error:
            translated = self._translate(error, bucket, key)
            if not isinstance(translated, SourceMissing):
                raise translated from error

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        """Delete every object under ``prefix``; returns how many went."""
        deleted = 0
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self._s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                deleted += len(keys)
        return deleted

    def presign_get(self, bucket: str, key: str, expires_in: int, content_type: str, disposition: str) -> str:
        return str(
            self._s3.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": bucket,
                    "Key": key,
                    "ResponseContentType": content_type,
                    "ResponseContentDisposition": disposition,
                },
                ExpiresIn=expires_in,
            )
        )

    def list_objects(self, bucket: str, prefix: str) -> list[ObjectSummary]:
        """Every object under ``prefix`` (all pages)."""
        found: list[ObjectSummary] = []
        paginator = self._s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                found.extend(
                    ObjectSummary(item["Key"], int(item["Size"]), str(item.get("ETag", "")).strip('"'))
                    for item in page.get("Contents", [])
                )
        except Exception as error:
            raise self._translate(error, bucket, prefix) from error
        return found

    def upload_file(
        self, bucket: str, key: str, path: str, content_type: str, metadata: dict[str, str] | None = None
    ) -> None:
        """Upload a local file without reading it into memory (multipart above the transfer threshold)."""
        try:
            self._s3.upload_file(
                path, bucket, key, ExtraArgs={"ContentType": content_type, "Metadata": metadata or {}}
            )
        except Exception as error:
            raise self._translate(error, bucket, key) from error
