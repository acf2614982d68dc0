"""The local operator console: a token-guarded JSON API over `filepipe.ops`, and its page under /console."""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import parse_qs

# filepipe.ops puts functions/ on the path, so the functions' `common` adapters import after it.
from filepipe.local.http_server import status_line
from filepipe.ops import executions, render
from filepipe.ops.audit import AuditLog, operator_name
from filepipe.ops.replay import PARSERS, QUEUES, STATUS_CHANGE, NotReplayable, Replayer, ReplayOptions
from filepipe.ops.target import (
    DEAD_LETTER_QUEUES,
    FAILED_QUEUE,
    FILES_TABLE_NAME,
    GUARDDUTY,
    RESCAN_STATE_MACHINE_ARN,
    SCANNER,
    START_QUEUE,
    STATE_MACHINE_ARN,
    Target,
)

log = logging.getLogger("filepipe.local.console")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
StartResponse = Callable[..., Any]

CONSOLE_PATH = "/console"
API_PATH = "/console/api"
PAGE_FILE = "/console.html"
QUEUE_LABELS = {FAILED_QUEUE: "Failed executions", START_QUEUE: "Uploads that never started"}
# The workflows whose executions the console shows, by the stack output naming each state machine; a stack
# without the rescan workflow simply has no such output.
UPLOAD_WORKFLOW = "ProcessUpload"
RESCAN_WORKFLOW = "RescanFiles"
WORKFLOWS = {UPLOAD_WORKFLOW: STATE_MACHINE_ARN, RESCAN_WORKFLOW: RESCAN_STATE_MACHINE_ARN}

DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000
MAX_REPLAY_LIMIT = 1000
MAX_REPLAY_WAIT_SECONDS = 60.0
MAX_BODY_BYTES = 16 * 1024
# Peeking receives with VisibilityTimeout=0, so nothing is hidden from a replay running meanwhile; SQS
# may answer the same messages to each call, so calls stop as soon as one brings nothing new.
PEEK_CALLS = 10
# Execution names are at most 80 characters; ours are file ids, optionally with -replay-N.
_EXECUTION_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
_REPLAY_SUFFIX = re.compile(r"-replay-\d+$")


def new_token() -> str:
    """A fresh operator token; the runtime makes one per start."""
    return secrets.token_urlsafe(24)


def console_url(web_url: str, token: str) -> str:
    """The address printed at start: the token travels in the fragment, which browsers never send."""
    return f"{web_url.rstrip('/')}{CONSOLE_PATH}#token={token}"


def file_id_of(execution_name: str) -> str:
    """The file a run belongs to: its name, less a ``-replay-N`` suffix."""
    return _REPLAY_SUFFIX.sub("", execution_name)


