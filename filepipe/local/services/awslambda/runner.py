"""The Lambda runner: warm worker processes per function with the template's timeout, memory, environment."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import filepipe.local.services.awslambda.worker as bootstrap
from filepipe.local.services.awslambda.invoke import InvokeResult, timeout_payload
from filepipe.local.services.awslambda.packages import DEFAULT_CACHE, FunctionPackages, prepare
from filepipe.local.services.awslambda.worker import recv_frame, send_frame
from filepipe.local.stack.model import FunctionSpec

log = logging.getLogger("filepipe.local.services.awslambda.runner")

# Invoke's payload limits: a synchronous request must be smaller than 6 MiB, an asynchronous one at most
# 1 MiB (256 KiB until 2025); a response may have 100 bytes more than 6 MiB.
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024
MAX_EVENT_PAYLOAD = 1024 * 1024
MAX_RESPONSE_PAYLOAD = MAX_SYNC_PAYLOAD + 100
INIT_TIMEOUT_SECONDS = 10.0
# Lambda retries a failed asynchronous invocation twice; the waits are shortened for a local run.
EVENT_RETRY_DELAYS = (1.0, 2.0)
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# Lambda's PATH for Python functions, less the folders of its own image (/var/lang/bin, /opt/bin).
FUNCTION_PATH = "/usr/local/bin:/usr/bin:/bin"


class InvalidRequestContent(ValueError):
    """The invocation payload is not JSON (Lambda answers 400 InvalidRequestContentException)."""


class FunctionNotFound(KeyError):
    """No function of the stack has this name or ARN."""


class Throttled(RuntimeError):
    """Every instance the function may have stayed busy (Lambda answers 429 TooManyRequestsException)."""


class RequestTooLarge(RuntimeError):
    """The payload is over Invoke's limit (Lambda answers 413 RequestEntityTooLargeException)."""


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


def _peak_rss_mb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        return 0
    return 0


class _Zygote:
    """The preloaded parent of the workers of one code folder; spawns them and reports how they exit.

    It runs the runtime's bootstrap isolated (``-I``: no PYTHON* variables, no user site), without
    site-packages (``-S``: nothing of the project's virtualenv) and writing no bytecode (``-B``), with the
    function's folders ahead of the standard library and an environment of its own.
    """

    def __init__(self, python: str, packages: FunctionPackages) -> None:
        self._python = python
        self.packages = packages
        self._lock = threading.Lock()
        self._spawn_lock = threading.Lock()
        self._replies: dict[int, int] = {}
        self._exits: dict[int, str] = {}
        self._changed = threading.Condition(self._lock)
        self._ids = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._ready = threading.Event()
        self.pid: int | None = None

    def start(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and bootstrap
            [
                *(self._python, "-I", "-S", "-B", bootstrap.__file__, str(child.fileno())),
                *self.packages.import_path,
            ],
            pass_fds=[child.fileno()],
            stdin=subprocess.DEVNULL,
            cwd=self.packages.code_dir,
            env={"PATH": FUNCTION_PATH, "LANG": "C.UTF-8", "TZ": "UTC"},
        )
        child.close()
        self._control = parent
        self._ready.clear()
        threading.Thread(target=self._read, args=(parent,), name="zygote-reader", daemon=True).start()

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _read(self, control: socket.socket) -> None:
        while True:
            try:
                message = control.recv(65536)
            except OSError:
                message = b""
            if not message:
                with self._changed:
                    self._changed.notify_all()
                return
            reply = json.loads(message)
            with self._changed:
                if reply["op"] == "zygote-ready":
                    self.pid = int(reply["pid"])
                    self._ready.set()
                elif reply["op"] == "spawned":
                    self._replies[int(reply["id"])] = int(reply["pid"])
                elif reply["op"] == "exited":
                    self._exits[int(reply["pid"])] = str(reply["status"])
                self._changed.notify_all()

    def spawn(self, spec: dict[str, Any], worker_fd: int, log_fd: int) -> int:
        with self._spawn_lock:
            if not self.alive:
                self.start()
            if not self._ready.wait(timeout=60):
                raise RuntimeError("the function worker zygote did not start")
            with self._lock:
                self._ids += 1
                request_id = self._ids
            assert self._control is not None
            message = json.dumps({"op": "spawn", "id": request_id, "spec": spec}).encode()
            socket.send_fds(self._control, [message], [worker_fd, log_fd])
        with self._changed:
            self._changed.wait_for(lambda: request_id in self._replies or not self.alive, timeout=30)
            if request_id not in self._replies:
                raise RuntimeError("the function worker zygote did not fork a worker")
            return self._replies.pop(request_id)

    def exit_status(self, pid: int, timeout: float) -> str | None:
        with self._changed:
            self._changed.wait_for(lambda: pid in self._exits or not self.alive, timeout=timeout)
            return self._exits.pop(pid, None)

    def stop(self) -> None:
        if self._control is not None:
            with contextlib.suppress(OSError):
                self._control.shutdown(socket.SHUT_RDWR)
            self._control.close()
        if self._process is not None:
            try:
                self._process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=1)


