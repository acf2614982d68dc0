"""Where the local runtime plugs into the moto server it runs in-process.

moto leaves gaps this module closes: EventBridge cannot deliver to Step Functions or Lambda (nor retry,
nor use DLQs), Step Functions emits no execution status change events, and an SQS queue with an event
source mapping invokes the function itself (through Docker). It also spares work moto repeats for
nothing: a boto3 client per task, an ASL parse per execution, a directory scan per request, a JSONPath
parser per path, a copy of an object's bytes per read, the alias search per serialized member. Each
hook is installed once per process, before the server takes requests.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from filepipe.local.services.awslambda.invoke import InvokeResult
from filepipe.local.services.events.delivery import RuleTarget, execution_status_event

RuleSink = Callable[[RuleTarget, dict[str, Any]], None]
# Objects up to this size stay in memory in moto (its default spills anything over ~5 MB to disk).
KEY_BUFFER_BYTES = 64 * 1024 * 1024
# All objects together keep at most this much in memory (MiB); later ones go to disk as moto's large ones do.
OBJECT_MEMORY_VARIABLE = "FILEPIPE_LOCAL_OBJECT_MEMORY_MB"
DEFAULT_OBJECT_MEMORY_MB = 512


class InvokeRunner(Protocol):
    """What the interpreter hook needs of the Lambda runner."""

    def knows(self, name_or_arn: str) -> bool: ...

    def invoke(self, name_or_arn: str, payload: bytes, client_context: str | None = None) -> InvokeResult: ...


StatusSink = Callable[[dict[str, Any]], None]
# Decides lambda:InvokeFunction of a function (name or ARN) in a region for a role (None: unchecked);
# raises the botocore ClientError of Lambda's refusal.
AuthorizeInvoke = Callable[[str | None, str, str], None]


class StateMachineRoles(Protocol):
    """What the interpreter hook needs to act as a state machine's role (filepipe.local.iam.sessions)."""

    def __call__(self, role_arn: str | None, function: str, region: str) -> None: ...

    def credentials(self, role_arn: str) -> Any: ...


_rule_sink: RuleSink | None = None
_status_sink: StatusSink | None = None


def _defer_package_init(name: str) -> None:
    """Register package ``name`` without running its ``__init__`` until an attribute of it is used.

    moto's Step Functions interpreter imports ``moto.batch.utils`` for one enum; ``moto.batch`` itself
    imports all of moto's EC2 (seconds of start-up, ~130 MB). Submodules still import normally.
    """
    import importlib.util
    import sys

    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def load_on_use(attribute: str) -> Any:
        del module.__dict__["__getattr__"]
        loader.exec_module(module)
        return getattr(module, attribute)

    module.__getattr__ = load_on_use  # type: ignore[method-assign]
    sys.modules[name] = module


