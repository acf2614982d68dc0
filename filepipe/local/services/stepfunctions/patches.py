"""Step Functions' patches to moto's interpreter: status events, redrive, and what it repeats for nothing.

moto emits no execution status change events and has no RedriveExecution; it renames a ``States.``
error a branch passes on. It also parses the ASL again for every execution, builds a JSONPath parser
per path, and a boto3 client per task, whose Lambda invocations go over HTTP; these patches spare that
work without changing what the interpreter does.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import pickle
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote

from filepipe.local.moto_patches import Uninstall, moto_patch, replace
from filepipe.local.services.awslambda.invoke import InvokeResult
from filepipe.local.services.events.delivery import execution_status_event
from filepipe.local.services.stepfunctions import redrive as stepfunctions_redrive

StatusSink = Callable[[dict[str, Any]], None]
# Decides lambda:InvokeFunction of a function (name or ARN) in a region for a role (None: unchecked);
# raises the botocore ClientError of Lambda's refusal.
AuthorizeInvoke = Callable[[str | None, str, str], None]


class InvokeRunner(Protocol):
    """What the interpreter's clients need of the Lambda runner."""

    def knows(self, name_or_arn: str) -> bool: ...

    def invoke(self, name_or_arn: str, payload: bytes, client_context: str | None = None) -> InvokeResult: ...


class StateMachineRoles(Protocol):
    """What the interpreter's clients need to act as a state machine's role (its IAM sessions)."""

    def __call__(self, role_arn: str | None, function: str, region: str) -> None: ...

    def credentials(self, role_arn: str) -> Any: ...


# Where execution status change events go while ``emit_execution_status_events`` is installed.
_status_sink: StatusSink | None = None


# ------------------------------------------------------------------ execution status events
def _status_event(execution: Any, status: str) -> dict[str, Any]:
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    succeeded = status == "SUCCEEDED"
    stop_date: datetime | None = execution.stop_date if status != "RUNNING" else None
    event = execution_status_event(
        execution_arn=execution.exec_arn,
        state_machine_arn=execution.state_machine_arn,
        name=execution.name,
        status=status,
        start_date=execution.start_date,
        stop_date=stop_date,
        input_text=to_json_str(execution.input_data, separators=(",", ":")),
        output_text=to_json_str(execution.output, separators=(",", ":")) if succeeded else None,
        error=execution.error,
        cause=execution.cause,
        account=execution.account_id,
        region=execution.region_name,
    )
    # Step Functions adds the redrive members DescribeExecution has (count, date, status and reason).
    event["detail"].update(stepfunctions_redrive.event_fields(execution))
    return event


@moto_patch(
    "moto.stepfunctions.parser.backend.execution.Execution.start",
    "moto.stepfunctions.parser.backend.execution.BaseExecutionWorkerCommunication.terminated",
    "moto.stepfunctions.parser.asl.utils.encoding.to_json_str",
)
def emit_execution_status_events(sink: StatusSink) -> Uninstall:
    """Emit "Step Functions Execution Status Change" for RUNNING and every final status, to ``sink``.

    Also relies on the ``execution`` of the worker's communication, and on each execution's
    ``exec_arn``, ``state_machine_arn``, ``name``, ``exec_status``, dates, input, output, error and cause,
    ``account_id`` and ``region_name``.
    """
    global _status_sink
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution

    _status_sink = sink
    original_start = Execution.start
    original_terminated = BaseExecutionWorkerCommunication.terminated

    def start(self: Any) -> None:
        original_start(self)
        if _status_sink is not None:
            _status_sink(_status_event(self, "RUNNING"))

    def terminated(self: Any) -> None:
        original_terminated(self)
        if _status_sink is not None:
            execution = self.execution
            _status_sink(_status_event(execution, str(execution.exec_status.value)))

    restore_start = replace(Execution, start=start)
    restore_terminated = replace(BaseExecutionWorkerCommunication, terminated=terminated)

    def uninstall() -> None:
        global _status_sink
        restore_terminated()
        restore_start()
        _status_sink = None

    return uninstall


