"""clamd inside the Lambda sandbox: definitions mirrored from their bucket, a Unix socket in /tmp.

The scan function runs as a container image built on Debian (functions/scan/image/Dockerfile), whose
clamav-daemon package installs clamd where Debian puts it on any machine, this one included.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from common.errors import ScannerUnavailable
from common.observability import logger
from common.storage import ObjectStore
from scan.clamd import ClamdClient, clamd_config

DEFINITIONS_PREFIX = "clamav/"
DATABASE_SUFFIXES = frozenset({".cvd", ".cld", ".cud"})
# Debian's clamav-daemon package (functions/scan/image/Dockerfile pins its version).
CLAMD_BINARY = Path("/usr/sbin/clamd")
# A container image's file system is read-only on Lambda except /tmp (Lambda developer guide, "Create a
# Lambda function using a container image", requirements).
RUNTIME_ROOT = Path("/tmp/clamav")  # noqa: S108 - Lambda's only writable place
# A full ClamAV database takes tens of seconds to load; the scan function's timeout is 300 s.
STARTUP_TIMEOUT_SECONDS = 120.0
# Warm sandboxes look for newer definitions this often; the updater publishes every 3 hours.
REFRESH_INTERVAL_SECONDS = 3600.0
_DOWNLOAD_CHUNK = 1024 * 1024


def is_database_file(name: str) -> bool:
    return "/" not in name and Path(name).suffix in DATABASE_SUFFIXES


class DefinitionsMirror:
    """Keeps a local directory equal to the database files under a bucket prefix, fetching only changes.

    The ETag of every file fetched is kept in a small state file, so a sandbox that still has its /tmp
    downloads nothing when the bucket has not changed.
    """

    def __init__(
        self, store: ObjectStore, bucket: str, prefix: str, directory: Path, state_path: Path
    ) -> None:
        self.store = store
        self.bucket = bucket
        self.prefix = prefix
        self.directory = directory
        self.state_path = state_path

    def _load_state(self) -> dict[str, str]:
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(state, dict):
            return {}
        return {str(name): str(etag) for name, etag in state.items()}

    def _save_state(self, state: dict[str, str]) -> None:
        partial = self.state_path.with_name(self.state_path.name + ".partial")
        partial.write_text(json.dumps(state, sort_keys=True))
        partial.replace(self.state_path)

    def database_files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(path for path in self.directory.iterdir() if is_database_file(path.name))

    def sync(self) -> bool:
        """Download new or changed files and delete vanished ones; True when anything changed."""
        self.directory.mkdir(parents=True, exist_ok=True)
        remote = {
            summary.key.removeprefix(self.prefix): summary
            for summary in self.store.list_objects(self.bucket, self.prefix)
            if is_database_file(summary.key.removeprefix(self.prefix))
        }
        state = self._load_state()
        changed = False
        for name, summary in sorted(remote.items()):
            target = self.directory / name
            if state.get(name) == summary.etag and target.exists():
                continue
            self._download(summary.key, target)
            state[name] = summary.etag
            changed = True
        for path in self.database_files():
            if path.name not in remote:
                path.unlink()
                changed = True
        state = {name: etag for name, etag in state.items() if name in remote}
        self._save_state(state)
        return changed

    def _download(self, key: str, target: Path) -> None:
        # clamd ignores unknown suffixes, so a half-written ".partial" is never loaded.
        partial = target.with_name(target.name + ".partial")
        with partial.open("wb") as output:
            for chunk in self.store.stream(self.bucket, key, None, chunk_size=_DOWNLOAD_CHUNK):
                output.write(chunk)
        partial.replace(target)


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class EmbeddedClamd:
    """Starts clamd once per sandbox and keeps it for warm invocations; restarts it if it died.

    clamd starts on the sandbox's first invocation, not during Lambda's Init phase: loading a full database
    takes longer than the 10 s Init allows an on-demand function. ``lib_dir`` is a folder of shared
    libraries to load first, for a clamd installed outside the loader's paths (the image needs none).
    """

    def __init__(
        self,
        mirror: DefinitionsMirror,
        *,
        max_bytes: int,
        root: Path,
        binary: Path,
        lib_dir: Path | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
        refresh_interval: float = REFRESH_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mirror = mirror
        self.max_bytes = max_bytes
        self.root = root
        self.binary = binary
        self.lib_dir = lib_dir
        self.startup_timeout = startup_timeout
        self.refresh_interval = refresh_interval
        self._clock = clock
        self.socket_path = root / "clamd.sock"
        self.config_path = root / "clamd.conf"
        self.log_path = root / "clamd.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._synced_at = 0.0
        self.startup_seconds: float | None = None

    @property
    def address(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process is not None else None

    def ensure_running(self) -> str:
        """The clamd address, starting clamd (cold start) or refreshing its definitions when due."""
        if self.running:
            if self._clock() - self._synced_at >= self.refresh_interval:
                self._refresh()
            return self.address
        self._start()
        return self.address

    def _refresh(self) -> None:
        self._synced_at = self._clock()
        try:
            changed = self.mirror.sync()
        except Exception:
            # The definitions in use stay valid until the freshness check says otherwise.
            logger.warning("could not refresh ClamAV definitions; keeping the loaded ones", exc_info=True)
            return
        if changed:
            logger.info("ClamAV definitions changed; reloading clamd")
            ClamdClient(self.address, timeout=10.0).reload()

    def _write_config(self) -> None:
        temp_dir = self.root / "tmp"
        temp_dir.mkdir(parents=True, exist_ok=True)
        listen = {"LocalSocket": self.socket_path, "LocalSocketMode": "600", "FixStaleSocket": "yes"}
        self.config_path.write_text(
            clamd_config(listen, self.mirror.directory, temp_dir, self.log_path, self.max_bytes)
        )

    def _start(self) -> None:
        began = self._clock()
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self.mirror.sync()
        except Exception as error:
            raise ScannerUnavailable(f"cannot fetch ClamAV definitions: {error}") from error
        self._synced_at = self._clock()
        if not self.mirror.database_files():
            raise ScannerUnavailable(
                f"no ClamAV definitions in s3://{self.mirror.bucket}/{self.mirror.prefix}; "
                "has the definitions update run?"
            )
        self._write_config()
        environment = {**os.environ, "TZ": "UTC"}  # VERSION prints the database date in local time
        if self.lib_dir is not None:
            inherited = environment.get("LD_LIBRARY_PATH")
            environment["LD_LIBRARY_PATH"] = f"{self.lib_dir}:{inherited}" if inherited else str(self.lib_dir)
        try:
            with (self.root / "clamd.out").open("ab") as output:
                self._process = subprocess.Popen(  # noqa: S603 - fixed binary and arguments
                    [str(self.binary), "--config-file", str(self.config_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    env=environment,
                )
        except OSError as error:
            raise ScannerUnavailable(f"cannot run {self.binary}: {error}") from error
        self._wait_until_ready()
        self.startup_seconds = self._clock() - began
        logger.info("clamd started", extra={"seconds": round(self.startup_seconds, 3), "pid": self.pid})

    def _wait_until_ready(self) -> None:
        client = ClamdClient(self.address, connect_timeout=1.0, timeout=2.0)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                self._process = None
                raise ScannerUnavailable(f"clamd exited during startup: {_log_tail(self.log_path)}")
            try:
                client.ping()
                return
            except ScannerUnavailable:
                time.sleep(0.05)
        self.stop()
        raise ScannerUnavailable(f"clamd did not answer PING within {self.startup_timeout:.0f} s")

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


_shared: EmbeddedClamd | None = None


def shared_embedded_clamd(store: ObjectStore, bucket: str, max_bytes: int) -> EmbeddedClamd:
    """The sandbox's one clamd, created on first use with the image's paths."""
    global _shared
    if _shared is None:
        mirror = DefinitionsMirror(
            store, bucket, DEFINITIONS_PREFIX, RUNTIME_ROOT / "db", RUNTIME_ROOT / "db-state.json"
        )
        _shared = EmbeddedClamd(mirror, max_bytes=max_bytes, root=RUNTIME_ROOT, binary=CLAMD_BINARY)
        atexit.register(_shared.stop)
    return _shared


def stop_shared_embedded_clamd() -> None:
    """Stop and forget the shared clamd (tests; a sandbox simply ends)."""
    global _shared
    if _shared is not None:
        _shared.stop()
        atexit.unregister(_shared.stop)
        _shared = None
