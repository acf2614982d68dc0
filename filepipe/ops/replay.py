"""Replay failed uploads from the dead-letter queues; a message is deleted only once that is safe."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from common.aws import error_code
from common.errors import SourceMissing
from common.model import Channel, FileRef, Status
from common.records import FileRecords
from common.storage import ObjectStore
from filepipe.ops.audit import AuditLog
from filepipe.ops.executions import (
    belongs_to_file,
    execution_arn,
    execution_history,
    iter_executions,
    last_state,
    states_from_history,
)
from filepipe.ops.target import FAILED_QUEUE, START_QUEUE
from start.logic import parse_message_body, start_request

QUEUES = (FAILED_QUEUE, START_QUEUE)

# SQS answers at most 10 messages per call; 100 calls bound one run to 1,000 messages.
MAX_RECEIVE_CALLS = 100
MAX_REPLAYS_PER_FILE = 100
# Answers meaning "this execution cannot be redriven, start a new one": RedriveExecution's own refusal
# (SUCCEEDED, past its 14 days, ...), an execution past its history retention, and endpoints without the
# operation (stock moto answers that in process with NotImplementedError, over HTTP with a bare 500).
# The local runtime has RedriveExecution and answers as AWS does, so replay takes the same path on both.
NOT_REDRIVABLE_CODES = frozenset(
    {
        "ExecutionNotRedrivable",
        "ExecutionDoesNotExist",
        "UnknownOperationException",
        "InvalidAction",
        "NotImplemented",
        "501",
    }
)
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
# The state that waits for GuardDuty's verdict, and how it ends when the verdict never came (its timeout)
# or was one a new scan can change (FAILED, ACCESS_DENIED: see functions/scanverdict/logic.py). Such a run
# waits again on replay; the stored result stays with the run it failed, so GuardDuty must scan again.
AWAIT_VERDICT_STATE = "Await GuardDuty verdict"
RESCAN_ERRORS = frozenset({"States.Timeout", "ScannerUnavailable"})


class Action(StrEnum):
    REDRIVE = "redrive"
    START = "start"
    ALREADY_DONE = "already done"
    DUPLICATE = "duplicate"
    IN_PROGRESS = "in progress"
    UNREPLAYABLE = "unreplayable"
    ERROR = "error"


@dataclass
class Outcome:
    """What happened to one message. ``deleted`` is True only once its replay was accepted or moot."""

    queue: str
    message_id: str
    action: Action
    file_id: str | None = None
    execution: str | None = None
    detail: str = ""
    deleted: bool = False
    dry_run: bool = False
    execution_arn: str | None = None
    result: str | None = None  # the replayed run's status after --wait


@dataclass(frozen=True)
class ReplayOptions:
    dry_run: bool = False
    limit: int | None = None
    file_id: str | None = None
    queues: tuple[str, ...] = QUEUES
    accept_timeout: float = 10.0  # how long a started or redriven run may take to show up as accepted
    wait: float = 0.0  # then, how long to wait for the replayed runs to end (0: do not wait)
    poll_interval: float = 0.2
    receive_wait_seconds: int = 1  # long polling, so an empty answer means an empty queue
    visibility_timeout: int = 900  # messages this run holds stay hidden from other readers meanwhile


class NotReplayable(Exception):
    """The message itself cannot be replayed (malformed, no input, file gone); it stays for a human."""


@dataclass(frozen=True)
class Request:
    """A parsed message: the file, the input of its run, and the failed execution when there is one."""

    ref: FileRef
    input: str
    failed_execution_arn: str | None


@dataclass
class _Held:
    queue: str
    queue_url: str
    message: dict[str, Any]
    request: Request | None = None
    problem: str | None = None


STATUS_CHANGE = "Step Functions Execution Status Change"


def parse_failed_execution(body: str) -> Request:
    """A failed-executions message: the status change's detail ``{executionArn, name, status, input
    (JSON text), error, cause, ...}``, or the whole event when a delivery ignored the rule's InputPath."""
    try:
        message = json.loads(body)
    except ValueError as error:
        raise NotReplayable(f"body is not JSON: {error}") from error
    if not isinstance(message, dict):
        raise NotReplayable("body is not a JSON object")
    if message.get("detail-type") == STATUS_CHANGE and isinstance(message.get("detail"), dict):
        message = message["detail"]
    raw_input = message.get("input")
    if raw_input in (None, ""):
        raise NotReplayable("message has no execution input")
    try:
        state = json.loads(raw_input) if isinstance(raw_input, str) else raw_input
        ref = FileRef.from_state(state)
    except (ValueError, TypeError, KeyError) as error:
        raise NotReplayable(f"execution input has no file reference: {error!r}") from error
    text = raw_input if isinstance(raw_input, str) else json.dumps(raw_input)
    arn = message.get("executionArn")
    return Request(ref, text, arn if isinstance(arn, str) and arn else None)