# ------------------------------------------------------------------ redrive
@moto_patch(
    "moto.stepfunctions.responses.StepFunctionResponse.describe_execution",
    "moto.stepfunctions.responses.StepFunctionResponse.list_executions",
    "moto.stepfunctions.responses.StepFunctionResponse.stepfunction_backend",
    "moto.stepfunctions.responses.StepFunctionResponse._get_param",
    "moto.stepfunctions.parser.models.StepFunctionsParserBackend.describe_execution",
    "moto.stepfunctions.parser.backend.execution_worker.ExecutionWorker._get_evaluation_environment",
    "moto.core.responses.method_names_from_class",
    "moto.core.responses.ActionResult",
    "moto.core.exceptions.AWSError",
)
def redrive_executions() -> Uninstall:
    """RedriveExecution, which moto lacks, and the redrive members of DescribeExecution, ListExecutions and
    the context object.

    The redrive itself is filepipe.local.services.stepfunctions.redrive (which lists the interpreter
    internals it uses); a redriven execution's RUNNING status change goes to the sink of
    ``emit_execution_status_events``. ``describe_execution`` and ``list_executions`` return an
    ``ActionResult`` of a dict, and moto dispatches a request by method name through
    ``method_names_from_class``. moto also leaves out a TIMED_OUT execution's stopDate, which AWS gives.
    moto's context object has no ``Execution.RedriveCount``, which AWS documents ("Accessing execution
    data from the Context object": 0 until the execution is redriven, ``RedriveTime`` only once it is), so
    a state reading ``$$.Execution.RedriveCount`` would fail; every environment the worker builds gets it.
    """
    import moto.core.responses as core_responses
    from moto.core.exceptions import AWSError
    from moto.core.responses import ActionResult
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.responses import StepFunctionResponse

    original_describe = StepFunctionResponse.describe_execution
    original_list = StepFunctionResponse.list_executions
    original_environment = ExecutionWorker._get_evaluation_environment

    def evaluation_environment(self: Any) -> Any:
        env = original_environment(self)
        execution: Any = env.states.context_object.context_object_data["Execution"]
        execution["RedriveCount"] = 0
        return env

    def parser_backend(response: Any) -> Any:
        from moto.stepfunctions.parser.models import StepFunctionsParserBackend

        backend = response.stepfunction_backend
        return backend if isinstance(backend, StepFunctionsParserBackend) else None

    def emit_running(execution: Any) -> None:
        # The redriven run's environment is new: its context object says which redrive this is.
        fields = stepfunctions_redrive.list_fields(execution)
        context = execution.exec_worker.env.states.context_object.context_object_data["Execution"]
        context["RedriveCount"] = fields["redriveCount"]
        if fields.get("redriveDate") is not None:
            context["RedriveTime"] = fields["redriveDate"].isoformat()
        if _status_sink is not None:
            _status_sink(_status_event(execution, "RUNNING"))

    def redrive_execution(self: Any) -> Any:
        backend = parser_backend(self)
        if backend is None:  # executions that never run cannot be resumed: moto's own answer
            raise NotImplementedError("The redrive_execution action has not been implemented")
        execution = backend.describe_execution(self._get_param("executionArn"))
        try:
            date = stepfunctions_redrive.redrive(
                backend, execution, self._get_param("clientToken"), on_running=emit_running
            )
        except stepfunctions_redrive.RedriveRefused as refused:
            raise AWSError(refused.message, exception_type=refused.code) from refused
        return ActionResult({"redriveDate": date})

    def with_redrive_members(item: Any, execution: Any, *, describe: bool) -> None:
        status = execution.exec_status
        if str(getattr(status, "value", status)) == "TIMED_OUT":
            item["stopDate"] = execution.stop_date
        if describe:
            item.update(stepfunctions_redrive.describe_fields(execution))
        else:
            item.update(stepfunctions_redrive.list_fields(execution))

    def describe_execution(self: Any) -> Any:
        result = original_describe(self)
        backend = parser_backend(self)
        if backend is not None:
            execution = backend.describe_execution(self._get_param("executionArn"))
            with_redrive_members(result.result, execution, describe=True)
        return result

    def list_executions(self: Any) -> Any:
        result = original_list(self)
        backend = parser_backend(self)
        listed: Any = result.result
        if backend is not None:
            for item in listed.get("executions", []):
                with_redrive_members(item, backend.describe_execution(item["executionArn"]), describe=False)
        return result

    def forget_method_names() -> None:
        # The runtime caches each response class's methods; the class just gained or lost one.
        cache_clear = getattr(core_responses.method_names_from_class, "cache_clear", None)
        if cache_clear is not None:
            cache_clear()

    restore = replace(
        StepFunctionResponse,
        redrive_execution=redrive_execution,
        describe_execution=describe_execution,
        list_executions=list_executions,
    )
    restore_environment = replace(ExecutionWorker, _get_evaluation_environment=evaluation_environment)
    forget_method_names()

    def uninstall() -> None:
        restore_environment()
        restore()
        forget_method_names()

    return uninstall


