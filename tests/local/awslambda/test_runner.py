"""The Lambda runner: warm worker processes with the template's environment, timeout and memory limit."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import filepipe.local.services.awslambda.worker as bootstrap
from filepipe.local.services.awslambda.packages import LAMBDA_RUNTIME_SDK, prepare
from filepipe.local.services.awslambda.runner import FunctionNotFound, InvalidRequestContent, LambdaRunner
from filepipe.local.services.awslambda.worker import IDLE_TRIM_SECONDS
from filepipe.local.stack.model import FunctionSpec
from tests.local.conftest import rss_bytes

HANDLERS = textwrap.dedent(
    """
    import os, time

    STARTED_PID = os.getpid()
    print("init", os.environ.get("GREETING"))

    def echo(event, context):
        print("echo", event.get("n"))
        return {
            "event": event,
            "pid": os.getpid(),
            "name": context.function_name,
            "requestId": context.aws_request_id,
            "remainingMs": context.get_remaining_time_in_millis(),
            "environment": {k: os.environ.get(k) for k in (
                "GREETING", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_REGION",
                "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "LAMBDA_TASK_ROOT", "_HANDLER", "DEVELOPER_SECRET")},
        }

    class BadInput(Exception):
        pass

    def fail(event, context):
        raise BadInput("the input is bad")

    def slow(event, context):
        time.sleep(event.get("seconds", 5))
        return {"pid": os.getpid()}

    def crash(event, context):
        os._exit(3)

    def hog(event, context):
        block = bytearray(200 * 1024 * 1024)
        for offset in range(0, len(block), 4096):
            block[offset] = 1
        time.sleep(2)

    def unserializable(event, context):
        return {"when": object()}

    def writes(event, context):
        import tempfile
        target = event.get("path")
        if event["kind"] == "open":
            with open(target, "w") as out:
                out.write("notes")
        elif event["kind"] == "mkdir":
            os.mkdir(target)
        elif event["kind"] == "rename":
            os.rename(target, event["to"])
        elif event["kind"] == "where":
            return {"root": os.path.dirname(os.path.abspath(__file__))}
        elif event["kind"] == "tempfile":
            with tempfile.NamedTemporaryFile() as scratch:
                scratch.write(b"x")
                return {"wrote": scratch.name}
        with open(__file__) as own:  # reading stays possible everywhere
            own.read(1)
        return {"wrote": target}

    PINNED = []

    def rss_mb(pid):
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS:"))

    def churn(event, context):
        # 160 MB in 64 KiB blocks (below glibc's mmap threshold, so from the heap), all freed but the
        # block allocated last, which keeps the heap's top in place: free() alone returns nothing.
        blocks = [bytes(64 * 1024) for _ in range(2560)]
        PINNED.append(bytes(64 * 1024))
        del blocks
        return {"pid": os.getpid(), "rssMb": rss_mb(os.getpid())}
    """
)

# What a handler can see of its process: its import path, where every loaded module came from, the SDK.
ISOLATION = textwrap.dedent(
    """
    import os, sys

    def imports(event, context):
        import boto3
        files = {getattr(module, "__file__", None) for module in list(sys.modules.values())}
        return {
            "path": sys.path,
            "files": sorted(file for file in files if file),
            "boto3": boto3.__version__,
        }

    def environment(event, context):
        return dict(os.environ)
    """
)

# Lambda's defined runtime environment variables (reserved, and the unreserved ones it sets itself), from
# "Using Lambda environment variables" in the Lambda developer guide.
LAMBDA_DEFINED_VARIABLES = {
    *("_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV"),
    *("AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION"),
    *("AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME"),
    *("AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"),
    *("AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "TZ"),
    *("LANG", "PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "AWS_XRAY_CONTEXT_MISSING", "AWS_XRAY_DAEMON_ADDRESS"),
}
# What the local runtime adds: the SDK talks to the local endpoint and never reads a developer's profile.
LOCAL_ENDPOINT_VARIABLES = {"AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"}


def spec(code: Path, logical: str, handler: str, timeout: int = 3, memory: int = 128) -> FunctionSpec:
    return FunctionSpec(
        logical_id=logical,
        name=f"stack-{logical}",
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:stack-{logical}",
        handler=handler,
        code_path=code,
        runtime="python3.12",
        timeout=timeout,
        memory_mb=memory,
        environment={"GREETING": "hello", "AWS_REGION": "eu-west-9"},
    )


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LambdaRunner, io.StringIO]]:
    code = tmp_path_factory.mktemp("code")
    (code / "handlers.py").write_text(HANDLERS)
    (code / "isolation.py").write_text(ISOLATION)
    # Mistakes a developer makes: importing what the functions' requirements do not declare.
    (code / "needs_yaml.py").write_text(
        "import yaml\n\ndef handler(event, context):\n    return yaml.__name__\n"
    )
    (code / "needs_moto.py").write_text(
        "from moto import mock_aws\n\ndef handler(event, context):\n    return 1\n"
    )
    functions = {
        "Echo": spec(code, "Echo", "handlers.echo"),
        "Fail": spec(code, "Fail", "handlers.fail"),
        "Slow": spec(code, "Slow", "handlers.slow", timeout=1),
        "Crash": spec(code, "Crash", "handlers.crash"),
        "Hog": spec(code, "Hog", "handlers.hog", memory=128),
        "Missing": spec(code, "Missing", "nowhere.handler"),
        "Unserializable": spec(code, "Unserializable", "handlers.unserializable"),
        "Writes": spec(code, "Writes", "handlers.writes"),
        "Churn": spec(code, "Churn", "handlers.churn", memory=1024),
        "Imports": spec(code, "Imports", "isolation.imports", memory=256),
        "Environment": spec(code, "Environment", "isolation.environment"),
        "NeedsYaml": spec(code, "NeedsYaml", "needs_yaml.handler"),
        "NeedsMoto": spec(code, "NeedsMoto", "needs_moto.handler"),
        "NoFunction": spec(code, "NoFunction", "handlers.nowhere"),
    }
    logs = io.StringIO()
    running = LambdaRunner(
        functions,
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("AKIALOCAL", "secret"),
        log_sink=logs,
        max_workers_per_function=2,
    )
    running.start()
    yield running, logs
    running.stop()


def invoke(runner: LambdaRunner, name: str, event: Any = None) -> tuple[Any, str | None]:
    result = runner.invoke(name, json.dumps(event or {}).encode())
    return json.loads(result.payload), result.function_error


def test_a_function_runs_with_the_template_environment_and_stays_warm(
    runner: tuple[LambdaRunner, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    lambda_runner, logs = runner
    first, error = invoke(lambda_runner, "Echo", {"n": 1})
    assert error is None
    assert first["event"] == {"n": 1}
    assert first["name"] == "stack-Echo"
    assert 0 < first["remainingMs"] <= 3000
    environment = first["environment"]
    assert environment["GREETING"] == "hello"
    assert environment["AWS_LAMBDA_FUNCTION_NAME"] == "stack-Echo"
    assert environment["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert environment["AWS_REGION"] == "us-east-1"  # reserved: the template cannot change it
    assert environment["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"
    assert environment["AWS_ACCESS_KEY_ID"] == "AKIALOCAL"
    assert environment["_HANDLER"] == "handlers.echo"
    assert environment["DEVELOPER_SECRET"] is None  # nothing leaks from the runtime's own environment
    second, _ = invoke(lambda_runner, "stack-Echo", {"n": 2})
    assert second["pid"] == first["pid"]
    assert second["requestId"] != first["requestId"]
    arn = "arn:aws:lambda:us-east-1:123456789012:function:stack-Echo"
    assert invoke(lambda_runner, arn, {"n": 3})[0]["pid"] == first["pid"]
    # Each invocation's output is complete before its REPORT line, in the order CloudWatch shows them.
    lines = [line.split(" RequestId: ")[0] for line in logs.getvalue().splitlines()]
    assert lines == ["Echo | init hello"] + [
        f"Echo | {text}" for n in (1, 2, 3) for text in (f"echo {n}", "REPORT")
    ]


def test_busy_functions_get_more_instances_up_to_the_limit(runner: tuple[LambdaRunner, io.StringIO]) -> None:
    lambda_runner, _ = runner
    pids: list[int] = []

    def slow_call() -> None:
        payload, error = invoke(lambda_runner, "Slow", {"seconds": 0.5})
        assert error is None
        pids.append(payload["pid"])

    threads = [threading.Thread(target=slow_call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(pids) == 3
    assert len(set(pids)) == 2  # three calls, two instances at most, one reused


def test_an_exception_comes_back_as_lambda_shapes_it(runner: tuple[LambdaRunner, io.StringIO]) -> None:
    lambda_runner, logs = runner
    payload, error = invoke(lambda_runner, "Fail")
    assert error == "Unhandled"
    assert payload["errorType"] == "BadInput"
    assert payload["errorMessage"] == "the input is bad"
    assert payload["requestId"]
    assert any("handlers.py" in frame for frame in payload["stackTrace"])
    assert not any("worker.py" in frame for frame in payload["stackTrace"])
    assert "Fail | [ERROR] BadInput: the input is bad" in logs.getvalue()


def test_a_timeout_kills_the_instance_and_reports_sandbox_timedout(
    runner: tuple[LambdaRunner, io.StringIO],
) -> None:
    lambda_runner, _ = runner
    payload, error = invoke(lambda_runner, "Slow", {"seconds": 5})
    assert error == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert payload["errorMessage"].endswith("Task timed out after 1.00 seconds")
    _, error = invoke(lambda_runner, "Slow", {"seconds": 0})
    assert error is None  # a fresh instance serves the next call


def test_a_crash_reports_the_exit_status(runner: tuple[LambdaRunner, io.StringIO]) -> None:
    payload, error = invoke(runner[0], "Crash")
    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.ExitError"
    assert payload["errorMessage"].endswith("Runtime exited with error: exit status 3")


def test_exceeding_the_memory_size_kills_the_instance(runner: tuple[LambdaRunner, io.StringIO]) -> None:
    payload, error = invoke(runner[0], "Hog")
    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.OutOfMemory"
    assert "signal: killed" in payload["errorMessage"]


def test_an_unimportable_handler_is_an_import_error(runner: tuple[LambdaRunner, io.StringIO]) -> None:
    payload, error = invoke(runner[0], "Missing")
    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert "nowhere" in payload["errorMessage"]


def test_a_handler_missing_from_its_module_is_handler_not_found(
    runner: tuple[LambdaRunner, io.StringIO],
) -> None:
    payload, error = invoke(runner[0], "NoFunction")
    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.HandlerNotFound"
    assert payload["errorMessage"] == "Handler 'nowhere' missing on module 'handlers'"


def test_a_result_that_is_not_json_is_a_marshal_error(runner: tuple[LambdaRunner, io.StringIO]) -> None:
    payload, error = invoke(runner[0], "Unserializable")
    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.MarshalError"


def test_bad_requests_fail_before_any_instance_runs(runner: tuple[LambdaRunner, io.StringIO]) -> None:
    with pytest.raises(FunctionNotFound):
        runner[0].invoke("Nobody", b"{}")
    with pytest.raises(InvalidRequestContent):
        runner[0].invoke("Echo", b"{not json")


def test_event_invocations_run_in_the_background(runner: tuple[LambdaRunner, io.StringIO]) -> None:
    done = threading.Event()
    results = []

    def finished(result: Any) -> None:
        results.append(json.loads(result.payload))
        done.set()

    runner[0].invoke_event("Echo", b'{"n": 9}', on_done=finished)
    assert done.wait(10)
    assert results[0]["event"] == {"n": 9}


def test_each_worker_process_is_named_after_its_function(runner: tuple[LambdaRunner, io.StringIO]) -> None:
    running, _ = runner
    body, error = invoke(running, "Echo", {"n": 1})
    assert error is None
    assert Path(f"/proc/{body['pid']}/comm").read_text().strip() == "fn-Echo"


def test_an_idle_worker_gives_the_memory_its_invocation_freed_back(
    runner: tuple[LambdaRunner, io.StringIO],
) -> None:
    body, error = invoke(runner[0], "Churn")
    assert error is None
    pid, held = body["pid"], body["rssMb"]
    assert held >= 140, f"the freed blocks should still be held when the handler returns: {held} MB"
    deadline = time.monotonic() + IDLE_TRIM_SECONDS + 5
    while rss_bytes(pid) // 2**20 > held - 100:
        assert time.monotonic() < deadline, (
            f"still {rss_bytes(pid) // 2**20} MB after going idle (was {held} MB)"
        )
        time.sleep(0.1)


def _stdlib_path() -> list[str]:
    """The import path of this interpreter with nothing but its standard library."""
    probe = subprocess.run(
        [sys.executable, "-I", "-S", "-c", "import json, sys; print(json.dumps(sys.path))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(probe.stdout))


def test_a_function_imports_only_its_code_its_package_and_the_runtime_sdk(
    runner: tuple[LambdaRunner, io.StringIO],
) -> None:
    body, error = invoke(runner[0], "Imports")
    assert error is None, body
    code = Path(body["path"][0])
    sdk = prepare(code).sdk_dir  # this code folder has no requirements.txt: no package of its own
    stdlib = _stdlib_path()
    assert body["path"] == [str(code), str(sdk), *stdlib]
    assert body["boto3"] == LAMBDA_RUNTIME_SDK[0].split("==")[1]  # the runtime's SDK, not the venv's
    bootstrap_files = {bootstrap.__file__, str(Path(bootstrap.__file__).with_name("sdk.py"))}
    allowed = (str(code), str(sdk), *(folder for folder in stdlib if folder))
    strays = [
        file
        for file in body["files"]
        if file not in bootstrap_files and not any(file.startswith(f"{folder}{os.sep}") for folder in allowed)
    ]
    assert strays == [], "modules loaded from outside the function's folders and the standard library"
    assert not any(file.startswith(f"{sys.prefix}{os.sep}") for file in body["files"])  # nothing of the venv


@pytest.mark.parametrize(
    ("function", "module", "missing"),
    [("NeedsYaml", "needs_yaml", "yaml"), ("NeedsMoto", "needs_moto", "moto")],
)
def test_a_package_the_functions_do_not_declare_fails_the_init_as_on_lambda(
    runner: tuple[LambdaRunner, io.StringIO], function: str, module: str, missing: str
) -> None:
    # Both are installed in the project's virtualenv; neither is in the function's package.
    lambda_runner, logs = runner
    payload, error = invoke(lambda_runner, function)
    assert error == "Unhandled"
    assert payload == {
        "errorMessage": f"Unable to import module '{module}': No module named '{missing}'",
        "errorType": "Runtime.ImportModuleError",
        "requestId": "",
        "stackTrace": [],
    }
    assert (
        f"{function} | [ERROR] Runtime.ImportModuleError: Unable to import module '{module}'"
        in logs.getvalue()
    )


def test_the_runtime_environment_does_not_leak_into_a_function(
    runner: tuple[LambdaRunner, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a developer's shell and the project's virtualenv set; a function on Lambda sees none of it.
    monkeypatch.setenv("VIRTUAL_ENV", sys.prefix)
    monkeypatch.setenv("PYTHONPATH", str(Path(bootstrap.__file__).parents[2]))
    monkeypatch.setenv("HOME", "/home/developer")
    monkeypatch.setenv("DEVELOPER_SECRET", "s3cr3t")
    environment, error = invoke(runner[0], "Environment")
    assert error is None
    assert set(environment) - {"GREETING"} - LAMBDA_DEFINED_VARIABLES - LOCAL_ENDPOINT_VARIABLES == set()
    assert "PYTHONPATH" not in environment  # Lambda's is its runtime folder; here the path is set directly
    assert ".venv" not in environment["PATH"]
    assert sys.prefix not in environment["PATH"]


def test_a_function_writes_only_to_tmp_as_on_lambda(runner: tuple[LambdaRunner, io.StringIO]) -> None:
    lambda_runner, _ = runner
    code = Path(invoke(lambda_runner, "Writes", {"kind": "where"})[0]["root"])
    scratch = Path("/tmp") / f"filepipe-runner-{os.getpid()}-{time.monotonic_ns()}"

    refused = [
        invoke(lambda_runner, "Writes", {"kind": "open", "path": "notes.txt"}),
        invoke(lambda_runner, "Writes", {"kind": "mkdir", "path": str(code / "cache")}),
        invoke(
            lambda_runner, "Writes", {"kind": "rename", "path": str(code / "handlers.py"), "to": str(scratch)}
        ),
    ]
    allowed = [
        invoke(lambda_runner, "Writes", {"kind": "open", "path": str(scratch)}),
        invoke(lambda_runner, "Writes", {"kind": "tempfile"}),
    ]

    assert [(error, payload["errorType"], payload["errorMessage"]) for payload, error in refused] == [
        ("Unhandled", "OSError", "[Errno 30] Read-only file system: 'notes.txt'"),
        ("Unhandled", "OSError", f"[Errno 30] Read-only file system: '{code / 'cache'}'"),
        ("Unhandled", "OSError", f"[Errno 30] Read-only file system: '{code / 'handlers.py'}'"),
    ]
    assert not (code / "notes.txt").exists()
    assert not (code / "cache").exists()
    assert (code / "handlers.py").exists()
    assert [error for _, error in allowed] == [None, None]
    assert scratch.read_text() == "notes"
    scratch.unlink()
