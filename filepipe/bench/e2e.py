"""End-to-end figures of `filepipe local`: upload-to-READY latency, throughput and the runtime's memory.

The reference is the same file's work done by native tools alone in the same run: libvips' thumbnail set
(the settings of the thumbnails section), SHA-256 and a clamd INSTREAM scan, with no service around
them: one file at a time for the latency, one process per core for the throughput. The ratios say how
much the serverless machinery (HTTP, S3, DynamoDB, Step Functions, Lambda workers) adds to that work.

A ceiling row bounds the throughput this design can reach on this machine: the native work's CPU, plus
each AWS request a file needs (counted by the runtime) at the CPU of the cheapest request there is
(a GetItem that finds nothing, client and server), plus each function invocation at the function side's
CPU of the cheapest one (an empty batch), plus the uploaders' own CPU, spread over every core. It counts
nothing for the runner, Step Functions, the HTTP API or moving the file's bytes, so the real figure is
below it.
"""

from __future__ import annotations

import io
import math
import multiprocessing
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from filepipe.bench import BenchContext, Row, megabytes, section
from filepipe.clamd import LocalClamd
from filepipe.local.client import BrowserClient
from filepipe.local.services.awslambda.worker import IDLE_TRIM_SECONDS

SEQUENTIAL_UPLOADS = 50
CONCURRENT_UPLOADERS = 8
CONCURRENT_UPLOADS = 48
WARM_UP_UPLOADS = 3
BENCH_UPLOADS_PER_HOUR = 10_000
PHOTO_BYTES = 5 * 1024 * 1024
MEDIAN_TARGET_SECONDS = 0.5
THROUGHPUT_TARGET = 5.0
IDLE_RSS_TARGET = 500 * 1024 * 1024
NATIVE_WORKERS = 2  # one process per core of the target machine
PROBES = 200
PROBE_WARM_UP = 20
CHEAPEST_FUNCTION = "StartFunction"  # an empty SQS batch: no AWS call, just the handler's wrapping
IDLE_SAMPLE_SECONDS = 2.0
SEQUENTIAL_POLL_SECONDS = 0.1
CONCURRENT_POLL_SECONDS = 1.0  # the web UI's pace while a file is pending (FAST_POLL_MS in files.js)
_READY = re.compile(r"^filepipe local is ready \((?P<seconds>[\d.]+) s\)")
# The enforcement cost: the same batch with IAM evaluated and without, in the same run.
COST_UPLOADERS = 4
COST_UPLOADS = 24
IAM_COST_TARGET = 0.10


def sample_jpeg(target_bytes: int) -> bytes:
    """A photo-like JPEG (gradients under sensor-like noise) of at least ``target_bytes``.

    About 12 megapixels for 5 MB, the size and density of a phone photo; smaller targets scale it down.
    """
    from PIL import Image

    scale = min(1.0, math.sqrt(target_bytes / (5 * 1024 * 1024)))
    width, height = max(64, int(4000 * scale)), max(48, int(3000 * scale))
    noise = Image.effect_noise((width, height), 40)
    across = Image.linear_gradient("L").resize((width, height))
    down = Image.linear_gradient("L").rotate(90).resize((width, height))
    image = Image.merge(
        "RGB",
        (
            Image.blend(noise, across, 0.5),
            Image.blend(noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT), down, 0.5),
            across,
        ),
    )
    for quality in range(88, 100, 2):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        if buffer.tell() >= target_bytes:
            break
    return buffer.getvalue()


def _free_ports(count: int) -> list[int]:
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def _memory(pid: int, path: str, field: str) -> int:
    try:
        with open(f"/proc/{pid}/{path}") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


def _rss(pid: int) -> int:
    return _memory(pid, "status", "VmRSS:")


def _pss(pid: int) -> int:
    """Resident memory with each shared page split between the processes sharing it (forked workers)."""
    return _memory(pid, "smaps_rollup", "Pss:")


def _cpu_seconds(pid: int) -> tuple[float, str]:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return 0.0, ""
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), name


