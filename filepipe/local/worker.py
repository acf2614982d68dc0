"""Function workers: a zygote that preloads the SDKs and forks one warm process per function instance.

Run as ``python -m filepipe.local.worker <control-fd>``. The zygote never imports function code; each forked
worker sets the function's environment, imports its handler (the INIT phase), then serves invocations
one at a time over its own socket until it is told to stop or killed. Nothing here imports moto.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import select
import signal
import socket
import struct
import sys
import time
import traceback
from typing import Any

from filepipe.local.sdk import memoize_user_agent_sanitizer

# Imported once in the zygote so every worker starts with them already loaded (copy-on-write pages).
PRELOAD = (
    "boto3",
    "botocore.session",
    "botocore.client",
    "pydantic",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.event_handler.openapi.params",
    "ulid",
    "filetype",
    "PIL.Image",
    "PIL.JpegImagePlugin",
    "PIL.PngImagePlugin",
    "PIL.WebPImagePlugin",
    "PIL.GifImagePlugin",
    "jwt",
    "filepipe.lambdas",
)

# AWS SDK service models the zygote parses once (see _parse_sdk_models_once).
SDK_MODELS = ("s3", "dynamodb", "stepfunctions", "ses", "sesv2", "events", "cognito-idp", "sqs", "sns", "sts")

_HEADER = struct.Struct("!II")
# A worker idle this long after an invocation hands the memory that invocation freed back to the system.
IDLE_TRIM_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15


# ------------------------------------------------------------------ framing shared with the runner
def send_frame(sock: socket.socket, header: dict[str, Any], body: bytes = b"") -> None:
    encoded = json.dumps(header).encode()
    sock.sendall(_HEADER.pack(len(encoded), len(body)) + encoded + body)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise EOFError("peer closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket) -> tuple[dict[str, Any], bytes]:
    header_size, body_size = _HEADER.unpack(_recv_exactly(sock, _HEADER.size))
    header = json.loads(_recv_exactly(sock, header_size))
    body = _recv_exactly(sock, body_size) if body_size else b""
    return header, body


def die_with_parent() -> None:
    """Have the kernel kill this process when its parent goes, however the parent ends."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return