@dataclass
class _Worker:
    spec: FunctionSpec
    pid: int
    sock: socket.socket
    log_fd: int
    init_ms: float
    last_used: float = field(default_factory=time.monotonic)
    cold: bool = True
    busy: bool = False
    oom: bool = False

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.sock.close()


@dataclass
class _InitFailure:
    payload: bytes
    init_ms: float
    log_fd: int


class _Pool:
    """The warm instances of one function: reuse an idle one, start another while below the limit."""

    def __init__(self, spec: FunctionSpec, limit: int) -> None:
        self.spec = spec
        self.limit = limit
        self.idle: deque[_Worker] = deque()
        self.workers: set[int] = set()
        self.starting = 0
        self.condition = threading.Condition()

    def take(self, timeout: float) -> _Worker | None:
        """An idle worker, or None when the caller may start one; waits while the pool is full."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while True:
                if self.idle:
                    worker = self.idle.pop()
                    worker.busy = True
                    return worker
                if len(self.workers) + self.starting < self.limit:
                    self.starting += 1
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self.spec.logical_id}: no worker became free")
                self.condition.wait(timeout=remaining)

    def started(self, worker: _Worker | None) -> None:
        with self.condition:
            self.starting -= 1
            if worker is not None:
                worker.busy = True
                self.workers.add(worker.pid)
            self.condition.notify()

    def give_back(self, worker: _Worker) -> None:
        with self.condition:
            worker.busy = False
            worker.last_used = time.monotonic()
            self.idle.append(worker)
            self.condition.notify()

    def discard(self, worker: _Worker) -> None:
        worker.kill()
        with self.condition:
            self.workers.discard(worker.pid)
            with contextlib.suppress(ValueError):
                self.idle.remove(worker)
            self.condition.notify()


class _LogPump:
    """Copies every worker's stdout and stderr to one stream, each line prefixed with its function.

    A worker flushes its output before it answers, so `drain` can copy an invocation's lines before the
    runner writes its REPORT line, in the order CloudWatch shows them.
    """

    def __init__(self, sink: TextIO) -> None:
        self._sink = sink
        self._selector = selectors.DefaultSelector()
        self._lock = threading.RLock()
        self._prefixes: dict[int, str] = {}
        self._partial: dict[int, bytes] = {}
        self._wake_read, self._wake_write = os.pipe()
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="function-logs", daemon=True)
        self._thread.start()

    def write(self, prefix: str, text: str) -> None:
        with self._lock:
            for line in text.splitlines():
                self._sink.write(f"{prefix} {line}\n")
            self._sink.flush()

    def add(self, fd: int, prefix: str) -> None:
        os.set_blocking(fd, False)
        with self._lock:
            self._prefixes[fd] = prefix
        self._selector.register(fd, selectors.EVENT_READ, prefix)
        os.write(self._wake_write, b"x")

    def drain(self, fd: int) -> None:
        """Copy all a worker has written so far, its last unfinished line included."""
        with self._lock:
            prefix = self._prefixes.get(fd)
            if prefix is None:
                return  # the worker is gone and its pipe already closed
            while self._copy_available(fd, prefix):
                pass
            rest = self._partial.pop(fd, b"")
            if rest:
                self.write(prefix, rest.decode(errors="replace"))

    def _copy_available(self, fd: int, prefix: str) -> bool:
        """Copy one read's complete lines; False once nothing more is waiting or the pipe has ended."""
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return False
        except OSError:
            chunk = b""
        if not chunk:
            self._close(fd, prefix)
            return False
        data = self._partial.pop(fd, b"") + chunk
        complete, _, rest = data.rpartition(b"\n")
        if rest:
            self._partial[fd] = rest
        if complete:
            self.write(prefix, complete.decode(errors="replace"))
        return True

    def _close(self, fd: int, prefix: str) -> None:
        self._selector.unregister(fd)
        del self._prefixes[fd]
        rest = self._partial.pop(fd, b"")
        if rest:
            self.write(prefix, rest.decode(errors="replace"))
        os.close(fd)

    def _run(self) -> None:
        while not self._stopped:
            for key, _ in self._selector.select(timeout=1.0):
                fd = int(key.fd)
                if key.data is None:
                    os.read(fd, 4096)
                    continue
                with self._lock:
                    if fd in self._prefixes:
                        self._copy_available(fd, key.data)

    def stop(self) -> None:
        self._stopped = True
        os.write(self._wake_write, b"x")
        self._thread.join(timeout=1)


