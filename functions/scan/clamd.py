"""clamd client: PING, VERSION, RELOAD and INSTREAM over TCP or a Unix socket, with bounded timeouts."""

from __future__ import annotations

import re
import select
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit

from common.errors import ScannerUnavailable

_MAX_REPLY_BYTES = 64 * 1024
_END_OF_STREAM = struct.pack(">I", 0)
# After clamd stopped reading mid-stream, how long to wait for the reply that says why.
_EARLY_REPLY_WAIT_SECONDS = 2.0

_VERSION_REPLY = re.compile(r"^(?P<engine>ClamAV [^/]+)(?:/(?P<database>\d+)/(?P<built>.+))?$")
# ctime() layout, parsed without the C locale's help: "Sun Nov  2 09:03:18 2026".
_CTIME = re.compile(
    r"^[A-Z][a-z]{2} (?P<month>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) "
    r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2}) (?P<year>\d{4})$"
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1
    )
}


@dataclass(frozen=True)
class ClamdAddress:
    """Where clamd listens: ``tcp://host:port`` or ``unix:///path/to/socket``."""

    family: socket.AddressFamily
    target: str | tuple[str, int]

    @classmethod
    def parse(cls, text: str) -> ClamdAddress:
        parts = urlsplit(text)
        if parts.scheme == "tcp":
            try:
                port = parts.port
            except ValueError as error:
                raise ValueError(f"bad clamd port in {text!r}") from error
            if not parts.hostname or port is None:
                raise ValueError(f"clamd address needs host and port: {text!r}")
            family = socket.AF_INET6 if ":" in parts.hostname else socket.AF_INET
            return cls(family, (parts.hostname, port))
        if parts.scheme == "unix" and parts.path.startswith("/") and not parts.netloc:
            return cls(socket.AF_UNIX, parts.path)
        raise ValueError(f"clamd address must be tcp://host:port or unix:///path, not {text!r}")

    def __str__(self) -> str:
        if isinstance(self.target, tuple):
            host, port = self.target
            return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"
        return f"unix://{self.target}"


@dataclass(frozen=True)
class EngineVersion:
    """The ``VERSION`` reply: engine, and the daily database's version and build time when clamd has one."""

    text: str
    engine: str
    database_version: int | None
    database_built_at: datetime | None


def parse_version(reply: str) -> EngineVersion:
    """Split a VERSION reply; clamd prints the database time with ctime() in its own time zone (UTC here)."""
    match = _VERSION_REPLY.match(reply.strip())
    if match is None:
        raise ValueError(f"not a clamd VERSION reply: {reply!r}")
    built_at = None
    database = match["database"]
    if match["built"] is not None:
        built_at = _parse_ctime(match["built"].strip())
    return EngineVersion(reply.strip(), match["engine"], int(database) if database else None, built_at)


def _parse_ctime(text: str) -> datetime | None:
    match = _CTIME.match(text)
    if match is None or match["month"] not in _MONTHS:
        return None
    try:
        return datetime(
            int(match["year"]),
            _MONTHS[match["month"]],
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"]),
            tzinfo=UTC,
        )
    except ValueError:
        return None


class ReplyKind(Enum):
    CLEAN = "OK"
    FOUND = "FOUND"
    ERROR = "ERROR"
    UNRECOGNISED = "UNRECOGNISED"


@dataclass(frozen=True)
class ScanReply:
    """clamd's answer to INSTREAM, and whether the client delivered the whole stream before it came."""

    kind: ReplyKind
    detail: str | None
    raw: str
    whole_stream_sent: bool


def parse_scan_reply(raw: str, *, whole_stream_sent: bool) -> ScanReply:
    """Classify by the protocol's reply forms: ``stream: OK``, ``stream: <name> FOUND``, ``<text> ERROR``."""
    text = raw.strip()
    if text.endswith(" ERROR") or text == "ERROR":
        return ScanReply(ReplyKind.ERROR, text.removesuffix("ERROR").strip(), text, whole_stream_sent)
    if text == "stream: OK":
        return ScanReply(ReplyKind.CLEAN, None, text, whole_stream_sent)
    if text.startswith("stream: ") and text.endswith(" FOUND"):
        name = text.removeprefix("stream: ").removesuffix(" FOUND").strip()
        if name and " " not in name:
            return ScanReply(ReplyKind.FOUND, name, text, whole_stream_sent)
    return ScanReply(ReplyKind.UNRECOGNISED, None, text, whole_stream_sent)


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def remaining(self, what: str) -> float:
        left = self._end - time.monotonic()
        if left <= 0:
            raise ScannerUnavailable(f"clamd timed out during {what}")
        return left


