"""The scan decision: size limit, definitions freshness, INSTREAM, and a fail-closed reading of the reply.

The scan is the one step that reads every byte of the upload, so it also hashes them (SHA-256).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from common.errors import ScanIncomplete, ScannerUnavailable
from common.model import FileRef
from scan.clamd import EngineVersion, ReplyKind, ScanReply

CHUNK_SIZE = 256 * 1024
# ClamAV names the detections it raises when a file goes past a scan limit (AlertExceedsMax) this way;
# such a file was not scanned to the end, so it is incomplete rather than infected.
LIMIT_EXCEEDED_PREFIX = "Heuristics.Limits.Exceeded."
# A database built this far in the future means a clock or time zone is wrong: its age is unknown.
_CLOCK_SKEW = timedelta(hours=1)


class OpenedUpload(Protocol):
    """An upload whose GET has begun: its size, then its bytes in chunks."""

    size: int

    def chunks(self, chunk_size: int = ...) -> Iterator[bytes]: ...

    def close(self) -> None: ...


class ObjectSource(Protocol):
    def open(self, bucket: str, key: str, version: str | None = None) -> OpenedUpload: ...


class Scanner(Protocol):
    def version(self) -> EngineVersion: ...

    def instream(self, chunks: Iterable[bytes]) -> ScanReply: ...


@dataclass(frozen=True)
class ScanPolicy:
    max_bytes: int
    definitions_max_age: timedelta
    chunk_size: int = CHUNK_SIZE


@dataclass(frozen=True)
class Verdict:
    verdict: Literal["CLEAN", "INFECTED"]
    signature: str | None
    engine: str
    sha256: str | None = None  # of every byte scanned; None unless the whole object was

    def as_payload(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "signature": self.signature,
            "engine": self.engine,
            "sha256": self.sha256,
        }


def check_definitions(version: EngineVersion, now: datetime, max_age: timedelta) -> None:
    """Fail closed unless clamd reports a database build time that is recent enough."""
    built_at = version.database_built_at
    if built_at is None:
        raise ScannerUnavailable(f"clamd reports no definitions date ({version.text!r}); refusing to scan")
    age = now - built_at
    if age > max_age:
        hours, limit = age.total_seconds() / 3600, max_age.total_seconds() / 3600
        raise ScannerUnavailable(f"definitions are {hours:.1f} h old (limit {limit:.0f} h): {version.text}")
    if age < -_CLOCK_SKEW:
        raise ScannerUnavailable(f"definitions are dated in the future ({version.text}); check clocks")


class MeasuredStream:
    """Passes chunks through, counting and hashing them, and stops at the limit in case the object grew."""

    def __init__(self, chunks: Iterable[bytes], limit: int) -> None:
        self._chunks = chunks
        self._limit = limit
        self._digest = hashlib.sha256()
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.sent += len(chunk)
            if self.sent > self._limit:
                raise ScanIncomplete(f"object is larger than the scan limit of {self._limit} bytes")
            self._digest.update(chunk)
            yield chunk

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


def interpret_reply(reply: ScanReply, engine: str) -> Verdict:
    """CLEAN only for ``stream: OK`` after the whole stream; a detection is final; everything else fails."""
    if reply.kind is ReplyKind.FOUND and reply.detail is not None:
        if reply.detail.startswith(LIMIT_EXCEEDED_PREFIX):
            raise ScanIncomplete(f"clamd stopped at a scan limit ({reply.detail})")
        return Verdict("INFECTED", reply.detail, engine)
    if reply.kind is ReplyKind.CLEAN and reply.whole_stream_sent:
        return Verdict("CLEAN", None, engine)
    if reply.kind is ReplyKind.ERROR:
        raise ScanIncomplete(f"clamd refused the scan: {reply.raw}")
    raise ScanIncomplete(f"unexpected clamd reply {reply.raw!r}")


def scan_object(
    ref: FileRef, source: ObjectSource, scanner: Scanner, policy: ScanPolicy, now: datetime
) -> Verdict:
    """The verdict on exactly the object version in ``ref``, with the SHA-256 of its bytes."""
    upload = source.open(ref.bucket, ref.key, ref.version)
    try:
        # Too large is final whatever the scanner's state, so it is decided before asking the scanner.
        if upload.size > policy.max_bytes:
            raise ScanIncomplete(f"object is {upload.size} bytes, above the scan limit of {policy.max_bytes}")
        version = scanner.version()
        check_definitions(version, now, policy.definitions_max_age)
        stream = MeasuredStream(upload.chunks(policy.chunk_size), policy.max_bytes)
        reply = scanner.instream(stream)
    finally:
        upload.close()
    verdict = interpret_reply(reply, version.text)
    whole = stream.sent == upload.size
    if verdict.verdict == "CLEAN" and not whole:
        raise ScanIncomplete(f"streamed {stream.sent} of {upload.size} bytes")
    return replace(verdict, sha256=stream.sha256 if whole else None)
