"""Start a real clamd on 127.0.0.1 with a locally generated signature database (tests, `filepipe local`)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import socket
import subprocess
import tarfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from filepipe.function_code import use_function_code

use_function_code()
from scan.clamd import clamd_config  # noqa: E402 - the scan function's own rules

NOT_INSTALLED = "ClamAV not installed; scans fail closed"
SIGNATURE_NAME = "Filepipe.Test.EICAR"
DEBIAN_CLAMD = "/usr/sbin/clamd"

_CONTAINER_FLEVEL = 90  # older than any ClamAV 1.x engine, so clamd never calls itself outdated


def eicar_bytes() -> bytes:
    """The EICAR anti-virus test file, assembled here so this source never holds it in one piece."""
    return b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS" + b"-TEST-FILE!$H+H*"


def signature_files(*, detects_eicar: bool = True) -> dict[str, bytes]:
    """A body signature (matches EICAR anywhere, also inside archives) and a whole-file hash signature.

    Without ``detects_eicar`` the same files match a marker no file holds: definitions from before EICAR
    was known, for the rescan after new definitions.
    """
    eicar = eicar_bytes() if detects_eicar else b"filepipe: definitions that predate this threat"
    body = f"{SIGNATURE_NAME}-Body:0:*:{eicar.hex()}\n".encode()
    whole_file = f"{hashlib.md5(eicar).hexdigest()}:{len(eicar)}:{SIGNATURE_NAME}-File\n".encode()  # noqa: S324
    return {"daily.ndb": body, "daily.hdb": whole_file}


def build_database_container(built_at: datetime, version: int = 1, *, detects_eicar: bool = True) -> bytes:
    """An unsigned ClamAV database container (``daily.cud``) holding :func:`signature_files`.

    clamd reports a database version and build time (the ``VERSION`` command) only for a ``daily``
    container; plain ``.ndb``/``.hdb`` files carry no date. Packing the local signatures the way
    freshclam's ``daily.cvd`` is packed lets the scanner apply one freshness rule everywhere.
    """
    files = signature_files(detects_eicar=detects_eicar)
    stamp = int(built_at.timestamp())
    header_fields = (
        f"{built_at.astimezone(UTC):%d %b %Y %H-%M +0000}",
        str(version),
        str(len(files)),
        str(_CONTAINER_FLEVEL),
    )
    # The inner header repeats the outer one; its checksum and signature fields are not used.
    info_lines = [":".join(("ClamAV-VDB", *header_fields, "-", "-", "filepipe", str(stamp)))]
    info_lines += [f"{name}:{len(data)}:{hashlib.sha256(data).hexdigest()}" for name, data in files.items()]
    members = {"daily.info": ("\n".join(info_lines) + "\n").encode(), **files}

    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            member.mtime = stamp
            tar.addfile(member, io.BytesIO(data))
    body = archive.getvalue()
    digest = hashlib.md5(body).hexdigest()  # noqa: S324 - the container format's own checksum field
    header = ":".join(("ClamAV-VDB", *header_fields, digest, "unsigned", "filepipe", str(stamp)))
    return header.encode().ljust(512, b" ") + body


def write_signature_database(
    directory: Path,
    built_at: datetime | None = None,
    *,
    dated: bool = True,
    version: int = 1,
    detects_eicar: bool = True,
) -> Path:
    """Write the local database into ``directory``: ``daily.cud`` (dated) or bare ``.ndb``/``.hdb`` files."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in ("daily.cud", *signature_files()):
        (directory / stale).unlink(missing_ok=True)
    if not dated:
        for name, data in signature_files(detects_eicar=detects_eicar).items():
            (directory / name).write_bytes(data)
        return directory / "daily.ndb"
    container = directory / "daily.cud"
    partial = (
        directory / "daily.cud.partial"
    )  # clamd only loads known suffixes, so a half-written file is ignored
    partial.write_bytes(
        build_database_container(built_at or datetime.now(UTC), version, detects_eicar=detects_eicar)
    )
    partial.replace(container)
    return container


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class ClamdStartError(RuntimeError):
    """clamd could not be started or did not answer PING in time."""


