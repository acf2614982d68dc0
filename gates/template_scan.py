"""Template security scan: checkov over the templates, held to the committed list of accepted findings.

checkov reads AWS::Serverless::* resources only in part: it checks a Serverless::Function's own settings
but not the IAM statements of its Policies, nor anything of a Serverless::StateMachine. So a SAM template
is scanned twice, as written and as SAM transforms it (the roles and state machines CloudFormation will
create), and the findings of both count as findings of the template. checkov also drops every resource
whose Condition is false with the parameters' defaults, so a template whose conditions choose between
modes (a parameter with AllowedValues, such as Scanner) is scanned again with each other value as default.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from samtranslator.yaml_helper import yaml_parse

from filepipe.template import load_template
from gates import BUILD_DIR, GATES_DIR, ROOT, GateError, run, tool

# Every CloudFormation template the project deploys, relative to the repository root.
TEMPLATES: tuple[str, ...] = ("template.yaml", "deploy/bootstrap.yaml")
ACCEPTED_PATH = GATES_DIR / "accepted-findings.yaml"
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
# No update check, no platform mapping download, no API key: the scan never leaves the machine.
OFFLINE_ENV = {"CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}
PLATFORM_ENV = ("BC_API_KEY", "PRISMA_API_URL", "CKV_EXTERNAL_CHECKS_PUBLIC_KEY")


@dataclass(frozen=True, order=True)
class Finding:
    """One failed check on one resource of one template."""

    template: str
    check: str
    resource: str

    def __str__(self) -> str:
        return f"{self.check} on {self.resource} in {self.template}"


@dataclass
class ScanReport:
    """What checkov said about the templates."""

    failed: dict[Finding, str] = field(default_factory=dict)
    """Each failed check with checkov's title for it."""
    suppressed: list[Finding] = field(default_factory=list)
    """Checks skipped by a suppression inside a template."""
    parsing_errors: list[str] = field(default_factory=list)
    unscanned: list[str] = field(default_factory=list)
    """Files given to checkov that no check ran on."""


def mode_defaults(source: Mapping[str, Any]) -> list[dict[str, str]]:
    """Other defaults to scan a template with: each other allowed value of a parameter its Conditions read."""
    parameters = source.get("Parameters") or {}
    conditions = json.dumps(source.get("Conditions") or {})
    modes = []
    for name, spec in parameters.items():
        if json.dumps({"Ref": name}) not in conditions:
            continue
        default = str(spec.get("Default"))
        modes += [{name: str(value)} for value in spec.get("AllowedValues", []) if str(value) != default]
    return modes


def _with_defaults(parameters: Mapping[str, Any], defaults: Mapping[str, str]) -> dict[str, Any]:
    return {
        name: {**spec, **({"Default": defaults[name]} if name in defaults else {})}
        for name, spec in parameters.items()
    }


def scan_files(templates: Sequence[str], root: Path = ROOT) -> dict[str, str]:
    """The files to scan (relative to ``root``), each with the template it stands for.

    A SAM template is also written out as SAM transforms it, and a template with modes (see
    :func:`mode_defaults`) once per other mode, beside the build output.
    """
    missing = [t for t in templates if not (root / t).is_file()]
    if missing:
        raise GateError(f"templates to scan are missing: {', '.join(missing)}")
    files = {template: template for template in templates}
    out_dir = root / BUILD_DIR.relative_to(ROOT) / "scan"

    def write(template: str, suffix: str, document: Mapping[str, Any]) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{template.replace('/', '--')}{suffix}.json"
        path.write_text(json.dumps(document, indent=1, default=str))
        files[str(path.relative_to(root))] = template

    for template in templates:
        source = yaml_parse((root / template).read_text())
        modes = mode_defaults(source)
        for defaults in modes:
            mode = "".join(f".{name}-{value}" for name, value in defaults.items())
            write(template, mode, {**source, "Parameters": _with_defaults(source["Parameters"], defaults)})
        if SAM_TRANSFORM not in str(source.get("Transform", "")):
            continue
        transformed = load_template(root / template)
        for defaults in [{}, *modes]:
            mode = "".join(f".{name}-{value}" for name, value in defaults.items())
            document = {
                "AWSTemplateFormatVersion": "2010-09-09",
                "Parameters": _with_defaults(transformed.parameters, defaults),
                "Conditions": transformed.conditions,
                "Resources": transformed.resources,
            }
            write(template, f"{mode}.transformed", document)
    return files