@dataclass
class _Runtime:
    process: subprocess.Popen[str]
    web_url: str
    aws_endpoint: str
    startup_seconds: float

    def status(self) -> dict[str, Any]:
        response = requests.get(f"{self.aws_endpoint}/_filepipe/status", timeout=10)
        response.raise_for_status()
        status: dict[str, Any] = response.json()
        return status

    def pids(self) -> list[int]:
        """Every process of the runtime: itself, the function zygote and workers, clamd."""
        return [int(pid) for pid in self.status()["pids"]]

    def rss(self) -> int:
        """Every process's resident memory added up: pages workers share with their zygote count again."""
        return sum(_rss(pid) for pid in self.pids())

    def pss(self) -> int:
        return sum(_pss(pid) for pid in self.pids())

    def calls(self) -> tuple[int, int]:
        """AWS requests the runtime's endpoint has answered and function invocations, so far."""
        status = self.status()
        return sum(status["requests"].values()), sum(status["invocations"].values())

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far: the runtime process itself, function workers (with the zygote), clamd."""
        totals = {"runtime": 0.0, "functions": 0.0, "clamd": 0.0}
        for pid in self.pids():
            seconds, name = _cpu_seconds(pid)
            part = "runtime" if pid == self.process.pid else "clamd" if name == "clamd" else "functions"
            totals[part] += seconds
        return totals

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _start(state_dir: Path, environment: dict[str, str] | None = None) -> _Runtime:
    web, api, aws = _free_ports(3)
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            *(sys.executable, "-m", "filepipe.cli", "local"),
            *("--port", str(web), "--api-port", str(api), "--aws-port", str(aws)),
            *("--state-dir", str(state_dir)),
            # The bench sends about a hundred uploads a minute as one user: past the template's default
            # hourly limit, which is not what it measures.
            *("--parameter", f"UserUploadsPerHour={BENCH_UPLOADS_PER_HOUR}"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(environment or {})},
    )
    ready = threading.Event()
    found: dict[str, float] = {}

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            match = _READY.match(line)
            if match:
                found["seconds"] = float(match.group("seconds"))
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    if not ready.wait(120) or "seconds" not in found:
        process.kill()
        raise RuntimeError("filepipe local did not start")
    return _Runtime(process, f"http://127.0.0.1:{web}", f"http://127.0.0.1:{aws}", found["seconds"])


def _one_upload(client: BrowserClient, photo: bytes, poll_seconds: float) -> float:
    """Seconds from the end of the browser's S3 POST to the READY record (its ``updatedAt``).

    The record's own timestamp makes the figure exact without polling the API so often that the polls
    themselves load the machine; the clock is the same one, this is all one host.
    """
    ticket = client.request_upload("photo.jpg", len(photo), "image/jpeg")
    response = client.post_file(ticket, photo, "image/jpeg")
    if response.status_code != 204:
        raise RuntimeError(f"upload refused: {response.status_code} {response.text[:300]}")
    uploaded = time.time()
    record = client.wait_final(ticket.file_id, timeout=60, interval=poll_seconds)
    if record["status"] != "READY":
        raise RuntimeError(f"upload ended {record['status']}: {record.get('error')}")
    ready = datetime.fromisoformat(str(record["updatedAt"]).replace("Z", "+00:00")).timestamp()
    return ready - uploaded


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def _native_work(path: str, clamd_address: str, count: int) -> list[float]:
    """Seconds per file for ``count`` passes of the pipeline's native work on the file at ``path``."""
    import hashlib

    from filepipe.bench.thumbnails import _pyvips
    from scan.clamd import ClamdClient, ReplyKind
    from thumbnails.quality import REDUCING_GAP, WEBP_METHOD, WEBP_QUALITY

    render = _pyvips(REDUCING_GAP, WEBP_QUALITY, WEBP_METHOD)
    scanner = ClamdClient(clamd_address, timeout=30)
    data = Path(path).read_bytes()
    chunks = [data[start : start + 256 * 1024] for start in range(0, len(data), 256 * 1024)]
    seconds = []
    for _ in range(count):
        began = time.perf_counter()
        hashlib.sha256(data).hexdigest()
        if scanner.instream(chunks).kind is not ReplyKind.CLEAN:
            raise RuntimeError("the reference scan did not come back clean")
        render(path)
        seconds.append(time.perf_counter() - began)
    return seconds