# ------------------------------------------------------------------ definitions parsed once
class _LazyTree:
    """The parse tree of a definition whose program came from the disk cache, parsed on first use.

    Only moto's static analysers walk the tree (describing an execution's variables); evaluation never does.
    """

    def __init__(self, definition: str, parse: Callable[[str], tuple[Any, Any]]) -> None:
        self._definition = definition
        self._parse = parse
        self._tree: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._tree is None:
            self._tree = self._parse(self._definition)[1]
        return getattr(self._tree, name)


@moto_patch("moto.stepfunctions.parser.asl.parse.asl_parser.AmazonStateLanguageParser.parse")
def cache_definitions(cache_dir: Path | None = None) -> Uninstall:
    """Parse each definition once: moto parses the ASL again (antlr, ~0.3 s) for every execution.

    Evaluation keeps its state in each execution's environment, but every execution still gets a private
    copy of the parsed program, so that executions never share a component object. The copy is unpickled
    from the program's pickle (~1 ms) rather than deep-copied (~8 ms, all in Python, per execution). With
    ``cache_dir`` the pickle also outlives the process, keyed by the definition and moto's version, so
    the next start-up skips the parse too.
    """
    from importlib.metadata import version

    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    original = AmazonStateLanguageParser.parse
    parsed: dict[str, tuple[bytes, Any]] = {}
    lock = threading.Lock()
    moto_version = version("moto")

    def cache_file(definition: str) -> Path | None:
        if cache_dir is None:
            return None
        digest = hashlib.sha256(f"{moto_version}\n{definition}".encode()).hexdigest()
        return cache_dir / f"{digest}.pickle"

    def from_disk(definition: str) -> bytes | None:
        path = cache_file(definition)
        try:
            pickled = path.read_bytes() if path else None
            # The runtime's own cache file in its state directory, written below; loading it once here
            # proves it still unpickles with this moto before any execution relies on it.
            if pickled is not None:
                pickle.loads(pickled)  # noqa: S301
        except (OSError, pickle.PickleError, AttributeError, ImportError, EOFError):
            return None
        return pickled

    def to_disk(definition: str, pickled: bytes) -> None:
        path = cache_file(definition)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        partial.write_bytes(pickled)
        partial.replace(path)

    def parse(definition: str) -> tuple[Any, Any]:
        with lock:
            cached = parsed.get(definition)
        if cached is None:
            pickled = from_disk(definition)
            if pickled is not None:
                cached = (pickled, _LazyTree(definition, original))
            else:
                program, tree = original(definition)
                pickled = pickle.dumps(program, protocol=pickle.HIGHEST_PROTOCOL)
                to_disk(definition, pickled)
                cached = (pickled, tree)
            with lock:
                parsed[definition] = cached
        pickled, tree = cached
        return pickle.loads(pickled), tree  # noqa: S301 - pickled by this process (or its cache file)

    return replace(AmazonStateLanguageParser, parse=staticmethod(parse))


