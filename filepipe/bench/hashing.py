"""Validate and hash a 1 GiB upload through the real step logic, against ``sha256sum`` on the same file.

The step logic (``validate.logic.validate_upload``, then the scan step's ``MeasuredStream``, which hashes
what it passes to clamd: here to nothing) runs unchanged over ``LocalObjectStore``, a file-backed stand-in
for ``common.storage.ObjectStore`` with the same reads (first bytes with the size, ranged reads, chunked
stream), so the figures are those of the code, not of a network or a scanner. The file is a 1 GiB zip
(stored entries of random data): validation reads its central directory with ranged reads, hashing
streams all of it.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from filepipe.bench import BenchContext, Row, megabytes, own_peak_rss_bytes, run_child, section

if TYPE_CHECKING:
    from common.storage import ObjectHead

MODULE = "filepipe.bench.hashing"
OBJECT_BYTES = 1024 * 1024 * 1024
SPEED_TARGET = 0.8  # of sha256sum's throughput
RSS_TARGET = 100 * 1024 * 1024
RUNS = 3  # each run reads 1 GiB twice (ours and sha256sum); more would not fit the time budget


@dataclass(frozen=True)
class LocalObjectInfo:
    size: int


class LocalOpenObject:
    """``common.storage.OpenObject`` over a local file."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        self.size = Path(path).stat().st_size

    def read(self, length: int) -> bytes:
        return self._file.read(length)

    def chunks(self, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        while chunk := self._file.read(chunk_size):
            yield chunk

    def as_file(self, already_read: bytes = b"") -> IO[bytes]:
        self._file.seek(0)
        return self._file

    def close(self) -> None:
        self._file.close()


class LocalObjectStore:
    """``ObjectStore``'s read interface over local files (bucket and version are ignored)."""

    def open(self, bucket: str, key: str, version: str | None = None) -> LocalOpenObject:
        return LocalOpenObject(key)

    def head(self, bucket: str, key: str, version: str | None = None) -> LocalObjectInfo:
        return LocalObjectInfo(Path(key).stat().st_size)

    def read_head(self, bucket: str, key: str, version: str | None, length: int) -> ObjectHead:
        from common.storage import ObjectHead  # function code is importable in the bench's child only

        return ObjectHead(Path(key).stat().st_size, self.read_range(bucket, key, version, 0, length))

    def read_range(self, bucket: str, key: str, version: str | None, start: int, length: int) -> bytes:
        with open(key, "rb") as source:
            source.seek(start)
            return source.read(max(0, length))

    def stream(
        self, bucket: str, key: str, version: str | None = None, chunk_size: int = 1024 * 1024
    ) -> Iterator[bytes]:
        with open(key, "rb", buffering=0) as source:
            while chunk := source.read(chunk_size):
                yield chunk


def make_object(workdir: Path) -> Path:
    """A 1 GiB zip of random stored entries (generated once per run)."""
    path = workdir / "upload-1gib.zip"
    if path.exists():
        return path
    block = random.Random(7).randbytes(8 * 1024 * 1024)
    entry_bytes = 256 * 1024 * 1024
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for index in range(OBJECT_BYTES // entry_bytes):
            with archive.open(f"part-{index}.bin", "w", force_zip64=True) as entry:
                for _ in range(entry_bytes // len(block)):
                    entry.write(block)
    return path


def child(path: str) -> None:
    from common.filetypes import DEFAULT_ALLOWED
    from common.model import FileRef
    from scan.logic import CHUNK_SIZE, MeasuredStream
    from validate.logic import ValidationRules, validate_upload

    store = LocalObjectStore()
    ref = FileRef(bucket="local", key=path, version="local", owner_id="bench", file_id="bench")
    rules = ValidationRules(max_file_bytes=2 * OBJECT_BYTES, allowed_types=frozenset(DEFAULT_ALLOWED))
    started = time.perf_counter()
    validation = validate_upload(store, ref, rules)
    validated = time.perf_counter()
    hashed = MeasuredStream(store.stream(ref.bucket, ref.key, ref.version, CHUNK_SIZE), 2 * OBJECT_BYTES)
    for _ in hashed:
        pass
    finished = time.perf_counter()
    print(
        json.dumps(
            {
                "contentType": validation.content_type,
                "sha256": hashed.sha256,
                "size": hashed.sent,
                "validate_ms": (validated - started) * 1000,
                "total_ms": (finished - started) * 1000,
                "peak_rss_bytes": own_peak_rss_bytes(),
            }
        )
    )


def _sha256sum(path: Path) -> tuple[str, float]:
    executable = shutil.which("sha256sum")
    if executable is None:
        raise RuntimeError("sha256sum is not installed")
    started = time.perf_counter()
    completed = subprocess.run([executable, str(path)], check=True, capture_output=True, text=True)  # noqa: S603
    return completed.stdout.split()[0], time.perf_counter() - started


@section("hashing", "validate + SHA-256 of a 1 GiB upload through the step logic vs sha256sum")
def run(context: BenchContext) -> list[Row]:
    path = make_object(context.workdir)
    size = path.stat().st_size
    ours_seconds: list[float] = []
    validate_ms: list[float] = []
    reference_seconds: list[float] = []
    peaks: list[int] = []
    for _ in range(min(context.runs, RUNS)):
        reference_digest, seconds = _sha256sum(path)
        reference_seconds.append(seconds)
        measured = run_child(MODULE, ["--child", str(path)])
        if measured["sha256"] != reference_digest or measured["size"] != size:
            raise RuntimeError(f"digest mismatch: ours {measured['sha256']}, sha256sum {reference_digest}")
        if measured["contentType"] != "application/zip":
            raise RuntimeError(f"validated as {measured['contentType']}, expected application/zip")
        ours_seconds.append(measured["total_ms"] / 1000)
        validate_ms.append(measured["validate_ms"])
        peaks.append(measured["peak_rss_bytes"])
    ours_speed = size / statistics.median(ours_seconds)
    reference_speed = size / statistics.median(reference_seconds)
    ratio = ours_speed / reference_speed
    case = f"1 GiB zip, median of {len(ours_seconds)}"
    return [
        Row(
            "hashing",
            f"{case}: validate + SHA-256 throughput",
            f"{megabytes(ours_speed)}/s",
            f"{megabytes(reference_speed)}/s (sha256sum)",
            f"{ratio:.2f}x",
            f">= {SPEED_TARGET:.1f}x",
            ratio >= SPEED_TARGET,
        ),
        Row(
            "hashing",
            f"{case}: validation alone (type, size, zip directory)",
            f"{statistics.median(validate_ms):.1f} ms",
            "-",
            "-",
            "-",
            None,
        ),
        Row(
            "hashing",
            f"{case}: peak RSS of the process",
            megabytes(max(peaks)),
            "-",
            "-",
            f"<= {megabytes(RSS_TARGET)}",
            max(peaks) <= RSS_TARGET,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description="one measured validate + hash run (bench child process)")
    parser.add_argument("--child", metavar="PATH", required=True)
    child(parser.parse_args().child)


if __name__ == "__main__":
    main()