def configure_moto(port: int, managed_policy_arns: Iterable[str]) -> None:
    """moto settings for a server on ``port``; must run before moto handles its first request."""
    _object_memory.budget = object_memory_budget(os.environ)
    os.environ["MOTO_PORT"] = str(port)
    # Global CORS would answer every origin with "*"; S3 applies the buckets' own CORS rules instead.
    os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"
    # moto keeps an object larger than this in a temporary file on disk, written once and read back on
    # every GET and copy; an upload's photo (a few MB) stays in memory instead.
    os.environ.setdefault("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(KEY_BUFFER_BYTES))
    import moto.settings

    # moto.settings reads the variable when first imported, which may have happened already.
    moto.settings.DISABLE_GLOBAL_CORS = True
    werkzeug_app = sys.modules.get("moto.moto_server.werkzeug_app")
    if werkzeug_app is not None:
        werkzeug_app.DISABLE_GLOBAL_CORS = True  # type: ignore[attr-defined]
    _defer_package_init("moto.batch")
    from moto.core.config import default_user_config

    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    default_user_config["lambda"] = {"use_docker": False}
    default_user_config["iam"] = {"load_aws_managed_policies": True}
    _load_only_managed_policies(set(managed_policy_arns))


def _load_only_managed_policies(arns: set[str]) -> None:
    """moto loads all ~1500 AWS managed policies into every IAM backend (seconds); keep the ones used."""
    import moto.iam.models as iam_models

    data: str = iam_models.aws_managed_policies_data
    decoder = json.JSONDecoder()
    kept = {}
    for name in sorted({arn.rsplit("/", 1)[-1] for arn in arns}):
        # Decode just this policy's entry of the 4.7 MB document (a top-level "Name": {...} member).
        marker = data.find(f'"{name}":')
        if marker == -1:
            continue
        start = marker + len(name) + 3
        while data[start].isspace():
            start += 1
        kept[name], _ = decoder.raw_decode(data, start)
    iam_models.aws_managed_policies_data = json.dumps(kept)


# ------------------------------------------------------------------ EventBridge delivery
def _send_to_targets(rule: Any, event: dict[str, Any], transform_input: bool = True) -> None:
    """Replaces moto's Rule.send_to_targets: match, then hand each target to the runtime's delivery."""
    if _rule_sink is None or rule.state != "ENABLED":
        return
    # S3 publishes to the default bus only; moto offers its events to the rules of every bus.
    if event.get("source") == "aws.s3" and rule.event_bus_name != "default":
        return
    if not rule.event_pattern.matches_event(event):
        return
    from filepipe.local.services.events.delivery import normalize_event

    normalized = normalize_event(event)
    event["id"] = normalized["id"]  # the same event keeps one id across all the rules it matches
    for target in rule.targets:
        _rule_sink(RuleTarget(rule.name, rule.arn, dict(target)), normalized)


def install_event_delivery(sink: RuleSink) -> None:
    global _rule_sink
    from moto.events.models import Rule

    _rule_sink = sink
    Rule.send_to_targets = _send_to_targets  # type: ignore[method-assign,assignment]


def put_event(account: str, region: str, event: dict[str, Any]) -> None:
    """Put an AWS service event on the default bus, as the service itself would."""
    from moto.events.models import events_backends

    backend = events_backends[account][region]
    for rule in list(backend.event_buses["default"].rules.values()):
        rule.send_to_targets(event)  # type: ignore[arg-type]


# ------------------------------------------------------------------ Step Functions
def _status_event(execution: Any, status: str) -> dict[str, Any]:
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    from filepipe.local.services.stepfunctions.redrive import event_fields

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
    event["detail"].update(event_fields(execution))
    return event


def install_execution_events(sink: StatusSink) -> None:
    """Emit "Step Functions Execution Status Change" for RUNNING and every final status."""
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

    Execution.start = start  # type: ignore[method-assign]
    BaseExecutionWorkerCommunication.terminated = terminated  # type: ignore[method-assign]


# ------------------------------------------------------------------ Step Functions redrive
def install_redrive() -> Callable[[], None]:
    """RedriveExecution, which moto lacks, and the redrive members of DescribeExecution and ListExecutions.

    The redrive itself is filepipe.local.services.stepfunctions.redrive (which lists the interpreter
    internals it uses); a redriven execution's RUNNING status change goes to install_execution_events' sink.
    Relies on moto's ``StepFunctionResponse`` (``describe_execution`` and ``list_executions`` returning an
    ``ActionResult`` of a dict, ``_get_param``, ``stepfunction_backend``), on dispatch by method name through
    ``moto.core.responses.method_names_from_class``, on ``StepFunctionsParserBackend.describe_execution``
    and on ``moto.core.exceptions.AWSError``. moto also leaves out a TIMED_OUT execution's stopDate, which
    AWS gives. Returns the function that removes the patch.
    """
    import moto.core.responses as core_responses
    from moto.core.exceptions import AWSError
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    from filepipe.local.services.stepfunctions import redrive as stepfunctions_redrive

    original_describe = StepFunctionResponse.describe_execution
    original_list = StepFunctionResponse.list_executions

    def parser_backend(response: Any) -> Any:
        from moto.stepfunctions.parser.models import StepFunctionsParserBackend

        backend = response.stepfunction_backend
        return backend if isinstance(backend, StepFunctionsParserBackend) else None

    def emit_running(execution: Any) -> None:
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
        # The local runtime caches each response class's methods; the class just gained or lost one.
        cache_clear = getattr(core_responses.method_names_from_class, "cache_clear", None)
        if cache_clear is not None:
            cache_clear()

    StepFunctionResponse.redrive_execution = redrive_execution  # type: ignore[attr-defined]
    StepFunctionResponse.describe_execution = describe_execution  # type: ignore[method-assign]
    StepFunctionResponse.list_executions = list_executions  # type: ignore[method-assign]
    forget_method_names()

    def uninstall() -> None:
        del StepFunctionResponse.redrive_execution  # type: ignore[attr-defined]
        StepFunctionResponse.describe_execution = original_describe  # type: ignore[method-assign]
        StepFunctionResponse.list_executions = original_list  # type: ignore[method-assign]
        forget_method_names()

    return uninstall


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


def install_definition_cache(cache_dir: Path | None = None) -> None:
    """Parse each definition once: moto parses the ASL again (antlr, ~0.3 s) for every execution.

    Evaluation keeps its state in each execution's environment, but every execution still gets a private
    copy of the parsed program, so that executions never share a component object. The copy is unpickled
    from the program's pickle (~1 ms) rather than deep-copied (~8 ms, all in Python, per execution). With
    ``cache_dir`` the pickle also outlives the process, keyed by the definition and moto's version, so
    the next start-up skips the parse too.
    """
    import hashlib
    import pickle
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

    AmazonStateLanguageParser.parse = staticmethod(parse)  # type: ignore[method-assign]


_loader: Any = None


def sdk_data_loader() -> Any:
    """One SDK data loader for moto and the runtime's own clients: each service model is parsed once."""
    global _loader
    if _loader is None:
        import botocore.loaders

        _loader = botocore.loaders.create_loader()
    return _loader


def _lazy_url_builders() -> None:
    """Compile a werkzeug rule's URL builders when a URL is first built, not with the rule.

    moto's server makes one Flask app per service with hundreds of URL rules, and werkzeug compiles two
    builder functions per rule up front (about half a second of start-up). Only matching is used here.
    """
    from werkzeug.routing.rules import Rule

    compile_builder = Rule._compile_builder
    if getattr(compile_builder, "lazy", False):
        return

    def lazy(self: Rule, append_unknown: bool = True) -> Callable[..., Any]:
        compiled: list[Callable[..., Any]] = []

        def build(rule: Rule, *args: Any, **kwargs: Any) -> Any:
            if not compiled:
                compiled.append(compile_builder(rule, append_unknown))
            return compiled[0](rule, *args, **kwargs)

        return build

    lazy.lazy = True  # type: ignore[attr-defined]
    Rule._compile_builder = lazy  # type: ignore[method-assign]


def install_request_caches() -> None:
    """Remember lookups moto repeats on every request and every state: they cost CPU, not answers.

    The server lists moto's package directories on disk to find the backend of each request and scans
    the SDK's data directories for each service model it loads; every JSON-protocol request lists its
    response class's methods with ``inspect``; the interpreter builds a new JSONPath parser (ply tables
    included) for each path it evaluates; a copied object's MD5 (its ETag) is computed again; every
    read of an object copies its bytes; the response serializer searches each member's aliases anew.
    """
    import functools

    import moto.backends
    import moto.core.responses
    import moto.core.utils
    import moto.stepfunctions.parser.asl.component.common.path.result_path as result_path
    import moto.stepfunctions.parser.asl.utils.json_path as json_path

    # moto makes a new SDK data loader, which rescans the SDK's data directories, for every model it loads.
    loader = sdk_data_loader()
    moto.core.utils.create_loader = lambda: loader

    _lazy_url_builders()
    modules = tuple(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: modules
    # Parsed JSONPath expressions are immutable; evaluating one never changes it.
    json_path.parse = functools.lru_cache(maxsize=4096)(json_path.parse)
    result_path.parse = functools.lru_cache(maxsize=4096)(result_path.parse)
    # A class's methods do not change while the server runs.
    moto.core.responses.method_names_from_class = functools.cache(moto.core.utils.method_names_from_class)
    _reuse_copied_etags()
    _share_object_bytes()
    _cache_serializer_aliases()


def object_memory_budget(environ: Mapping[str, str]) -> int:
    """The bytes stored objects may keep in memory: FILEPIPE_LOCAL_OBJECT_MEMORY_MB MiB, 512 when unset."""
    text = environ.get(OBJECT_MEMORY_VARIABLE)
    if text is None:
        return DEFAULT_OBJECT_MEMORY_MB * 2**20
    try:
        megabytes = int(text)
    except ValueError:
        megabytes = -1
    if megabytes < 0:
        raise ValueError(
            f"{OBJECT_MEMORY_VARIABLE} must be a whole number of MiB, 0 or more "
            f"(0 keeps every object on disk), got {text!r}"
        )
    return megabytes * 2**20


class ObjectMemory:
    """The bytes of stored objects held in memory, counted once however many objects share them.

    Releases come from ``FakeKey.dispose`` (moto's key store disposes every version it drops: deletes,
    overwrites, deleted versions, a reset) and from a finalizer on the object's buffer, which may run
    inside garbage collection at any point, even within ``hold`` on the same thread. So a release only
    queues the bytes and settles the count when the lock is free; every ``hold`` settles first.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._lock = threading.Lock()
        # id of the bytes -> (the bytes, how many objects hold them); the reference keeps the id unique.
        self._held: dict[int, tuple[bytes, int]] = {}
        self._total = 0
        self._released: deque[int] = deque()

    def hold(self, data: bytes) -> int | None:
        """Count ``data`` for one more object: the token to release it with, or None past the budget."""
        identity = id(data)
        with self._lock:
            self._settle()
            entry = self._held.get(identity)
            if entry is not None:
                self._held[identity] = (data, entry[1] + 1)
                return identity
            if self._total + len(data) > self.budget:
                return None
            self._held[identity] = (data, 1)
            self._total += len(data)
        return identity

    def release(self, identity: int) -> None:
        self._released.append(identity)
        if self._lock.acquire(blocking=False):
            try:
                self._settle()
            finally:
                self._lock.release()

    @property
    def held_bytes(self) -> int:
        with self._lock:
            self._settle()
            return self._total

    def _settle(self) -> None:
        while self._released:
            identity = self._released.popleft()
            data, holders = self._held[identity]
            if holders > 1:
                self._held[identity] = (data, holders - 1)
            else:
                del self._held[identity]
                self._total -= len(data)


_object_memory = ObjectMemory(DEFAULT_OBJECT_MEMORY_MB * 2**20)


def object_memory() -> ObjectMemory:
    """The process's account of in-memory object bytes; ``configure_moto`` sets its budget."""
    return _object_memory


def _share_object_bytes() -> None:
    """An object held in memory hands out its bytes without copying them (moto copies per GET and copy).

    moto stores each object in a spooled temporary file: writing copies the bytes into it, every read
    of the value copies them out again, the ETag reads them a third time. Bytes are immutable; an
    in-memory buffer can wrap the stored bytes and return them as they are. A copy (CopyObject passes
    the source's value to the new key) thus wraps the very bytes of its source and costs no memory.
    New bytes stay in memory while all objects' bytes fit the budget of ``object_memory()``; past it
    they go to a file on disk, as moto does with objects larger than its buffer. Objects on disk take
    moto's own path.
    """
    import io
    import weakref

    import moto.s3.models as s3_models
    from moto.s3.models import FakeKey

    current: Any = FakeKey.__dict__["value"]
    if getattr(current.fget, "shares", False):
        return
    read_value = current.fget
    write_value = current.fset
    current_etag: Any = FakeKey.__dict__["etag"]
    compute_etag = current_etag.fget
    dispose_key = FakeKey.dispose
    memory = object_memory()

    def in_memory(key: Any) -> Any:
        buffer = key._value_buffer
        return None if getattr(buffer, "_rolled", True) else buffer._file

    def release_held(key: Any) -> None:
        # Before the buffer closes: until then its bytes, and so their id, stay alive.
        finalizer = getattr(getattr(key, "_value_buffer", None), "filepipe_release", None)
        if finalizer is not None:
            finalizer()

    def value(self: Any) -> bytes:
        with self.lock:
            stored = in_memory(self)
            if stored is not None:
                return bytes(stored.getvalue())
        return bytes(read_value(self))

    def set_value(self: Any, new_value: bytes | str) -> None:
        buffer = self._value_buffer
        release_held(self)
        if in_memory(self) is None or not isinstance(new_value, bytes) or len(new_value) > buffer._max_size:
            write_value(self, new_value)
            return
        token = memory.hold(new_value)
        if token is None:
            buffer._file = io.BytesIO()
            buffer.rollover()
            write_value(self, new_value)
            return
        # What write() leaves behind (the bytes, the position after them), minus the copy.
        shared = io.BytesIO(new_value)
        shared.seek(0, io.SEEK_END)
        buffer._file = shared
        release = weakref.finalize(shared, memory.release, token)
        release.atexit = False
        buffer.filepipe_release = release
        self.contentsize = len(new_value)

    def etag(self: Any) -> str:
        if self._etag is None:
            stored = in_memory(self)
            if stored is not None:
                self._etag = s3_models.md5_hash(stored.getvalue()).hexdigest()
        return str(compute_etag(self))

    def dispose(self: Any, garbage: bool = False) -> None:
        release_held(self)
        dispose_key(self, garbage)

    value.shares = True  # type: ignore[attr-defined]
    FakeKey.value = property(value, set_value)  # type: ignore[method-assign,assignment]
    FakeKey.etag = property(etag)  # type: ignore[method-assign,assignment]
    FakeKey.dispose = dispose  # type: ignore[method-assign]


_ALIAS_CACHE_ENTRIES = 4096


def _cache_serializer_aliases() -> None:
    """Remember which attribute names moto's response serializer tries for a plain dict's member.

    For every member of every structure it serializes (each DynamoDB attribute value has ten), moto
    builds a context and six alias providers, transforms the member's name again and tries each
    alias. For a dict without response transformers the names depend only on the member's name and
    its shape (and the shape's parent), so they are worked out once; looking them up is what moto does.
    """
    import moto.core.serialize as serialize

    member_value = serialize.ResponseSerializer.__dict__["get_value"]
    if getattr(member_value, "cached", False):
        return
    pickers = (serialize.AttributePicker, serialize.XFormedAttributePicker)
    missing = serialize.MISSING
    cache: dict[tuple[Any, ...], tuple[str, ...]] = {}

    def fast(serializer: Any, value: Any) -> bool:
        """Whether moto would pick this value's members by the cacheable names."""
        picker = serializer._value_picker
        return (
            type(value) is dict
            and type(picker) in pickers
            and not picker.response_transformers
            and picker.alias_providers is serialize.DEFAULT_ALIAS_PROVIDERS
        )

    def pick(serializer: Any, value: dict[str, Any], key: str, shape: Any) -> Any:
        picker = serializer._value_picker
        cache_key = (type(picker), key, shape, getattr(shape, "parent", None))
        names = cache.get(cache_key)
        if names is None:
            context = serialize.AttributePickerContext(obj=value, key=key, shape=shape)
            names = tuple(picker.get_possible_keys(context))
            if len(cache) >= _ALIAS_CACHE_ENTRIES:
                cache.clear()
            cache[cache_key] = names
        for name in names:
            # moto's get_value: a dotted name is a path, any other name a key of the dict.
            found = serialize.get_value(value, name, missing) if "." in name else value.get(name, missing)
            if found is not missing:
                return found
        return None

    def get_value(self: Any, value: Any, key: str, shape: Any) -> Any:
        if not fast(self, value):
            return member_value(self, value, key, shape)
        return pick(self, value, key, shape)

    serialize_structure = serialize.ResponseSerializer.__dict__["_serialize_type_structure"]
    serialize_member = serialize.ResponseSerializer.__dict__["_serialize_structure_member"]

    def serialize_type_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        # moto's loop over the members, minus two calls per member (most members of most values,
        # such as nine of a DynamoDB attribute value's ten, are absent).
        if type(self)._serialize_structure_member is not serialize_member or not fast(self, value):
            serialize_structure(self, serialized, value, shape, key)
            return
        wrapper: Any = self.MAP_TYPE() if key else serialized
        for member_key, member_shape in shape.members.items():
            member_shape.parent = shape
            found = pick(self, value, member_key, member_shape)
            if found is not None:
                self._serialize(wrapper, found, member_shape, member_key)
        if key:
            self._default_serialize(serialized, wrapper, shape, key)

    get_value.cached = True  # type: ignore[attr-defined]
    get_value.original = member_value  # type: ignore[attr-defined]
    serialize_type_structure.original = serialize_structure  # type: ignore[attr-defined]
    serialize.ResponseSerializer.get_value = get_value  # type: ignore[method-assign]
    serialize.ResponseSerializer._serialize_type_structure = serialize_type_structure  # type: ignore[method-assign]


_copy_source = threading.local()


def _reuse_copied_etags() -> None:
    """A copy of a single-part object has the source's bytes, hence its MD5: moto need not hash them again.

    (A multipart source's ETag is not an MD5 of the bytes; moto derives the copy's ETag from the parts.)
    """
    from moto.s3.models import S3Backend

    if getattr(S3Backend.copy_object, "reuses_etag", False):
        return
    copy_object = S3Backend.copy_object
    put_object = S3Backend.put_object

    def copy_with_etag(self: Any, src_key: Any, *args: Any, **kwargs: Any) -> Any:
        known = getattr(src_key, "_etag", None) if not src_key.multipart else None
        _copy_source.etag = known
        try:
            return copy_object(self, src_key, *args, **kwargs)
        finally:
            _copy_source.etag = None

    def put_with_etag(self: Any, *args: Any, **kwargs: Any) -> Any:
        new_key = put_object(self, *args, **kwargs)
        known = getattr(_copy_source, "etag", None)
        if known is not None and getattr(new_key, "_etag", "") is None:
            new_key._etag = known
        return new_key

    copy_with_etag.reuses_etag = True  # type: ignore[attr-defined]
    S3Backend.copy_object = copy_with_etag  # type: ignore[method-assign]
    S3Backend.put_object = put_with_etag  # type: ignore[method-assign]


def leave_bucket_policies_to_iam() -> None:
    """moto's own bucket-policy check stands aside: the runtime's IAM evaluation applies bucket policies.

    moto internal relied on: ``moto.s3.models.FakeBucket.get_permission``, which moto's S3 responses ask
    before object requests and DeleteObjects; it evaluates the bucket policy without the caller and fails
    every statement with a condition, so a TLS-only Deny would refuse every request with an empty 403.
    """
    from moto.iam.access_control import PermissionResult
    from moto.s3.models import FakeBucket

    def get_permission(self: Any, action: str, resource: str) -> Any:
        return PermissionResult.NEUTRAL

    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


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
    from urllib.parse import unquote

    from botocore.awsrequest import AWSResponse

    from filepipe.local.endpoint import RawBody

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
            return AWSResponse(request.url, 403, denied, RawBody(body))
        except Throttled as error:
            body = json.dumps({"Type": "User", "message": str(error)}).encode()
            throttled = {"Content-Type": "application/json", "x-amzn-ErrorType": "TooManyRequestsException"}
            return AWSResponse(request.url, 429, throttled, RawBody(body))
        except RequestTooLarge as error:
            body = json.dumps({"Type": "User", "message": str(error)}).encode()
            too_large = {
                "Content-Type": "application/json",
                "x-amzn-ErrorType": "RequestEntityTooLargeException",
            }
            return AWSResponse(request.url, 413, too_large, RawBody(body))
        headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}
        if result.function_error:
            headers["X-Amz-Function-Error"] = result.function_error
        return AWSResponse(request.url, 200, headers, RawBody(result.payload))

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
    import io
    import uuid

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


def install_interpreter_clients(
    endpoint_url: str, runner: InvokeRunner | None = None, roles: StateMachineRoles | None = None
) -> None:
    """One boto3 client per (region, service, role) for the interpreter's tasks instead of one per task.

    With ``runner``, the tasks' Lambda invocations reach it in-process rather than over HTTP, and
    ``lambda:invoke`` tasks of the stack's functions skip the SDK altogether. With ``roles``, tasks act
    as the state machine's role (moto's ``StateCredentials.role_arn``), as on AWS: their SDK calls sign
    with its session and their invocations are decided for it.
    """
    import importlib

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

    base = "moto.stepfunctions.parser.asl.component.state.exec"
    for name in (
        "moto.stepfunctions.parser.asl.utils.boto_client",
        f"{base}.state_task.lambda_eval_utils",
        f"{base}.state_task.service.state_task_service_aws_sdk",
        f"{base}.state_task.service.state_task_service_dynamodb",
        f"{base}.state_task.service.state_task_service_events",
        f"{base}.state_task.service.state_task_service_sfn",
        f"{base}.state_task.service.state_task_service_sns",
        f"{base}.state_task.service.state_task_service_sqs",
    ):
        module = importlib.import_module(name)
        module.boto_client_for = boto_client_for  # type: ignore[attr-defined]
    if runner is not None:
        lambda_eval_utils: Any = importlib.import_module(f"{base}.state_task.lambda_eval_utils")
        current = lambda_eval_utils._invoke_lambda_function
        through_sdk = getattr(current, "through_sdk", current)  # installed twice: wrap the original
        direct = _invoke_task_directly(runner, through_sdk, roles)
        direct.through_sdk = through_sdk  # type: ignore[attr-defined]
        lambda_eval_utils._invoke_lambda_function = direct


# ------------------------------------------------------------------ SQS event source mappings
def detach_queue_invocations(account: str, region: str, queue_arns: Iterable[str]) -> None:
    """Stop moto invoking mapped functions when messages arrive; the runtime's pollers do it instead."""
    from moto.sqs.models import sqs_backends

    wanted = set(queue_arns)
    for queue in sqs_backends[account][region].queues.values():
        if queue.queue_arn in wanted:
            queue.lambda_event_source_mappings.clear()


# ------------------------------------------------------------------ reading moto state
def sent_emails(account: str, region: str) -> list[dict[str, Any]]:
    """Everything SES accepted, oldest first, in one shape for plain, raw and templated messages."""
    import email
    from email.policy import default as default_policy

    from moto.ses.models import ses_backends

    messages = []
    for message in list(ses_backends[account][region].sent_messages):
        entry: dict[str, Any] = {"id": message.id, "from": message.source}
        if hasattr(message, "raw_data"):
            parsed = email.message_from_string(message.raw_data, policy=default_policy)
            body = parsed.get_body(preferencelist=("plain", "html"))
            entry.update(
                to=list(message.destinations),
                subject=str(parsed.get("Subject", "")),
                body=body.get_content() if body is not None else "",
            )
        elif hasattr(message, "template"):
            destinations = message.destinations
            entry.update(
                to=destinations.get("ToAddresses", [])
                if isinstance(destinations, dict)
                else list(destinations),
                subject=f"(template {message.template})",
                body=str(message.template_data),
            )
        else:
            destinations = message.destinations
            entry.update(
                to=[*destinations.get("ToAddresses", []), *destinations.get("CcAddresses", [])],
                subject=message.subject,
                body=message.body,
            )
        messages.append(entry)
    return messages


class TokenRevocationError(Exception):
    """Cognito's answer to a RevokeToken it refuses: its error code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def revoke_refresh_token(account: str, client_id: str, token: str, client_secret: str | None = None) -> None:
    """Cognito's RevokeToken, which moto lacks: a refresh token and the access tokens it issued stop working.

    As OAuth's revocation (RFC 7009) answers, a token that is unknown or already revoked is not an error.
    """
    import base64

    from moto.cognitoidp.models import cognitoidp_backends

    if not token or not client_id:
        raise TokenRevocationError("InvalidParameterException", "Token and ClientId are required.")
    if token.count(".") == 2:
        raise TokenRevocationError("UnsupportedTokenTypeException", "Only refresh tokens can be revoked.")
    for backend in list(cognitoidp_backends[account].values()):
        for pool in list(backend.user_pools.values()):
            client = pool.clients.get(client_id)
            if client is None:
                continue
            if client.generate_secret and client_secret != client.secret:
                raise TokenRevocationError("UnauthorizedException", "Client authentication failed.")
            if not client.extended_config.get("EnableTokenRevocation", True):
                raise TokenRevocationError(
                    "UnsupportedOperationException", "Token revocation is not enabled for this client."
                )
            issued = pool.refresh_tokens.get(token)
            if issued is None:
                return
            issued_to, _username, origin_jti = issued
            if issued_to != client_id:
                raise TokenRevocationError(
                    "UnauthorizedException", "The token was not issued to this client."
                )
            pool.refresh_tokens[token] = None  # moto's mark of a signed-out refresh token
            for access_token in list(pool.access_tokens):
                payload = access_token.split(".")[1]
                claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
                if claims.get("origin_jti") == origin_jti:
                    pool.access_tokens.pop(access_token, None)
            return
    raise TokenRevocationError("UnauthorizedException", f"No app client {client_id}.")


def access_key_secret(access_key: str) -> str | None:
    """The secret of an access key created through moto's IAM API, if any."""
    from moto.iam.models import iam_backends

    for account in list(iam_backends.values()):
        for backend in list(account.values()):
            key = backend.access_keys.get(access_key)
            if key is not None:
                return str(key.secret_access_key)
    return None


# ------------------------------------------------------------------ limits moto does not hold as AWS does
def install_lambda_concurrency_quota(quota: int) -> Callable[[], None]:
    """Refuse reservations as Lambda does in an account with ``quota`` concurrent executions.

    moto checks only when MOTO_LAMBDA_CONCURRENCY_QUOTA is set, and then always keeps 100 unreserved; Lambda
    keeps 100, or the whole quota when it is lower (a new account's). Relies on moto's
    ``LambdaBackend.put_function_concurrency``, ``.get_function``, ``.list_functions`` and each function's
    ``reserved_concurrency``. Returns the function that removes the patch.
    """
    from moto.awslambda.exceptions import InvalidParameterValueException
    from moto.awslambda.models import LambdaBackend

    from filepipe.local.services.awslambda.quotas import LambdaRefusal, check_reservation

    original = LambdaBackend.put_function_concurrency

    def put_function_concurrency(self: Any, function_name: str, reserved_concurrency: str) -> str:
        function = self.get_function(function_name)
        others = sum(
            int(other.reserved_concurrency or 0)
            for other in self.list_functions()
            if other.function_name != function.function_name
        )
        try:
            check_reservation(quota, others, int(reserved_concurrency))
        except LambdaRefusal as refusal:
            raise InvalidParameterValueException(str(refusal)) from refusal
        result: str = original(self, function_name, reserved_concurrency)
        return result

    LambdaBackend.put_function_concurrency = put_function_concurrency  # type: ignore[method-assign]

    def uninstall() -> None:
        LambdaBackend.put_function_concurrency = original  # type: ignore[method-assign]

    return uninstall


# SES's mailbox simulator: its addresses take mail in the sandbox without being verified.
_SES_SIMULATOR_DOMAIN = "simulator.amazonses.com"


def _raw_recipients(destinations: list[str] | None, raw_data: str) -> list[str]:
    """A raw message's recipients: the ones given, else its To, Cc and Bcc headers (as SES reads them)."""
    import email
    from email.utils import getaddresses

    if destinations:
        return list(destinations)
    message = email.message_from_string(raw_data)
    headers = [str(message[name]) for name in ("To", "Cc", "Bcc") if message[name]]
    return [address for _, address in getaddresses(headers) if address]


def install_ses_sandbox(production_access: bool) -> Callable[[], None]:
    """SES's identity check on every send: a verified sender and, in the sandbox, verified recipients.

    SES refuses with MessageRejected naming every identity that failed; moto checks the sender only, with
    a message of its own. SESv2's sends reach the same backend methods. Relies on moto's ``SESBackend``
    ``send_email``, ``send_templated_email``, ``send_bulk_templated_email``, ``send_raw_email``,
    ``_is_verified_address``, ``rejected_messages_count`` and ``region_name``, and on
    ``moto.ses.exceptions.MessageRejectedError``. Returns the function that removes the patch.
    """
    import inspect
    from email.utils import parseaddr

    from moto.ses.exceptions import MessageRejectedError
    from moto.ses.models import SESBackend

    def recipients(name: str, arguments: dict[str, Any]) -> list[str]:
        destinations = arguments["destinations"]
        if name == "send_raw_email":
            return _raw_recipients(destinations, arguments["raw_data"])
        if name == "send_bulk_templated_email":
            groups = [entry.get("Destination", {}) for entry in destinations]
        else:
            groups = [destinations]
        return [address for group in groups for addresses in group.values() for address in addresses]

    def check(backend: Any, name: str, arguments: dict[str, Any]) -> None:
        source = arguments.get("source")
        if source is None and name == "send_raw_email":
            import email

            source = email.message_from_string(arguments["raw_data"]).get("From")
        failed = [source] if source and not backend._is_verified_address(source) else []
        if not production_access:
            failed += [
                address
                for address in recipients(name, arguments)
                if not parseaddr(address)[1].lower().endswith("@" + _SES_SIMULATOR_DOMAIN)
                and not backend._is_verified_address(address)
            ]
        if failed:
            backend.rejected_messages_count += 1
            raise MessageRejectedError(
                "Email address is not verified. The following identities failed the check in region "
                f"{backend.region_name.upper()}: {', '.join(dict.fromkeys(failed))}"
            )

    originals: dict[str, Any] = {}
    for name in ("send_email", "send_templated_email", "send_bulk_templated_email", "send_raw_email"):
        original = getattr(SESBackend, name)
        originals[name] = original
        signature = inspect.signature(original)

        def send(self: Any, *args: Any, _name: str = name, _signature: Any = signature, **kwargs: Any) -> Any:
            arguments = _signature.bind(self, *args, **kwargs).arguments
            check(self, _name, arguments)
            return originals[_name](self, *args, **kwargs)

        setattr(SESBackend, name, send)

    def uninstall() -> None:
        for name, original in originals.items():
            setattr(SESBackend, name, original)

    return uninstall


def install_states_error_names() -> Callable[[], None]:
    """A ``States.`` error passed on by a Parallel branch, a Map iteration or a Fail state keeps its name.

    moto names such an error with ``CustomErrorName``, which refuses names that start with ``States.``: a
    task in a branch that timed out or returned more than 256 KiB ended the whole run in States.Runtime
    instead of reaching the Parallel state's Catch, and a Fail state re-raising a caught States. error
    (ErrorPath) did the same. Relies on the ``CustomErrorName`` globals of moto's
    ``state_parallel.branches_decl``, ``state_map.iteration.iteration_worker`` and ``state.fail.state_fail``
    modules, and on ``StatesErrorName.from_name``. Returns the function that removes the patch.
    """
    import importlib

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

    component = "moto.stepfunctions.parser.asl.component.state"
    modules = [
        importlib.import_module(f"{component}.exec.state_parallel.branches_decl"),
        importlib.import_module(f"{component}.exec.state_map.iteration.iteration_worker"),
        importlib.import_module(f"{component}.fail.state_fail"),
    ]
    for module in modules:
        module.CustomErrorName = error_name  # type: ignore[attr-defined]

    def uninstall() -> None:
        for module in modules:
            module.CustomErrorName = CustomErrorName  # type: ignore[attr-defined]

    return uninstall


def session_expiration(access_key: str) -> datetime | None:
    """When the role session moto's STS issued ``access_key`` for ends; None for any other key.

    Relies on ``moto.sts.models.sts_backends`` (accounts, then partitions) and each backend's
    ``assumed_roles``, whose ``access_key_id`` and ``expiration`` (UTC, naive) it reads.
    """
    from datetime import UTC

    from moto.sts.models import sts_backends

    for account in list(sts_backends.values()):
        for backend in list(account.values()):
            for session in list(backend.assumed_roles):
                if session.access_key_id == access_key:
                    ends: datetime = session.expiration
                    return ends if ends.tzinfo else ends.replace(tzinfo=UTC)
    return None