class LambdaRunner:
    """Runs the stack's functions in warm worker processes, as Lambda runs them."""

    def __init__(
        self,
        functions: Mapping[str, FunctionSpec],
        *,
        region: str,
        endpoint_url: str,
        credentials: tuple[str, str] | Callable[[FunctionSpec], tuple[str, str, str]],
        log_sink: TextIO | None = None,
        max_workers_per_function: int = 4,
        keep_warm_seconds: float = 600.0,
        extra_idle_seconds: float = 60.0,
        python: str = sys.executable,
        package_cache: Path = DEFAULT_CACHE,
    ) -> None:
        self._region = region
        self._endpoint_url = endpoint_url
        self._credentials = credentials
        self._max_workers = max_workers_per_function
        self._python = python
        self._package_cache = package_cache
        self._functions: dict[str, FunctionSpec] = {}
        self._pools: dict[str, _Pool] = {}
        # One zygote per code folder: functions sharing a CodeUri share its package, as `sam build` makes it.
        self._zygotes: dict[Path, _Zygote] = {}
        self._started = False
        self.add_functions(functions)
        self._workers: dict[int, _Worker] = {}
        self._workers_lock = threading.Lock()
        self._keep_warm = keep_warm_seconds
        self._extra_idle = extra_idle_seconds
        self._logs = _LogPump(log_sink or sys.stdout)
        self._events = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lambda-event")
        self._stopped = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name="lambda-watchdog", daemon=True)
        self._invocations: Counter[str] = Counter()
        self._invocations_lock = threading.Lock()

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._started = True
        for zygote in self._zygotes.values():
            zygote.start()
        self._watchdog.start()

    def stop(self) -> None:
        self._stopped.set()
        self._events.shutdown(wait=False, cancel_futures=True)
        with self._workers_lock:
            workers = list(self._workers.values())
            self._workers.clear()
        for worker in workers:
            worker.kill()
        for zygote in self._zygotes.values():
            zygote.stop()
        self._logs.stop()

    def invocation_counts(self) -> dict[str, int]:
        """Invocations so far by function (logical id), synchronous and asynchronous alike."""
        with self._invocations_lock:
            return dict(sorted(self._invocations.items()))

    def pids(self) -> list[int]:
        """Every process the runner owns (zygotes and workers)."""
        with self._workers_lock:
            pids = list(self._workers)
        zygotes = [z.pid for z in self._zygotes.values() if z.pid and z.alive]
        return zygotes + pids

    def add_functions(self, functions: Mapping[str, FunctionSpec]) -> None:
        """Make functions invocable; each gets at most its reserved concurrency in instances.

        A code folder seen for the first time gets its package (installed now unless cached) and its zygote.
        """
        for spec in functions.values():
            if spec.code_path not in self._zygotes:
                packages = prepare(spec.code_path, self._python, self._package_cache)
                zygote = self._zygotes[spec.code_path] = _Zygote(self._python, packages)
                if self._started:
                    zygote.start()
        for logical, spec in functions.items():
            limit = self._max_workers
            if spec.reserved_concurrency is not None:
                limit = max(1, min(limit, spec.reserved_concurrency))
            self._functions[logical] = spec
            self._pools[logical] = _Pool(spec, limit)

    # ------------------------------------------------------------ lookup
    def resolve(self, name_or_arn: str) -> FunctionSpec:
        name = name_or_arn.split(":function:")[-1].split(":")[0]
        for spec in self._functions.values():
            if name in (spec.name, spec.logical_id):
                return spec
        raise FunctionNotFound(name_or_arn)

    def knows(self, name_or_arn: str) -> bool:
        try:
            self.resolve(name_or_arn)
        except FunctionNotFound:
            return False
        return True

    def environment(self, spec: FunctionSpec) -> dict[str, str]:
        """The process environment Lambda gives the function (reserved variables win over the template's)."""
        # Each function its own role's session (a callable issues it), or one fixed key for every function.
        if callable(self._credentials):
            access_key, secret_key, session_token = self._credentials(spec)
        else:
            (access_key, secret_key), session_token = self._credentials, ""
        # Nothing of the runtime's own environment: Lambda's fixed values, and no HOME, as on Lambda.
        base = {"PATH": FUNCTION_PATH, "LANG": "C.UTF-8", "TZ": "UTC"}
        reserved = {
            "AWS_REGION": self._region,
            "AWS_DEFAULT_REGION": self._region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{uuid.uuid4().hex}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "LAMBDA_TASK_ROOT": str(spec.code_path),
            "_HANDLER": spec.handler,
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key,
            "AWS_ENDPOINT_URL": self._endpoint_url,
            # A developer's own AWS profile must never leak into a local function.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
        environment = {**base, **spec.environment, **reserved}
        environment.pop("AWS_SESSION_TOKEN", None)  # reserved: only Lambda's own session token
        if session_token:
            environment["AWS_SESSION_TOKEN"] = session_token
        return environment

    # ------------------------------------------------------------ workers
    def _start_worker(self, spec: FunctionSpec) -> _Worker | _InitFailure:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        log_read, log_write = os.pipe()
        worker_spec = {
            "logicalId": spec.logical_id,
            "name": spec.name,
            "arn": spec.arn,
            "handler": spec.handler,
            "codePath": str(spec.code_path),
            "memoryMb": spec.memory_mb,
            "timeout": spec.timeout,
            "environment": self.environment(spec),
        }
        try:
            pid = self._zygotes[spec.code_path].spawn(worker_spec, theirs.fileno(), log_write)
        finally:
            theirs.close()
            os.close(log_write)
        self._logs.add(log_read, f"{spec.logical_id} |")
        ours.settimeout(INIT_TIMEOUT_SECONDS)
        began = time.monotonic()
        try:
            header, body = recv_frame(ours)
        except (TimeoutError, EOFError, OSError) as error:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            ours.close()
            init_ms = (time.monotonic() - began) * 1000
            reason = "init timed out" if isinstance(error, TimeoutError) else "runtime exited during init"
            payload = {"errorType": "Runtime.Unknown", "errorMessage": f"Unknown application error: {reason}"}
            return _InitFailure(json.dumps(payload).encode(), init_ms, log_read)
        if header.get("op") != "ready":
            ours.close()
            return _InitFailure(body, (time.monotonic() - began) * 1000, log_read)
        worker = _Worker(spec=spec, pid=pid, sock=ours, log_fd=log_read, init_ms=float(header["initMs"]))
        with self._workers_lock:
            self._workers[pid] = worker
        return worker

    def _forget(self, pool: _Pool, worker: _Worker) -> None:
        pool.discard(worker)
        with self._workers_lock:
            self._workers.pop(worker.pid, None)

    # ------------------------------------------------------------ invoking
    def invoke(self, name_or_arn: str, payload: bytes, client_context: str | None = None) -> InvokeResult:
        """A synchronous (RequestResponse) invocation; function errors come back in Lambda's shape."""
        spec = self.resolve(name_or_arn)
        if len(payload) >= MAX_SYNC_PAYLOAD:
            raise RequestTooLarge(
                f"Request must be smaller than {MAX_SYNC_PAYLOAD} bytes for the InvokeFunction operation"
            )
        try:
            json.loads(payload or b"{}")
        except ValueError as error:
            raise InvalidRequestContent(f"Could not parse request body into json: {error}") from error
        with self._invocations_lock:
            self._invocations[spec.logical_id] += 1
        pool = self._pools[spec.logical_id]
        try:
            worker = pool.take(timeout=max(spec.timeout, 30))
        except TimeoutError as error:
            raise Throttled(f"Rate Exceeded: {spec.name} has no free instance") from error
        init_ms: float | None = None
        if worker is None:
            started = self._start_worker(spec)
            if isinstance(started, _InitFailure):
                pool.started(None)
                self._report(spec, started.log_fd, str(uuid.uuid4()), 0.0, 0, started.init_ms)
                return InvokeResult(started.payload, "Unhandled")
            pool.started(started)
            worker = started
            init_ms = worker.init_ms
        return self._run(pool, worker, payload or b"{}", client_context, init_ms)

    def _run(
        self, pool: _Pool, worker: _Worker, payload: bytes, client_context: str | None, init_ms: float | None
    ) -> InvokeResult:
        spec = worker.spec
        request_id = str(uuid.uuid4())
        began = time.monotonic()
        header = {"op": "invoke", "requestId": request_id, "clientContext": client_context}
        try:
            worker.sock.settimeout(spec.timeout)
            send_frame(worker.sock, header, payload)
            reply, body = recv_frame(worker.sock)
        except TimeoutError:
            self._forget(pool, worker)
            self._report(
                spec, worker.log_fd, request_id, time.monotonic() - began, 0, init_ms, status="timeout"
            )
            return InvokeResult(json.dumps(timeout_payload(request_id, spec.timeout)).encode(), "Unhandled")
        except (EOFError, OSError):
            self._forget(pool, worker)
            zygote = self._zygotes[spec.code_path]
            status = zygote.exit_status(worker.pid, timeout=1.0) or "signal: killed"
            error_type = "Runtime.OutOfMemory" if worker.oom else "Runtime.ExitError"
            self._report(
                spec, worker.log_fd, request_id, time.monotonic() - began, 0, init_ms, status=error_type
            )
            body = json.dumps(
                {
                    "errorType": error_type,
                    "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {status}",
                }
            ).encode()
            return InvokeResult(body, "Unhandled")
        duration = time.monotonic() - began
        self._report(spec, worker.log_fd, request_id, duration, _peak_rss_mb(worker.pid), init_ms)
        worker.cold = False
        pool.give_back(worker)
        if len(body) > MAX_RESPONSE_PAYLOAD:
            body = json.dumps(
                {
                    "errorType": "Function.ResponseSizeTooLarge",
                    "errorMessage": "Response payload size exceeded maximum allowed payload size "
                    f"({MAX_RESPONSE_PAYLOAD} bytes).",
                }
            ).encode()
            return InvokeResult(body, "Unhandled")
        return InvokeResult(body, reply.get("functionError"))

    def invoke_event(
        self, name_or_arn: str, payload: bytes, on_done: Callable[[InvokeResult], None] | None = None
    ) -> None:
        """An asynchronous (Event) invocation: queued, retried twice on a function error."""
        spec = self.resolve(name_or_arn)
        if len(payload) > MAX_EVENT_PAYLOAD:
            raise RequestTooLarge(
                f"{len(payload)} byte payload is too large for the Event invocation type "
                f"(limit {MAX_EVENT_PAYLOAD} bytes)"
            )
        json.loads(payload or b"{}")

        def run() -> None:
            result = self.invoke(spec.logical_id, payload)
            for delay in EVENT_RETRY_DELAYS:
                if result.function_error is None or self._stopped.wait(delay):
                    break
                result = self.invoke(spec.logical_id, payload)
            if result.function_error is not None:
                self._logs.write(
                    f"{spec.logical_id} |", "asynchronous invocation failed after 2 retries; event dropped"
                )
            if on_done is not None:
                on_done(result)

        self._events.submit(run)

    def _report(
        self,
        spec: FunctionSpec,
        log_fd: int,
        request_id: str,
        seconds: float,
        max_memory_mb: int,
        init_ms: float | None,
        status: str | None = None,
    ) -> None:
        duration_ms = seconds * 1000
        line = (
            f"REPORT RequestId: {request_id} Duration: {duration_ms:.2f} ms "
            f"Billed Duration: {int(duration_ms) + 1} ms Memory Size: {spec.memory_mb} MB "
            f"Max Memory Used: {max_memory_mb} MB"
        )
        if init_ms is not None:
            line += f" Init Duration: {init_ms:.2f} ms"
        if status is not None:
            line += f" Status: {status}"
        self._logs.drain(log_fd)
        self._logs.write(f"{spec.logical_id} |", line)

    # ------------------------------------------------------------ memory limit and idle instances
    def _watch(self) -> None:
        last_sweep = time.monotonic()
        while not self._stopped.wait(0.1):
            with self._workers_lock:
                workers = list(self._workers.values())
            for worker in workers:
                if worker.busy and _rss_bytes(worker.pid) > worker.spec.memory_mb * 1024 * 1024:
                    worker.oom = True
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(worker.pid, signal.SIGKILL)
            if time.monotonic() - last_sweep >= 5:
                last_sweep = time.monotonic()
                self._retire_idle()

    def _retire_idle(self) -> None:
        """Stop instances idle too long: extra ones after a minute, the last one after keep_warm."""
        now = time.monotonic()
        for pool in self._pools.values():
            retire: list[_Worker] = []
            with pool.condition:
                for worker in sorted(pool.idle, key=lambda w: w.last_used):
                    remaining = len(pool.idle) - len(retire)
                    limit = self._extra_idle if remaining > 1 else self._keep_warm
                    if now - worker.last_used > limit:
                        retire.append(worker)
                for worker in retire:
                    pool.idle.remove(worker)
            for worker in retire:
                self._forget(pool, worker)