@moto_patch(
    "moto.stepfunctions.parser.asl.utils.json_path.parse",
    "moto.stepfunctions.parser.asl.component.common.path.result_path.parse",
)
def cache_json_paths() -> Uninstall:
    """The interpreter builds a new JSONPath parser (ply tables included) for each path it evaluates.

    Parsed JSONPath expressions are immutable; evaluating one never changes it.
    """
    import functools

    import moto.stepfunctions.parser.asl.component.common.path.result_path as result_path
    import moto.stepfunctions.parser.asl.utils.json_path as json_path

    restore_json_path = replace(json_path, parse=functools.lru_cache(maxsize=4096)(json_path.parse))
    restore_result_path = replace(result_path, parse=functools.lru_cache(maxsize=4096)(result_path.parse))

    def uninstall() -> None:
        restore_result_path()
        restore_json_path()

    return uninstall


# ------------------------------------------------------------------ the interpreter's clients
def _response_body(payload: bytes) -> Any:
    """A response body as botocore reads it from urllib3 (``stream``), over bytes already in memory."""
    from urllib3 import HTTPResponse

    return HTTPResponse(body=io.BytesIO(payload), preload_content=False, decode_content=False)


def _invoke_in_process(
    runner: InvokeRunner,
    authorize: AuthorizeInvoke | None = None,
    role_arn: str | None = None,
    region: str = "",
) -> Callable[..., Any]:
    """A botocore before-send handler: lambda.Invoke of the stack's functions goes to the runner directly.

    The answer is the one the AWS endpoint gives over HTTP (the same runner behind it), minus a socket,
    a server thread and two HTTP parses per task; ``authorize`` decides it for ``role_arn`` first.
    """
    from botocore.awsrequest import AWSResponse

    def before_send(request: Any, **_: Any) -> Any:
        path = request.url.split("?", 1)[0]
        if "/functions/" not in path or not path.endswith("/invocations"):
            return None
        name = unquote(path.split("/functions/", 1)[1].removesuffix("/invocations"))
        invocation_type = request.headers.get("X-Amz-Invocation-Type") or b""
        if isinstance(invocation_type, bytes):
            invocation_type = invocation_type.decode()
        # Event and DryRun invocations, and unknown functions, take the HTTP path to the AWS endpoint.
        if invocation_type not in ("", "RequestResponse") or not runner.knows(name):
            return None
        from botocore.exceptions import ClientError

        from filepipe.local.services.awslambda.runner import RequestTooLarge, Throttled

        try:
            if authorize is not None:
                authorize(role_arn, name, region)
            result = runner.invoke(name, bytes(request.body or b"{}"))
        except ClientError as refused:  # IAM's refusal, as Lambda answers it
            error = refused.response["Error"]
            body = json.dumps({"Type": "User", "Message": error["Message"]}).encode()
            denied = {"Content-Type": "application/json", "x-amzn-ErrorType": error["Code"]}
            return AWSResponse(request.url, 403, denied, _response_body(body))
        except Throttled as error:
            body = json.dumps({"Type": "User", "message": str(error)}).encode()
            throttled = {"Content-Type": "application/json", "x-amzn-ErrorType": "TooManyRequestsException"}
            return AWSResponse(request.url, 429, throttled, _response_body(body))
        except RequestTooLarge as error:
            body = json.dumps({"Type": "User", "message": str(error)}).encode()
            too_large = {
                "Content-Type": "application/json",
                "x-amzn-ErrorType": "RequestEntityTooLargeException",
            }
            return AWSResponse(request.url, 413, too_large, _response_body(body))
        headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}
        if result.function_error:
            headers["X-Amz-Function-Error"] = result.function_error
        return AWSResponse(request.url, 200, headers, _response_body(result.payload))

    return before_send


