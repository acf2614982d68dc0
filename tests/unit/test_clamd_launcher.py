"""LocalClamd: the generated signature database, the config it writes, and the clamd it starts and stops."""

from __future__ import annotations

import hashlib
import io
import socket
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from filepipe import clamd as launcher
from filepipe.clamd import (
    NOT_INSTALLED,
    SIGNATURE_NAME,
    ClamdStartError,
    LocalClamd,
    build_database_container,
    eicar_bytes,
    write_signature_database,
)
from scan.clamd import ClamdClient, ReplyKind, clamd_limit_settings

needs_clamd = pytest.mark.skipif(not LocalClamd.is_available(), reason=NOT_INSTALLED)


def _config(path: Path) -> dict[str, str]:
    entries = (line.split(" ", 1) for line in path.read_text().splitlines() if line.strip())
    return {name: value for name, value in entries}


def test_eicar_is_the_standard_test_file() -> None:
    eicar = eicar_bytes()
    assert len(eicar) == 68
    assert hashlib.md5(eicar).hexdigest() == "44d88612fea8a8f36de82e1278abb02f"  # noqa: S324


def test_container_header_carries_version_date_and_checksum() -> None:
    built_at = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    container = build_database_container(built_at, version=42)
    header = container[:512].decode().rstrip(" ").split(":")
    assert header[0] == "ClamAV-VDB"
    assert header[1] == "04 Mar 2026 05-06 +0000"
    assert header[2:5] == ["42", "2", "90"]
    assert header[5] == hashlib.md5(container[512:]).hexdigest()  # noqa: S324
    assert header[-1] == str(int(built_at.timestamp()))


def test_undated_database_is_bare_signature_files(tmp_path: Path) -> None:
    write_signature_database(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["daily.cud"]
    write_signature_database(tmp_path, dated=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["daily.hdb", "daily.ndb"]
    assert eicar_bytes().hex() in (tmp_path / "daily.ndb").read_text()


@pytest.mark.parametrize("max_bytes", [1, 64 * 1024, 1024**3, 3 * 1024**3, 10 * 1024**4])
def test_clamd_limits_follow_the_file_limit(max_bytes: int) -> None:
    limits = clamd_limit_settings(max_bytes)
    assert limits["StreamMaxLength"] == min(max_bytes, 4 * 1024**3 - 1)
    # Equal, so a zip member that clamd would silently cut at MaxFileSize always trips MaxScanSize.
    assert limits["MaxFileSize"] == limits["MaxScanSize"] == min(2 * max_bytes, 2_147_483_645)


def test_missing_binary_fails_closed_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(launcher.shutil, "which", lambda name: None)
    monkeypatch.setattr(launcher, "DEBIAN_CLAMD", str(tmp_path / "no-clamd"))
    assert not LocalClamd.is_available()
    with pytest.raises(ClamdStartError, match=NOT_INSTALLED):
        LocalClamd(tmp_path).start()


def test_binary_that_exits_is_reported_not_waited_for(tmp_path: Path) -> None:
    began = time.monotonic()
    with pytest.raises(ClamdStartError, match="did not start"):
        LocalClamd(tmp_path, binary="/bin/false", startup_timeout=10).start()
    assert time.monotonic() - began < 5


@pytest.mark.clamd
@needs_clamd
def test_start_writes_config_answers_and_stops(tmp_path: Path) -> None:
    clamd = LocalClamd(tmp_path, max_bytes=5 * 1024 * 1024)
    with clamd:
        assert clamd.running
        assert clamd.address.startswith("tcp://127.0.0.1:")
        assert clamd.startup_seconds is not None
        assert clamd.startup_seconds < 5
        ClamdClient(clamd.address).ping()
        config = _config(clamd.config_path)
        assert config["TCPAddr"] == "127.0.0.1"
        assert config["Foreground"] == "yes"
        assert config["StreamMaxLength"] == str(5 * 1024 * 1024)
        assert config["MaxFileSize"] == str(10 * 1024 * 1024)
        assert config["MaxScanSize"] == str(10 * 1024 * 1024)
        assert config["AlertExceedsMax"] == "yes"
        assert Path(config["LogFile"]).parent == tmp_path
        port = int(clamd.address.rsplit(":", 1)[1])
    assert not clamd.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    clamd.stop()  # a second stop is harmless


@pytest.mark.clamd
@needs_clamd
def test_version_reports_the_database_build_time(tmp_path: Path) -> None:
    built_at = (datetime.now(UTC) - timedelta(hours=5)).replace(microsecond=0)
    with LocalClamd(tmp_path / "dated", built_at=built_at) as clamd:
        version = ClamdClient(clamd.address).version()
    assert version.engine.startswith("ClamAV 1.")
    assert version.database_version == 1
    assert version.database_built_at == built_at

    with LocalClamd(tmp_path / "undated", dated=False) as clamd:
        version = ClamdClient(clamd.address).version()
    assert version.database_version is None
    assert version.database_built_at is None


@pytest.mark.clamd
@needs_clamd
def test_generated_signatures_find_eicar_alone_and_in_a_zip(tmp_path: Path) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("docs/readme.txt", b"nothing to see")
        bundle.writestr("docs/holiday.jpg", eicar_bytes())
    with LocalClamd(tmp_path) as clamd:
        client = ClamdClient(clamd.address)
        for sample in (eicar_bytes(), b"prefix " + eicar_bytes() + b" suffix", archive.getvalue()):
            reply = client.instream([sample])
            assert reply.kind is ReplyKind.FOUND
            assert reply.detail is not None
            assert reply.detail.startswith(SIGNATURE_NAME)
        assert client.instream([b"just text"]).kind is ReplyKind.CLEAN


@pytest.mark.clamd
@needs_clamd
def test_refresh_definitions_reloads_a_new_build_time(tmp_path: Path) -> None:
    old = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)
    with LocalClamd(tmp_path, built_at=old) as clamd:
        client = ClamdClient(clamd.address)
        assert client.version().database_built_at == old
        fresh = datetime.now(UTC).replace(microsecond=0)
        clamd.refresh_definitions(fresh)
        deadline = time.monotonic() + 10
        while client.version().database_built_at != fresh and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.version().database_built_at == fresh