@dataclass(frozen=True)
class _Native:
    median: float  # seconds per file, one at a time
    throughput: float  # files per second, one process per core
    cpu_per_file: float  # seconds of CPU per file, one at a time: this process and clamd


def _native_reference(photo: bytes, workdir: Path) -> _Native:
    path = workdir / "e2e-photo.jpg"
    path.write_bytes(photo)
    with LocalClamd(workdir / "e2e-clamd", max_bytes=64 * 1024 * 1024) as clamd:
        _native_work(str(path), clamd.address, WARM_UP_UPLOADS)
        assert clamd.pid is not None
        cpu_before = time.process_time() + _cpu_seconds(clamd.pid)[0]
        latencies = _native_work(str(path), clamd.address, SEQUENTIAL_UPLOADS)
        cpu_per_file = (time.process_time() + _cpu_seconds(clamd.pid)[0] - cpu_before) / SEQUENTIAL_UPLOADS
        per_worker = CONCURRENT_UPLOADS // NATIVE_WORKERS
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=NATIVE_WORKERS, mp_context=spawn) as pool:
            list(
                pool.map(
                    _native_work,
                    [str(path)] * NATIVE_WORKERS,
                    [clamd.address] * NATIVE_WORKERS,
                    [1] * NATIVE_WORKERS,
                )
            )
            began = time.perf_counter()
            futures = [
                pool.submit(_native_work, str(path), clamd.address, per_worker) for _ in range(NATIVE_WORKERS)
            ]
            done = sum(len(future.result()) for future in futures)
            wall = time.perf_counter() - began
    return _Native(statistics.median(latencies), done / wall, cpu_per_file)


def _local_client(runtime: _Runtime, service: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=runtime.aws_endpoint,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id="bench",
        aws_secret_access_key="bench",  # noqa: S106 - the local endpoint takes any credentials
    )


def _cpu_per_call(call: Callable[[], object], cpu: Callable[[], float]) -> float:
    """CPU seconds per ``call``, as ``cpu`` counts them, less what those processes spend idle meanwhile."""
    for _ in range(PROBE_WARM_UP):
        call()
    idle_began, idle_cpu = time.perf_counter(), cpu()
    time.sleep(IDLE_SAMPLE_SECONDS)  # the pollers' and timers' own CPU is not the calls' cost
    idle_rate = (cpu() - idle_cpu) / (time.perf_counter() - idle_began)
    began, before = time.perf_counter(), cpu()
    for _ in range(PROBES):
        call()
    used = cpu() - before
    return max(0.0, used - idle_rate * (time.perf_counter() - began)) / PROBES


def _info(case: str, value: str) -> Row:
    """A figure reported without a reference or a target."""
    return Row("e2e", case, value, "-", "-", "-", None)


def _cheapest_request_cpu(runtime: _Runtime) -> float:
    """CPU of the cheapest AWS request, this client's and the runtime's: a GetItem that finds nothing."""
    client = _local_client(runtime, "dynamodb")
    table = client.list_tables()["TableNames"][0]
    key = {"pk": {"S": "OWNER#nobody"}, "sk": {"S": "FILE#nothing"}}
    return _cpu_per_call(
        lambda: client.get_item(TableName=table, Key=key),
        lambda: time.process_time() + _cpu_seconds(runtime.process.pid)[0],
    )


def _cheapest_invocation_cpu(runtime: _Runtime) -> float:
    """The function side's CPU of the cheapest invocation: the start function given an empty batch.

    Only the worker is counted (its decorators, logging and metrics), not the runner or HTTP around it.
    """
    client = _local_client(runtime, "lambda")
    return _cpu_per_call(
        lambda: client.invoke(FunctionName=CHEAPEST_FUNCTION, Payload=b'{"Records": []}'),
        lambda: runtime.cpu_seconds()["functions"],
    )