class ClamdClient:
    """One connection per command, so a broken or slow command never poisons the next one."""

    def __init__(
        self, address: str | ClamdAddress, *, connect_timeout: float = 5.0, timeout: float = 60.0
    ) -> None:
        self.address = address if isinstance(address, ClamdAddress) else ClamdAddress.parse(address)
        self.connect_timeout = connect_timeout
        self.timeout = timeout

    def _connect(self, deadline: _Deadline) -> socket.socket:
        connection = socket.socket(self.address.family, socket.SOCK_STREAM)
        connection.settimeout(min(self.connect_timeout, deadline.remaining("connect")))
        try:
            connection.connect(self.address.target)
        except OSError as error:
            connection.close()
            raise ScannerUnavailable(f"cannot connect to clamd at {self.address}: {error}") from error
        return connection

    def _command(self, command: bytes, timeout: float | None = None) -> str:
        deadline = _Deadline(timeout or self.timeout)
        with self._connect(deadline) as connection:
            try:
                self._send(connection, b"z" + command + b"\0", deadline)
                return self._read_reply(connection, deadline)
            except OSError as error:
                raise ScannerUnavailable(f"clamd {command.decode()} failed: {error}") from error

    def ping(self, timeout: float | None = None) -> None:
        reply = self._command(b"PING", timeout)
        if reply != "PONG":
            raise ScannerUnavailable(f"clamd answered PING with {reply!r}")

    def version(self) -> EngineVersion:
        reply = self._command(b"VERSION")
        try:
            return parse_version(reply)
        except ValueError as error:
            raise ScannerUnavailable(str(error)) from error

    def reload(self) -> None:
        """Ask clamd to reload its databases (it does so in the background)."""
        reply = self._command(b"RELOAD")
        if reply != "RELOADING":
            raise ScannerUnavailable(f"clamd answered RELOAD with {reply!r}")

    def instream(self, chunks: Iterable[bytes]) -> ScanReply:
        """Send the chunks as one INSTREAM; memory stays at one chunk whatever the stream's length."""
        deadline = _Deadline(self.timeout)
        with self._connect(deadline) as connection:
            try:
                self._send(connection, b"zINSTREAM\0", deadline)
            except OSError as error:
                raise ScannerUnavailable(f"clamd INSTREAM failed: {error}") from error
            whole_stream_sent = False
            try:
                for chunk in chunks:
                    if not chunk:
                        continue
                    if self._has_early_reply(connection):
                        break
                    self._send(connection, struct.pack(">I", len(chunk)), deadline)
                    self._send(connection, chunk, deadline)
                else:
                    self._send(connection, _END_OF_STREAM, deadline)
                    whole_stream_sent = True
            except (BrokenPipeError, ConnectionResetError):
                pass  # clamd stopped reading (a size limit); its reply below says why
            except OSError as error:
                raise ScannerUnavailable(f"clamd INSTREAM failed: {error}") from error
            try:
                if whole_stream_sent:
                    raw = self._read_reply(connection, deadline)
                else:
                    raw = self._read_reply(connection, _Deadline(_EARLY_REPLY_WAIT_SECONDS))
            except OSError as error:
                raise ScannerUnavailable(f"clamd closed the INSTREAM connection: {error}") from error
        return parse_scan_reply(raw, whole_stream_sent=whole_stream_sent)

    @staticmethod
    def _has_early_reply(connection: socket.socket) -> bool:
        """clamd only speaks before the end of a stream to refuse it; stop sending when it does."""
        readable, _, _ = select.select([connection], [], [], 0)
        return bool(readable)

    @staticmethod
    def _send(connection: socket.socket, data: bytes, deadline: _Deadline) -> None:
        connection.settimeout(deadline.remaining("send"))
        try:
            connection.sendall(data)
        except TimeoutError as error:
            raise ScannerUnavailable("clamd timed out while receiving data") from error

    @staticmethod
    def _read_reply(connection: socket.socket, deadline: _Deadline) -> str:
        received = bytearray()
        while b"\0" not in received:
            connection.settimeout(deadline.remaining("reply"))
            try:
                data = connection.recv(4096)
            except TimeoutError as error:
                raise ScannerUnavailable("clamd timed out before replying") from error
            if not data:
                break
            received += data
            if len(received) > _MAX_REPLY_BYTES:
                raise ScannerUnavailable("clamd reply is too long")
        reply = bytes(received).split(b"\0", 1)[0].decode("utf-8", errors="replace").strip()
        if not reply:
            raise ScannerUnavailable("clamd closed the connection without a reply")
        return reply


_STREAM_LIMIT_CAP = 4 * 1024**3 - 1  # clamd's INSTREAM length is a 32-bit quantity
_ENGINE_FILE_CAP = 2_147_483_645  # clamd clamps MaxFileSize to this; nothing of 2 GiB is scanned


def clamd_limit_settings(max_bytes: int) -> dict[str, int]:
    """StreamMaxLength, MaxScanSize and MaxFileSize for files up to ``max_bytes``.

    MaxScanSize counts a file plus everything extracted from it, hence twice the file limit. MaxFileSize
    equals it because ClamAV's zip reader silently scans only the first MaxFileSize bytes of a larger
    member; with the two equal, such a member always overruns MaxScanSize, which AlertExceedsMax reports.
    """
    scan_budget = min(2 * max_bytes, _ENGINE_FILE_CAP)
    return {
        "StreamMaxLength": min(max_bytes, _STREAM_LIMIT_CAP),
        "MaxScanSize": scan_budget,
        "MaxFileSize": scan_budget,
    }


def clamd_config(
    listen: dict[str, object], database_dir: Path, temp_dir: Path, log_path: Path, max_bytes: int
) -> str:
    """clamd.conf for a foreground clamd listening as ``listen`` says, for files up to ``max_bytes``."""
    settings: dict[str, object] = {
        **listen,
        "Foreground": "yes",
        "DatabaseDirectory": database_dir,
        "TemporaryDirectory": temp_dir,
        "LogFile": log_path,
        "LogTime": "yes",
        # Otherwise clamd answers OK for data it skipped at a limit; this way the reply names the limit.
        "AlertExceedsMax": "yes",
        **clamd_limit_settings(max_bytes),
    }
    return "".join(f"{name} {value}\n" for name, value in settings.items())