def run_checkov(templates: Sequence[str], root: Path = ROOT) -> ScanReport:
    """Scan ``templates`` (paths relative to ``root``) with every CloudFormation check, offline."""
    files = scan_files(templates, root)
    env = {name: value for name, value in os.environ.items() if name not in PLATFORM_ENV} | OFFLINE_ENV
    result = run(
        [
            str(tool("checkov", "checkov")),
            *("--file", *files),
            *("--framework", "cloudformation"),
            "--skip-download",
            *("--output", "json"),
            "--compact",
        ],
        cwd=root,
        env=env,
        timeout=300,
    )
    # checkov exits 1 when a check fails; anything else, or no JSON, means it did not scan.
    try:
        output = json.loads(result.stdout)
    except json.JSONDecodeError:
        output = None
    if result.returncode not in (0, 1) or not isinstance(output, dict | list):
        raise GateError(f"checkov did not scan (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    return parse_report(output, files)


def parse_report(output: dict[str, Any] | list[dict[str, Any]], files: Mapping[str, str]) -> ScanReport:
    """Read checkov's JSON report (one object, or one per framework) on ``files`` (see :func:`scan_files`)."""
    report = ScanReport()
    seen = set()
    for section in output if isinstance(output, list) else [output]:
        results = section.get("results", {})
        report.parsing_errors.extend(results.get("parsing_errors", []))
        for key in ("passed_checks", "failed_checks", "skipped_checks"):
            for check in results.get(key, []):
                scanned = check["file_path"].lstrip("/")
                seen.add(scanned)
                finding = Finding(
                    template=files.get(scanned, scanned),
                    check=check["check_id"],
                    resource=check["resource"].split(".", 1)[-1],
                )
                if key == "failed_checks":
                    report.failed[finding] = check["check_name"]
                elif key == "skipped_checks":
                    report.suppressed.append(finding)
    report.unscanned = sorted(set(files) - seen)
    return report


def load_accepted(path: Path = ACCEPTED_PATH) -> dict[Finding, str]:
    """The accepted findings, each with its reason; the file's shape is checked strictly."""
    entries = yaml.safe_load(path.read_text()) or []
    if not isinstance(entries, list):
        raise GateError(f"{path.name}: expected a list of entries")
    accepted: dict[Finding, str] = {}
    for number, entry in enumerate(entries, start=1):
        where = f"{path.name} entry {number}"
        if not isinstance(entry, dict) or set(entry) != {"check", "reason", "resources"}:
            raise GateError(f"{where}: needs exactly the keys check, reason and resources")
        check, reason, resources = entry["check"], entry["reason"], entry["resources"]
        if not isinstance(check, str) or not isinstance(reason, str) or not reason.strip():
            raise GateError(f"{where}: check and reason must be non-empty text")
        if not isinstance(resources, dict) or not resources:
            raise GateError(f"{where}: resources maps a template to the logical ids it accepts")
        for template, logical_ids in resources.items():
            if not isinstance(logical_ids, list) or not all(isinstance(i, str) for i in logical_ids):
                raise GateError(f"{where}: {template} must list logical ids")
            for logical_id in logical_ids:
                finding = Finding(str(template), check, logical_id)
                if finding in accepted:
                    raise GateError(f"{where}: {finding} is accepted twice")
                accepted[finding] = reason
    return accepted


def problems(report: ScanReport, accepted: Mapping[Finding, str]) -> list[str]:
    """Why the scan fails the build: every line is one thing to fix, empty when it passes."""
    where = f"gates/{ACCEPTED_PATH.name}"
    out = [f"checkov could not parse {error}" for error in report.parsing_errors]
    out += [f"{name} was not scanned (no check ran on it)" for name in report.unscanned]
    out += [
        f"{finding} is suppressed inside the template: accept it in {where} instead"
        for finding in sorted(report.suppressed)
    ]
    out += [
        f"new finding: {finding} ({report.failed[finding]}): fix it or accept it in {where}"
        for finding in sorted(set(report.failed) - set(accepted))
    ]
    out += [
        f"accepted finding no longer reported: {finding}: remove it from {where}"
        for finding in sorted(set(accepted) - set(report.failed))
    ]
    return out


def main() -> int:
    accepted = load_accepted()
    report = run_checkov(TEMPLATES)
    found = problems(report, accepted)
    for line in found:
        print(line)
    print(
        f"template scan of {', '.join(TEMPLATES)} (SAM ones also transformed): {len(report.failed)} findings,"
        f" {len(set(report.failed) & set(accepted))} accepted, {len(found)} problems"
    )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
