"""S3's patches to moto: objects shared rather than copied, bucket policies left to IAM, part checksums.

moto stores each object in a spooled temporary file and copies its bytes on every write, read and copy;
these patches share the bytes of objects held in memory (within a budget) and reuse a copy's ETag. Those
change what moto costs, never what it answers. moto's own bucket-policy check stands aside for the
runtime's IAM evaluation, which applies bucket policies with the caller and conditions. Multipart parts
are checked against their checksums, and listed and completed with them, as S3 does.
"""

from __future__ import annotations

import io
import os
import re
import threading
import weakref
from collections import deque
from collections.abc import Mapping
from typing import Any

from filepipe.local.moto_patches import Uninstall, moto_patch, replace

# Objects up to this size stay in memory in moto (its default spills anything over ~5 MB to disk).
KEY_BUFFER_BYTES = 64 * 1024 * 1024
# All objects together keep at most this much in memory (MiB); later ones go to disk as moto's large ones do.
OBJECT_MEMORY_VARIABLE = "FILEPIPE_LOCAL_OBJECT_MEMORY_MB"
DEFAULT_OBJECT_MEMORY_MB = 512
_KEY_BUFFER_VARIABLE = "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE"


def object_memory_budget(environ: Mapping[str, str]) -> int:
    """The bytes stored objects may keep in memory: FILEPIPE_LOCAL_OBJECT_MEMORY_MB MiB, 512 when unset."""
    text = environ.get(OBJECT_MEMORY_VARIABLE)
    if text is None:
        return DEFAULT_OBJECT_MEMORY_MB * 2**20
    try:
        megabytes = int(text)
    except ValueError:
        megabytes = -1
    if megabytes < 0:
        raise ValueError(
            f"{OBJECT_MEMORY_VARIABLE} must be a whole number of MiB, 0 or more "
            f"(0 keeps every object on disk), got {text!r}"
        )
    return megabytes * 2**20


class ObjectMemory:
    """The bytes of stored objects held in memory, counted once however many objects share them.

    Releases come from ``FakeKey.dispose`` (moto's key store disposes every version it drops: deletes,
    overwrites, deleted versions, a reset) and from a finalizer on the object's buffer, which may run
    inside garbage collection at any point, even within ``hold`` on the same thread. So a release only
    queues the bytes and settles the count when the lock is free; every ``hold`` settles first.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._lock = threading.Lock()
        # id of the bytes -> (the bytes, how many objects hold them); the reference keeps the id unique.
        self._held: dict[int, tuple[bytes, int]] = {}
        self._total = 0
        self._released: deque[int] = deque()

    def hold(self, data: bytes) -> int | None:
        """Count ``data`` for one more object: the token to release it with, or None past the budget."""
        identity = id(data)
        with self._lock:
            self._settle()
            entry = self._held.get(identity)
            if entry is not None:
                self._held[identity] = (data, entry[1] + 1)
                return identity
            if self._total + len(data) > self.budget:
                return None
            self._held[identity] = (data, 1)
            self._total += len(data)
        return identity

    def release(self, identity: int) -> None:
        self._released.append(identity)
        if self._lock.acquire(blocking=False):
            try:
                self._settle()
            finally:
                self._lock.release()

    @property
    def held_bytes(self) -> int:
        with self._lock:
            self._settle()
            return self._total

    def _settle(self) -> None:
        while self._released:
            identity = self._released.popleft()
            data, holders = self._held[identity]
            if holders > 1:
                self._held[identity] = (data, holders - 1)
            else:
                del self._held[identity]
                self._total -= len(data)


_object_memory = ObjectMemory(DEFAULT_OBJECT_MEMORY_MB * 2**20)


def object_memory() -> ObjectMemory:
    """The process's account of in-memory object bytes; ``keep_objects_in_memory`` sets its budget."""
    return _object_memory


