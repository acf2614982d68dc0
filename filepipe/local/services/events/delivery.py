"""EventBridge delivery as AWS does it: target input (transformer, path, constant), retries, DLQ."""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("filepipe.local.services.events.delivery")

_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")
_PATH_TOKEN = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]|\[['\"]([^'\"]+)['\"]\]")


class TargetError(Exception):
    """A failed delivery attempt; ``retryable`` says whether EventBridge would try again."""

    def __init__(self, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable


# ------------------------------------------------------------------ target input
def json_path(document: Any, path: str) -> tuple[bool, Any]:
    """Evaluate a simple JSONPath ($, .name, [0], ['name']); returns (found, value)."""
    if not path.startswith("$"):
        raise ValueError(f"not a JSONPath: {path!r}")
    value = document
    position = 1
    while position < len(path):
        match = _PATH_TOKEN.match(path, position)
        if match is None:
            raise ValueError(f"unsupported JSONPath: {path!r}")
        name, index, quoted = match.groups()
        if index is not None:
            if not isinstance(value, list) or int(index) >= len(value):
                return False, None
            value = value[int(index)]
        else:
            key = name if name is not None else quoted
            if not isinstance(value, dict) or key not in value:
                return False, None
            value = value[key]
        position = match.end()
    return True, value


def _quoted_positions(template: str) -> list[bool]:
    """For each character: is it inside a JSON string literal of the template?"""
    inside = False
    escaped = False
    flags = []
    for char in template:
        flags.append(inside)
        if escaped:
            escaped = False
        elif char == "\\" and inside:
            escaped = True
        elif char == '"':
            inside = not inside
    return flags


def transform_input(
    event: Mapping[str, Any],
    input_paths: Mapping[str, str],
    template: str,
    rule_arn: str = "",
    rule_name: str = "",
) -> str:
    """Apply an InputTransformer: values outside quotes are JSON, inside quotes they are spliced as text."""
    values: dict[str, tuple[bool, Any]] = {name: json_path(event, path) for name, path in input_paths.items()}
    predefined = {
        "aws.events.rule-arn": rule_arn,
        "aws.events.rule-name": rule_name,
        "aws.events.event.ingestion-time": event.get("time"),
        "aws.events.event": event,
        "aws.events.event.json": event,
    }
    for name, value in predefined.items():
        values.setdefault(name, (True, value))

    quoted = _quoted_positions(template)
    out: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        name = match.group(1)
        if name not in values:
            continue
        out.append(template[position : match.start()])
        found, value = values[name]
        if quoted[match.start()]:
            if not found or value is None:
                text = ""
            elif isinstance(value, str):
                text = value
            else:
                text = json.dumps(value, separators=(",", ":"))
            out.append(json.dumps(text)[1:-1])  # spliced into a string literal: escape it
        else:
            out.append(json.dumps(value, separators=(",", ":")) if found else "null")
        position = match.end()
    out.append(template[position:])
    return "".join(out)


def target_input(target: Mapping[str, Any], event: Mapping[str, Any], rule_arn: str, rule_name: str) -> str:
    """The text a target receives: the event, a constant, a JSONPath selection or the transformed input."""
    if "Input" in target:
        return str(target["Input"])
    if "InputPath" in target:
        found, value = json_path(event, str(target["InputPath"]))
        return json.dumps(value if found else None)
    transformer = target.get("InputTransformer")
    if transformer:
        return transform_input(
            event,
            transformer.get("InputPathsMap", {}),
            transformer["InputTemplate"],
            rule_arn=rule_arn,
            rule_name=rule_name,
        )
    return json.dumps(event)


# ------------------------------------------------------------------ events in AWS's shape
_MOTO_PLACEHOLDER_EVENT_ID = "17793124-05d4-b198-2fde-7ededc63b103"


def iso_time(value: Any) -> str:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value) if value else datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def normalize_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event as EventBridge delivers it: ISO time, a unique id, no internal fields."""
    normalized = {key: value for key, value in event.items() if key != "ingestion-time"}
    if not normalized.get("id") or normalized["id"] == _MOTO_PLACEHOLDER_EVENT_ID:
        normalized["id"] = str(uuid.uuid4())
    normalized["time"] = iso_time(normalized.get("time"))
    normalized.setdefault("version", "0")
    normalized.setdefault("resources", [])
    return normalized


def execution_status_event(
    *,
    execution_arn: str,
    state_machine_arn: str,
    name: str,
    status: str,
    start_date: datetime,
    stop_date: datetime | None,
    input_text: str,
    output_text: str | None,
    error: str | None,
    cause: str | None,
    account: str,
    region: str,
) -> dict[str, Any]:
    """A "Step Functions Execution Status Change" event as Step Functions puts it on the default bus."""

    def millis(value: datetime | None) -> int | None:
        return int(value.timestamp() * 1000) if value else None

    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": account,
        "time": iso_time(stop_date or start_date),
        "region": region,
        "resources": [execution_arn],
        "detail": {
            "executionArn": execution_arn,
            "stateMachineArn": state_machine_arn,
            "name": name,
            "status": status,
            "startDate": millis(start_date),
            "stopDate": millis(stop_date),
            "input": input_text,
            "output": output_text,
            "inputDetails": {"included": True},
            "outputDetails": {"included": True} if output_text is not None else None,
            "error": error,
            "cause": cause,
        },
    }


# ------------------------------------------------------------------ delivery with retries and DLQ
Sender = Callable[[Mapping[str, Any], str], None]
DeadLetterSender = Callable[[str, str, dict[str, str]], None]
# Enters a delivery as the principal AWS delivers it as (filepipe.local.enforcement.deliveries), or raises the
# TargetError of a delivery IAM refuses.
Acting = Callable[["RuleTarget"], AbstractContextManager[None]]


@dataclass(frozen=True)
class RuleTarget:
    """One target of one rule, with what delivery needs."""

    rule_name: str
    rule_arn: str
    target: Mapping[str, Any]

    @property
    def arn(self) -> str:
        return str(self.target["Arn"])

    @property
    def service(self) -> str:
        return self.arn.split(":")[2]

    @property
    def max_attempts(self) -> int:
        return int(self.target.get("RetryPolicy", {}).get("MaximumRetryAttempts", 185))

    @property
    def max_age(self) -> float:
        return float(self.target.get("RetryPolicy", {}).get("MaximumEventAgeInSeconds", 86400))

    @property
    def dead_letter_arn(self) -> str | None:
        dead_letter = self.target.get("DeadLetterConfig") or {}
        return dead_letter.get("Arn")


@dataclass(order=True)
class _Attempt:
    due: float
    sequence: int
    delivery: RuleTarget = field(compare=False)
    event: dict[str, Any] = field(compare=False)
    first_seen: float = field(compare=False)
    retries: int = field(compare=False, default=0)


class EventDelivery:
    """Delivers matched events to rule targets in the background, the way EventBridge retries them."""

    def __init__(
        self,
        senders: Mapping[str, Sender],
        dead_letter: DeadLetterSender,
        *,
        retry_base_seconds: float = 1.0,
        retry_cap_seconds: float = 60.0,
        workers: int = 4,
        clock: Callable[[], float] = time.monotonic,
        acting: Acting | None = None,
    ) -> None:
        self._senders = dict(senders)
        self._dead_letter = dead_letter
        self._acting: Acting = acting or (lambda delivery: nullcontext())
        self._retry_base = retry_base_seconds
        self._retry_cap = retry_cap_seconds
        self._clock = clock
        self._queue: list[_Attempt] = []
        self._sequence = itertools.count()
        self._condition = threading.Condition()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="events")
        self._in_flight = 0
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="events-scheduler", daemon=True)
        self._thread.start()

    def submit(self, delivery: RuleTarget, event: Mapping[str, Any]) -> None:
        now = self._clock()
        attempt = _Attempt(now, next(self._sequence), delivery, dict(event), now)
        # A first attempt is due at once: straight to a delivery thread, not through the scheduler's.
        with self._condition:
            if self._stopped:
                return
            self._in_flight += 1
        try:
            self._pool.submit(self._attempt, attempt)
        except RuntimeError:  # the pool shut down while stopping
            with self._condition:
                self._in_flight -= 1

    def _push(self, attempt: _Attempt) -> None:
        with self._condition:
            if self._stopped:
                return
            heapq.heappush(self._queue, attempt)
            self._condition.notify_all()

    def idle(self) -> bool:
        with self._condition:
            return not self._queue and self._in_flight == 0

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.idle():
                return True
            time.sleep(0.01)
        return self.idle()

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._queue.clear()
            self._condition.notify_all()
        self._thread.join(timeout=1)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._stopped and (not self._queue or self._queue[0].due > self._clock()):
                    timeout = self._queue[0].due - self._clock() if self._queue else None
                    self._condition.wait(timeout=timeout if timeout is None else max(timeout, 0.001))
                if self._stopped:
                    return
                attempt = heapq.heappop(self._queue)
                self._in_flight += 1
            try:
                self._pool.submit(self._attempt, attempt)
            except RuntimeError:  # the pool shut down while stopping
                return

    def _attempt(self, attempt: _Attempt) -> None:
        try:
            self._deliver(attempt)
        finally:
            with self._condition:
                self._in_flight -= 1

    def _deliver(self, attempt: _Attempt) -> None:
        delivery = attempt.delivery
        sender = self._senders.get(delivery.service)
        try:
            if sender is None:
                raise TargetError(
                    "UnsupportedTarget",
                    f"targets of type {delivery.service} are not emulated",
                    retryable=False,
                )
            payload = target_input(delivery.target, attempt.event, delivery.rule_arn, delivery.rule_name)
            with self._acting(delivery):
                sender(delivery.target, payload)
            return
        except TargetError as error:
            failure = error
        except Exception as error:  # an unexpected failure of the target call is retried like a 5xx
            failure = TargetError("InternalException", str(error), retryable=True)

        age = self._clock() - attempt.first_seen
        if failure.retryable and attempt.retries < delivery.max_attempts:
            delay = min(self._retry_cap, self._retry_base * 2**attempt.retries)
            delay *= random.uniform(0.5, 1.0)
            if age + delay <= delivery.max_age:
                attempt.retries += 1
                attempt.due = self._clock() + delay
                attempt.sequence = next(self._sequence)
                log.info(
                    "delivery of event %s to %s failed (%s); retry %d in %.1fs",
                    attempt.event.get("id"),
                    delivery.arn,
                    failure.code,
                    attempt.retries,
                    delay,
                )
                self._push(attempt)
                return
            exhausted = "MaximumEventAgeInSeconds"
        else:
            exhausted = "MaximumRetryAttempts" if failure.retryable else ""
        self._to_dead_letter(attempt, failure, exhausted)

    def _to_dead_letter(self, attempt: _Attempt, failure: TargetError, exhausted: str) -> None:
        delivery = attempt.delivery
        if delivery.dead_letter_arn is None:
            log.warning(
                "event %s dropped: %s -> %s failed with %s and the target has no DLQ",
                attempt.event.get("id"),
                delivery.rule_name,
                delivery.arn,
                failure,
            )
            return
        attributes = {
            "RULE_ARN": delivery.rule_arn,
            "TARGET_ARN": delivery.arn,
            "ERROR_CODE": failure.code,
            "ERROR_MESSAGE": failure.message[:1000],
            "RETRY_ATTEMPTS": str(attempt.retries),
        }
        if exhausted:
            attributes["EXHAUSTED_RETRY_CONDITION"] = exhausted
        try:
            # EventBridge writes to the DLQ as it delivers: the queue's policy must let it in too.
            with self._acting(
                RuleTarget(delivery.rule_name, delivery.rule_arn, {"Arn": delivery.dead_letter_arn})
            ):
                self._dead_letter(delivery.dead_letter_arn, json.dumps(attempt.event), attributes)
        except Exception:
            log.exception(
                "event %s could not be written to its DLQ %s",
                attempt.event.get("id"),
                delivery.dead_letter_arn,
            )
