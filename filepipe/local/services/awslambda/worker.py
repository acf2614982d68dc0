"""Function workers: a zygote that preloads the SDKs and forks one warm process per function instance.

This file is the runtime's bootstrap, as ``/var/runtime/bootstrap.py`` is Lambda's. The runner starts it as
``python -I -S -B worker.py <control-fd> <folder>...``: isolated from the environment, without site-packages,
so a function imports exactly what it would on Lambda: its code folder, its package, the runtime's SDK (the
folders given, in that order), then the standard library. It imports nothing but the standard library
itself, and never the project's packages. The zygote never imports function code; each forked worker sets
the function's environment, imports its handler (the INIT phase), then serves invocations one at a time
over its own socket until it is told to stop or killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import importlib
import importlib.util
import json
import os
import select
import signal
import socket
import struct
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Imported once in the zygote so every worker starts with them already loaded (copy-on-write pages); each
# comes from the function's package or the runtime's SDK, and is skipped when the package lacks it.
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
)

# AWS SDK service models the zygote parses once (see _parse_sdk_models_once).
SDK_MODELS = ("s3", "dynamodb", "stepfunctions", "ses", "sesv2", "events", "cognito-idp", "sqs", "sns", "sts")

_HEADER = struct.Struct("!II")
# A worker idle this long after an invocation hands the memory that invocation freed back to the system.
IDLE_TRIM_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15
# On Lambda the file system is read-only but for /tmp (Lambda developer guide, "Lambda execution
# environment": /tmp is the only writable directory); /dev/null takes writes there too.
WRITABLE_ROOTS = ("/tmp", "/dev/null")  # noqa: S108 - Lambda's only writable place
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
# Audit events that change the file system, with the positions of the paths each one writes.
_WRITING_EVENTS = {
    "os.mkdir": (0,),
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.truncate": (0,),
    "os.rename": (0, 1),
    "os.link": (1,),
    "os.symlink": (1,),
    "os.chmod": (0,),
    "os.utime": (0,),
}


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


# ------------------------------------------------------------------ what Lambda's Python runtime does
class LambdaContext:
    """The context object Lambda passes a handler: the attributes handlers and Powertools read."""

    def __init__(self, spec: dict[str, Any], request_id: str, client_context: Any) -> None:
        self.function_name = str(spec["name"])
        self.function_version = "$LATEST"
        self.invoked_function_arn = str(spec["arn"])
        self.memory_limit_in_mb = int(spec["memoryMb"])
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.client_context = client_context
        self.identity = None
        self._deadline = time.monotonic() + int(spec["timeout"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class Fault(Exception):
    """An error the runtime itself reports, with Lambda's ``Runtime.*`` error type."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.trace = trace or []


