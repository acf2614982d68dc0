"""Load template.yaml, transform it offline with samtranslator and resolve intrinsic functions."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"
LOCAL_CODE_BUCKET = "filepipe-local-code"
PSEUDO_ACCOUNT_ID = "123456789012"


class _NoManagedPolicies:
    """samtranslator asks IAM for managed policy ARNs; the template names none by short name."""

    def load(self) -> dict[str, str]:
        return {}


@dataclass
class Template:
    """The transformed (plain CloudFormation) template plus the local paths SAM would have uploaded."""

    source: dict[str, Any]
    resources: dict[str, dict[str, Any]]
    parameters: dict[str, dict[str, Any]]
    outputs: dict[str, dict[str, Any]]
    conditions: dict[str, Any] = field(default_factory=dict)
    code_paths: dict[str, Path] = field(default_factory=dict)
    definitions: dict[str, str] = field(default_factory=dict)
    source_bytes: int = 0  # the template file's size, about what `sam deploy` uploads for CloudFormation

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.resources.items() if r["Type"] == resource_type}

    def parameter_values(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        values = {name: str(spec["Default"]) for name, spec in self.parameters.items() if "Default" in spec}
        for name, value in (overrides or {}).items():
            if name not in self.parameters:
                raise KeyError(f"template has no parameter {name!r}")
            values[name] = str(value)
        missing = sorted(set(self.parameters) - set(values))
        if missing:
            raise KeyError(f"parameters without a value: {', '.join(missing)}")
        return values


def load_template(path: Path = TEMPLATE_PATH, region: str = "us-east-1") -> Template:
    """Read the SAM template and transform it the way `sam deploy` would, without AWS."""
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    base = path.parent
    text = path.read_text()
    source = yaml_parse(text)
    sam = copy.deepcopy(source)
    code_paths: dict[str, Path] = {}
    definitions: dict[str, str] = {}

    global_code = sam.get("Globals", {}).get("Function", {}).get("CodeUri")
    if isinstance(global_code, str):
        sam["Globals"]["Function"]["CodeUri"] = f"s3://{LOCAL_CODE_BUCKET}/{global_code.strip('/')}"
    for name, resource in sam["Resources"].items():
        props = resource.setdefault("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            code_uri = props.get("CodeUri", global_code)
            code_paths[name] = (base / str(code_uri)).resolve()
            if "CodeUri" in props:
                props["CodeUri"] = f"s3://{LOCAL_CODE_BUCKET}/{name}"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            code_paths[name] = (base / str(props["ContentUri"])).resolve()
            props["ContentUri"] = f"s3://{LOCAL_CODE_BUCKET}/{name}"
        elif resource["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in props:
            definition_path = base / str(props.pop("DefinitionUri"))
            definitions[name] = definition_path.read_text()
            props["Definition"] = json.loads(definitions[name])

    previous_region = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region  # samtranslator derives the partition from it
    try:
        transformed = transform(sam, {}, _NoManagedPolicies())
    finally:
        if previous_region is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous_region

    return Template(
        source=source,
        resources=transformed["Resources"],
        parameters=transformed.get("Parameters", {}),
        outputs=transformed.get("Outputs", {}),
        conditions=transformed.get("Conditions", {}),
        code_paths=code_paths,
        definitions=definitions,
        source_bytes=len(text.encode()),
    )


_DEFINITION_URI = re.compile(r"^\s*DefinitionUri:\s*[\"']?([^\"'\s#]+)", re.MULTILINE)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_template_cached(cache_file: Path, path: Path = TEMPLATE_PATH, region: str = "us-east-1") -> Template:
    """:func:`load_template`, reusing the last transform while the template and its definitions are unchanged.

    The transform takes about a second; the cache is keyed by the template's bytes, the region, the
    samtranslator version, every ``DefinitionUri`` file and this module, so any edit transforms again.
    """
    from importlib.metadata import version

    text = path.read_bytes()
    definition_files = sorted(
        {(path.parent / uri).resolve() for uri in _DEFINITION_URI.findall(text.decode())}
    )
    key = {
        "template": _digest(text),
        "path": str(path.resolve()),
        "region": region,
        "samtranslator": version("aws-sam-translator"),
        "loader": _digest(Path(__file__).read_bytes()),
        "definitions": {str(f): _digest(f.read_bytes()) if f.is_file() else None for f in definition_files},
    }
    try:
        cached = json.loads(cache_file.read_text())
        if cached["key"] == key:
            data = cached["template"]
            return Template(
                source=data["source"],
                resources=data["resources"],
                parameters=data["parameters"],
                outputs=data["outputs"],
                conditions=data["conditions"],
                code_paths={name: Path(p) for name, p in data["code_paths"].items()},
                definitions=data["definitions"],
                source_bytes=len(text),
            )
    except (OSError, ValueError, KeyError, TypeError):
        pass
    template = load_template(path, region)
    data = {
        "source": template.source,
        "resources": template.resources,
        "parameters": template.parameters,
        "outputs": template.outputs,
        "conditions": template.conditions,
        "code_paths": {name: str(p) for name, p in template.code_paths.items()},
        "definitions": template.definitions,
    }
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    partial = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps({"key": key, "template": data}, default=str))
    partial.replace(cache_file)
    return template


def references(value: Any) -> set[str]:
    """Logical ids a template fragment refers to (Ref, GetAtt, ${} in Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else str(target).split(".")[0])
        if "Fn::Sub" in value:
            sub = value["Fn::Sub"]
            text = sub if isinstance(sub, str) else sub[0]
            found.update(_sub_names(text))
        for inner in value.values():
            found |= references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= references(inner)
    return found


