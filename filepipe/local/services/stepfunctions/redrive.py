"""Step Functions' RedriveExecution, which moto lacks: the same execution resumed where it stopped.

As AWS documents it: only a Standard workflow's FAILED, TIMED_OUT or ABORTED execution, within 14 days of
its stop, restarts from the state that was unsuccessful, with that state's input; states that succeeded
are not run again, and in a Parallel state only the branches that did not succeed run again. The
execution keeps its ARN, definition and input, its history goes on after an ``ExecutionRedriven`` event,
its redrive count grows, and its time limit starts again. Refusals answer AWS's error codes, with the
reasons DescribeExecution's ``redriveStatusReason`` documents.

moto internals this relies on (the API's are listed by ``patches.redrive_executions``): the parser backend's
``Execution`` (``exec_worker``, ``exec_status``, ``sm_type``, ``start_date``, ``stop_date``, ``error``,
``cause``, ``output``, ``input_data``, ``state_machine.definition`` and ``.type``,
``_get_start_execution_worker``),
``ExecutionWorker`` (``_get_evaluation_entrypoint``, ``_get_evaluation_environment``,
``_execution_communication``), ``Environment`` (``event_manager``, ``event_history_context``, ``states``,
``set_stop``), ``EventManager`` (``add_event``, ``get_event_history``, ``_history_event_list``,
``_event_id_gen._next_id``), ``Program.start_at`` and ``eval``, ``StateParallel.branches.programs`` and
``moto.stepfunctions.parser.utils.TMP_THREADS``.
"""

from __future__ import annotations

import copy
import json
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# The limits and dates the RedriveExecution API reference gives.
REDRIVE_LAUNCH = datetime(2023, 11, 15, tzinfo=UTC)  # executions started before cannot be redriven
REDRIVABLE_PERIOD = timedelta(days=14)  # counted from the execution's stop
MAX_OPEN_TIME = timedelta(days=365)
HISTORY_EVENTS_LIMIT = 24_999  # the history must have fewer events, to hold ExecutionRedriven and more
OPEN_EXECUTIONS_QUOTA = 1_000_000  # open executions per account and region
CLIENT_TOKENS_KEPT = 10  # a repeated clientToken gets the same answer: the last 10, for 15 minutes
CLIENT_TOKEN_LIFETIME = timedelta(minutes=15)

REDRIVABLE = "REDRIVABLE"
NOT_REDRIVABLE = "NOT_REDRIVABLE"
REDRIVABLE_STATUSES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
_END_EVENTS = frozenset({"ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted", "ExecutionSucceeded"})


def _utc_now() -> datetime:
    return datetime.now(UTC)


# What "now" is for the 14-day window and client tokens; tests freeze it instead of waiting.
clock: Callable[[], datetime] = _utc_now