def error_result(error_type: str, message: str, trace: list[str], request_id: str = "") -> dict[str, Any]:
    """The error document Lambda returns for a failed invocation or INIT phase."""
    return {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": trace}


def _function_frames(error: BaseException) -> list[str]:
    """The error's stack trace from the first frame outside this bootstrap, as Lambda shows it."""
    frames = traceback.extract_tb(error.__traceback__)
    for index, frame in enumerate(frames):
        if frame.filename != __file__:
            return traceback.format_list(frames[index:])
    return traceback.format_list(frames)


def load_handler(handler: str) -> Callable[[Any, Any], Any]:
    """Import the handler's module and find the function in it, failing the way Lambda's runtime does."""
    try:
        module_name, function_name = handler.rsplit(".", 1)
    except ValueError as error:
        raise Fault("Runtime.MalformedHandlerName", f"Bad handler '{handler}': {error}") from None
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise Fault(
            "Runtime.BuiltInModuleConflict", f"Cannot use built-in module {module_name} as a handler module"
        )
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as error:
        raise Fault(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {error}"
        ) from None
    except SyntaxError as error:
        trace = [f'  File "{error.filename}" Line {error.lineno}\n    {error.text}']
        raise Fault(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {error}", trace
        ) from None
    try:
        function: Callable[[Any, Any], Any] = getattr(module, function_name)
    except AttributeError:
        raise Fault(
            "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'"
        ) from None
    return function


def _log_error(result: dict[str, Any]) -> None:
    lines = "".join(result["stackTrace"]).rstrip()
    print(f"[ERROR] {result['errorType']}: {result['errorMessage']}", file=sys.stderr)
    if lines:
        print(f"Traceback (most recent call last):\n{lines}", file=sys.stderr)
    sys.stderr.flush()


# ------------------------------------------------------------------ the worker (a forked child)
def _within(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


# The import path's folders (the code, its package, the runtime's SDK) are Lambda's /var/task, /opt and
# /var/runtime: read-only even where this machine keeps them under /tmp.
_read_only_roots: tuple[str, ...] = ()


def _writable(path: Any) -> bool:
    resolved = os.path.realpath(os.fsdecode(path))
    return _within(resolved, WRITABLE_ROOTS) and not _within(resolved, _read_only_roots)


def read_only_file_system(event: str, args: tuple[Any, ...]) -> None:
    """An audit hook that refuses, as Lambda's read-only file system does, every write outside /tmp."""
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(flags, int) and flags & _WRITE_FLAGS) or (
            isinstance(mode, str) and any(letter in mode for letter in "wax+")
        )
        targets: tuple[Any, ...] = (path,) if writing else ()
    elif event in _WRITING_EVENTS:
        targets = tuple(args[index] for index in _WRITING_EVENTS[event])
    else:
        return
    for target in targets:
        if isinstance(target, (str, bytes, os.PathLike)) and not _writable(target):
            raise OSError(errno.EROFS, "Read-only file system", os.fsdecode(target))


def _serve(sock: socket.socket, spec: dict[str, Any]) -> None:
    os.chdir(spec["codePath"])  # LAMBDA_TASK_ROOT, the first folder of the import path
    began = time.monotonic()
    failure: dict[str, Any] | None = None
    try:
        handler = load_handler(spec["handler"])
    except Fault as fault:
        failure = error_result(fault.error_type, str(fault), fault.trace)
    except Exception as error:  # the module raised while it was imported: a settings error, say
        failure = error_result(type(error).__name__, str(error), _function_frames(error))
    if failure is not None:
        _log_error(failure)
        send_frame(sock, {"op": "init-error"}, json.dumps(failure).encode())
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
        context = LambdaContext(spec, request_id, header.get("clientContext"))
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
            failure = error_result(type(error).__name__, str(error), _function_frames(error), request_id)
            _log_error(failure)
            response = json.dumps(failure).encode()
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
    time.tzset()  # the function's TZ, not the zygote's
    if "random" in sys.modules:
        sys.modules["random"].seed()
    sock = socket.socket(fileno=worker_fd)
    # From here on, the function's code (its INIT included) writes only where Lambda lets it.
    global _read_only_roots
    _read_only_roots = tuple(os.path.realpath(folder) for folder in sys.path if os.path.isdir(folder))
    sys.addaudithook(read_only_file_system)
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


# filepipe/local, two folders up: the worker runs from its file, outside the package.
_LOCAL_RUNTIME_DIR = Path(__file__).resolve().parents[2]


def _runtime_module(name: str) -> Any:
    """A module of the local runtime's folder, loaded from its file: the project's packages stay out."""
    spec = importlib.util.spec_from_file_location(f"_runtime_{name}", _LOCAL_RUNTIME_DIR / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def zygote(control_fd: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runtime stops its workers itself on Ctrl-C
    die_with_parent()
    name_process("fn-zygote")
    for module in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    _parse_sdk_models_once()
    _runtime_module("sdk").memoize_user_agent_sanitizer()
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
    # What Lambda searches before the standard library: the code folder (LAMBDA_TASK_ROOT), the function's
    # package, the runtime's SDK. `python -I -S` left nothing else ahead of the standard library.
    sys.path[:0] = sys.argv[2:]
    zygote(int(sys.argv[1]))
