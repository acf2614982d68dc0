"""The scan decision: size limit, definitions freshness, INSTREAM, and a fail-closed reading of the reply."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from common.errors import ScanIncomplete, ScannerUnavailable
from common.model import FileRef
from common.storage import ObjectInfo
from scan.clamd import EngineVersion, ReplyKind, ScanReply

CHUNK_SIZE = 256 * 1024
# ClamAV names the detections it raises when a file goes past a scan limit (AlertExceedsMax) this way;
# such a file was not scanned to the end, so it is incomplete rather than infected.
LIMIT_EXCEEDED_PREFIX = "Heuristics.Limits.Exceeded."
# A database built this far in the future means a clock or time zone is wrong: its age is unknown.
_CLOCK_SKEW = timedelta(hours=1)


class ObjectSource(Protocol):
    def head(self, bucket: str, key: str, version: str | None = None) -> ObjectInfo: ...

    def stream(
        self, bucket: str, key: str, version: str | None = None, chunk_size: int = ...
    ) -> Iterator[bytes]: ...


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

    def as_payload(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "signature": self.signature, "engine": self.engine}


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


class _CountedStream:
    """Passes chunks through, counting bytes and stopping at the limit in case the object grew."""

    def __init__(self, chunks: Iterable[bytes], limit: int) -> None:
        self._chunks = chunks
        self._limit = limit
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.sent += len(chunk)
            if self.sent > self._limit:
                raise ScanIncomplete(f"object is larger than the scan limit of {self._limit} bytes")
            yield chunk


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
    info = source.head(ref.bucket, ref.key, ref.version)
    if info.size > policy.max_bytes:
        raise ScanIncomplete(f"object is {info.size} bytes, above the scan limit of {policy.max_bytes}")
    version = scanner.version()
    check_definitions(version, now, policy.definitions_max_age)

    stream = _CountedStream(
        source.stream(ref.bucket, ref.key, ref.version, chunk_size=policy.chunk_size), policy.max_bytes
    )
    reply = scanner.instream(stream)
    verdict = interpret_reply(reply, version.text)
    if verdict.verdict == "CLEAN" and stream.sent != info.size:
        raise ScanIncomplete(f"streamed {stream.sent} of {info.size} bytes")
    return verdict