class RedriveRefused(Exception):
    """RedriveExecution's refusal: the error code and message AWS answers with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Redrives:
    """An execution's redrives: how many, the last one's date, and the client tokens that asked."""

    count: int = 0
    date: datetime | None = None
    tokens: deque[tuple[str, datetime]] = field(default_factory=lambda: deque(maxlen=CLIENT_TOKENS_KEPT))

    def answered(self, token: str | None, now: datetime) -> datetime | None:
        """The redrive date a recent request with this client token got (its first use), if one did."""
        for known, date in self.tokens:
            if token and known == token and now - date <= CLIENT_TOKEN_LIFETIME:
                return date
        return None


_redrives: weakref.WeakKeyDictionary[Any, _Redrives] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


# ------------------------------------------------------------------ eligibility
def _status(execution: Any) -> str:
    status = execution.exec_status
    return str(getattr(status, "value", status))


def _is_express(execution: Any) -> bool:
    # moto keeps the type the workflow was created with in ``type`` (its ``sm_type`` is always STANDARD).
    kind = getattr(execution.state_machine, "type", None) or execution.sm_type
    return str(getattr(kind, "value", kind)) == "EXPRESS"


def _history(execution: Any) -> list[dict[str, Any]]:
    env = getattr(execution.exec_worker, "env", None)
    return list(env.event_manager.get_event_history()) if env is not None else []


def _history_length(execution: Any) -> int:
    """The number of history events, without copying them (DescribeExecution asks on every call)."""
    env = getattr(execution.exec_worker, "env", None)
    return len(env.event_manager._history_event_list) if env is not None else 0


def refusal(execution: Any, now: datetime) -> str | None:
    """Why RedriveExecution would refuse this execution now (DescribeExecution's reason), or None."""
    status = _status(execution)
    if status not in REDRIVABLE_STATUSES:
        return f"Execution is {status} and cannot be redriven"
    if execution.start_date < REDRIVE_LAUNCH:
        return "Execution was started before the launch of RedriveExecution"
    if now - execution.start_date > MAX_OPEN_TIME:
        return "Execution has exceeded the max execution time"
    if execution.stop_date is not None and now - execution.stop_date > REDRIVABLE_PERIOD:
        return "Execution redrivable period exceeded"
    if _history_length(execution) >= HISTORY_EVENTS_LIMIT:
        return "Execution history event limit exceeded"
    return None


def list_fields(execution: Any) -> dict[str, Any]:
    """ListExecutions' redrive members: redriveCount, and redriveDate once redriven."""
    redrives = _redrives.get(execution)
    fields: dict[str, Any] = {"redriveCount": redrives.count if redrives else 0}
    if redrives is not None and redrives.date is not None:
        fields["redriveDate"] = redrives.date
    return fields


def describe_fields(execution: Any, now: datetime | None = None) -> dict[str, Any]:
    """DescribeExecution's redrive members: those of ListExecutions, redriveStatus and its reason."""
    fields = list_fields(execution)
    if _is_express(execution):
        return fields
    reason = refusal(execution, now or clock())
    fields["redriveStatus"] = NOT_REDRIVABLE if reason else REDRIVABLE
    if reason:
        fields["redriveStatusReason"] = reason
    return fields


def event_fields(execution: Any) -> dict[str, Any]:
    """The same members in an execution status change event, dates in epoch milliseconds."""
    fields = describe_fields(execution)
    date = fields.get("redriveDate")
    fields["redriveDate"] = int(date.timestamp() * 1000) if date is not None else None
    fields.setdefault("redriveStatusReason", None)
    return fields


# ------------------------------------------------------------------ where the run resumes
@dataclass(frozen=True)
class Resume:
    """Where a redriven run, or one branch of a Parallel state in it, picks up.

    ``state`` None means it had succeeded and ``value`` is its output; otherwise ``value`` is the input
    ``state`` gets. A Parallel state has one entry per branch: None reruns that branch from its start.
    """

    state: str | None
    value: Any
    branches: tuple[Resume | None, ...] = ()


def _details(event: Mapping[str, Any]) -> Mapping[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, Mapping):
            return value
    return {}


def _named(events: Sequence[Mapping[str, Any]], suffix: str, names: Iterable[str]) -> list[int]:
    wanted = set(names)
    return [
        index
        for index, event in enumerate(events)
        if str(event["type"]).endswith(suffix) and _details(event).get("name") in wanted
    ]


def _resume_in(program: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> Resume | None:
    """The resume point of one program (the workflow, or a branch) from the events since it began.

    State names are unique across a whole definition, so a program's events are those naming its states.
    """
    states: Mapping[str, Any] = program["States"]
    entered = _named(events, "StateEntered", states)
    if not entered:
        return None
    index = entered[-1]
    name = str(_details(events[index])["name"])
    value = json.loads(_details(events[index]).get("input") or "null")
    definition = states[name]
    later = events[index + 1 :]
    exits = _named(later, "StateExited", [name])
    if not exits:
        if definition["Type"] == "Parallel":
            branches = tuple(_resume_in(branch, later) for branch in definition["Branches"])
            return Resume(name, value, branches)
        return Resume(name, value)
    output = json.loads(_details(later[exits[-1]]).get("output") or "null")
    if definition.get("End") or definition["Type"] == "Succeed":
        return Resume(None, output)
    if "Next" in definition:  # it succeeded, and the run stopped before the next state began
        return Resume(str(definition["Next"]), output)
    return Resume(name, value)  # a Choice state: its rules are evaluated again


def plan(definition: Mapping[str, Any], events: Sequence[Mapping[str, Any]], execution_input: Any) -> Resume:
    """Where a redrive resumes the workflow: the unsuccessful state, with the input it was given."""
    resume = _resume_in(definition, events)
    if resume is None:  # it stopped before its first state
        return Resume(str(definition["StartAt"]), execution_input)
    if resume.state is None:  # its last state had ended: that state runs again rather than nothing
        index = _named(events, "StateEntered", definition["States"])[-1]
        details = _details(events[index])
        return Resume(str(details["name"]), json.loads(details.get("input") or "null"))
    return resume


# ------------------------------------------------------------------ running it in moto's interpreter
class _FinishedBranch:
    """A branch that succeeded before the redrive: it gives its output again without running."""

    def __init__(self, output: Any) -> None:
        self._output = output

    def eval(self, env: Any) -> None:
        env.states.reset(input_value=self._output)
        env.set_ended()


class _ResumedBranch:
    """A branch that resumes at one of its states, with the input that state had."""

    def __init__(self, program: Any, value: Any) -> None:
        self._program = program
        self._value = value

    def eval(self, env: Any) -> None:
        env.states.reset(input_value=self._value)
        self._program.eval(env)


def _resumed(program: Any, resume: Resume) -> Any:
    """A copy of a parsed program that starts at ``resume.state``; a Parallel state's branches resume too."""
    from moto.stepfunctions.parser.asl.component.common.flow.start_at import StartAt

    assert resume.state is not None
    resumed = copy.copy(program)
    resumed.start_at = StartAt(resume.state)
    if resume.branches:
        # The program is this execution's own parse, so its Parallel state can be changed in place.
        branches = program.states.states[resume.state].branches
        branches.programs = [
            _branch(branch, plan_of_branch)
            for branch, plan_of_branch in zip(branches.programs, resume.branches, strict=True)
        ]
    return resumed


def _branch(program: Any, resume: Resume | None) -> Any:
    if resume is None:
        return program
    if resume.state is None:
        return _FinishedBranch(resume.value)
    return _ResumedBranch(_resumed(program, resume), resume.value)


class RedriveWorker:
    """What moto's Execution needs of its worker (``env``, ``start``, ``stop``), for the resumed program."""

    def __init__(self, program: Any, env: Any, communication: Any) -> None:
        self._program = program
        self._communication = communication
        self.env = env

    def start(self) -> None:
        from moto.stepfunctions.parser.utils import TMP_THREADS

        thread = threading.Thread(target=self._run, name="redriven-execution", daemon=True)
        TMP_THREADS.append(thread)
        thread.start()

    def _run(self) -> None:
        self._program.eval(self.env)
        self._communication.terminated()

    def stop(self, stop_date: datetime, error: str | None, cause: str | None) -> None:
        self.env.set_stop(stop_date=stop_date, cause=cause, error=error)


def _closed(history: list[dict[str, Any]], execution: Any) -> list[dict[str, Any]]:
    """The history with its end event: moto writes a timed-out run's only when its last task returns."""
    if _status(execution) != "TIMED_OUT" or (history and history[-1]["type"] in _END_EVENTS):
        return history
    from moto.core.utils import iso_8601_datetime_with_milliseconds

    last = int(history[-1]["id"]) if history else 0
    ended = {
        "id": last + 1,
        "previousEventId": last,
        "type": "ExecutionTimedOut",
        "timestamp": iso_8601_datetime_with_milliseconds(execution.stop_date),
        "executionTimedOutEventDetails": {},
    }
    return [*history, ended]


def _prepare(execution: Any, redrive_count: int) -> RedriveWorker:
    """A worker whose environment goes on from the execution's history, and the program it resumes."""
    from moto.stepfunctions.parser.api import HistoryEventType

    history = _closed(_history(execution), execution)
    resume = plan(json.loads(execution.state_machine.definition), history, execution.input_data)
    base = execution._get_start_execution_worker()
    program = _resumed(base._get_evaluation_entrypoint(), resume)
    env = base._get_evaluation_environment()
    manager = env.event_manager
    manager._history_event_list.extend(history)
    last = int(history[-1]["id"]) if history else 0
    manager._event_id_gen._next_id = last + 1
    env.event_history_context.source_event_id = last
    env.event_history_context.last_published_event_id = last
    redriven: Any = {"executionRedrivenEventDetails": {"redriveCount": redrive_count}}
    manager.add_event(
        context=env.event_history_context,
        event_type=HistoryEventType.ExecutionRedriven,
        event_details=redriven,
    )
    env.states.reset(input_value=resume.value)
    return RedriveWorker(program, env, base._execution_communication)


def _open_executions(backend: Any) -> int:
    return sum(
        1
        for state_machine in list(backend.state_machines)
        for execution in list(state_machine.executions)
        if _status(execution) == "RUNNING"
    )


def redrive(
    backend: Any,
    execution: Any,
    client_token: str | None = None,
    on_running: Callable[[Any], None] | None = None,
) -> datetime:
    """Redrive ``execution`` of moto's parser ``backend`` and return the redrive date, or refuse.

    ``on_running`` hears of the execution once it is RUNNING again, before any of its states runs.
    """
    from moto.stepfunctions.parser.api import ExecutionStatus

    now = clock()
    with _lock:
        redrives = _redrives.setdefault(execution, _Redrives())
        answered = redrives.answered(client_token, now)
        if answered is not None:
            return answered
        if _is_express(execution):
            raise RedriveRefused(
                "ExecutionNotRedrivable", "Execution of an EXPRESS state machine cannot be redriven"
            )
        reason = refusal(execution, now)
        if reason is not None:
            raise RedriveRefused("ExecutionNotRedrivable", reason)
        if _open_executions(backend) >= OPEN_EXECUTIONS_QUOTA:
            raise RedriveRefused(
                "ExecutionLimitExceeded",
                "The maximum number of running executions has been reached. Running executions must end "
                "or be stopped before a new execution can be started.",
            )
        worker = _prepare(execution, redrives.count + 1)
        redrives.count += 1
        redrives.date = now
        if client_token:
            redrives.tokens.append((client_token, now))
        execution.exec_worker = worker
        execution.exec_status = ExecutionStatus.RUNNING
        execution.stop_date = None
        execution.error = execution.cause = execution.output = None
    if on_running is not None:
        on_running(execution)
    worker.start()
    return now