def _sub_names(text: str) -> set[str]:
    names = set()
    start = text.find("${")
    while start != -1:
        end = text.find("}", start)
        name = text[start + 2 : end]
        if not name.startswith("!"):
            names.add(name.split(".")[0])
        start = text.find("${", end)
    return names


class Resolver:
    """Evaluates intrinsic functions against parameter values and what has been created so far."""

    def __init__(
        self,
        parameters: Mapping[str, str],
        pseudo: Mapping[str, str],
        ref: Callable[[str], str],
        get_att: Callable[[str, str], Any],
        conditions: Mapping[str, Any] | None = None,
    ) -> None:
        self._conditions_source = dict(conditions or {})
        self._conditions: dict[str, bool] = {}
        self._parameters = dict(parameters)
        self._pseudo = dict(pseudo)
        self._ref = ref
        self._get_att = get_att

    def ref(self, name: str) -> str:
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self._parameters:
            return self._parameters[name]
        return self._ref(name)

    def condition(self, name: str) -> bool:
        """Evaluate a named condition (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition)."""
        if name not in self._conditions:
            self._conditions[name] = self._truth(self._conditions_source[name])
        return self._conditions[name]

    def _truth(self, value: Any) -> bool:
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Fn::Equals":
                left, right = self(arg[0]), self(arg[1])
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self._truth(arg[0])
            if key == "Fn::And":
                return all(self._truth(v) for v in arg)
            if key == "Fn::Or":
                return any(self._truth(v) for v in arg)
            if key == "Condition":
                return self.condition(arg)
        if isinstance(value, bool):
            return value
        raise ValueError(f"cannot evaluate condition {value!r}")

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in map(self, value) if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" and arg == "AWS::NoValue":
                return _NO_VALUE
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self._get_att(logical, attribute)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                separator, items = arg
                return str(separator).join(str(v) for v in self(items))
            if key == "Fn::Select":
                index, items = arg
                return self(items)[int(self(index))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self(text)).split(separator)
            if key == "Fn::GetAZs":
                region = self._pseudo["AWS::Region"]
                return [f"{region}a", f"{region}b", f"{region}c"]
            if key == "Fn::ToJsonString":
                return json.dumps(self(arg))
            if key == "Fn::If":
                name, when_true, when_false = arg
                return self(when_true if self.condition(name) else when_false)
        resolved = {k: self(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))
        out = []
        position = 0
        while (start := text.find("${", position)) != -1:
            end = text.find("}", start)
            out.append(text[position:start])
            name = text[start + 2 : end]
            if name.startswith("!"):
                out.append("${" + name[1:] + "}")
            elif name in variables:
                out.append(str(variables[name]))
            elif "." in name:
                logical, attribute = name.split(".", 1)
                out.append(str(self._get_att(logical, attribute)))
            else:
                out.append(str(self.ref(name)))
            position = end + 1
        out.append(text[position:])
        return "".join(out)


# What ``Ref: AWS::NoValue`` resolves to: CloudFormation removes the property (or list item) holding it.
_NO_VALUE: Any = object()


def substitute_definition(definition: str, substitutions: Mapping[str, Any]) -> str:
    """Apply DefinitionSubstitutions like Step Functions does; every ${name} must have an entry."""
    out = []
    position = 0
    used = set()
    while (start := definition.find("${", position)) != -1:
        end = definition.find("}", start)
        name = definition[start + 2 : end]
        if name not in substitutions:
            raise KeyError(f"definition uses ${{{name}}} but DefinitionSubstitutions has no {name!r}")
        used.add(name)
        out.append(definition[position:start])
        out.append(str(substitutions[name]))
        position = end + 1
    out.append(definition[position:])
    unused = sorted(set(substitutions) - used)
    if unused:
        raise KeyError(f"DefinitionSubstitutions not used by the definition: {', '.join(unused)}")
    return "".join(out)
