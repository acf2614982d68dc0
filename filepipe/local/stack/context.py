"""What every resource handler receives: the stack so far, naming, clients, warnings, and the run itself."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from filepipe.local.stack.model import LocalSite, ScheduleSpec, Stack
from filepipe.local.stack.schedules import ScheduleError
from filepipe.template import PSEUDO_ACCOUNT_ID, Resolver, references

ClientFactory = Callable[[str], Any]
# A handler's answer: the resource's physical id (what Ref gives) and its attributes (what GetAtt reads).
Created = tuple[str, dict[str, Any]]
Handler = Callable[["Provisioning", str, "Properties"], Created]


class ServiceHandlers(dict[str, Handler]):
    """One service's handlers by CloudFormation resource type, filled by its resources module."""

    def register(self, resource_type: str) -> Callable[[Handler], Handler]:
        """Decorator: the function creates the resources of ``resource_type``."""

        def add(handler: Handler) -> Handler:
            if resource_type in self:
                raise ValueError(
                    f"{resource_type} has two handlers: {self[resource_type].__name__}, {handler.__name__}"
                )
            self[resource_type] = handler
            return handler

        return add


class Properties(dict[str, Any]):
    """Resolved properties that remember which ones a handler looked at; the rest are reported."""

    def __init__(self, values: dict[str, Any]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read.add(key)
        return super().__contains__(key)

    def items(self) -> Any:
        self.read.update(self.keys())
        return super().items()

    def unread(self) -> list[str]:
        return sorted(set(self.keys()) - self.read)


class Placeholder(dict[str, Any]):
    """Attributes of a resource that is not emulated: each reads as a recognisable local value."""

    def __init__(self, physical: str) -> None:
        super().__init__()
        self._physical = physical

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        if key.endswith("DomainName"):
            return "localhost"
        return f"{self._physical}.{key}"


def _localize(value: Any, origins: dict[str, str]) -> Any:
    """Replace the https URLs of hosts served locally (plain HTTP, another port) by their local origin."""
    if isinstance(value, str):
        for remote, local in origins.items():
            if value == remote or value.startswith(remote + "/"):
                return local + value[len(remote) :]
        return value
    if isinstance(value, list):
        return [_localize(item, origins) for item in value]
    if isinstance(value, dict):
        return {key: _localize(item, origins) for key, item in value.items()}
    return value


class Provisioning:
    """Walks resources in dependency order and hands each, resolved, to the handler of its type."""

    def __init__(
        self,
        clients: ClientFactory,
        stack: Stack,
        site: LocalSite | None = None,
        create_event_source_mappings: bool = False,
        iam_enforced: bool = False,
    ) -> None:
        self._clients = clients
        # One client per service for the whole run: making a boto3 client costs about as much as the
        # requests of a resource, and most resources make only one or two.
        self._made_clients: dict[str, Any] = {}
        self.stack = stack
        self.site = site
        self._local_origins = {f"https://{site.web_host}": site.web_origin} if site else {}
        # Only a caller that polls the queues itself (the local runtime) has the SQS mappings created.
        self.create_event_source_mappings = create_event_source_mappings
        # The caller evaluates IAM on every request (the local runtime): resource policies go in whole.
        self.iam_enforced = iam_enforced
        self._warnings: dict[str, list[str]] = {}
        # Composite alarms by name: moto has no API for them, so provisioning keeps what it checked.
        self.composite_alarms: dict[str, dict[str, Any]] = {}
        self._resolve = Resolver(
            stack.parameters,
            {
                "AWS::Region": stack.region,
                "AWS::AccountId": PSEUDO_ACCOUNT_ID,
                "AWS::StackName": stack.name,
                "AWS::StackId": (
                    f"arn:aws:cloudformation:{stack.region}:{PSEUDO_ACCOUNT_ID}:stack/{stack.name}/local"
                ),
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::NoValue": "",
            },
            self._ref,
            self._get_att,
            stack.template.conditions,
        )

    # ------------------------------------------------------------ what handlers use
    def client(self, service: str) -> Any:
        if service not in self._made_clients:
            self._made_clients[service] = self._clients(service)
        return self._made_clients[service]

    def name(self, logical: str, max_length: int = 63, lower: bool = False) -> str:
        """A name as CloudFormation makes one: stack, logical id and a digest, within ``max_length``."""
        digest = hashlib.sha256(f"{self.stack.name}/{logical}".encode()).hexdigest()[:8]
        name = f"{self.stack.name}-{logical}"[: max_length - 9] + f"-{digest}"
        return name.lower() if lower else name

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.stack.region}:{PSEUDO_ACCOUNT_ID}:{resource}"

    def warn(self, message: str, logical: str | None = None) -> None:
        """Record what is not emulated; the same message for several resources becomes one line."""
        ids = self._warnings.setdefault(message, [])
        if logical is not None and logical not in ids:
            ids.append(logical)

    def serve_locally(self, remote_origin: str, local_origin: str) -> None:
        """From now on, properties and outputs naming ``remote_origin`` name ``local_origin`` instead."""
        self._local_origins[remote_origin] = local_origin

    def add_schedule(self, key: str, spec: ScheduleSpec) -> None:
        """Keep a schedule the local runtime runs; one EventBridge would refuse stops the deployment."""
        try:
            spec.timing()
        except ScheduleError as error:
            raise ValueError(f"{spec.logical_id}: invalid schedule {spec.expression!r}: {error}") from error
        self.stack.schedules[key] = spec

    # ------------------------------------------------------------ the run
    def order(self) -> list[str]:
        resources = self.stack.template.resources
        done: list[str] = []
        seen: set[str] = set()

        def visit(name: str, path: tuple[str, ...]) -> None:
            if name in seen:
                return
            if name in path:
                raise ValueError(f"circular dependency: {' -> '.join((*path, name))}")
            resource = resources[name]
            depends = resource.get("DependsOn", [])
            needs = references(resource.get("Properties", {})) | set(
                [depends] if isinstance(depends, str) else depends
            )
            for other in sorted(needs & resources.keys()):
                visit(other, (*path, name))
            seen.add(name)
            done.append(name)

        for name in resources:
            visit(name, ())
        return done

    def run(self, handlers: Mapping[str, Handler]) -> Stack:
        """Create every resource with the handler of its type; a type without one is reported, not created."""
        for logical in self.order():
            resource = self.stack.template.resources[logical]
            if "Condition" in resource and not self._resolve.condition(resource["Condition"]):
                continue
            properties = Properties(self._localize(self._resolve(resource.get("Properties", {}))))
            handler = handlers.get(resource["Type"])
            if handler is None:
                physical, attributes = self._not_emulated(logical, resource["Type"])
            else:
                physical, attributes = handler(self, logical, properties)
                for name in properties.unread():
                    self.warn(f"{resource['Type']} property {name} is not emulated locally", logical)
            self.stack.physical[logical] = physical
            self.stack.attributes[logical] = attributes
        self.stack.outputs = {
            name: self._localize(self._resolve(spec["Value"]))
            for name, spec in self.stack.template.outputs.items()
            if "Condition" not in spec or self._resolve.condition(spec["Condition"])
        }
        self.stack.warnings = self._warning_lines()
        return self.stack

    # ------------------------------------------------------------ plumbing
    def _ref(self, logical: str) -> str:
        if logical not in self.stack.physical:
            raise KeyError(f"Ref to {logical}, which is not created (yet)")
        return self.stack.physical[logical]

    def _get_att(self, logical: str, attribute: str) -> Any:
        attributes = self.stack.attributes.get(logical, {})
        if attribute not in attributes:
            raise KeyError(f"GetAtt {logical}.{attribute} is not known locally")
        return attributes[attribute]

    def _localize(self, value: Any) -> Any:
        return _localize(value, self._local_origins) if self._local_origins else value

    def _not_emulated(self, logical: str, resource_type: str) -> Created:
        self.warn(f"{resource_type} is not emulated locally", logical)
        physical = self.name(logical)
        return physical, Placeholder(physical)

    def _warning_lines(self) -> list[str]:
        return [f"{message}: {', '.join(ids)}" if ids else message for message, ids in self._warnings.items()]
