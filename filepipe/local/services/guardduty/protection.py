"""Malware Protection for S3, emulated: each new object version in a protected bucket is scanned with the
local clamd, as the plan's role, then tagged and reported on the default event bus as GuardDuty does.

GuardDuty scans asynchronously after the upload; here a bounded pool of worker threads does, never the
thread that answered the upload. Every S3 request of a scan is the plan's role's (a session of it, through
the runtime's IAM): a role without s3:GetObject (s3:GetObjectVersion for a version) gets ACCESS_DENIED, one
that may not tag gets the post-scan action failure, as on AWS. The result statuses:

- NO_THREATS_FOUND / THREATS_FOUND: clamd's answer (the threat is clamd's signature name);
- UNSUPPORTED: an object over the maximum size (100 GB, "Quotas in Malware Protection for S3"; lowered
  with FILEPIPE_LOCAL_GUARDDUTY_MAX_OBJECT_BYTES), or an archive clamd gives up on at a limit or finds
  encrypted (GuardDuty skips password-protected files and archives past its extraction limits);
- ACCESS_DENIED: the role may not read the object version (or it is gone);
- FAILED: clamd is not running, cannot be reached, or answers with an error.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from common.errors import ScannerUnavailable
from filepipe.local.iam.acting import acting_as
from filepipe.local.iam.principals import Principal
from filepipe.local.services.guardduty import events
from filepipe.local.services.guardduty.plans import (
    SERVICE_PRINCIPAL,
    MalwareProtectionPlan,
    plan_for_bucket,
    plans,
)
from scan.clamd import ClamdClient, ReplyKind

log = logging.getLogger("filepipe.local.guardduty")

# "Quotas in Malware Protection for S3": the maximum S3 object size GuardDuty scans, 100 GB, not adjustable.
MAX_OBJECT_BYTES = 100 * 10**9
MAX_OBJECT_BYTES_VARIABLE = "FILEPIPE_LOCAL_GUARDDUTY_MAX_OBJECT_BYTES"
# S3 keeps at most 10 tags on an object; GuardDuty's own tag must fit ("Enable tagging for scanned objects").
MAX_TAGS_PER_OBJECT = 10
# GuardDuty documents no session name for the role's sessions; this one names the service in refusals.
SESSION_NAME = "GuardDutyMalwareProtection"
WORKERS = 4
CHUNK_BYTES = 256 * 1024
CLAMD_TIMEOUT_SECONDS = 120.0
# clamd's detections that mean it did not scan everything: GuardDuty calls such objects UNSUPPORTED.
_NOT_SCANNED = ("Heuristics.Limits.Exceeded", "Heuristics.Encrypted")

ClientFactory = Callable[[str], Any]
Publish = Callable[[dict[str, Any]], None]
# The principal of a session of the plan's role, or None when the runtime does not enforce IAM.
RoleSession = Callable[[MalwareProtectionPlan], Principal | None]
# Why ``malware-protection-plan.guardduty.amazonaws.com`` may not assume a role (for the plan's ARN), or None.
AssumeRefusal = Callable[[str, str, str], str | None]


def max_object_bytes(environ: Mapping[str, str]) -> int:
    """The largest object scanned: FILEPIPE_LOCAL_GUARDDUTY_MAX_OBJECT_BYTES, else GuardDuty's 100 GB."""
    text = environ.get(MAX_OBJECT_BYTES_VARIABLE)
    if text is None:
        return MAX_OBJECT_BYTES
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(
            f"{MAX_OBJECT_BYTES_VARIABLE} must be a whole number of bytes, 0 or more, not {text!r}"
        )
    return value


def stack_plans(account: str, region: str, physical: Mapping[str, str]) -> dict[str, MalwareProtectionPlan]:
    """The stack's plans by logical id (a plan's physical id is its plan id)."""
    by_id = {plan.plan_id: plan for plan in plans(account, region)}
    return {logical: by_id[plan_id] for logical, plan_id in physical.items() if plan_id in by_id}


def check_plan_roles(stack: Mapping[str, MalwareProtectionPlan], refusal: AssumeRefusal) -> None:
    """Stop the deployment where GuardDuty cannot use a plan's role: its trust policy must let
    ``malware-protection-plan.guardduty.amazonaws.com`` assume it (the runtime's message, after IAM's)."""
    for logical, plan in stack.items():
        reason = refusal(plan.role_arn, SERVICE_PRINCIPAL, plan.arn)
        if reason is not None:
            raise ValueError(
                f"{logical}: GuardDuty refuses it (BadRequestException): GuardDuty cannot assume the role "
                f"{plan.role_arn}: {reason}"
            )


@dataclass(frozen=True)
class ScanRequest:
    """One object version to scan under ``plan``; ``version_id`` is None in an unversioned bucket."""

    plan: MalwareProtectionPlan
    bucket: str
    key: str
    version_id: str | None
    etag: str


@dataclass(frozen=True)
class Verdict:
    result_status: str
    threats: tuple[str, ...] = ()

    @property
    def scan_status(self) -> str:
        return events.SCAN_STATUS_OF[self.result_status]


def _refused(error: ClientError) -> bool:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status in (403, 404)


