"""Malware Protection plans: what CreateMalwareProtectionPlan accepts, and the plans of the account.

A plan protects one S3 bucket (the whole bucket, or up to five key prefixes), scans with an IAM role that
``malware-protection-plan.guardduty.amazonaws.com`` assumes, and may tag each scanned object. moto has no
plans: they are kept beside moto's GuardDuty backend (``moto.guardduty.models.guardduty_backends``, one per
account and region), so they live and are reset exactly as moto's own resources are.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# The service principal a plan's role must trust (the GuardDuty user guide, "Create or update IAM role
# policy": the role's trust relationship names it).
SERVICE_PRINCIPAL = "malware-protection-plan.guardduty.amazonaws.com"
# CreateMalwareProtectionPlan takes at most 5 object prefixes (the resource schema's maxItems).
MAX_OBJECT_PREFIXES = 5
TAGGING_STATUSES = ("ENABLED", "DISABLED")
_STORE_ATTRIBUTE = "filepipe_malware_protection_plans"
_lock = threading.Lock()


class GuardDutyError(Exception):
    """A request GuardDuty refuses: its error code (the botocore shape's name), HTTP status and message."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


def bad_request(message: str) -> GuardDutyError:
    return GuardDutyError("BadRequestException", 400, message)


@dataclass(frozen=True)
class MalwareProtectionPlan:
    """One plan as GuardDuty holds it."""

    plan_id: str
    arn: str
    role_arn: str
    bucket: str
    object_prefixes: tuple[str, ...]
    tagging: bool
    created_at: str

    def covers(self, key: str) -> bool:
        """Whether an upload of ``key`` is scanned: every key, or those under one of the prefixes."""
        return not self.object_prefixes or any(key.startswith(prefix) for prefix in self.object_prefixes)

    def attributes(self) -> dict[str, Any]:
        """What Fn::GetAtt reads (the resource schema's read-only properties)."""
        return {
            "Arn": self.arn,
            "CreatedAt": self.created_at,
            "MalwareProtectionPlanId": self.plan_id,
            "Status": "ACTIVE",
            "StatusReasons": [],
        }


def _store(account: str, region: str) -> dict[str, MalwareProtectionPlan]:
    from moto.guardduty.models import guardduty_backends

    backend: Any = guardduty_backends[account][region]
    with _lock:
        found: dict[str, MalwareProtectionPlan] | None = getattr(backend, _STORE_ATTRIBUTE, None)
        if found is None:
            found = {}
            setattr(backend, _STORE_ATTRIBUTE, found)
        return found


def plans(account: str, region: str) -> list[MalwareProtectionPlan]:
    """The account's plans in ``region``, oldest first."""
    store = _store(account, region)
    with _lock:
        return list(store.values())


def plan_for_bucket(account: str, region: str, bucket: str) -> MalwareProtectionPlan | None:
    return next((plan for plan in plans(account, region) if plan.bucket == bucket), None)


def create_plan(
    account: str,
    region: str,
    *,
    role_arn: str,
    bucket: str,
    object_prefixes: Iterable[str] = (),
    tagging_status: str = "DISABLED",
) -> MalwareProtectionPlan:
    """Add a plan, or raise GuardDutyError where CreateMalwareProtectionPlan refuses it.

    The caller has checked that the role and the bucket exist (GuardDuty answers BadRequestException
    otherwise). A bucket has one plan at most: a second one is a ConflictException. The messages are the
    runtime's: AWS documents the error codes, not their text.
    """
    if not role_arn.startswith(f"arn:aws:iam::{account}:role/"):
        raise bad_request(f"The role must be the ARN of an IAM role of account {account}, not {role_arn!r}.")
    prefixes = tuple(object_prefixes)
    if len(prefixes) > MAX_OBJECT_PREFIXES:
        raise bad_request(
            f"A Malware Protection plan takes at most {MAX_OBJECT_PREFIXES} object prefixes, "
            f"not {len(prefixes)}."
        )
    if tagging_status not in TAGGING_STATUSES:
        raise bad_request(f"The tagging status is ENABLED or DISABLED, not {tagging_status!r}.")
    store = _store(account, region)
    plan_id = uuid.uuid4().hex[:20]
    plan = MalwareProtectionPlan(
        plan_id=plan_id,
        arn=f"arn:aws:guardduty:{region}:{account}:malware-protection-plan/{plan_id}",
        role_arn=role_arn,
        bucket=bucket,
        object_prefixes=prefixes,
        tagging=tagging_status == "ENABLED",
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    )
    with _lock:
        taken = next((other for other in store.values() if other.bucket == bucket), None)
        if taken is not None:
            raise GuardDutyError(
                "ConflictException",
                409,
                f"The bucket {bucket} is protected by Malware Protection plan {taken.plan_id} already.",
            )
        store[plan_id] = plan
    return plan
