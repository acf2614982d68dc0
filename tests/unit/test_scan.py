"""Scan step on a real clamd and moto S3: verdicts, failing closed, embedded clamd, definitions update."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import stat
import sys
import tempfile
import threading
import time
import tracemalloc
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

import common.aws
import common.settings
from common.errors import ScanIncomplete, ScannerUnavailable
from common.model import FileRef, ingest_key, new_file_id
from common.settings import SettingsError
from common.storage import ObjectStore
from filepipe.clamd import (
    NOT_INSTALLED,
    SIGNATURE_NAME,
    LocalClamd,
    build_database_container,
    eicar_bytes,
)
from scan import definitions, embedded, handler
from scan.clamd import (
    ClamdAddress,
    ClamdClient,
    EngineVersion,
    ReplyKind,
    parse_scan_reply,
    parse_version,
)
from scan.definitions import DefinitionsUpdateFailed, update_definitions
from scan.embedded import DEFINITIONS_PREFIX, DefinitionsMirror, EmbeddedClamd
from scan.logic import ScanPolicy, Verdict, check_definitions, interpret_reply, scan_object
from tests.stack import put_upload

REGION = "us-east-1"
INGEST_BUCKET = "filepipe-ingest-test"
CLEAN_BUCKET = "filepipe-files-test"
DEFINITIONS_BUCKET = "filepipe-definitions-test"
OWNER = "owner-1"
MAX_AGE = timedelta(hours=48)
POLICY = ScanPolicy(max_bytes=20 * 1024 * 1024, definitions_max_age=MAX_AGE)

needs_clamd = pytest.mark.skipif(not LocalClamd.is_available(), reason=NOT_INSTALLED)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def local_clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalClamd]:
    if not LocalClamd.is_available():
        pytest.skip(NOT_INSTALLED)
    with LocalClamd(tmp_path_factory.mktemp("clamd"), max_bytes=POLICY.max_bytes) as clamd:
        yield clamd


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto S3 with a versioned ingest bucket and a definitions bucket; fake credentials only."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    common.aws.reset_clients()
    common.settings.load_settings.cache_clear()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=INGEST_BUCKET)
        s3.put_bucket_versioning(Bucket=INGEST_BUCKET, VersioningConfiguration={"Status": "Enabled"})
        s3.create_bucket(Bucket=DEFINITIONS_BUCKET)
        yield s3
    common.aws.reset_clients()
    common.settings.load_settings.cache_clear()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short path under /tmp: Unix socket paths are limited to about 100 bytes."""
    with tempfile.TemporaryDirectory(prefix="fpscan-") as path:
        yield Path(path)


def upload(s3: Any, data: bytes, content_type: str = "application/octet-stream") -> FileRef:
    return put_upload(s3, INGEST_BUCKET, OWNER, data, content_type)


def zipped(members: dict[str, bytes]) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return archive.getvalue()


def scan(s3: Any, clamd: LocalClamd | str, ref: FileRef, policy: ScanPolicy = POLICY) -> Verdict:
    address = clamd if isinstance(clamd, str) else clamd.address
    return scan_object(ref, ObjectStore(s3), ClamdClient(address, timeout=10), policy, datetime.now(UTC))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---------------------------------------------------------------- verdicts from a real clamd


@pytest.mark.clamd
@needs_clamd
def test_clean_file_is_clean(aws: Any, local_clamd: LocalClamd) -> None:
    data = b"quarterly numbers\n" * 1000
    verdict = scan(aws, local_clamd, upload(aws, data, "text/plain"))
    assert verdict.verdict == "CLEAN"
    assert verdict.sha256 == hashlib.sha256(data).hexdigest()
    assert verdict.signature is None
    assert verdict.engine.startswith("ClamAV 1.")
    assert parse_version(verdict.engine).database_built_at is not None