class LocalClamd:
    """A clamd subprocess on 127.0.0.1 with the generated database; ``with LocalClamd(dir) as clamd``."""

    def __init__(
        self,
        work_dir: Path,
        *,
        max_bytes: int = 100 * 1024 * 1024,
        built_at: datetime | None = None,
        dated: bool = True,
        startup_timeout: float = 20.0,
        binary: str | None = None,
        detects_eicar: bool = True,
    ) -> None:
        self.work_dir = Path(work_dir)
        self.detects_eicar = detects_eicar
        self.database_version = 1
        self.max_bytes = max_bytes
        self.built_at = built_at
        self.dated = dated
        self.startup_timeout = startup_timeout
        self.binary = binary or self.find_binary()
        self.database_dir = self.work_dir / "db"
        self.config_path = self.work_dir / "clamd.conf"
        self.log_path = self.work_dir / "clamd.log"
        self.output_path = self.work_dir / "clamd.out"
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self.startup_seconds: float | None = None

    @staticmethod
    def find_binary() -> str | None:
        found = shutil.which("clamd")
        if found:
            return found
        return DEBIAN_CLAMD if os.access(DEBIAN_CLAMD, os.X_OK) else None

    @classmethod
    def is_available(cls) -> bool:
        return cls.find_binary() is not None

    @property
    def address(self) -> str:
        if self._port is None or not self.running:
            raise ClamdStartError("clamd is not running")
        return f"tcp://127.0.0.1:{self._port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self.running else None

    def _write_config(self, port: int) -> None:
        temp_dir = self.work_dir / "tmp"
        temp_dir.mkdir(parents=True, exist_ok=True)
        listen = {"TCPSocket": port, "TCPAddr": "127.0.0.1"}
        self.config_path.write_text(
            clamd_config(listen, self.database_dir, temp_dir, self.log_path, self.max_bytes)
        )

    def start(self) -> LocalClamd:
        if self.running:
            return self
        if self.binary is None:
            raise ClamdStartError(NOT_INSTALLED)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        write_signature_database(
            self.database_dir,
            self.built_at,
            dated=self.dated,
            version=self.database_version,
            detects_eicar=self.detects_eicar,
        )
        began = time.monotonic()
        # Another process may take the probed port before clamd binds it; a fresh port fixes that.
        for _attempt in range(3):
            port = _free_port()
            self._write_config(port)
            if self._launch(port):
                self.startup_seconds = time.monotonic() - began
                return self
        raise ClamdStartError(f"clamd did not start:\n{_tail(self.log_path)}\n{_tail(self.output_path)}")

    def _launch(self, port: int) -> bool:
        # clamd prints its database date in local time; UTC makes the VERSION reply unambiguous.
        environment = {**os.environ, "TZ": "UTC"}
        assert self.binary is not None
        with self.output_path.open("ab") as output:
            self._process = subprocess.Popen(  # noqa: S603 - fixed binary and arguments
                [self.binary, "--config-file", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=environment,
            )
        self._port = port
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            if self._answers_ping(port):
                return True
            time.sleep(0.01)
        self.stop()
        raise ClamdStartError(f"clamd did not answer PING within {self.startup_timeout} s")

    @staticmethod
    def _answers_ping(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as connection:
                connection.sendall(b"zPING\0")
                return connection.recv(16).rstrip(b"\0") == b"PONG"
        except OSError:
            return False

    def refresh_definitions(
        self, built_at: datetime | None = None, *, detects_eicar: bool | None = None, timeout: float = 20.0
    ) -> None:
        """Rebuild the database (a new version, a new build time; optionally other signatures) and have
        clamd reload it; with a dated database, return once clamd reports the new version."""
        if detects_eicar is not None:
            self.detects_eicar = detects_eicar
        self.database_version += 1
        write_signature_database(
            self.database_dir,
            built_at,
            dated=self.dated,
            version=self.database_version,
            detects_eicar=self.detects_eicar,
        )
        if self._port is None or not self.running:
            return
        self._command(b"zRELOAD\0")
        if not self.dated:
            return
        # RELOAD answers at once and loads in the background; scans meanwhile use the old database.
        deadline = time.monotonic() + timeout
        while f"/{self.database_version}/" not in self._command(b"zVERSION\0"):
            if time.monotonic() > deadline:
                raise ClamdStartError(f"clamd did not load database version {self.database_version}")
            time.sleep(0.02)

    def _command(self, command: bytes) -> str:
        assert self._port is not None
        with socket.create_connection(("127.0.0.1", self._port), timeout=5.0) as connection:
            connection.sendall(command)
            return connection.recv(256).rstrip(b"\0").decode(errors="replace")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def __enter__(self) -> LocalClamd:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