def name_process(name: str) -> None:
    """Set the name ``ps``, ``top`` and /proc show for this process (the kernel keeps 15 bytes of it)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        return


def release_freed_memory() -> None:
    """Return the heap's free pages to the system (glibc's ``malloc_trim``; elsewhere nothing to do).

    glibc keeps freed memory for reuse, and after large frees it raises its mmap threshold so later
    large blocks (a decoded photo) come from the heap too: a worker that rendered a burst of images
    would otherwise hold their peak until it retires.
    """
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        return


def _idle_for(sock: socket.socket, seconds: float) -> bool:
    """Whether ``seconds`` pass without anything to read on ``sock``."""
    readable, _, _ = select.select([sock], [], [], seconds)
    return not readable


# ------------------------------------------------------------------ the worker (a forked child)
def _serve(sock: socket.socket, spec: dict[str, Any]) -> None:
    from filepipe.lambdas import LambdaContext, error_payload, load_handler

    code_path = spec["codePath"]
    os.chdir(code_path)
    sys.path.insert(0, code_path)
    began = time.monotonic()
    try:
        handler = load_handler(spec["handler"])
    except Exception as error:
        payload = error_payload(error)
        payload["errorType"] = (
            "Runtime.HandlerNotFound" if isinstance(error, AttributeError) else "Runtime.ImportModuleError"
        )
        payload["errorMessage"] = f"Unable to import module '{spec['handler']}': {error}"
        print(f"[ERROR] {payload['errorType']}: {payload['errorMessage']}", file=sys.stderr, flush=True)
        send_frame(sock, {"op": "init-error"}, json.dumps(payload).encode())
        return
    send_frame(sock, {"op": "ready", "initMs": (time.monotonic() - began) * 1000})

    invoked_since_trim = False
    while True:
        if invoked_since_trim and _idle_for(sock, IDLE_TRIM_SECONDS):
            release_freed_memory()
            invoked_since_trim = False
        try:
            header, body = recv_frame(sock)
        except EOFError:
            return
        if header.get("op") != "invoke":
            return
        request_id = header["requestId"]
        context = LambdaContext(
            function_name=spec["name"],
            invoked_function_arn=spec["arn"],
            memory_limit_in_mb=int(spec["memoryMb"]),
            timeout_seconds=int(spec["timeout"]),
            aws_request_id=request_id,
        )
        context.client_context = header.get("clientContext")  # type: ignore[attr-defined]
        context.identity = None  # type: ignore[attr-defined]
        os.environ["_X_AMZN_TRACE_ID"] = header.get("traceId", "")
        function_error = None
        try:
            result = handler(json.loads(body), context)
            try:
                response = json.dumps(result).encode()
            except (TypeError, ValueError) as error:
                function_error = "Unhandled"
                response = json.dumps(
                    {
                        "errorType": "Runtime.MarshalError",
                        "errorMessage": f"Unable to marshal response: {error}",
                        "requestId": request_id,
                    }
                ).encode()
        except Exception as error:
            function_error = "Unhandled"
            # Lambda's stack trace starts in the function; this loop's own frame is not part of it.
            error.__traceback__ = error.__traceback__.tb_next if error.__traceback__ else None
            payload = error_payload(error)
            payload["requestId"] = request_id
            lines = "".join(traceback.format_exception(error)).rstrip()
            print(f"[ERROR] {payload['errorType']}: {payload['errorMessage']}\n{lines}", file=sys.stderr)
            response = json.dumps(payload).encode()
        sys.stdout.flush()
        sys.stderr.flush()
        send_frame(sock, {"op": "result", "functionError": function_error}, response)
        invoked_since_trim = True


def _become_worker(
    control: socket.socket, wakeup: tuple[int, int], spec: dict[str, Any], fds: list[int]
) -> None:
    worker_fd, log_fd = fds
    signal.set_wakeup_fd(-1)
    control.close()
    for fd in wakeup:
        os.close(fd)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent()
    # Which function a worker serves, at a glance: "fn-Thumbnails" for ThumbnailsFunction.
    name_process("fn-" + str(spec.get("logicalId") or spec["name"]).removesuffix("Function"))
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - lives as long as the process
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    os.environ.clear()
    os.environ.update(spec["environment"])
    if "random" in sys.modules:
        sys.modules["random"].seed()
    sock = socket.socket(fileno=worker_fd)
    try:
        _serve(sock, spec)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


# ------------------------------------------------------------------ the zygote
def _parse_sdk_models_once() -> None:
    """Parse the SDK's JSON service models in the zygote and let every worker's SDK reuse them.

    A function's first client otherwise re-reads and parses megabytes of JSON (0.1-0.3 s per service),
    which on Lambda is hidden in the INIT phase. botocore caches this data per loader; all loaders here
    share one cache, filled before the first fork, exactly as clients of one SDK session share it.
    """
    try:
        import botocore.loaders
        import botocore.session
    except ImportError:
        return
    shared: dict[Any, Any] = {}
    original_init = botocore.loaders.Loader.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._cache = shared

    botocore.loaders.Loader.__init__ = init
    session = botocore.session.Session()
    for service in SDK_MODELS:
        with contextlib.suppress(Exception):
            session.create_client(
                service,
                region_name="us-east-1",
                aws_access_key_id="zygote",
                aws_secret_access_key="zygote",  # noqa: S106 - never used to sign anything
            )


def _exit_description(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = {signal.SIGKILL: "killed", signal.SIGSEGV: "segmentation fault", signal.SIGABRT: "aborted"}
        return f"signal: {name.get(signal.Signals(number), signal.Signals(number).name.lower())}"
    return f"exit status {os.WEXITSTATUS(status)}"


def _reap(control: socket.socket, children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        with contextlib.suppress(OSError):
            control.send(
                json.dumps({"op": "exited", "pid": pid, "status": _exit_description(status)}).encode()
            )


def zygote(control_fd: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runtime stops its workers itself on Ctrl-C
    die_with_parent()
    name_process("fn-zygote")
    for module in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    _parse_sdk_models_once()
    memoize_user_agent_sanitizer()
    control = socket.socket(fileno=control_fd)
    wakeup_read, wakeup_write = os.pipe()
    os.set_blocking(wakeup_write, False)
    signal.set_wakeup_fd(wakeup_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: set[int] = set()
    control.send(json.dumps({"op": "zygote-ready", "pid": os.getpid()}).encode())
    try:
        while True:
            readable, _, _ = select.select([control.fileno(), wakeup_read], [], [], 1.0)
            if wakeup_read in readable:
                os.read(wakeup_read, 4096)
            _reap(control, children)
            if control.fileno() not in readable:
                continue
            message, fds, _flags, _address = socket.recv_fds(control, 1 << 20, 2)
            if not message:
                return
            request = json.loads(message)
            if request.get("op") != "spawn" or len(fds) != 2:
                for fd in fds:
                    os.close(fd)
                continue
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _become_worker(control, (wakeup_read, wakeup_write), request["spec"], fds)
            for fd in fds:
                os.close(fd)
            children.add(pid)
            control.send(json.dumps({"op": "spawned", "id": request["id"], "pid": pid}).encode())
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for _ in range(len(children)):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(-1, 0)


if __name__ == "__main__":
    zygote(int(sys.argv[1]))