@moto_patch("moto.settings.get_s3_default_key_buffer_size")
def keep_objects_in_memory() -> Uninstall:
    """Objects up to KEY_BUFFER_BYTES stay in memory, all of them within FILEPIPE_LOCAL_OBJECT_MEMORY_MB.

    moto keeps an object larger than its buffer (MOTO_S3_DEFAULT_KEY_BUFFER_SIZE, read for every new
    object) in a temporary file on disk, written once and read back on every GET and copy; an upload's
    photo (a few MB) stays in memory instead. Raises ValueError, changing nothing, for a budget that is
    not a whole number of MiB.
    """
    budget = _object_memory.budget
    _object_memory.budget = object_memory_budget(os.environ)
    buffer_size = os.environ.get(_KEY_BUFFER_VARIABLE)
    os.environ.setdefault(_KEY_BUFFER_VARIABLE, str(KEY_BUFFER_BYTES))

    def uninstall() -> None:
        _object_memory.budget = budget
        if buffer_size is None:
            os.environ.pop(_KEY_BUFFER_VARIABLE, None)

    return uninstall


@moto_patch(
    "moto.s3.models.FakeKey.value",
    "moto.s3.models.FakeKey.etag",
    "moto.s3.models.FakeKey.dispose",
    "moto.s3.models.md5_hash",
)
def share_object_bytes() -> Uninstall:
    """An object held in memory hands out its bytes without copying them (moto copies per GET and copy).

    moto stores each object in a spooled temporary file: writing copies the bytes into it, every read
    of the value copies them out again, the ETag reads them a third time. Bytes are immutable; an
    in-memory buffer can wrap the stored bytes and return them as they are. A copy (CopyObject passes
    the source's value to the new key) thus wraps the very bytes of its source and costs no memory.
    New bytes stay in memory while all objects' bytes fit the budget of ``object_memory()``; past it
    they go to a file on disk, as moto does with objects larger than its buffer. Objects on disk take
    moto's own path. Also relies on each key's ``lock``, ``_etag``, ``contentsize`` and its
    ``_value_buffer`` (a ``tempfile.SpooledTemporaryFile``: ``_rolled``, ``_file``, ``_max_size``).
    """
    import moto.s3.models as s3_models
    from moto.s3.models import FakeKey

    current: Any = FakeKey.__dict__["value"]
    read_value = current.fget
    write_value = current.fset
    current_etag: Any = FakeKey.__dict__["etag"]
    compute_etag = current_etag.fget
    dispose_key = FakeKey.dispose
    memory = object_memory()

    def in_memory(key: Any) -> Any:
        buffer = key._value_buffer
        return None if getattr(buffer, "_rolled", True) else buffer._file

    def release_held(key: Any) -> None:
        # Before the buffer closes: until then its bytes, and so their id, stay alive.
        finalizer = getattr(getattr(key, "_value_buffer", None), "filepipe_release", None)
        if finalizer is not None:
            finalizer()

    def value(self: Any) -> bytes:
        with self.lock:
            stored = in_memory(self)
            if stored is not None:
                return bytes(stored.getvalue())
        return bytes(read_value(self))

    def set_value(self: Any, new_value: bytes | str) -> None:
        buffer = self._value_buffer
        release_held(self)
        if in_memory(self) is None or not isinstance(new_value, bytes) or len(new_value) > buffer._max_size:
            write_value(self, new_value)
            return
        token = memory.hold(new_value)
        if token is None:
            buffer._file = io.BytesIO()
            buffer.rollover()
            write_value(self, new_value)
            return
        # What write() leaves behind (the bytes, the position after them), minus the copy.
        shared = io.BytesIO(new_value)
        shared.seek(0, io.SEEK_END)
        buffer._file = shared
        release = weakref.finalize(shared, memory.release, token)
        release.atexit = False
        buffer.filepipe_release = release
        self.contentsize = len(new_value)

    def etag(self: Any) -> str:
        if self._etag is None:
            stored = in_memory(self)
            if stored is not None:
                self._etag = s3_models.md5_hash(stored.getvalue()).hexdigest()
        return str(compute_etag(self))

    def dispose(self: Any, garbage: bool = False) -> None:
        release_held(self)
        dispose_key(self, garbage)

    return replace(FakeKey, value=property(value, set_value), etag=property(etag), dispose=dispose)