def _invoke_task_directly(
    runner: InvokeRunner, through_sdk: Callable[..., Any], authorize: AuthorizeInvoke | None = None
) -> Callable[..., Any]:
    """moto's ``lambda:invoke`` task call, handing a stack function's payload to the runner itself.

    It returns what the SDK call returns (status, executed version, function error, the payload decoded
    as moto decodes it) without building, signing and parsing an SDK request for every task. Calls the
    runner does not take (other functions, other invocation types, a client context) use the SDK.
    ``authorize`` decides the invocation for the state machine's role (moto's ``StateCredentials``)
    first, raising the ClientError Lambda's refusal would be.
    """
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    from filepipe.local.services.awslambda.runner import RequestTooLarge, Throttled

    def invoke(parameters: dict[str, Any], region: str, state_credentials: Any) -> Any:
        name = parameters.get("FunctionName")
        payload = parameters.get("Payload", b"{}")
        if (
            not isinstance(name, str)
            or not isinstance(payload, bytes)
            or parameters.keys() - {"FunctionName", "Payload", "LogType"}
            or not runner.knows(name)
        ):
            return through_sdk(parameters, region, state_credentials)
        if authorize is not None:
            authorize(getattr(state_credentials, "role_arn", None), name, region)
        try:
            result = runner.invoke(name, payload or b"{}")
        except (Throttled, RequestTooLarge) as error:
            code, status = (
                ("TooManyRequestsException", 429)
                if isinstance(error, Throttled)
                else ("RequestEntityTooLargeException", 413)
            )
            raise ClientError(
                {
                    "Error": {"Code": code, "Message": str(error)},
                    "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": str(uuid.uuid4())},
                },
                "Invoke",
            ) from error
        response: dict[str, Any] = {
            "StatusCode": 200,
            "ExecutedVersion": "$LATEST",
            "Payload": lambda_eval_utils._from_payload(io.BytesIO(result.payload)),
        }
        if result.function_error:
            response["FunctionError"] = result.function_error
        return response

    return invoke


_TASKS = "moto.stepfunctions.parser.asl.component.state.exec.state_task"
# The interpreter's modules that make an SDK client for a task, each with its own ``boto_client_for``.
_CLIENT_MODULES = (
    "moto.stepfunctions.parser.asl.utils.boto_client",
    f"{_TASKS}.lambda_eval_utils",
    f"{_TASKS}.service.state_task_service_aws_sdk",
    f"{_TASKS}.service.state_task_service_dynamodb",
    f"{_TASKS}.service.state_task_service_events",
    f"{_TASKS}.service.state_task_service_sfn",
    f"{_TASKS}.service.state_task_service_sns",
    f"{_TASKS}.service.state_task_service_sqs",
)


@moto_patch(
    *(f"{module}.boto_client_for" for module in _CLIENT_MODULES),
    f"{_TASKS}.lambda_eval_utils._invoke_lambda_function",
    f"{_TASKS}.lambda_eval_utils._from_payload",
)
def share_interpreter_clients(
    endpoint_url: str, runner: InvokeRunner | None = None, roles: StateMachineRoles | None = None
) -> Uninstall:
    """One boto3 client per (region, service, role) for the interpreter's tasks instead of one per task.

    With ``runner``, the tasks' Lambda invocations reach it in-process rather than over HTTP, and
    ``lambda:invoke`` tasks of the stack's functions skip the SDK altogether. With ``roles``, tasks act
    as the state machine's role (moto's ``StateCredentials.role_arn``), as on AWS: their SDK calls sign
    with its session and their invocations are decided for it.
    """
    import boto3
    from botocore.config import Config

    clients: dict[tuple[str, str, str | None], Any] = {}
    lock = threading.Lock()
    session = boto3.session.Session()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        role_arn = getattr(state_credentials, "role_arn", None) if roles is not None else None
        key = (region, service, role_arn)
        with lock:
            client = clients.get(key)
            if client is None:
                signing: dict[str, str] = {"aws_access_key_id": "ak", "aws_secret_access_key": "sk"}
                if role_arn and roles is not None:
                    issued = roles.credentials(role_arn)
                    signing = {
                        "aws_access_key_id": issued.access_key_id,
                        "aws_secret_access_key": issued.secret_access_key,
                        "aws_session_token": issued.session_token,
                    }
                client = session.client(
                    service,
                    region_name=region,
                    endpoint_url=endpoint_url,
                    **signing,  # moto's interpreter signs with "ak"/"sk": the administrator, locally
                    config=Config(
                        parameter_validation=False,
                        retries={"max_attempts": 0, "total_max_attempts": 1},
                        connect_timeout=60,
                        read_timeout=24 * 3600,
                        max_pool_connections=64,
                    ),
                )
                if service == "lambda" and runner is not None:
                    client.meta.events.register(
                        "before-send.lambda.Invoke", _invoke_in_process(runner, roles, role_arn, region)
                    )
                clients[key] = client
        return client

    undo = [
        replace(importlib.import_module(name), boto_client_for=boto_client_for) for name in _CLIENT_MODULES
    ]
    if runner is not None:
        lambda_eval_utils: Any = importlib.import_module(f"{_TASKS}.lambda_eval_utils")
        direct = _invoke_task_directly(runner, lambda_eval_utils._invoke_lambda_function, roles)
        undo.append(replace(lambda_eval_utils, _invoke_lambda_function=direct))

    def uninstall() -> None:
        for step in reversed(undo):
            step()

    return uninstall