def _cpu_per_file(state_dir: Path, photo: bytes, environment: dict[str, str]) -> float:
    """CPU seconds per file (runtime, functions, clamd) of a runtime started with ``environment``.

    The same warm-up and the same concurrent batch for every runtime measured, so two runs compare.
    """
    from filepipe.runtime_state import DEMO_EMAIL, DEMO_PASSWORD

    runtime = _start(state_dir, environment)
    try:
        client = BrowserClient(runtime.web_url)
        client.sign_in(DEMO_EMAIL, DEMO_PASSWORD)
        for _ in range(WARM_UP_UPLOADS):
            _one_upload(client, photo, SEQUENTIAL_POLL_SECONDS)
        uploaders = []
        for _ in range(COST_UPLOADERS):
            uploader = BrowserClient(runtime.web_url)
            uploader.id_token = client.id_token
            uploaders.append(uploader)
        before = sum(runtime.cpu_seconds().values())
        with ThreadPoolExecutor(max_workers=COST_UPLOADERS) as pool:
            per_uploader = COST_UPLOADS // COST_UPLOADERS

            def upload_several(uploader: BrowserClient) -> int:
                for _ in range(per_uploader):
                    _one_upload(uploader, photo, CONCURRENT_POLL_SECONDS)
                return per_uploader

            futures = [pool.submit(upload_several, uploader) for uploader in uploaders]
            files = sum(future.result() for future in futures)
        return (sum(runtime.cpu_seconds().values()) - before) / files
    finally:
        runtime.stop()


def _enforcement_cost(photo: bytes, workdir: Path) -> Row:
    """What evaluating IAM on every request adds to a file's CPU, measured in this run, off then on."""
    from filepipe.local.enforcement.enforcer import SWITCH_VARIABLE

    with tempfile.TemporaryDirectory(prefix="e2e-iam-", dir=workdir) as state:
        off = _cpu_per_file(Path(state) / "off", photo, {SWITCH_VARIABLE: "off"})
        on = _cpu_per_file(Path(state) / "on", photo, {SWITCH_VARIABLE: "on"})
    return Row(
        "e2e",
        f"CPU per file, IAM evaluated on every request, {COST_UPLOADS} x {len(photo) / 2**20:.1f} MB JPEG",
        f"{on:.3f} s",
        f"{off:.3f} s (FILEPIPE_LOCAL_IAM=off)",
        f"{on / off:.2f}x",
        f"<= {1 + IAM_COST_TARGET:.2f}x",
        on <= off * (1 + IAM_COST_TARGET),
    )