class ConsoleError(Exception):
    """An answer other than 200, with the code and message the client shows."""

    def __init__(self, status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.headers = headers or []


@dataclass(frozen=True)
class Call:
    """One API request as the routes see it: the query's fields and, for a POST, the JSON text."""

    query: dict[str, list[str]]
    body: str = "{}"

    def first(self, name: str) -> str:
        return (self.query.get(name) or [""])[0].strip()


@dataclass(frozen=True)
class PeekedMessage:
    queue: str
    message_id: str
    body: str
    sent_at: int | None
    receive_count: int | None
    attributes: dict[str, str]


def peek_queue(sqs: Any, queue_url: str, queue: str) -> tuple[list[PeekedMessage], int]:
    """The messages visible in a queue, left in place, and the queue's approximate size."""
    size = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    approximate = int(size.get("Attributes", {}).get("ApproximateNumberOfMessages") or 0)
    found: dict[str, PeekedMessage] = {}
    for _ in range(PEEK_CALLS):
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=0,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        fresh = [message for message in batch if message["MessageId"] not in found]
        if not fresh:
            break
        for message in fresh:
            system = message.get("Attributes", {})
            found[message["MessageId"]] = PeekedMessage(
                queue=queue,
                message_id=message["MessageId"],
                body=message.get("Body", ""),
                sent_at=int(system["SentTimestamp"]) if "SentTimestamp" in system else None,
                receive_count=int(system["ApproximateReceiveCount"])
                if "ApproximateReceiveCount" in system
                else None,
                attributes={
                    name: str(value.get("StringValue", ""))
                    for name, value in message.get("MessageAttributes", {}).items()
                },
            )
    messages = sorted(found.values(), key=lambda m: (m.sent_at or 0, m.message_id))
    return messages, max(approximate, len(messages))


def describe_message(message: PeekedMessage) -> dict[str, Any]:
    """What an operator needs to judge a dead letter: its file, run, error, and whether replay can read it."""
    entry: dict[str, Any] = {
        "queue": message.queue,
        "messageId": message.message_id,
        "sentAt": message.sent_at,
        "receiveCount": message.receive_count,
        "attributes": message.attributes,
        "body": message.body,
        "fileId": None,
        "execution": None,
        "error": None,
        "replayable": True,
        "problem": None,
    }
    try:
        request = PARSERS[message.queue](message.body)
    except NotReplayable as problem:
        entry.update(replayable=False, problem=str(problem))
    else:
        entry["fileId"] = request.ref.file_id
        if request.failed_execution_arn:
            entry["execution"] = request.failed_execution_arn.rsplit(":", 1)[-1]
    error, cause = None, None
    try:
        parsed = json.loads(message.body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        if parsed.get("detail-type") == STATUS_CHANGE and isinstance(parsed.get("detail"), dict):
            parsed = parsed["detail"]
        error, cause = parsed.get("error"), parsed.get("cause")
    # A delivery that never started a run carries EventBridge's reason in its attributes instead.
    error = error or message.attributes.get("ERROR_CODE")
    cause = cause or message.attributes.get("ERROR_MESSAGE")
    if error or cause:
        entry["error"] = render.describe_error(error, cause)
    return entry


class ConsoleApi:
    """The console's JSON routes under /console/api, answering only loopback callers with the token."""

    def __init__(
        self,
        target: Target,
        token: str,
        *,
        outbox: Callable[[], list[dict[str, Any]]],
        audit_stream: TextIO,
    ) -> None:
        if len(token) < 16:
            raise ValueError("the console token is too short to guard anything")
        self._target = target
        self._token = token.encode()
        self._outbox = outbox
        self._audit_stream = audit_stream
        self._definitions: dict[str, dict[str, Any]] = {}
        self._replaying = threading.Lock()
        self._routes: dict[tuple[str, str], Callable[[Call], Any]] = {
            ("GET", "executions"): self._executions,
            ("GET", "definition"): self._state_machine_definition,
            ("GET", "dlq"): self._dead_letters,
            ("POST", "dlq/replay"): self._replay,
            ("GET", "outbox"): self._sent_emails,
        }

    # ------------------------------------------------------------ WSGI
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        try:
            self._authorize(environ)
            result = self._dispatch(environ)
        except ConsoleError as error:
            return self._json(
                start_response,
                error.status,
                {"error": {"code": error.code, "message": str(error)}},
                error.headers,
            )
        except Exception as error:
            log.exception("console request failed")
            from common.aws import error_code

            code = error_code(error)
            if code:  # the AWS endpoint refused: not the console's fault, and worth showing as it is
                return self._json(start_response, 502, {"error": {"code": code, "message": str(error)}})
            return self._json(
                start_response,
                500,
                {"error": {"code": "InternalError", "message": f"{type(error).__name__}: {error}"}},
            )
        return self._json(start_response, 200, result)

    def _authorize(self, environ: dict[str, Any]) -> None:
        remote = str(environ.get("REMOTE_ADDR") or "")
        try:
            loopback = ipaddress.ip_address(remote.removeprefix("::ffff:")).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ConsoleError(403, "Forbidden", "the console answers only on this machine")
        scheme, _, presented = str(environ.get("HTTP_AUTHORIZATION") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), self._token):
            raise ConsoleError(
                401,
                "Unauthorized",
                "open the console with the address `filepipe local` printed (it carries the token)",
                [("WWW-Authenticate", 'Bearer realm="filepipe console"')],
            )

    def _dispatch(self, environ: dict[str, Any]) -> Any:
        method = str(environ.get("REQUEST_METHOD") or "GET")
        path = str(environ.get("PATH_INFO") or "").removeprefix(API_PATH).strip("/")
        query = parse_qs(str(environ.get("QUERY_STRING") or ""), keep_blank_values=True)
        if path.startswith("executions/"):
            if method != "GET":
                raise ConsoleError(
                    405, "MethodNotAllowed", f"{method} is not allowed here", [("Allow", "GET")]
                )
            return self._execution(path.removeprefix("executions/"))
        handler = self._routes.get((method, path))
        if handler is not None:
            return handler(Call(query, self._read_json(environ) if method == "POST" else "{}"))
        allowed = sorted(m for m, p in self._routes if p == path)
        if allowed:
            raise ConsoleError(
                405, "MethodNotAllowed", f"{method} is not allowed here", [("Allow", ", ".join(allowed))]
            )
        raise ConsoleError(404, "NotFound", f"no console route {path or '/'}")

    @staticmethod
    def _read_json(environ: dict[str, Any]) -> str:
        content_type = str(environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise ConsoleError(415, "UnsupportedMediaType", "send the body as application/json")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError as error:
            raise ConsoleError(400, "InvalidRequest", "bad Content-Length") from error
        if length > MAX_BODY_BYTES:
            raise ConsoleError(413, "PayloadTooLarge", f"the body is limited to {MAX_BODY_BYTES} bytes")
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        return raw.decode("utf-8", errors="replace") or "{}"

    @staticmethod
    def _json(
        start_response: StartResponse,
        status: int,
        payload: Any,
        extra: list[tuple[str, str]] | None = None,
    ) -> list[bytes]:
        body = json.dumps(payload, default=str).encode()
        start_response(
            status_line(status),
            [
                ("Content-Type", "application/json; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
                ("X-Content-Type-Options", "nosniff"),
                *(extra or []),
            ],
        )
        return [body]

    # ------------------------------------------------------------ routes
    @property
    def _state_machine_arn(self) -> str:
        return self._target.output(STATE_MACHINE_ARN)

    def _workflows(self) -> dict[str, str]:
        """Each workflow the stack has, by name, with its state machine's ARN; uploads first."""
        found = {UPLOAD_WORKFLOW: self._state_machine_arn}
        for workflow, output in WORKFLOWS.items():
            arn = self._target.outputs.get(output)
            if workflow not in found and arn:
                found[workflow] = arn
        return found

    def _workflow(self, call: Call) -> str | None:
        workflow = call.first("workflow") or None
        if workflow is not None and workflow not in WORKFLOWS:
            raise ConsoleError(400, "InvalidRequest", f"workflow must be one of {', '.join(WORKFLOWS)}")
        return workflow

    def _executions(self, call: Call) -> dict[str, Any]:
        status = call.first("status").upper() or None
        if status is not None and status not in executions.STATUSES:
            raise ConsoleError(
                400, "InvalidRequest", f"status must be one of {', '.join(executions.STATUSES)}"
            )
        file_id = call.first("file") or None
        if file_id is not None and not _EXECUTION_NAME.match(file_id):
            raise ConsoleError(400, "InvalidRequest", "file must be a file id")
        only = self._workflow(call)
        limit = _bounded_int(call.first("limit"), "limit", DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)
        sfn = self._target.client("stepfunctions")
        found: list[tuple[str, executions.ExecutionSummary]] = []
        for workflow, arn in self._workflows().items():
            # A rescan belongs to no one file: asking for one file's runs leaves rescans out.
            if (only is not None and workflow != only) or (
                file_id is not None and workflow != UPLOAD_WORKFLOW
            ):
                continue
            listed = executions.list_executions(sfn, arn, status=status, file_id=file_id)
            found += [(workflow, execution) for execution in listed]
        found.sort(key=lambda pair: pair[1].started, reverse=True)
        items = [_listed_execution(workflow, e) for workflow, e in found[:limit]]
        return {"items": items, "total": len(found)}

    def _execution(self, name: str) -> dict[str, Any]:
        if not _EXECUTION_NAME.match(name):
            raise ConsoleError(400, "InvalidRequest", "not an execution name")
        sfn = self._target.client("stepfunctions")
        workflow, detail = self._described(sfn, name)
        result = render.execution_json(detail)
        result["workflow"] = workflow
        result["fileId"] = file_id_of(detail.summary.name) if workflow == UPLOAD_WORKFLOW else None
        result["error"] = render.describe_error(detail.error, detail.cause) or None
        for state, run in zip(result["states"], detail.states, strict=True):
            state["errorSummary"] = render.describe_error(run.error, run.cause) or None
        result["runs"] = (
            [
                render.summary_json(e)
                for e in executions.list_executions(sfn, self._state_machine_arn, file_id=result["fileId"])
            ]
            if workflow == UPLOAD_WORKFLOW
            else []
        )
        return result

    def _described(self, sfn: Any, name: str) -> tuple[str, executions.ExecutionDetail]:
        """The named execution and its workflow; names are unique per state machine only, and an upload's
        run wins, as it always did."""
        from common.aws import error_code

        for workflow, arn in self._workflows().items():
            try:
                return workflow, executions.describe(sfn, arn, name)
            except Exception as error:
                if error_code(error) not in ("ExecutionDoesNotExist", "InvalidArn"):
                    raise
        raise ConsoleError(404, "NotFound", f"no execution {name}")

    def _state_machine_definition(self, call: Call) -> Any:
        workflow = self._workflow(call) or UPLOAD_WORKFLOW
        arn = self._workflows().get(workflow)
        if arn is None:
            raise ConsoleError(404, "NotFound", f"this stack has no {workflow} workflow")
        if workflow not in self._definitions:
            described = self._target.client("stepfunctions").describe_state_machine(stateMachineArn=arn)
            self._definitions[workflow] = {
                "workflow": workflow,
                "stateMachineArn": described["stateMachineArn"],
                "name": described.get("name"),
                "definition": json.loads(described["definition"]),
            }
        return self._definitions[workflow]

    def _dead_letters(self, call: Call) -> dict[str, Any]:
        sqs = self._target.client("sqs")
        queues = []
        for queue, output in DEAD_LETTER_QUEUES.items():
            messages, approximate = peek_queue(sqs, self._target.output(output), queue)
            queues.append(
                {
                    "queue": queue,
                    "label": QUEUE_LABELS.get(queue, queue),
                    "approximateCount": approximate,
                    "messages": [describe_message(message) for message in messages],
                }
            )
        return {"queues": queues, "total": sum(q["approximateCount"] for q in queues)}

    def _replay(self, call: Call) -> dict[str, Any]:
        from common.records import FileRecords
        from common.storage import ObjectStore

        request = _parse_replay_request(call.body)
        if not self._replaying.acquire(blocking=False):
            raise ConsoleError(409, "ReplayInProgress", "a replay is already running; try again when it ends")
        try:
            target = self._target
            actor = {
                "user": operator_name(),
                "principal": target.identity(),
                "target": target.description,
                "via": "console",
            }
            audit = AuditLog(self._audit_stream, actor)
            replayer = Replayer(
                stepfunctions=target.client("stepfunctions"),
                sqs=target.client("sqs"),
                records=FileRecords(target.client("dynamodb"), target.output(FILES_TABLE_NAME)),
                store=ObjectStore(target.client("s3")),
                state_machine_arn=self._state_machine_arn,
                queue_urls={queue: target.output(DEAD_LETTER_QUEUES[queue]) for queue in QUEUES},
                audit=audit,
                # As `filepipe replay`: a run whose GuardDuty verdict never came or failed gets a new scan.
                guardduty=target.client("guardduty") if target.outputs.get(SCANNER) == GUARDDUTY else None,
            )
            outcomes = replayer.run(
                ReplayOptions(
                    dry_run=request["dryRun"],
                    limit=request["limit"],
                    file_id=request["file"],
                    wait=request["wait"],
                    receive_wait_seconds=0,
                )
            )
        finally:
            self._replaying.release()
        return {
            "dryRun": request["dryRun"],
            "outcomes": [
                {
                    "queue": o.queue,
                    "messageId": o.message_id,
                    "action": o.action.value,
                    "fileId": o.file_id,
                    "execution": o.execution,
                    "executionArn": o.execution_arn,
                    "detail": o.detail,
                    "deleted": o.deleted,
                    "dryRun": o.dry_run,
                    "result": o.result,
                }
                for o in outcomes
            ],
            "report": render.replay_summary(outcomes, dry_run=request["dryRun"]),
            "audit": audit.entries,
        }

    def _sent_emails(self, call: Call) -> dict[str, Any]:
        messages = self._outbox()
        return {"items": list(reversed(messages)), "total": len(messages)}


def _listed_execution(workflow: str, execution: executions.ExecutionSummary) -> dict[str, Any]:
    file_id = file_id_of(execution.name) if workflow == UPLOAD_WORKFLOW else None
    return {**render.summary_json(execution), "workflow": workflow, "fileId": file_id}


def _bounded_int(text: str, name: str, default: int, maximum: int) -> int:
    if not text.strip():
        return default
    try:
        value = int(text)
    except ValueError as error:
        raise ConsoleError(400, "InvalidRequest", f"{name} must be a whole number") from error
    if not 1 <= value <= maximum:
        raise ConsoleError(400, "InvalidRequest", f"{name} must be between 1 and {maximum}")
    return value


def _parse_replay_request(text: str) -> dict[str, Any]:
    """``{dryRun?, file?, limit?, wait?}``, checked field by field."""
    try:
        body = json.loads(text)
    except ValueError as error:
        raise ConsoleError(400, "InvalidRequest", "the body is not JSON") from error
    if not isinstance(body, dict):
        raise ConsoleError(400, "InvalidRequest", "the body must be a JSON object")
    unknown = sorted(set(body) - {"dryRun", "file", "limit", "wait"})
    if unknown:
        raise ConsoleError(400, "InvalidRequest", f"unknown field(s): {', '.join(unknown)}")
    dry_run = body.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise ConsoleError(400, "InvalidRequest", "dryRun must be true or false")
    file_id = body.get("file")
    if file_id is not None and (not isinstance(file_id, str) or not _EXECUTION_NAME.match(file_id)):
        raise ConsoleError(400, "InvalidRequest", "file must be a file id")
    limit = body.get("limit")
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_REPLAY_LIMIT
    ):
        raise ConsoleError(
            400, "InvalidRequest", f"limit must be a whole number from 1 to {MAX_REPLAY_LIMIT}"
        )
    wait = body.get("wait", 0)
    if (
        isinstance(wait, bool)
        or not isinstance(wait, int | float)
        or not 0 <= wait <= MAX_REPLAY_WAIT_SECONDS
    ):
        raise ConsoleError(
            400, "InvalidRequest", f"wait must be a number of seconds from 0 to {MAX_REPLAY_WAIT_SECONDS:g}"
        )
    return {"dryRun": dry_run, "file": file_id or None, "limit": limit, "wait": float(wait)}


def _deny_framing(start_response: StartResponse) -> StartResponse:
    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        headers = [
            *headers,
            ("X-Frame-Options", "DENY"),
            ("Content-Security-Policy", "frame-ancestors 'none'"),
            ("Referrer-Policy", "no-referrer"),
        ]
        return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

    return start


def with_console(site: WsgiApp, api: ConsoleApi) -> WsgiApp:
    """The web server's app: /console/api/* to the API, /console and its routes to the console page,
    everything else to the site unchanged."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO") or "/")
        if path == API_PATH or path.startswith(API_PATH + "/"):
            return api(environ, start_response)
        if path == CONSOLE_PATH or path.startswith(CONSOLE_PATH + "/"):
            # The console routes in the browser (executions/NAME, dlq, outbox); each is the same page.
            return site({**environ, "PATH_INFO": PAGE_FILE}, _deny_framing(start_response))
        return site(environ, start_response)

    return app