# ------------------------------------------------------------------ States. errors keep their names
_ERROR_NAME_MODULES = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branches_decl",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iteration_worker",
    "moto.stepfunctions.parser.asl.component.state.fail.state_fail",
)


@moto_patch(
    *(f"{module}.CustomErrorName" for module in _ERROR_NAME_MODULES),
    "moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name.CustomErrorName",
    "moto.stepfunctions.parser.asl.component.common.error_name.states_error_name.StatesErrorName.from_name",
)
def keep_states_error_names() -> Uninstall:
    """A ``States.`` error passed on by a Parallel branch, a Map iteration or a Fail state keeps its name.

    moto names such an error with ``CustomErrorName``, which refuses names that start with ``States.``: a
    task in a branch that timed out or returned more than 256 KiB ended the whole run in States.Runtime
    instead of reaching the Parallel state's Catch, and a Fail state re-raising a caught States. error
    (ErrorPath) did the same. The modules that do so get a ``CustomErrorName`` that keeps the name.
    """
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName

    def error_name(error_name: str | None) -> Any:
        if error_name is None or not error_name.startswith("States."):
            return CustomErrorName(error_name)
        try:
            return StatesErrorName.from_name(error_name)
        except ValueError:  # a States. name the interpreter has no type for: kept as it is
            named = CustomErrorName(None)
            named.error_name = error_name  # type: ignore[misc]
            return named

    undo = [
        replace(importlib.import_module(name), CustomErrorName=error_name) for name in _ERROR_NAME_MODULES
    ]

    def uninstall() -> None:
        for step in reversed(undo):
            step()

    return uninstall


# ------------------------------------------------------------------ callbacks as AWS answers them
# What SendTaskSuccess and SendTaskFailure answer for a token whose task is over: the API reference's
# TaskTimedOut ("the task associated with the token has already been closed"); the message is the runtime's.
_CLOSED_TASK_MESSAGE = "The task of this token is closed already (it ended or timed out)."


