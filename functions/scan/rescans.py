"""New definitions start a rescan of recent files: one RescanFiles execution per published definitions set."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from common.aws import error_code

# The workflow's own bound on one execution (rescan.logic.MAX_LIMIT); `filepipe rescan --resume` goes on.
SCHEDULED_LIMIT = 500


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def rescan_input(now: datetime, window_days: int) -> dict[str, Any]:
    return {
        "window": {"from": _iso(now - timedelta(days=window_days)), "to": _iso(now)},
        "limit": SCHEDULED_LIMIT,
        "dryRun": False,
        "cursor": None,
        "reason": "definitions-update",
    }


def start_rescan(
    stepfunctions: Any, state_machine_arn: str, fingerprint: str, window_days: int, now: datetime
) -> str | None:
    """Start the rescan of these definitions, named after them; None when it was started already.

    Named by the definitions rather than by the run that published them, a retry after a failed start
    starts it, and unchanged definitions never start a second one.
    """
    name = f"definitions-{fingerprint[:16]}"
    try:
        stepfunctions.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(rescan_input(now, window_days))
        )
    except Exception as error:
        if error_code(error) == "ExecutionAlreadyExists":
            return None
        raise
    return name
