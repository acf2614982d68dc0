"""S3's additional checksums on multipart uploads: what each part must carry, and whether its bytes match.

A multipart upload created with a checksum algorithm (``x-amz-checksum-algorithm``) takes only parts that
carry a checksum of that algorithm, stores a part only when its bytes match the checksum, and completes
only when the request names every part's checksum as stored. Codes and messages are S3's, as recorded
against S3 (LocalStack's S3 snapshot tests, ``tests/aws/services/s3/test_s3.snapshot.json``): a checksum
that does not match is 400 BadDigest, a missing, malformed or foreign one 400 InvalidRequest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from xml.etree import ElementTree

from filepipe.local.services.s3.post import S3PostError

_HEADER_PREFIX = "x-amz-checksum-"
# Headers under the prefix that name a mode or a kind, not a checksum value.
_NOT_CHECKSUMS = frozenset({"x-amz-checksum-algorithm", "x-amz-checksum-type", "x-amz-checksum-mode"})
# The algorithms whose values are verified here; the CRC family is carried but not computed.
_DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    "SHA256": lambda data: hashlib.sha256(data).digest(),
    "SHA1": lambda data: hashlib.sha1(data).digest(),  # noqa: S324 - S3's SHA-1 checksum, not a password hash
}
_DIGEST_BYTES = {"SHA256": 32, "SHA1": 20}
_INVALID_PART = (
    "One or more of the specified parts could not be found.  The part may not have been uploaded, or the "
    "specified entity tag may not match the part's entity tag."
)


@dataclass(frozen=True)
class PartChecksum:
    """The checksum a part arrived with: its algorithm (upper case, as S3 names it) and base64 value."""

    algorithm: str
    value: str


@dataclass(frozen=True)
class CompletedPart:
    """One ``<Part>`` of a CompleteMultipartUpload body: number, ETag and its ``Checksum*`` elements."""

    number: int
    etag: str
    checksums: dict[str, str]


def _invalid(message: str) -> S3PostError:
    return S3PostError(400, "InvalidRequest", message)


def requested_checksum(
    headers: Mapping[str, str], trailer: str = "", raw_body: bytes = b""
) -> tuple[str | None, str | None]:
    """The algorithm and value of the one checksum a request carries: in a header, or in the trailer of an
    aws-chunked body (``raw_body``) that ``x-amz-trailer`` announces; (None, None) for none.
    """
    found = {
        name.lower()[len(_HEADER_PREFIX) :]: value
        for name, value in headers.items()
        if name.lower().startswith(_HEADER_PREFIX) and name.lower() not in _NOT_CHECKSUMS
    }
    if len(found) > 1:
        raise _invalid("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
    if found:
        algorithm, value = next(iter(found.items()))
        return algorithm.upper(), value
    announced = trailer.strip().lower()
    if announced.startswith(_HEADER_PREFIX) and announced not in _NOT_CHECKSUMS:
        trailing = re.search(rb"\r\n" + re.escape(announced.encode()) + rb":([A-Za-z0-9+/=]+)\r\n", raw_body)
        return announced[len(_HEADER_PREFIX) :].upper(), trailing.group(1).decode() if trailing else None
    return None, None


def check_part(
    upload_algorithm: str | None,
    headers: Mapping[str, str],
    body: bytes,
    trailer: str = "",
    raw_body: bytes = b"",
) -> PartChecksum | None:
    """What S3 checks before it stores an UploadPart; the part's checksum to keep with it, if any.

    Raises S3PostError as S3 refuses: another algorithm than the upload's (or none), a value that is not
    a digest of the algorithm, a digest that does not match the bytes.
    """
    algorithm, value = requested_checksum(headers, trailer, raw_body)
    expected = upload_algorithm.upper() if upload_algorithm else None
    if expected and algorithm != expected:
        raise _invalid(
            "Checksum Type mismatch occurred, expected checksum Type: "
            f"{expected.lower()}, actual checksum Type: {algorithm.lower() if algorithm else 'null'}"
        )
    if algorithm is None or value is None:
        return None
    digest = _DIGESTS.get(algorithm)
    if digest is not None:
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            given = b""
        if len(given) != _DIGEST_BYTES[algorithm]:
            raise _invalid(f"Value for x-amz-checksum-{algorithm.lower()} header is invalid.")
        if given != digest(body):
            raise S3PostError(
                400, "BadDigest", f"The {algorithm} you specified did not match the calculated checksum."
            )
    return PartChecksum(algorithm, value)


def check_completed_part(
    upload_algorithm: str | None, part_number: int, named: Mapping[str, str], stored: PartChecksum | None
) -> None:
    """What S3 checks of one part of a CompleteMultipartUpload whose number and ETag match a stored part.

    ``named`` holds the part's ``Checksum*`` elements (element name -> value). A checksum upload needs
    the part's checksum of its algorithm, equal to the stored one; an upload without one takes none.
    """
    if not upload_algorithm:
        if named:
            raise S3PostError(400, "InvalidPart", _INVALID_PART)
        return
    algorithm = upload_algorithm.upper()
    given = named.get(f"Checksum{algorithm}")
    if given is None:
        raise _invalid(
            f"The upload was created using a {algorithm.lower()} checksum. The complete request must include "
            f"the checksum for each part. It was missing for part {part_number} in the request."
        )
    if stored is None or stored.value != given:
        raise S3PostError(400, "InvalidPart", _INVALID_PART)


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def completed_parts(body: bytes) -> list[CompletedPart]:
    """The parts a CompleteMultipartUpload body names; none for a body S3 would refuse as malformed."""
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - a local request's own body, as S3 parses it
    except ElementTree.ParseError:
        return []
    parts: list[CompletedPart] = []
    for element in root.iter():
        if _local_name(element.tag) != "Part":
            continue
        fields = {_local_name(child.tag): (child.text or "").strip() for child in element}
        try:
            number = int(fields.get("PartNumber", ""))
        except ValueError:
            return []
        named = {name: value for name, value in fields.items() if name.startswith("Checksum")}
        parts.append(CompletedPart(number, fields.get("ETag", ""), named))
    return parts