_copy_source = threading.local()


@moto_patch("moto.s3.models.S3Backend.copy_object", "moto.s3.models.S3Backend.put_object")
def reuse_copied_etags() -> Uninstall:
    """A copy of a single-part object has the source's bytes, hence its MD5: moto need not hash them again.

    (A multipart source's ETag is not an MD5 of the bytes; moto derives the copy's ETag from the parts.)
    Relies on the keys' ``multipart`` and ``_etag``, and on ``copy_object`` storing the copy through
    ``put_object`` on the same thread.
    """
    from moto.s3.models import S3Backend

    copy_object = S3Backend.copy_object
    put_object = S3Backend.put_object

    def copy_with_etag(self: Any, src_key: Any, *args: Any, **kwargs: Any) -> Any:
        known = getattr(src_key, "_etag", None) if not src_key.multipart else None
        _copy_source.etag = known
        try:
            return copy_object(self, src_key, *args, **kwargs)
        finally:
            _copy_source.etag = None

    def put_with_etag(self: Any, *args: Any, **kwargs: Any) -> Any:
        new_key = put_object(self, *args, **kwargs)
        known = getattr(_copy_source, "etag", None)
        if known is not None and getattr(new_key, "_etag", "") is None:
            new_key._etag = known
        return new_key

    return replace(S3Backend, copy_object=copy_with_etag, put_object=put_with_etag)


@moto_patch("moto.s3.models.FakeBucket.get_permission", "moto.iam.access_control.PermissionResult.NEUTRAL")
def leave_bucket_policies_to_iam() -> Uninstall:
    """moto's own bucket-policy check stands aside: the runtime's IAM evaluation applies bucket policies.

    moto's S3 responses ask ``FakeBucket.get_permission`` before object requests and DeleteObjects; it
    evaluates the bucket policy without the caller and fails every statement with a condition, so a
    TLS-only Deny would refuse every request with an empty 403.
    """
    from moto.iam.access_control import PermissionResult
    from moto.s3.models import FakeBucket

    def get_permission(self: Any, action: str, resource: str) -> Any:
        return PermissionResult.NEUTRAL

    return replace(FakeBucket, get_permission=get_permission)


_PART_NUMBER = re.compile(r"<PartNumber>(\d+)</PartNumber>")


