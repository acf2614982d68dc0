"""Scheduled function: run freshclam in /tmp and publish changed definitions to the definitions bucket."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import Field

from common.aws import client
from common.errors import SourceMissing
from common.observability import instrumented, logger, metrics
from common.settings import EnvSettings, load_settings
from common.storage import ObjectStore
from scan.embedded import DEFINITIONS_PREFIX, DefinitionsMirror, is_database_file
from scan.rescans import start_rescan

# Debian's clamav-freshclam package, in the same image as the scan function (functions/scan/image/).
FRESHCLAM_BINARY = Path("/usr/bin/freshclam")
WORK_ROOT = Path("/tmp/freshclam")  # noqa: S108 - Lambda's only writable place
# freshclam's own state (client id, back-off after the mirrors rate-limit it); outside the scanned prefix.
FRESHCLAM_STATE_KEY = "freshclam/freshclam.dat"
FRESHCLAM_TIMEOUT_SECONDS = 240.0
_DATABASE_HEADER = b"ClamAV-VDB:"
_HASH_CHUNK = 1024 * 1024

# (arguments, environment, timeout) -> (exit code, output)
CommandRunner = Callable[[Sequence[str], Mapping[str, str], float], tuple[int, str]]


class DefinitionsUpdateFailed(RuntimeError):
    """freshclam failed or produced something that is not a ClamAV database; nothing was published."""


class DefinitionsSettings(EnvSettings):
    definitions_bucket: str = Field(alias="DEFINITIONS_BUCKET", min_length=1)
    rescan_state_machine_arn: str = Field(alias="RESCAN_STATE_MACHINE_ARN", min_length=1)
    # 0: new definitions start no rescan.
    rescan_window_days: int = Field(alias="RESCAN_WINDOW_DAYS", ge=0)


@dataclass
class UpdateReport:
    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    # SHA-256 over the published set's names and digests: which definitions scanners now load.
    fingerprint: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_command(arguments: Sequence[str], environment: Mapping[str, str], timeout: float) -> tuple[int, str]:
    try:
        completed = subprocess.run(  # noqa: S603 - fixed binary and arguments
            list(arguments),
            env=dict(environment),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise DefinitionsUpdateFailed(f"{arguments[0]} did not finish within {timeout:.0f} s") from error
    except OSError as error:
        raise DefinitionsUpdateFailed(f"cannot run {arguments[0]}: {error}") from error
    return completed.returncode, completed.stdout.decode("utf-8", errors="replace")


def freshclam_config(database_dir: Path) -> str:
    settings = {
        "DatabaseDirectory": database_dir,
        "DatabaseMirror": "database.clamav.net",
        "DNSDatabaseInfo": "current.cvd.clamav.net",
        "ScriptedUpdates": "yes",
        "Bytecode": "yes",
        "Foreground": "yes",
        "LogTime": "yes",
        "ConnectTimeout": 30,
        "ReceiveTimeout": 120,
        # Test-loading the whole database needs more memory than this function has; freshclam still
        # verifies every file's digital signature before it replaces anything.
        "TestDatabases": "no",
    }
    return "".join(f"{name} {value}\n" for name, value in settings.items())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_database(path: Path) -> None:
    with path.open("rb") as source:
        if source.read(len(_DATABASE_HEADER)) != _DATABASE_HEADER:
            raise DefinitionsUpdateFailed(f"{path.name} is not a ClamAV database; nothing published")


def update_definitions(
    store: ObjectStore,
    bucket: str,
    work_dir: Path,
    freshclam: Path,
    lib_dir: Path | None = None,
    run: CommandRunner = run_command,
) -> UpdateReport:
    """Start from the bucket's definitions, let freshclam update them, upload what changed."""
    database_dir = work_dir / "db"
    mirror = DefinitionsMirror(store, bucket, DEFINITIONS_PREFIX, database_dir, work_dir / "db-state.json")
    # Starting from the published files lets freshclam fetch small daily diffs instead of whole databases.
    mirror.sync()
    state_file = database_dir / "freshclam.dat"
    with contextlib.suppress(SourceMissing):
        state_file.write_bytes(store.read_all(bucket, FRESHCLAM_STATE_KEY))

    config_path = work_dir / "freshclam.conf"
    config_path.write_text(freshclam_config(database_dir))
    environment = dict(os.environ)
    if lib_dir is not None:
        inherited = environment.get("LD_LIBRARY_PATH")
        environment["LD_LIBRARY_PATH"] = f"{lib_dir}:{inherited}" if inherited else str(lib_dir)
    code, output = run(
        [str(freshclam), f"--config-file={config_path}", "--stdout"], environment, FRESHCLAM_TIMEOUT_SECONDS
    )
    logger.info("freshclam finished", extra={"exitCode": code, "output": output[-4000:]})
    if code != 0:
        raise DefinitionsUpdateFailed(f"freshclam exited with {code}: {output[-1000:]}")

    local = {path.name: path for path in mirror.database_files()}
    if not local:
        raise DefinitionsUpdateFailed("freshclam left no database files; nothing published")
    for path in local.values():
        _check_database(path)

    report = UpdateReport()
    published_set = hashlib.sha256()
    remote = {
        summary.key.removeprefix(DEFINITIONS_PREFIX)
        for summary in store.list_objects(bucket, DEFINITIONS_PREFIX)
        if is_database_file(summary.key.removeprefix(DEFINITIONS_PREFIX))
    }
    for name, path in sorted(local.items()):
        digest = _sha256(path)
        published_set.update(f"{name}:{digest}\n".encode())
        key = DEFINITIONS_PREFIX + name
        published = store.metadata(bucket, key) if name in remote else None
        if published is not None and published.get("sha256") == digest:
            report.unchanged.append(name)
            continue
        store.upload_file(bucket, key, str(path), "application/octet-stream", {"sha256": digest})
        report.uploaded.append(name)
    # Only after the replacements are up: daily.cvd may have become daily.cld, and scanners need one of them.
    for name in sorted(remote - local.keys()):
        store.delete(bucket, DEFINITIONS_PREFIX + name)
        report.removed.append(name)
    if state_file.exists():
        store.upload_file(bucket, FRESHCLAM_STATE_KEY, str(state_file), "application/octet-stream")
    report.fingerprint = published_set.hexdigest()
    return report


@instrumented("definitions")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = load_settings(DefinitionsSettings)
    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    report = update_definitions(
        ObjectStore(client("s3")), settings.definitions_bucket, WORK_ROOT, FRESHCLAM_BINARY
    )
    logger.info("definitions published", extra=report.as_dict())
    metrics.add_metric(name="DefinitionFilesPublished", unit=MetricUnit.Count, value=len(report.uploaded))
    result = report.as_dict()
    if settings.rescan_window_days:
        result["rescan"] = start_rescan(
            client("stepfunctions"),
            settings.rescan_state_machine_arn,
            report.fingerprint,
            settings.rescan_window_days,
            datetime.now(UTC),
        )
        logger.info("rescan of recent files", extra={"execution": result["rescan"]})
    return result