@section("e2e", "filepipe local end to end: 5 MB JPEG upload-to-READY latency, throughput, memory")
def run(context: BenchContext) -> list[Row]:
    from filepipe.runtime_state import DEMO_EMAIL, DEMO_PASSWORD

    photo = sample_jpeg(PHOTO_BYTES)
    with tempfile.TemporaryDirectory(prefix="e2e-", dir=context.workdir) as state:
        runtime = _start(Path(state))
        try:
            time.sleep(1.0)  # let start-up settle before calling it idle
            idle_rss = runtime.rss()
            client = BrowserClient(runtime.web_url)
            client.sign_in(DEMO_EMAIL, DEMO_PASSWORD)
            cold = _one_upload(client, photo, SEQUENTIAL_POLL_SECONDS)
            for _ in range(WARM_UP_UPLOADS):
                _one_upload(client, photo, SEQUENTIAL_POLL_SECONDS)
            latencies = [
                _one_upload(client, photo, SEQUENTIAL_POLL_SECONDS) for _ in range(SEQUENTIAL_UPLOADS)
            ]

            uploaders = []
            for _ in range(CONCURRENT_UPLOADERS):
                uploader = BrowserClient(runtime.web_url)
                uploader.id_token = client.id_token
                uploaders.append(uploader)
            _one_upload(uploaders[0], photo, SEQUENTIAL_POLL_SECONDS)
            cpu_before = runtime.cpu_seconds()
            calls_before = runtime.calls()
            client_cpu_before = time.process_time()
            began = time.perf_counter()
            with ThreadPoolExecutor(max_workers=CONCURRENT_UPLOADERS) as pool:
                per_uploader = CONCURRENT_UPLOADS // CONCURRENT_UPLOADERS

                def upload_several(uploader: BrowserClient) -> list[float]:
                    return [
                        _one_upload(uploader, photo, CONCURRENT_POLL_SECONDS) for _ in range(per_uploader)
                    ]

                futures = [pool.submit(upload_several, uploader) for uploader in uploaders]
                concurrent = [latency for future in futures for latency in future.result()]
            wall = time.perf_counter() - began
            client_cpu = time.process_time() - client_cpu_before
            cpu_after = runtime.cpu_seconds()
            calls_after = runtime.calls()
            cheapest_request = _cheapest_request_cpu(runtime)
            cheapest_invocation = _cheapest_invocation_cpu(runtime)
            time.sleep(IDLE_TRIM_SECONDS + 1.0)  # every worker has been idle long enough to trim its heap
            settled_pss = runtime.pss()
            busy_rss = runtime.rss()
            busy_pss = runtime.pss()
        finally:
            runtime.stop()

    enforcement = _enforcement_cost(photo, context.workdir)
    native = _native_reference(photo, context.workdir)
    median = statistics.median(latencies)
    p95 = _percentile(latencies, 0.95)
    throughput = len(concurrent) / wall
    size = f"{len(photo) / 2**20:.1f} MB JPEG"
    requests_per_file = (calls_after[0] - calls_before[0]) / len(concurrent)
    invocations_per_file = (calls_after[1] - calls_before[1]) / len(concurrent)
    cores = os.cpu_count() or 1
    floor_cpu = (
        native.cpu_per_file
        + requests_per_file * cheapest_request
        + invocations_per_file * cheapest_invocation
        + client_cpu / len(concurrent)
    )
    ceiling = cores / floor_cpu
    return [
        Row(
            "e2e",
            "start-up to ready",
            f"{runtime.startup_seconds:.2f} s",
            "-",
            "-",
            "< 5 s",
            runtime.startup_seconds < 5,
        ),
        Row(
            "e2e",
            "idle RSS, all processes",
            megabytes(idle_rss),
            "-",
            "-",
            "<= 500 MB",
            idle_rss <= IDLE_RSS_TARGET,
        ),
        _info(f"first upload (cold functions), {size}", f"{cold:.2f} s"),
        Row(
            "e2e",
            f"upload-to-READY median, {SEQUENTIAL_UPLOADS} x {size}",
            f"{median:.3f} s",
            f"{native.median:.3f} s (native tools alone)",
            f"{median / native.median:.2f}x",
            f"<= {MEDIAN_TARGET_SECONDS} s",
            median <= MEDIAN_TARGET_SECONDS,
        ),
        _info(f"upload-to-READY p95, {SEQUENTIAL_UPLOADS} x {size}", f"{p95:.3f} s"),
        Row(
            "e2e",
            f"throughput, {CONCURRENT_UPLOADERS} concurrent uploaders, {len(concurrent)} files",
            f"{throughput:.1f} files/s",
            f"{native.throughput:.1f} files/s (native tools, {NATIVE_WORKERS} processes)",
            f"{throughput / native.throughput:.2f}x",
            f">= {THROUGHPUT_TARGET:.0f} files/s",
            throughput >= THROUGHPUT_TARGET,
        ),
        _info(
            f"ceiling on {cores} cores: native work {native.cpu_per_file * 1000:.0f} ms + "
            f"{requests_per_file:.1f} AWS requests x {cheapest_request * 1000:.1f} ms + "
            f"{invocations_per_file:.1f} invocations x {cheapest_invocation * 1000:.1f} ms + "
            f"uploaders {client_cpu / len(concurrent) * 1000:.0f} ms of CPU per file",
            f"{ceiling:.1f} files/s",
        ),
        _info(
            f"upload-to-READY median under {CONCURRENT_UPLOADERS} uploaders",
            f"{statistics.median(concurrent):.3f} s",
        ),
        _info("RSS after the concurrent run, all processes", megabytes(busy_rss)),
        _info("the same without counting shared pages twice (PSS)", megabytes(busy_pss)),
        _info("PSS once every worker has been idle a few seconds", megabytes(settled_pss)),
        *(
            _info(
                f"CPU per file in the concurrent run: {part}",
                f"{(cpu_after[part] - cpu_before[part]) / len(concurrent):.3f} s",
            )
            for part in ("runtime", "functions", "clamd")
        ),
        enforcement,
    ]