class MalwareProtection:
    """Scans, tags and reports new objects of the account's protected buckets in one region."""

    def __init__(
        self,
        *,
        account: str,
        region: str,
        clients: ClientFactory,
        publish: Publish,
        role_session: RoleSession,
        clamd_address: str | None,
        max_object_bytes: int = MAX_OBJECT_BYTES,
        workers: int = WORKERS,
        clamd_timeout: float = CLAMD_TIMEOUT_SECONDS,
    ) -> None:
        self.account = account
        self.region = region
        self._clients = clients
        self._publish = publish
        self._role_session = role_session
        self._clamd_address = clamd_address
        self._max_object_bytes = max_object_bytes
        self._workers = workers
        self._clamd_timeout = clamd_timeout
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------ life
    def start(self) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="guardduty")

    def stop(self) -> None:
        """Scans not begun are dropped; those under way finish (each is bounded by clamd's timeout)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------ what starts a scan
    def object_created(
        self, account: str, region: str, bucket: str, key: str, version_id: str | None, etag: str
    ) -> None:
        """S3 stored a new object version: scan it when a plan covers its key. Returns at once."""
        if (account, region) != (self.account, self.region):
            return
        plan = plan_for_bucket(account, region, bucket)
        if plan is not None and plan.covers(key):
            self.queue(ScanRequest(plan, bucket, key, version_id, etag))

    def queue(self, request: ScanRequest) -> None:
        with self._lock:
            pool = self._pool
            if pool is None:
                log.warning(
                    "Malware Protection is stopped: s3://%s/%s is not scanned", request.bucket, request.key
                )
                return
            pool.submit(self._run, request)

    # ------------------------------------------------------------ one scan
    def _run(self, request: ScanRequest) -> None:
        try:
            self.process(request)
        except Exception:
            log.exception("scanning s3://%s/%s failed", request.bucket, request.key)

    def process(self, request: ScanRequest) -> Verdict:
        """Scan, tag when the plan says so, and put the result (and a tagging failure) on the default bus."""
        try:
            principal = self._role_session(request.plan)
        except LookupError:  # the role is gone: GuardDuty can no longer act for the plan
            verdict = Verdict(events.ACCESS_DENIED)
            tag_failure = events.TAG_ACCESS_DENIED if request.plan.tagging else None
        else:
            with acting_as(principal):
                verdict = self.scan(request)
                tag_failure = self._tag(request, verdict) if request.plan.tagging else None
        self._publish(
            events.object_scan_result(
                account=self.account,
                region=self.region,
                plan_arn=request.plan.arn,
                bucket=request.bucket,
                key=request.key,
                version_id=request.version_id,
                etag=request.etag,
                scan_status=verdict.scan_status,
                result_status=verdict.result_status,
                threats=list(verdict.threats) or None,
            )
        )
        if tag_failure is not None:
            self._publish(
                events.post_scan_action_failed(
                    account=self.account,
                    region=self.region,
                    plan_arn=request.plan.arn,
                    bucket=request.bucket,
                    key=request.key,
                    version_id=request.version_id,
                    etag=request.etag,
                    failure_reason=tag_failure,
                )
            )
        return verdict

    def _object(self, request: ScanRequest) -> dict[str, str]:
        params = {"Bucket": request.bucket, "Key": request.key}
        if request.version_id is not None:
            params["VersionId"] = request.version_id
        return params

    def scan(self, request: ScanRequest) -> Verdict:
        """Read the object version as the plan's role and have clamd scan it."""
        try:
            response = self._clients("s3").get_object(**self._object(request))
        except ClientError as error:
            return Verdict(events.ACCESS_DENIED if _refused(error) else events.FAILED)
        body = response["Body"]
        try:
            if int(response.get("ContentLength") or 0) > self._max_object_bytes:
                return Verdict(events.UNSUPPORTED)
            return self._clamd_verdict(body.iter_chunks(CHUNK_BYTES))
        finally:
            body.close()

    def _clamd_verdict(self, chunks: Iterator[bytes]) -> Verdict:
        if self._clamd_address is None:
            return Verdict(events.FAILED)
        try:
            reply = ClamdClient(self._clamd_address, timeout=self._clamd_timeout).instream(chunks)
        except ScannerUnavailable as error:
            log.warning("GuardDuty's scan failed: %s", error.message)
            return Verdict(events.FAILED)
        if reply.kind is ReplyKind.FOUND and reply.detail:
            if reply.detail.startswith(_NOT_SCANNED):
                return Verdict(events.UNSUPPORTED)
            return Verdict(events.THREATS_FOUND, (reply.detail,))
        if reply.kind is ReplyKind.CLEAN and reply.whole_stream_sent:
            return Verdict(events.NO_THREATS_FOUND)
        log.warning("GuardDuty's scan failed: clamd answered %r", reply.raw)
        return Verdict(events.FAILED)

    def _tag(self, request: ScanRequest, verdict: Verdict) -> str | None:
        """Add GuardDutyMalwareScanStatus to the version's tags, as the role; the failure reason, if any."""
        s3 = self._clients("s3")
        target = self._object(request)
        try:
            tags = s3.get_object_tagging(**target)["TagSet"]
        except ClientError:
            return events.TAG_ACCESS_DENIED
        kept = [tag for tag in tags if tag["Key"] != events.SCAN_STATUS_TAG]
        if len(kept) >= MAX_TAGS_PER_OBJECT:
            return events.MAX_TAG_LIMIT_EXCEEDED
        tag_set = [*kept, {"Key": events.SCAN_STATUS_TAG, "Value": verdict.result_status}]
        try:
            s3.put_object_tagging(**target, Tagging={"TagSet": tag_set})
        except ClientError as error:
            return events.TAG_ACCESS_DENIED if _refused(error) else events.MAX_TAG_LIMIT_EXCEEDED
        return None