@pytest.mark.clamd
@needs_clamd
@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        pytest.param(eicar_bytes(), "application/octet-stream", id="alone"),
        pytest.param(eicar_bytes() + b"\r\n", "image/jpeg", id="renamed-as-jpeg"),
        pytest.param(
            zipped({"report.txt": b"hello", "photos/cat.jpg": eicar_bytes()}), "application/zip", id="zip"
        ),
        pytest.param(
            zipped({"inner.zip": zipped({"eicar.com": eicar_bytes()})}), "application/zip", id="nested-zip"
        ),
    ],
)
def test_eicar_is_infected(aws: Any, local_clamd: LocalClamd, data: bytes, content_type: str) -> None:
    verdict = scan(aws, local_clamd, upload(aws, data, content_type))
    assert verdict.verdict == "INFECTED"
    assert verdict.signature is not None
    assert verdict.signature.startswith(SIGNATURE_NAME)


@pytest.mark.clamd
@needs_clamd
def test_unreachable_clamd_is_scanner_unavailable(aws: Any, short_dir: Path) -> None:
    ref = upload(aws, b"hello")
    with pytest.raises(ScannerUnavailable, match="cannot connect"):
        scan(aws, f"tcp://127.0.0.1:{closed_port()}", ref)
    with pytest.raises(ScannerUnavailable, match="cannot connect"):
        scan(aws, f"unix://{short_dir}/missing.sock", ref)


def test_silent_clamd_times_out_as_scanner_unavailable() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    try:
        client = ClamdClient(f"tcp://127.0.0.1:{listener.getsockname()[1]}", timeout=0.5)
        began = time.monotonic()
        with pytest.raises(ScannerUnavailable, match="timed out"):
            client.version()
        assert time.monotonic() - began < 3
    finally:
        thread.join(timeout=2)
        for connection in accepted:
            connection.close()
        listener.close()


@pytest.mark.clamd
@needs_clamd
def test_object_over_scan_limit_is_incomplete_before_streaming(aws: Any, local_clamd: LocalClamd) -> None:
    ref = upload(aws, b"x" * 2000)
    small = ScanPolicy(max_bytes=1999, definitions_max_age=MAX_AGE)
    with pytest.raises(ScanIncomplete, match="above the scan limit"):
        scan(aws, local_clamd, ref, small)
    assert (
        scan(aws, local_clamd, ref, ScanPolicy(max_bytes=2000, definitions_max_age=MAX_AGE)).verdict
        == "CLEAN"
    )


@pytest.mark.clamd
@needs_clamd
def test_clamd_stream_limit_and_archive_limits_are_incomplete(aws: Any, tmp_path: Path) -> None:
    with LocalClamd(tmp_path, max_bytes=64 * 1024) as tiny:
        with pytest.raises(ScanIncomplete, match="size limit exceeded"):
            scan(aws, tiny, upload(aws, os.urandom(1024 * 1024)))
        # Compresses to a few hundred bytes, expands past MaxScanSize: clamd names the limit, never OK.
        bomb = zipped({"zeros.bin": bytes(1024 * 1024)})
        assert len(bomb) < 64 * 1024
        with pytest.raises(ScanIncomplete, match=r"Heuristics\.Limits\.Exceeded"):
            scan(aws, tiny, upload(aws, bomb))
        assert scan(aws, tiny, upload(aws, b"small")).verdict == "CLEAN"


@pytest.mark.clamd
@needs_clamd
def test_stale_and_undated_definitions_are_scanner_unavailable(aws: Any, tmp_path: Path) -> None:
    ref = upload(aws, b"hello")
    stale = datetime.now(UTC) - MAX_AGE - timedelta(minutes=5)
    with (
        LocalClamd(tmp_path / "stale", built_at=stale) as clamd,
        pytest.raises(ScannerUnavailable, match="h old"),
    ):
        scan(aws, clamd, ref)
    nearly_stale = datetime.now(UTC) - MAX_AGE + timedelta(minutes=5)
    with LocalClamd(tmp_path / "fresh", built_at=nearly_stale) as clamd:
        assert scan(aws, clamd, ref).verdict == "CLEAN"
    with (
        LocalClamd(tmp_path / "undated", dated=False) as clamd,
        pytest.raises(ScannerUnavailable, match="no definitions date"),
    ):
        scan(aws, clamd, ref)


# ---------------------------------------------------------------- streaming: memory and completeness