@moto_patch(
    "moto.stepfunctions.responses.StepFunctionResponse.send_task_failure",
    "moto.stepfunctions.responses.StepFunctionResponse.stepfunction_backend",
    "moto.stepfunctions.responses.StepFunctionResponse._get_param",
    "moto.stepfunctions.parser.models.StepFunctionsParserBackend.send_task_failure",
    "moto.stepfunctions.parser.models.StepFunctionsParserBackend.send_task_success",
    "moto.stepfunctions.parser.models.StepFunctionsParserBackend.send_task_heartbeat",
    "moto.stepfunctions.parser.models.StepFunctionsParserBackend._get_executions",
    "moto.stepfunctions.parser.api.InvalidToken",
    "moto.stepfunctions.parser.api.ExecutionStatus",
    "moto.stepfunctions.parser.asl.eval.callback.callback.CallbackEndpoint.interrupt_all",
    "moto.stepfunctions.parser.asl.eval.callback.callback.CallbackPoolManager.notify",
    "moto.stepfunctions.parser.asl.eval.callback.callback.CallbackPoolManager.heartbeat",
    "moto.core.responses.EmptyResult",
    "moto.core.exceptions.AWSError",
)
def callbacks_as_on_aws() -> Uninstall:
    """A callback task (``.waitForTaskToken``) takes one outcome, with its cause, as on AWS.

    SendTaskFailure's ``cause`` reaches the task (moto passes on only the ``error``), so a Catch's
    ResultPath holds both. Once the task is over (completed, failed, timed out), SendTaskSuccess,
    SendTaskFailure and SendTaskHeartbeat with its token answer TaskTimedOut, as the API reference says of
    a task "already closed"; moto kept accepting them, and SendTaskFailure even for an execution that had
    ended, while it answered SendTaskSuccess and SendTaskHeartbeat for an ended execution's token with
    InvalidToken (it looks among running executions only). A task is over when the interpreter stops
    waiting on its token (``interrupt_all``). Only the parser backend (the one that runs executions) takes a
    cause; moto's other backend, which runs nothing, keeps its answer.
    """
    from moto.core.exceptions import AWSError
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.parser.api import ExecutionStatus, InvalidToken
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint, CallbackPoolManager
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    original_failure = StepFunctionResponse.send_task_failure
    original_backend_success = StepFunctionsParserBackend.send_task_success
    original_backend_heartbeat = StepFunctionsParserBackend.send_task_heartbeat
    original_interrupt = CallbackEndpoint.interrupt_all
    original_notify = CallbackPoolManager.notify
    original_heartbeat = CallbackPoolManager.heartbeat
    closed_attribute = "filepipe_closed"

    def send_task_failure(self: Any) -> Any:
        backend = self.stepfunction_backend
        if not isinstance(backend, StepFunctionsParserBackend):
            return original_failure(self)
        backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    def interrupt_all(self: Any) -> None:
        setattr(self, closed_attribute, True)
        original_interrupt(self)

    def refuse_closed(pool: Any, callback_id: str) -> None:
        endpoint = pool.get(callback_id)
        if endpoint is not None and getattr(endpoint, closed_attribute, False):
            raise AWSError(_CLOSED_TASK_MESSAGE, exception_type="TaskTimedOut", status=400)

    def notify(self: Any, callback_id: str, outcome: Any) -> bool:
        refuse_closed(self, callback_id)
        return bool(original_notify(self, callback_id, outcome))

    def heartbeat(self: Any, callback_id: str) -> bool:
        refuse_closed(self, callback_id)
        return bool(original_heartbeat(self, callback_id))

    def refuse_ended(backend: Any, token: str) -> None:
        for execution in backend._get_executions():
            env = getattr(execution.exec_worker, "env", None)
            if env is None or env.callback_pool_manager.get(token) is None:
                continue
            # An ended execution's tasks are over, even before its interpreter stops waiting on them.
            if execution.status != ExecutionStatus.RUNNING:
                raise AWSError(_CLOSED_TASK_MESSAGE, exception_type="TaskTimedOut", status=400)
            refuse_closed(env.callback_pool_manager, token)

    def backend_success(self: Any, task_token: str, outcome: str) -> Any:
        try:
            return original_backend_success(self, task_token, outcome)
        except InvalidToken:
            refuse_ended(self, task_token)
            raise

    def backend_heartbeat(self: Any, task_token: str) -> Any:
        try:
            return original_backend_heartbeat(self, task_token)
        except InvalidToken:
            refuse_ended(self, task_token)
            raise

    undo = [
        replace(StepFunctionResponse, send_task_failure=send_task_failure),
        replace(CallbackEndpoint, interrupt_all=interrupt_all),
        replace(CallbackPoolManager, notify=notify, heartbeat=heartbeat),
        replace(
            StepFunctionsParserBackend,
            send_task_success=backend_success,
            send_task_heartbeat=backend_heartbeat,
        ),
    ]

    def uninstall() -> None:
        for step in reversed(undo):
            step()

    return uninstall
