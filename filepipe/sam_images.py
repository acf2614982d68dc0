"""The container image functions a deploy's parameters leave out, kept from `sam build` and `sam deploy`.

Neither command evaluates a resource's Condition: `sam build` builds the Dockerfile of every image function
(Docker needed) and `sam deploy` pushes every image function's image. For a deploy whose parameters leave
such functions out (Scanner=GuardDuty leaves out ClamAV's two), ``exclude`` prints the `sam build` options
that skip them, and ``unbuilt`` gives them, in the built template, an ImageUri that `sam deploy` does not
package (an intrinsic function) and CloudFormation never reads (the function is not created).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from filepipe.template import Resolver

# Any intrinsic function keeps `sam deploy` from pushing an image; this one also says why there is none.
UNBUILT_IMAGE_URI = {
    "Fn::Sub": "${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/not-built:left-out"
}


def read_template(path: Path) -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    template: dict[str, Any] = yaml_parse(path.read_text())
    return template


def left_out_image_functions(template: Mapping[str, Any], parameters: Mapping[str, str]) -> list[str]:
    """Image functions whose Condition is false with these parameter overrides (defaults for the rest)."""
    values = {name: str(spec.get("Default", "")) for name, spec in (template.get("Parameters") or {}).items()}
    unknown = sorted(set(parameters) - set(values))
    if unknown:
        raise KeyError(f"the template has no parameter {', '.join(unknown)}")
    values.update(parameters)
    resolver = Resolver(values, {}, str, lambda *_: "", template.get("Conditions") or {})
    return sorted(
        name
        for name, resource in template["Resources"].items()
        if resource.get("Type") == "AWS::Serverless::Function"
        and resource.get("Properties", {}).get("PackageType") == "Image"
        and "Condition" in resource
        and not resolver.condition(resource["Condition"])
    )


def mark_unbuilt(template: dict[str, Any], functions: Sequence[str]) -> None:
    for name in functions:
        template["Resources"][name]["Properties"]["ImageUri"] = dict(UNBUILT_IMAGE_URI)


def _parameter(text: str) -> tuple[str, str]:
    name, separator, value = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"expected Name=Value, got {text!r}")
    return name, value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m filepipe.sam_images", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    exclude = commands.add_parser("exclude", help="print `sam build` options that skip the left-out images")
    exclude.add_argument("template", type=Path, help="the SAM template (template.yaml)")
    unbuilt = commands.add_parser("unbuilt", help="keep `sam deploy` from pushing the left-out images")
    unbuilt.add_argument("template", type=Path, help="the template `sam build` wrote")
    for command in (exclude, unbuilt):
        command.add_argument("parameters", nargs="*", type=_parameter, metavar="NAME=VALUE")
    args = parser.parse_args(argv)

    template = read_template(args.template)
    left_out = left_out_image_functions(template, dict(args.parameters))
    if args.command == "exclude":
        print(" ".join(f"--exclude {name}" for name in left_out))
        return 0
    mark_unbuilt(template, left_out)
    args.template.write_text(yaml.safe_dump(template, sort_keys=False, width=120))
    if left_out:
        print(f"not built, not pushed (their Condition is false): {', '.join(left_out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