def parse_start_failure(body: str) -> Request:
    """A start DLQ message: the S3 "Object Created" event that never started a run."""
    try:
        request = start_request(parse_message_body(body))
    except (ValueError, TypeError, KeyError) as error:
        raise NotReplayable(f"not an upload event: {error!r}") from error
    return Request(FileRef.from_state(request.input), json.dumps(request.input), None)


PARSERS: dict[str, Callable[[str], Request]] = {
    FAILED_QUEUE: parse_failed_execution,
    START_QUEUE: parse_start_failure,
}


class Replayer:
    """Works through the dead-letter queues with injected clients; one outcome per message."""

    def __init__(
        self,
        *,
        stepfunctions: Any,
        sqs: Any,
        records: FileRecords,
        store: ObjectStore,
        state_machine_arn: str,
        queue_urls: dict[str, str],
        audit: AuditLog,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        guardduty: Any | None = None,
    ) -> None:
        """``guardduty``: a GuardDuty client when the stack scans with GuardDuty (its ``Scanner`` output), to
        ask for a new scan of a run's upload whose verdict never came or was a failed scan."""
        self._guardduty = guardduty
        self._sfn = stepfunctions
        self._sqs = sqs
        self._records = records
        self._store = store
        self._state_machine_arn = state_machine_arn
        self._queue_urls = queue_urls
        self._audit = audit
        self._clock = clock
        self._sleep = sleep

    # ------------------------------------------------------------------ the run
    def run(self, options: ReplayOptions) -> list[Outcome]:
        held: list[_Held] = []
        outcomes: list[Outcome] = []
        try:
            self._receive(options, held)
            selected = [m for m in held if options.file_id is None or self._file_of(m) == options.file_id]
            if options.limit is not None:
                selected = selected[: options.limit]
            running = {
                item["name"] for item in iter_executions(self._sfn, self._state_machine_arn, "RUNNING")
            }
            replayed: dict[str, str] = {}
            for message in selected:
                outcomes.append(self._handle(message, options, running, replayed))
        finally:
            # Whatever happens, nothing this run did not delete stays hidden from the next one.
            deleted = {o.message_id for o in outcomes if o.deleted}
            self._release([m for m in held if m.message["MessageId"] not in deleted])
        if options.wait > 0 and not options.dry_run:
            self._wait_for_results(outcomes, options)
        return outcomes

    @staticmethod
    def _file_of(held: _Held) -> str | None:
        return held.request.ref.file_id if held.request else None

    def _receive(self, options: ReplayOptions, held: list[_Held]) -> None:
        """Take every message (bounded) out of sight into ``held``, parsed where possible."""
        for queue in options.queues:
            url = self._queue_urls[queue]
            parse = PARSERS[queue]
            for _ in range(MAX_RECEIVE_CALLS):
                batch = self._sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=10,
                    VisibilityTimeout=options.visibility_timeout,
                    WaitTimeSeconds=options.receive_wait_seconds,
                ).get("Messages", [])
                if not batch:
                    break
                for message in batch:
                    entry = _Held(queue, url, message)
                    try:
                        entry.request = parse(message.get("Body", ""))
                    except NotReplayable as problem:
                        entry.problem = str(problem)
                    held.append(entry)
                if self._enough(held, options):
                    return

    @staticmethod
    def _enough(held: list[_Held], options: ReplayOptions) -> bool:
        if options.limit is None:
            return False
        matching = [h for h in held if options.file_id is None or Replayer._file_of(h) == options.file_id]
        return len(matching) >= options.limit

    def _release(self, held: list[_Held]) -> None:
        """Make every message this run did not delete visible again at once (and so unchanged)."""
        by_queue: dict[str, list[_Held]] = {}
        for entry in held:
            by_queue.setdefault(entry.queue_url, []).append(entry)
        for url, entries in by_queue.items():
            for start in range(0, len(entries), 10):
                chunk = entries[start : start + 10]
                self._sqs.change_message_visibility_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": e.message["ReceiptHandle"], "VisibilityTimeout": 0}
                        for i, e in enumerate(chunk)
                    ],
                )

    # ------------------------------------------------------------------ one message
    def _handle(
        self, held: _Held, options: ReplayOptions, running: set[str], replayed: dict[str, str]
    ) -> Outcome:
        message_id = held.message["MessageId"]
        outcome = Outcome(held.queue, message_id, Action.UNREPLAYABLE, dry_run=options.dry_run)
        audit_target = {"queue": held.queue, "messageId": message_id, "dryRun": options.dry_run or None}
        if held.request is None:
            outcome.detail = held.problem or "unreadable message"
            self._audit.record("leave-message", "unreplayable", reason=outcome.detail, **audit_target)
            return outcome
        request = held.request
        outcome.file_id = request.ref.file_id
        audit_target["fileId"] = request.ref.file_id
        try:
            self._decide(held, request, outcome, options, running, replayed, audit_target)
        except Exception as error:  # an API failure on one message must not stop the others
            outcome.action = Action.ERROR
            outcome.detail = f"{error_code(error) or type(error).__name__}: {error}"
            self._audit.record("leave-message", "error", reason=outcome.detail, **audit_target)
        return outcome

    def _decide(
        self,
        held: _Held,
        request: Request,
        outcome: Outcome,
        options: ReplayOptions,
        running: set[str],
        replayed: dict[str, str],
        audit_target: dict[str, Any],
    ) -> None:
        ref = request.ref
        if ref.file_id in replayed:
            outcome.action = Action.DUPLICATE
            outcome.execution = replayed[ref.file_id]
            outcome.detail = f"replayed as {replayed[ref.file_id]} by this run already"
            self._delete(held, outcome, options, audit_target)
            return
        record = self._records.get(ref.owner_id, ref.file_id)
        if record is None:
            outcome.detail = "no file record (the file was deleted)"
            self._audit.record("leave-message", "unreplayable", reason=outcome.detail, **audit_target)
            return
        status = Status(record["status"])
        # A final file whose FileProcessed event was never published: its run failed in the notify step
        # (before notifications stopped failing runs), so the owner was never told. A new run of the same
        # input finds the file final and goes straight to the notify step.
        owner_told = FileRecords.was_notified(record, ref, Channel.EVENT)
        if status.is_final and owner_told:
            outcome.action = Action.ALREADY_DONE
            outcome.detail = f"file is {status.value}"
            self._delete(held, outcome, options, audit_target)
            return
        in_flight = sorted(name for name in running if belongs_to_file(name, ref.file_id))
        if in_flight:
            outcome.action = Action.IN_PROGRESS
            outcome.execution = in_flight[-1]
            outcome.detail = f"{in_flight[-1]} is still running; replay again once it ends"
            self._audit.record("leave-message", "in-progress", executionName=in_flight[-1], **audit_target)
            return
        try:
            if not status.is_final:  # a run with only the owner left to tell does not read the upload
                self._store.head(ref.bucket, ref.key, ref.version)
        except SourceMissing:
            outcome.detail = (
                f"the upload is gone from the ingest bucket (s3://{ref.bucket}/{ref.key} {ref.version})"
            )
            self._audit.record("leave-message", "unreplayable", reason=outcome.detail, **audit_target)
            return
        why = f"file is {status.value}" + (" but its owner was never told" if status.is_final else "")
        if self._guardduty is not None and self._needs_new_scan(request):
            self._request_scan(self._guardduty, ref, options, audit_target)
            why += f"; {'would ask' if options.dry_run else 'asked'} GuardDuty for a new scan"

        if self._redrive(request, outcome, options, audit_target):
            replayed[ref.file_id] = outcome.execution or ""
            if not options.dry_run:
                self._delete(held, outcome, options, audit_target)
            return
        name = self._next_name(ref.file_id)
        outcome.action = Action.START
        outcome.execution = name
        if options.dry_run:
            outcome.detail = f"{why}: would start {name} with the original input"
            self._audit.record("start-execution", "dry-run", executionName=name, **audit_target)
            replayed[ref.file_id] = name
            return
        arn = self._sfn.start_execution(
            stateMachineArn=self._state_machine_arn, name=name, input=request.input
        )["executionArn"]
        if not self._accepted(arn, options, lambda execution: True):
            outcome.action = Action.ERROR
            outcome.detail = f"{name} was not accepted within {options.accept_timeout:g} s; message kept"
            self._audit.record("start-execution", "unconfirmed", executionName=name, **audit_target)
            return
        outcome.execution_arn = arn
        outcome.detail = f"{why}: started {name}"
        self._audit.record(
            "start-execution", "accepted", executionName=name, executionArn=arn, **audit_target
        )
        replayed[ref.file_id] = name
        self._delete(held, outcome, options, audit_target)

    def _needs_new_scan(self, request: Request) -> bool:
        """Whether the failed run waited for GuardDuty's verdict in vain: it timed out there, stopped while
        waiting, or got a result a new scan can change."""
        if request.failed_execution_arn is None:
            return False
        states = states_from_history(execution_history(self._sfn, request.failed_execution_arn))
        waits = [state for state in states if state.name == AWAIT_VERDICT_STATE]
        if not waits:
            return False
        last = waits[-1]
        return last.exited is None or last.error in RESCAN_ERRORS

    def _request_scan(
        self, guardduty: Any, ref: FileRef, options: ReplayOptions, audit_target: dict[str, Any]
    ) -> None:
        """SendObjectMalwareScan of the run's upload version (before the run goes on, so it waits for it).

        A refusal (the operator's own grant, guardduty:SendObjectMalwareScan on "*") fails this message:
        replaying without the new scan would only wait in vain again.
        """
        s3_object = {"Bucket": ref.bucket, "Key": ref.key}
        if ref.version and ref.version != "null":  # "null": written while versioning was off, no version
            s3_object["VersionId"] = ref.version
        if options.dry_run:
            self._audit.record("request-scan", "dry-run", **audit_target)
            return
        guardduty.send_object_malware_scan(S3Object=s3_object)
        self._audit.record("request-scan", "accepted", versionId=s3_object.get("VersionId"), **audit_target)

    def _redrive(
        self, request: Request, outcome: Outcome, options: ReplayOptions, audit_target: dict[str, Any]
    ) -> bool:
        """Redrive the failed run itself when the service can and it would help (or plan it, in a dry run).

        False means: start a new execution instead.
        """
        arn = request.failed_execution_arn
        if arn is None:
            return False
        stopped_in = last_state(self._sfn, arn)
        # A run that reached the workflow's Fail state already recorded FAILED; redriving would only
        # re-enter that Fail state, so such runs get a new execution instead.
        if stopped_in is not None and stopped_in.type == "Fail":
            return False
        name = arn.rsplit(":", 1)[-1]
        where = stopped_in.name if stopped_in else "its start"
        outcome.action = Action.REDRIVE
        outcome.execution = name
        outcome.execution_arn = arn
        if options.dry_run:
            outcome.detail = f"would redrive {name} from {where}"
            self._audit.record("redrive-execution", "dry-run", executionArn=arn, **audit_target)
            return True
        before = int(self._sfn.describe_execution(executionArn=arn).get("redriveCount") or 0)
        try:
            self._sfn.redrive_execution(executionArn=arn)
        except NotImplementedError:
            self._not_redrivable(outcome, arn, "the service has no RedriveExecution", audit_target)
            return False
        except Exception as error:
            code = error_code(error)
            if code not in NOT_REDRIVABLE_CODES:
                raise
            self._not_redrivable(outcome, arn, code, audit_target)
            return False

        def redriven(execution: dict[str, Any]) -> bool:
            return int(execution.get("redriveCount") or 0) > before or execution.get("status") == "RUNNING"

        if not self._accepted(arn, options, redriven):
            raise TimeoutError(f"redrive of {name} was not accepted within {options.accept_timeout:g} s")
        outcome.detail = f"redrove {name} from {where}"
        self._audit.record("redrive-execution", "accepted", executionArn=arn, **audit_target)
        return True

    def _not_redrivable(self, outcome: Outcome, arn: str, reason: str, audit_target: dict[str, Any]) -> None:
        outcome.action = Action.START
        outcome.execution = outcome.execution_arn = None
        self._audit.record(
            "redrive-execution", "not-redrivable", executionArn=arn, reason=reason, **audit_target
        )

    def _delete(
        self, held: _Held, outcome: Outcome, options: ReplayOptions, audit_target: dict[str, Any]
    ) -> None:
        if options.dry_run:
            self._audit.record("delete-message", "dry-run", reason=outcome.action.value, **audit_target)
            return
        self._sqs.delete_message(QueueUrl=held.queue_url, ReceiptHandle=held.message["ReceiptHandle"])
        outcome.deleted = True
        self._audit.record("delete-message", "deleted", reason=outcome.action.value, **audit_target)

    # ------------------------------------------------------------------ executions
    def _exists(self, name: str) -> bool:
        try:
            self._sfn.describe_execution(executionArn=execution_arn(self._state_machine_arn, name))
        except Exception as error:
            if error_code(error) == "ExecutionDoesNotExist":
                return False
            raise
        return True

    def _next_name(self, file_id: str) -> str:
        """The file id itself if it never ran (a start DLQ message), else the next free replay number."""
        if not self._exists(file_id):
            return file_id
        for number in range(1, MAX_REPLAYS_PER_FILE + 1):
            name = f"{file_id}-replay-{number}"
            if not self._exists(name):
                return name
        raise RuntimeError(f"file {file_id} was replayed {MAX_REPLAYS_PER_FILE} times already")

    def _accepted(self, arn: str, options: ReplayOptions, accepted: Callable[[dict[str, Any]], bool]) -> bool:
        deadline = self._clock() + options.accept_timeout
        while True:
            try:
                if accepted(self._sfn.describe_execution(executionArn=arn)):
                    return True
            except Exception as error:
                if error_code(error) != "ExecutionDoesNotExist":
                    raise
            if self._clock() >= deadline:
                return False
            self._sleep(options.poll_interval)

    def _wait_for_results(self, outcomes: list[Outcome], options: ReplayOptions) -> None:
        pending = [o for o in outcomes if o.execution_arn and o.action in (Action.START, Action.REDRIVE)]
        deadline = self._clock() + options.wait
        while pending:
            for outcome in list(pending):
                status = self._sfn.describe_execution(executionArn=outcome.execution_arn)["status"]
                if status in TERMINAL:
                    outcome.result = status
                    pending.remove(outcome)
            if not pending or self._clock() >= deadline:
                break
            self._sleep(options.poll_interval)
        for outcome in pending:
            outcome.result = "RUNNING"
