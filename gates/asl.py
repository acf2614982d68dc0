"""ASL gate: every state machine definition, substituted as Step Functions would, passes asl-validator."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filepipe.template import PSEUDO_ACCOUNT_ID, Resolver, Template, load_template, substitute_definition
from gates import BUILD_DIR, GATES_DIR, ROOT, GateError, run

VALIDATOR = GATES_DIR / "node_modules" / ".bin" / "asl-validator"
DEFINITIONS_DIR = ROOT / "statemachines"
STACK_NAME = "filepipe"
PSEUDO = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": PSEUDO_ACCOUNT_ID,
    "AWS::Partition": "aws",
    "AWS::StackName": STACK_NAME,
    "AWS::URLSuffix": "amazonaws.com",
}
# Per resource type: the shape of its ARN (GetAtt Arn) and of what Ref returns, as CloudFormation gives them.
_SHAPES = {
    "AWS::Serverless::Function": ("arn:{p}:lambda:{r}:{a}:function:{name}", "{name}"),
    "AWS::Serverless::StateMachine": ("arn:{p}:states:{r}:{a}:stateMachine:{name}", "{arn}"),
    "AWS::SQS::Queue": ("arn:{p}:sqs:{r}:{a}:{name}", "https://sqs.{r}.amazonaws.com/{a}/{name}"),
    "AWS::SNS::Topic": ("arn:{p}:sns:{r}:{a}:{name}", "{arn}"),
    "AWS::DynamoDB::Table": ("arn:{p}:dynamodb:{r}:{a}:table/{name}", "{name}"),
    "AWS::S3::Bucket": ("arn:{p}:s3:::{name}", "{name}"),
    "AWS::Events::EventBus": ("arn:{p}:events:{r}:{a}:event-bus/{name}", "{name}"),
}


@dataclass
class Validation:
    """asl-validator's verdict on a set of definitions."""

    passed: bool
    output: str


def _resolver(template: Template, parameters: Mapping[str, str] | None = None) -> Resolver:
    """Resolves Ref and GetAtt ...Arn to the names and ARNs a stack of this template would have."""
    types = {name: resource["Type"] for name, resource in template.source["Resources"].items()}

    def shape(logical_id: str) -> tuple[str, str]:
        if types.get(logical_id) not in _SHAPES:
            raise GateError(
                f"no ARN shape for {logical_id} ({types.get(logical_id)}): add one to gates/asl.py"
            )
        arn, ref = _SHAPES[types[logical_id]]
        fields = {"p": PSEUDO["AWS::Partition"], "r": PSEUDO["AWS::Region"], "a": PSEUDO["AWS::AccountId"]}
        name = f"{STACK_NAME}-{logical_id}-1A2B3C4D5E6F"
        name = name.lower() if types[logical_id] == "AWS::S3::Bucket" else name
        arn = arn.format(name=name, **fields)
        return arn, ref.format(name=name, arn=arn, **fields)

    def get_att(logical_id: str, attribute: str) -> str:
        if attribute != "Arn":
            raise GateError(f"GetAtt {logical_id}.{attribute}: only Arn is modelled in gates/asl.py")
        return shape(logical_id)[0]

    # The template's conditions, for the substitutions that depend on the parameters (Fn::If on Scanner).
    return Resolver(
        template.parameter_values(parameters),
        PSEUDO,
        lambda name: shape(name)[1],
        get_att,
        template.conditions,
    )


def substituted_definitions(
    template: Template, parameters: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Each state machine's definition with its DefinitionSubstitutions applied, keyed by logical id, for a
    stack with these parameter overrides."""
    resolve = _resolver(template, parameters)
    used_files = set()
    out = {}
    for name, resource in template.source["Resources"].items():
        if resource["Type"] != "AWS::Serverless::StateMachine":
            continue
        properties = resource["Properties"]
        if name not in template.definitions:
            raise GateError(f"{name} has no DefinitionUri: definitions live in statemachines/, not inline")
        used_files.add((ROOT / properties["DefinitionUri"]).resolve())
        substitutions = {
            key: resolve(value) for key, value in properties.get("DefinitionSubstitutions", {}).items()
        }
        out[name] = substitute_definition(template.definitions[name], substitutions)
    unused = sorted(str(p.relative_to(ROOT)) for p in set(DEFINITIONS_DIR.glob("*.asl.json")) - used_files)
    if unused:
        raise GateError(f"no state machine in the template uses {', '.join(unused)}")
    return out


def validate(definitions: Mapping[str, Any], out_dir: Path = BUILD_DIR / "asl") -> Validation:
    """Run asl-validator on the definitions (JSON text or parsed), written to ``out_dir`` to be read."""
    if not VALIDATOR.is_file():
        raise GateError(f"{VALIDATOR} is missing: `make install` runs npm ci in gates/")
    out_dir.mkdir(parents=True, exist_ok=True)
    arguments = []
    for name, definition in definitions.items():
        path = out_dir / f"{name}.asl.json"
        path.write_text(definition if isinstance(definition, str) else json.dumps(definition, indent=2))
        arguments += ["--json-path", str(path)]
    result = run([str(VALIDATOR), *arguments], timeout=120)
    return Validation(result.returncode == 0, (result.stdout + result.stderr).strip())


def main() -> int:
    validation = validate(substituted_definitions(load_template(region=PSEUDO["AWS::Region"])))
    print(validation.output)
    return 0 if validation.passed else 1


if __name__ == "__main__":
    sys.exit(main())
