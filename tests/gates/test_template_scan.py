"""The template security scan: checkov's findings on every template match the accepted list exactly."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from gates import ROOT, GateError
from gates.template_scan import (
    ACCEPTED_PATH,
    TEMPLATES,
    Finding,
    ScanReport,
    load_accepted,
    parse_report,
    problems,
    run_checkov,
)

CLOUDFORMATION = re.compile(r"^(AWSTemplateFormatVersion|Transform: AWS::Serverless)", re.MULTILINE)

# One template with one finding of each kind the gate must refuse.
SAMPLE = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  PlainBucket:
    Type: AWS::S3::Bucket
  QuietBucket:
    Type: AWS::S3::Bucket
    Metadata:
      checkov:
        skip:
          - id: CKV_AWS_21
            comment: suppressed where nobody reviews it
    Properties:
      VersioningConfiguration:
        Status: Suspended
"""
# A SAM function whose role may do anything: only the SAM-transformed template shows the role to checkov.
SAM_SAMPLE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  AnythingFunction:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: src/
      Policies:
        - Statement:
            - Effect: Allow
              Action: "*"
              Resource: "*"
"""


def test_templates_have_no_findings_but_the_accepted_ones() -> None:
    found = problems(run_checkov(TEMPLATES), load_accepted())

    assert not found, "\n".join(found)


def test_every_cloudformation_template_in_the_repository_is_scanned() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    templates = {
        name
        for name in listed
        if name.endswith((".yaml", ".yml", ".json"))
        and (ROOT / name).is_file()
        and CLOUDFORMATION.search((ROOT / name).read_text(errors="replace"))
        # Test fixtures that the local runtime provisions (never deployed) are not the deploy's templates.
        and not name.startswith("tests/")
    }

    assert templates == set(TEMPLATES)


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory: pytest.TempPathFactory) -> ScanReport:
    root = tmp_path_factory.mktemp("scan")
    (root / "sample.yaml").write_text(SAMPLE)
    (root / "sam.yaml").write_text(SAM_SAMPLE)
    return run_checkov(["sample.yaml", "sam.yaml"], root=root)


def test_a_new_finding_fails_the_scan(sample_report: ScanReport) -> None:
    found = problems(sample_report, {})

    assert "new finding: CKV_AWS_21 on PlainBucket in sample.yaml" in "\n".join(found)


def test_a_sam_function_role_is_scanned_as_sam_creates_it(sample_report: ScanReport) -> None:
    found = problems(sample_report, {})

    assert "new finding: CKV_AWS_63 on AnythingFunctionRole in sam.yaml" in "\n".join(found)


def test_a_suppression_inside_a_template_fails_the_scan(sample_report: ScanReport) -> None:
    found = problems(sample_report, {})

    assert any(line.startswith("CKV_AWS_21 on QuietBucket in sample.yaml is suppressed") for line in found)


def test_an_accepted_finding_that_is_no_longer_reported_fails_the_scan(sample_report: ScanReport) -> None:
    accepted = dict.fromkeys(sample_report.failed, "by design")
    gone = Finding("sample.yaml", "CKV_AWS_21", "VersionedBucket")

    found = problems(sample_report, {**accepted, gone: "by design"})

    assert [line for line in found if "no longer reported" in line] == [
        f"accepted finding no longer reported: {gone}: remove it from gates/{ACCEPTED_PATH.name}"
    ]


def test_a_file_checkov_did_not_scan_fails_the_scan() -> None:
    report = parse_report(
        {"results": {"failed_checks": [], "passed_checks": []}}, {"sample.yaml": "sample.yaml"}
    )

    assert problems(report, {}) == ["sample.yaml was not scanned (no check ran on it)"]


def test_a_missing_template_stops_the_scan(tmp_path: Path) -> None:
    with pytest.raises(GateError, match=r"missing: absent\.yaml"):
        run_checkov(["absent.yaml"], root=tmp_path)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("- check: CKV_AWS_21\n  resources: {template.yaml: [A]}\n", "exactly the keys"),
        ("- check: CKV_AWS_21\n  reason: ''\n  resources: {template.yaml: [A]}\n", "non-empty"),
        ("- check: CKV_AWS_21\n  reason: why\n  resources: {template.yaml: A}\n", "must list logical ids"),
        (
            "- {check: CKV_AWS_21, reason: why, resources: {template.yaml: [A]}}\n"
            "- {check: CKV_AWS_21, reason: again, resources: {template.yaml: [A]}}\n",
            "accepted twice",
        ),
    ],
)
def test_the_accepted_list_must_give_a_reason_per_finding(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "accepted.yaml"
    path.write_text(entry)

    with pytest.raises(GateError, match=message):
        load_accepted(path)