class GeneratedObject:
    """An object source that makes its bytes on demand, so only the scanner's own memory is measured."""

    def __init__(self, size: int, tail: bytes = b"", *, stream_size: int | None = None) -> None:
        self.size = size
        self.tail = tail
        self.stream_size = size if stream_size is None else stream_size

    def open(self, bucket: str, key: str, version: str | None = None) -> GeneratedObject:
        return self

    def close(self) -> None:
        pass

    def chunks(self, chunk_size: int = 1) -> Iterator[bytes]:
        filler = self.stream_size - len(self.tail)
        block = bytes(range(256)) * (chunk_size // 256)
        sent = 0
        while sent < filler:
            piece = block[: min(chunk_size, filler - sent)]
            sent += len(piece)
            yield piece
        if self.tail:
            yield self.tail


GENERATED_REF = FileRef(
    INGEST_BUCKET, ingest_key(OWNER, "01J00000000000000000000000"), "v1", OWNER, "01J0000000"
)


@pytest.mark.clamd
@needs_clamd
def test_ten_megabytes_stream_with_flat_memory_and_the_end_is_scanned(local_clamd: LocalClamd) -> None:
    size = 10 * 1024 * 1024
    client = ClamdClient(local_clamd.address, timeout=30)
    tracemalloc.start()
    try:
        began = time.perf_counter()
        clean = scan_object(GENERATED_REF, GeneratedObject(size), client, POLICY, datetime.now(UTC))
        elapsed = time.perf_counter() - began
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert clean.verdict == "CLEAN"
    expected = hashlib.sha256()
    for piece in GeneratedObject(size).chunks(POLICY.chunk_size):
        expected.update(piece)
    assert clean.sha256 == expected.hexdigest()
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes for a {size}-byte object"
    assert elapsed < 10
    # The signature sits in the last bytes: CLEAN above really covered the whole stream.
    infected = scan_object(
        GENERATED_REF, GeneratedObject(size, tail=eicar_bytes()), client, POLICY, datetime.now(UTC)
    )
    assert infected.verdict == "INFECTED"


@pytest.mark.clamd
@needs_clamd
def test_stream_shorter_or_longer_than_the_object_is_incomplete(local_clamd: LocalClamd) -> None:
    client = ClamdClient(local_clamd.address)
    with pytest.raises(ScanIncomplete, match="streamed 1000 of 5000"):
        scan_object(GENERATED_REF, GeneratedObject(5000, stream_size=1000), client, POLICY, datetime.now(UTC))
    grown = GeneratedObject(1000, stream_size=POLICY.max_bytes + 1)
    with pytest.raises(ScanIncomplete, match="larger than the scan limit"):
        scan_object(GENERATED_REF, grown, client, POLICY, datetime.now(UTC))


# ---------------------------------------------------------------- protocol parsing and the decision


def test_version_reply_parsing() -> None:
    full = parse_version("ClamAV 1.4.1/27450/Tue Nov  4 09:33:18 2026")
    assert full.engine == "ClamAV 1.4.1"
    assert full.database_version == 27450
    assert full.database_built_at == datetime(2026, 11, 4, 9, 33, 18, tzinfo=UTC)
    assert parse_version("ClamAV 1.4.6").database_built_at is None
    assert parse_version("ClamAV 1.4.6/27450/sometime").database_built_at is None
    with pytest.raises(ValueError, match="not a clamd VERSION reply"):
        parse_version("UNKNOWN COMMAND")


def test_definitions_age_rules() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    def version(built_at: datetime | None) -> EngineVersion:
        return EngineVersion("ClamAV 1.4.6/1/x", "ClamAV 1.4.6", 1, built_at)

    check_definitions(version(now - MAX_AGE), now, MAX_AGE)
    check_definitions(version(now + timedelta(minutes=30)), now, MAX_AGE)
    with pytest.raises(ScannerUnavailable, match="h old"):
        check_definitions(version(now - MAX_AGE - timedelta(seconds=1)), now, MAX_AGE)
    with pytest.raises(ScannerUnavailable, match="future"):
        check_definitions(version(now + timedelta(hours=2)), now, MAX_AGE)
    with pytest.raises(ScannerUnavailable, match="no definitions date"):
        check_definitions(version(None), now, MAX_AGE)


@pytest.mark.parametrize(
    ("raw", "kind", "detail"),
    [
        ("stream: OK", ReplyKind.CLEAN, None),
        ("stream: Win.Test.EICAR_HDB-1 FOUND", ReplyKind.FOUND, "Win.Test.EICAR_HDB-1"),
        ("INSTREAM size limit exceeded. ERROR", ReplyKind.ERROR, "INSTREAM size limit exceeded."),
        ("stream: Can't allocate memory ERROR", ReplyKind.ERROR, "stream: Can't allocate memory"),
        ("stream: OKAY", ReplyKind.UNRECOGNISED, None),
        ("UNKNOWN COMMAND", ReplyKind.UNRECOGNISED, None),
        ("stream: two words FOUND", ReplyKind.UNRECOGNISED, None),
    ],
)
def test_scan_reply_forms(raw: str, kind: ReplyKind, detail: str | None) -> None:
    reply = parse_scan_reply(raw, whole_stream_sent=True)
    assert reply.kind is kind
    assert reply.detail == detail


def test_only_ok_after_the_whole_stream_is_clean() -> None:
    engine = "ClamAV 1.4.6/1/Sun Nov 22 11:00:00 2026"
    assert interpret_reply(parse_scan_reply("stream: OK", whole_stream_sent=True), engine).verdict == "CLEAN"
    with pytest.raises(ScanIncomplete):
        interpret_reply(parse_scan_reply("stream: OK", whole_stream_sent=False), engine)
    with pytest.raises(ScanIncomplete):
        interpret_reply(parse_scan_reply("COMMAND READ TIMED OUT", whole_stream_sent=True), engine)
    with pytest.raises(ScanIncomplete):
        interpret_reply(
            parse_scan_reply("stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND", whole_stream_sent=True),
            engine,
        )
    infected = interpret_reply(parse_scan_reply("stream: Eicar-Sig FOUND", whole_stream_sent=True), engine)
    # The reply alone says nothing of the bytes: scan_object adds their hash once the stream is whole.
    assert infected.as_payload() == {
        "verdict": "INFECTED",
        "signature": "Eicar-Sig",
        "engine": engine,
        "sha256": None,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [("tcp://127.0.0.1:3310", "tcp://127.0.0.1:3310"), ("unix:///tmp/clamd.sock", "unix:///tmp/clamd.sock")],
)
def test_clamd_address_forms(text: str, expected: str) -> None:
    assert str(ClamdAddress.parse(text)) == expected


@pytest.mark.parametrize("text", ["127.0.0.1:3310", "tcp://host", "unix://relative.sock", "http://x:1"])
def test_bad_clamd_addresses_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="clamd"):
        ClamdAddress.parse(text)