@moto_patch(
    "moto.s3.responses.S3Response.upload_part",
    "moto.s3.responses.S3Response.list_parts",
    "moto.s3.responses.S3Response._complete_multipart_body",
    "moto.s3.responses.S3Response._get_param",
    "moto.s3.responses.S3Response._get_int_param",
    "moto.s3.models.FakeMultipart",
    "moto.s3.models.FakeKey",
    "moto.s3.exceptions.S3ClientError",
)
def verify_part_checksums() -> Uninstall:
    """Parts of a multipart upload carry their checksums as on S3: checked, listed, asked for at completion.

    moto stores a part whatever its ``x-amz-checksum-*`` header says (a wrong SHA-256, or none on an
    upload created with ``ChecksumAlgorithm``), lists parts without checksums and completes an upload
    without them. This applies S3's rules (``checksums.py``) before moto stores a part or joins the parts,
    keeps each part's checksum on it, adds it to the UploadPart answer and to ListParts. Relies on
    ``S3Response``'s ``backend``, ``bucket_name``, ``headers``, ``body`` (an aws-chunked body decoded) and
    ``raw_body`` (as sent), on ``upload_part`` and ``list_parts`` answering ``(status, headers, body)``
    (ListParts as XML with ``<PartNumber>`` and ``<UploadId>`` elements), on the bucket's ``multiparts``
    of ``FakeMultipart`` (``metadata`` with ``x-amz-checksum-algorithm`` and ``x-amz-checksum-type``,
    ``parts`` by number) and on ``FakeKey``'s ``etag``, ``checksum_algorithm`` and ``checksum_value``; an
    ``S3ClientError`` raised in a key request is answered as S3's XML error, 400 for these codes.
    """
    from moto.s3.exceptions import S3ClientError
    from moto.s3.responses import S3Response

    from filepipe.local.services.s3 import checksums
    from filepipe.local.services.s3.post import S3PostError

    upload_part = S3Response.upload_part
    list_parts = S3Response.list_parts
    complete_body = S3Response._complete_multipart_body

    def multipart_of(response: Any) -> Any:
        try:
            bucket = response.backend.get_bucket(response.bucket_name)
            return bucket.multiparts[response._get_param("uploadId")]
        except (KeyError, S3ClientError):
            return None  # moto's own answer follows: NoSuchUpload, NoSuchBucket

    def refusal(error: S3PostError) -> S3ClientError:
        return S3ClientError(error.code, error.message)

    def stored_checksum(part: Any) -> checksums.PartChecksum | None:
        algorithm, value = getattr(part, "checksum_algorithm", None), getattr(part, "checksum_value", None)
        return checksums.PartChecksum(algorithm, value) if algorithm and value else None

    def checked_upload_part(self: Any) -> Any:
        multipart = multipart_of(self)
        if multipart is None:
            return upload_part(self)
        headers = {str(name).lower(): str(value) for name, value in dict(self.headers).items()}
        try:
            checksum = checksums.check_part(
                multipart.metadata.get("x-amz-checksum-algorithm"),
                headers,
                self.body or b"",
                headers.get("x-amz-trailer", ""),
                self.raw_body or b"",
            )
        except S3PostError as error:
            raise refusal(error) from None
        status, response_headers, body = upload_part(self)
        part = multipart.parts.get(self._get_int_param("partNumber"))
        if checksum is not None and part is not None:
            part.checksum_algorithm = checksum.algorithm
            part.checksum_value = checksum.value
            response_headers[f"x-amz-checksum-{checksum.algorithm.lower()}"] = checksum.value
        return status, response_headers, body

    def listed_with_checksums(self: Any) -> Any:
        status, headers, body = list_parts(self)
        multipart = multipart_of(self)
        if multipart is None or status != 200:
            return status, headers, body
        text = body.decode() if isinstance(body, bytes) else str(body)

        def with_checksum(match: re.Match[str]) -> str:
            stored = stored_checksum(multipart.parts.get(int(match.group(1))))
            if stored is None:
                return match.group(0)
            element = f"Checksum{stored.algorithm}"
            return f"{match.group(0)}<{element}>{stored.value}</{element}>"

        text = _PART_NUMBER.sub(with_checksum, text)
        algorithm = multipart.metadata.get("x-amz-checksum-algorithm")
        if algorithm:
            # S3's default is composite (a checksum of the parts' checksums); CRC64NVME is whole-object only.
            kind = multipart.metadata.get("x-amz-checksum-type") or (
                "FULL_OBJECT" if algorithm.upper() == "CRC64NVME" else "COMPOSITE"
            )
            text = text.replace(
                "</UploadId>",
                f"</UploadId><ChecksumAlgorithm>{algorithm.upper()}</ChecksumAlgorithm>"
                f"<ChecksumType>{kind}</ChecksumType>",
                1,
            )
        for name in [name for name in headers if name.lower() == "content-length"]:
            headers[name] = str(len(text.encode()))
        return status, headers, text

    def completed_with_checksums(self: Any, body: bytes) -> Any:
        multipart = multipart_of(self)
        if multipart is not None:
            algorithm = multipart.metadata.get("x-amz-checksum-algorithm")
            for named in checksums.completed_parts(body):
                part = multipart.parts.get(named.number)
                if part is None or part.etag.strip('"') != named.etag.strip('"'):
                    continue  # moto answers InvalidPart for it
                try:
                    checksums.check_completed_part(
                        algorithm, named.number, named.checksums, stored_checksum(part)
                    )
                except S3PostError as error:
                    raise refusal(error) from None
        return complete_body(self, body)

    return replace(
        S3Response,
        upload_part=checked_upload_part,
        list_parts=listed_with_checksums,
        _complete_multipart_body=completed_with_checksums,
    )