# ---------------------------------------------------------------- the handler, end to end on moto S3


@dataclass
class FakeLambdaContext:
    function_name: str = "ScanFunction"
    memory_limit_in_mb: int = 3008
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ScanFunction"
    aws_request_id: str = "5b1d7e0c-0000-4000-8000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def event_for(ref: FileRef) -> dict[str, Any]:
    return {"file": ref.to_state(), "executionName": f"{ref.file_id}-1"}


def use_scan_env(monkeypatch: pytest.MonkeyPatch, address: str, **overrides: str) -> None:
    values = {
        "CLAMD_ADDRESS": address,
        "DEFINITIONS_MAX_AGE_HOURS": "48",
        "SCAN_MAX_BYTES": str(POLICY.max_bytes),
        "INGEST_BUCKET": INGEST_BUCKET,
        "CLEAN_BUCKET": CLEAN_BUCKET,
        "DEFINITIONS_BUCKET": DEFINITIONS_BUCKET,
        **overrides,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    common.settings.load_settings.cache_clear()


@pytest.mark.clamd
@needs_clamd
def test_handler_returns_the_verdict_payload(
    aws: Any, local_clamd: LocalClamd, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_scan_env(monkeypatch, local_clamd.address)
    clean = handler.lambda_handler(event_for(upload(aws, b"hello world")), FakeLambdaContext())
    assert clean["verdict"] == "CLEAN"
    assert clean["sha256"] == hashlib.sha256(b"hello world").hexdigest()
    assert "signature" in clean
    assert clean["signature"] is None
    assert clean["engine"].startswith("ClamAV 1.")
    infected = handler.lambda_handler(
        event_for(upload(aws, zipped({"a.txt": eicar_bytes()}))), FakeLambdaContext()
    )
    assert infected["verdict"] == "INFECTED"
    assert infected["signature"].startswith(SIGNATURE_NAME)
    assert json.loads(json.dumps(infected)) == infected


@pytest.mark.clamd
@needs_clamd
def test_handler_errors_carry_the_asl_error_names(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_scan_env(monkeypatch, f"tcp://127.0.0.1:{closed_port()}")
    with pytest.raises(ScannerUnavailable) as unavailable:
        handler.lambda_handler(event_for(upload(aws, b"hello")), FakeLambdaContext())
    assert type(unavailable.value).__name__ == "ScannerUnavailable"
    assert json.loads(str(unavailable.value))["code"] == "ScannerUnavailable"

    use_scan_env(monkeypatch, f"tcp://127.0.0.1:{closed_port()}", SCAN_MAX_BYTES="10")
    with pytest.raises(ScanIncomplete):
        handler.lambda_handler(event_for(upload(aws, b"more than ten bytes")), FakeLambdaContext())


def test_handler_refuses_other_buckets(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_scan_env(monkeypatch, "tcp://127.0.0.1:3310")
    aws.create_bucket(Bucket="elsewhere")
    key = ingest_key(OWNER, new_file_id())
    aws.put_object(Bucket="elsewhere", Key=key, Body=b"x")
    event = {"file": FileRef.from_object("elsewhere", key, "null").to_state(), "executionName": "x"}
    with pytest.raises(ValueError, match="reads uploads and stored files only"):
        handler.lambda_handler(event, FakeLambdaContext())


@pytest.mark.parametrize(
    "overrides",
    [{"CLAMD_ADDRESS": "embedded", "DEFINITIONS_BUCKET": ""}, {"CLAMD_ADDRESS": "localhost:3310"}],
)
def test_bad_settings_fail_at_load(
    aws: Any, monkeypatch: pytest.MonkeyPatch, overrides: dict[str, str]
) -> None:
    use_scan_env(monkeypatch, "tcp://127.0.0.1:3310", **overrides)
    with pytest.raises(SettingsError):
        common.settings.load_settings(handler.ScanSettings)


# ---------------------------------------------------------------- embedded clamd (Debian's clamd, moto)


class CountingStore(ObjectStore):
    def __init__(self, s3: Any) -> None:
        super().__init__(s3)
        self.downloads: list[str] = []

    def stream(self, bucket: str, key: str, version: str | None = None, chunk_size: int = 1024 * 1024) -> Any:
        self.downloads.append(key)
        return super().stream(bucket, key, version, chunk_size)


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def publish_database(s3: Any, built_at: datetime, name: str = "daily.cud") -> None:
    s3.put_object(
        Bucket=DEFINITIONS_BUCKET, Key=DEFINITIONS_PREFIX + name, Body=build_database_container(built_at)
    )


def make_embedded(
    store: ObjectStore, root: Path, clock: ManualClock | None = None, **kwargs: Any
) -> EmbeddedClamd:
    mirror = DefinitionsMirror(
        store, DEFINITIONS_BUCKET, DEFINITIONS_PREFIX, root / "db", root / "state.json"
    )
    return EmbeddedClamd(
        mirror,
        max_bytes=POLICY.max_bytes,
        root=root,
        binary=Path(LocalClamd.find_binary() or "/usr/sbin/clamd"),
        lib_dir=root / "lib",
        clock=clock or ManualClock(),
        **{"startup_timeout": 20, **kwargs},
    )


@pytest.mark.clamd
@needs_clamd
def test_embedded_clamd_starts_from_the_bucket_and_is_reused(aws: Any, short_dir: Path) -> None:
    publish_database(aws, datetime.now(UTC) - timedelta(hours=1))
    aws.put_object(Bucket=DEFINITIONS_BUCKET, Key=DEFINITIONS_PREFIX + "notes.txt", Body=b"not a database")
    store = CountingStore(aws)
    clock = ManualClock()
    clamd = make_embedded(store, short_dir, clock)
    try:
        address = clamd.ensure_running()
        assert address == f"unix://{short_dir}/clamd.sock"
        assert store.downloads == [DEFINITIONS_PREFIX + "daily.cud"]
        assert sorted(p.name for p in clamd.mirror.database_files()) == ["daily.cud"]
        config = dict(line.split(" ", 1) for line in clamd.config_path.read_text().splitlines())
        assert config["LocalSocket"] == str(short_dir / "clamd.sock")
        assert config["Foreground"] == "yes"
        assert config["StreamMaxLength"] == str(POLICY.max_bytes)
        assert config["MaxScanSize"] == str(2 * POLICY.max_bytes)
        assert stat.S_IMODE(os.stat(short_dir / "clamd.sock").st_mode) == 0o600

        ref = upload(aws, eicar_bytes())
        verdict = scan(aws, address, ref)
        assert verdict.verdict == "INFECTED"

        pid = clamd.pid
        clock.now += 60  # warm invocation before the refresh interval: nothing fetched, same process
        assert clamd.ensure_running() == address
        assert clamd.pid == pid
        assert store.downloads == [DEFINITIONS_PREFIX + "daily.cud"]
    finally:
        clamd.stop()
    assert not clamd.running


@pytest.mark.clamd
@needs_clamd
def test_embedded_clamd_refreshes_definitions_and_survives_a_crash(aws: Any, short_dir: Path) -> None:
    old = (datetime.now(UTC) - timedelta(hours=30)).replace(microsecond=0)
    publish_database(aws, old)
    store = CountingStore(aws)
    clock = ManualClock()
    clamd = make_embedded(store, short_dir, clock, refresh_interval=600)
    try:
        client = ClamdClient(clamd.ensure_running())
        assert client.version().database_built_at == old

        clock.now += 601  # due, but the bucket has not changed: no download, no reload
        clamd.ensure_running()
        assert len(store.downloads) == 1

        fresh = datetime.now(UTC).replace(microsecond=0)
        publish_database(aws, fresh)
        clock.now += 601
        clamd.ensure_running()
        assert len(store.downloads) == 2
        deadline = time.monotonic() + 10
        while client.version().database_built_at != fresh and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.version().database_built_at == fresh

        pid = clamd.pid
        assert clamd._process is not None
        clamd._process.kill()
        clamd._process.wait(timeout=5)
        assert ClamdClient(clamd.ensure_running()).version().database_built_at == fresh
        assert clamd.pid not in (None, pid)
        assert len(store.downloads) == 2  # the restart reused the mirrored files
    finally:
        clamd.stop()


@pytest.mark.clamd
@needs_clamd
def test_embedded_clamd_without_definitions_fails_closed(aws: Any, short_dir: Path) -> None:
    clamd = make_embedded(ObjectStore(aws), short_dir)
    with pytest.raises(ScannerUnavailable, match="no ClamAV definitions"):
        clamd.ensure_running()
    assert not clamd.running
    publish_database(aws, datetime.now(UTC))
    broken = make_embedded(ObjectStore(aws), short_dir, startup_timeout=5)
    broken.binary = Path("/bin/false")
    with pytest.raises(ScannerUnavailable, match="exited during startup"):
        broken.ensure_running()


def test_mirror_deletes_vanished_files_and_recovers_from_a_bad_state_file(aws: Any, tmp_path: Path) -> None:
    publish_database(aws, datetime.now(UTC), "daily.cud")
    publish_database(aws, datetime.now(UTC), "main.cud")
    store = CountingStore(aws)
    mirror = DefinitionsMirror(
        store, DEFINITIONS_BUCKET, DEFINITIONS_PREFIX, tmp_path / "db", tmp_path / "s.json"
    )
    assert mirror.sync() is True
    assert mirror.sync() is False
    assert len(store.downloads) == 2
    aws.delete_object(Bucket=DEFINITIONS_BUCKET, Key=DEFINITIONS_PREFIX + "main.cud")
    assert mirror.sync() is True
    assert [p.name for p in mirror.database_files()] == ["daily.cud"]
    (tmp_path / "s.json").write_text("{not json")
    assert mirror.sync() is True  # unknown state: fetch again rather than trust the files
    assert len(store.downloads) == 3


@pytest.mark.clamd
@needs_clamd
def test_handler_in_embedded_mode(aws: Any, short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    publish_database(aws, datetime.now(UTC))
    monkeypatch.setattr(embedded, "RUNTIME_ROOT", short_dir)
    monkeypatch.setattr(embedded, "CLAMD_BINARY", Path(LocalClamd.find_binary() or "/usr/sbin/clamd"))
    use_scan_env(monkeypatch, "embedded")
    embedded.stop_shared_embedded_clamd()
    try:
        infected = handler.lambda_handler(event_for(upload(aws, eicar_bytes())), FakeLambdaContext())
        clean = handler.lambda_handler(event_for(upload(aws, b"fine")), FakeLambdaContext())
    finally:
        embedded.stop_shared_embedded_clamd()
    assert infected["verdict"] == "INFECTED"
    assert clean == {
        "verdict": "CLEAN",
        "signature": None,
        "engine": infected["engine"],
        "sha256": hashlib.sha256(b"fine").hexdigest(),
    }


# ---------------------------------------------------------------- definitions update (fake freshclam script)

FAKE_FRESHCLAM = """\
import os, sys
from pathlib import Path
config = next(a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--config-file="))
settings = dict(line.split(" ", 1) for line in Path(config).read_text().splitlines() if line)
database = Path(settings["DatabaseDirectory"])
with open(os.environ["FAKE_FRESHCLAM_LOG"], "a") as log:
    log.write(" ".join(sorted(p.name for p in database.iterdir())) + "\\n")
for name in os.environ.get("FAKE_FRESHCLAM_REMOVE", "").split():
    (database / name).unlink()
source = os.environ.get("FAKE_FRESHCLAM_SOURCE")
if source:
    Path(database / os.environ["FAKE_FRESHCLAM_NAME"]).write_bytes(Path(source).read_bytes())
(database / "freshclam.dat").write_bytes(b"state")
print("Database updated from fake mirror")
sys.exit(int(os.environ.get("FAKE_FRESHCLAM_EXIT", "0")))
"""


@pytest.fixture
def fake_freshclam(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "freshclam"
    script.write_text(f"#!{sys.executable}\n{FAKE_FRESHCLAM}")
    script.chmod(0o755)
    monkeypatch.setenv("FAKE_FRESHCLAM_LOG", str(tmp_path / "freshclam.log"))
    return script


def use_freshclam_output(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, data: bytes) -> None:
    source = tmp_path / f"source-{name}-{len(data)}"
    source.write_bytes(data)
    monkeypatch.setenv("FAKE_FRESHCLAM_SOURCE", str(source))
    monkeypatch.setenv("FAKE_FRESHCLAM_NAME", name)


def published(s3: Any) -> dict[str, bytes]:
    listing = s3.list_objects_v2(Bucket=DEFINITIONS_BUCKET).get("Contents", [])
    return {
        item["Key"]: s3.get_object(Bucket=DEFINITIONS_BUCKET, Key=item["Key"])["Body"].read()
        for item in listing
    }


def test_definitions_update_uploads_only_changes(
    aws: Any, tmp_path: Path, fake_freshclam: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ObjectStore(aws)
    work = tmp_path / "work"
    first = build_database_container(datetime.now(UTC) - timedelta(hours=3))
    use_freshclam_output(monkeypatch, tmp_path, "daily.cvd", first)
    report = update_definitions(store, DEFINITIONS_BUCKET, work, fake_freshclam, tmp_path / "lib")
    assert report.as_dict() == {
        "uploaded": ["daily.cvd"],
        "unchanged": [],
        "removed": [],
        "fingerprint": hashlib.sha256(
            f"daily.cvd:{hashlib.sha256(first).hexdigest()}\n".encode()
        ).hexdigest(),
    }
    assert published(aws) == {"clamav/daily.cvd": first, "freshclam/freshclam.dat": b"state"}

    again = update_definitions(store, DEFINITIONS_BUCKET, work, fake_freshclam, tmp_path / "lib")
    # The same definitions: nothing uploaded, and the same fingerprint (so no second rescan starts).
    assert again.as_dict() == {**report.as_dict(), "uploaded": [], "unchanged": ["daily.cvd"]}

    # A fresh sandbox starts from the published files; freshclam turns daily.cvd into daily.cld.
    second = build_database_container(datetime.now(UTC))
    use_freshclam_output(monkeypatch, tmp_path, "daily.cld", second)
    monkeypatch.setenv("FAKE_FRESHCLAM_REMOVE", "daily.cvd")
    cold = update_definitions(store, DEFINITIONS_BUCKET, tmp_path / "cold", fake_freshclam, None)
    assert cold.as_dict() | {"fingerprint": ""} == {
        "uploaded": ["daily.cld"],
        "unchanged": [],
        "removed": ["daily.cvd"],
        "fingerprint": "",
    }
    assert cold.fingerprint != report.fingerprint
    assert published(aws)["clamav/daily.cld"] == second
    assert "clamav/daily.cvd" not in published(aws)
    runs = (tmp_path / "freshclam.log").read_text().splitlines()
    assert runs[-1] == "daily.cvd freshclam.dat"  # freshclam saw the previous files and its own state


@pytest.mark.parametrize(
    ("exit_code", "output", "message"),
    [
        (52, build_database_container(datetime.now(UTC)), "exited with 52"),
        (0, b"<html>", "not a ClamAV database"),
    ],
)
def test_definitions_update_publishes_nothing_on_failure(
    aws: Any,
    tmp_path: Path,
    fake_freshclam: Path,
    monkeypatch: pytest.MonkeyPatch,
    exit_code: int,
    output: bytes,
    message: str,
) -> None:
    use_freshclam_output(monkeypatch, tmp_path, "daily.cvd", output)
    monkeypatch.setenv("FAKE_FRESHCLAM_EXIT", str(exit_code))
    with pytest.raises(DefinitionsUpdateFailed, match=message):
        update_definitions(ObjectStore(aws), DEFINITIONS_BUCKET, tmp_path / "work", fake_freshclam, None)
    assert published(aws) == {}


@pytest.mark.clamd
@needs_clamd
def test_definitions_handler_publishes_what_the_embedded_clamd_loads(
    aws: Any, tmp_path: Path, short_dir: Path, fake_freshclam: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_freshclam_output(monkeypatch, tmp_path, "daily.cud", build_database_container(datetime.now(UTC)))
    monkeypatch.setattr(definitions, "FRESHCLAM_BINARY", fake_freshclam)
    monkeypatch.setattr(definitions, "WORK_ROOT", tmp_path / "work")
    monkeypatch.setenv("DEFINITIONS_BUCKET", DEFINITIONS_BUCKET)
    monkeypatch.setenv("RESCAN_STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:none")
    monkeypatch.setenv("RESCAN_WINDOW_DAYS", "0")
    common.settings.load_settings.cache_clear()
    result = definitions.lambda_handler({}, FakeLambdaContext(function_name="DefinitionsUpdateFunction"))
    assert result["uploaded"] == ["daily.cud"]
    assert "rescan" not in result  # no window, no rescan

    clamd = make_embedded(ObjectStore(aws), short_dir)
    try:
        assert scan(aws, clamd.ensure_running(), upload(aws, eicar_bytes())).verdict == "INFECTED"
    finally:
        clamd.stop()


def test_new_definitions_start_one_rescan_of_the_window(aws: Any) -> None:
    from scan.rescans import SCHEDULED_LIMIT, start_rescan

    sfn = boto3.client("stepfunctions", region_name=REGION)
    role = "arn:aws:iam::123456789012:role/rescan"
    definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    machine = sfn.create_state_machine(name="rescan", definition=definition, roleArn=role)["stateMachineArn"]
    now = datetime.now(UTC).replace(microsecond=0)
    fingerprint = hashlib.sha256(b"daily.cvd:abc").hexdigest()

    assert start_rescan(sfn, machine, fingerprint, 7, now) == f"definitions-{fingerprint[:16]}"
    # The same definitions again (a retried or an unchanged update): nothing new starts.
    assert start_rescan(sfn, machine, fingerprint, 7, now + timedelta(hours=3)) is None
    [execution] = sfn.list_executions(stateMachineArn=machine)["executions"]
    started = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    window = {k: datetime.fromisoformat(v) for k, v in started["window"].items()}
    assert window["to"] == now
    assert window["from"] == now - timedelta(days=7)
    assert started["reason"] == "definitions-update"
    assert started["limit"] == SCHEDULED_LIMIT
    assert started["dryRun"] is False
