"""CloudFormation's template quotas: a template over one stops the local deployment before anything exists."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from filepipe.local.provision.quotas import (
    MAX_DESCRIPTION_BYTES,
    MAX_LOGICAL_ID_CHARS,
    MAX_OUTPUTS,
    MAX_PARAMETERS,
    MAX_RESOURCES,
    MAX_TEMPLATE_BYTES,
    TemplateQuotaExceeded,
    check_template_quotas,
)
from filepipe.template import load_template
from tests.local.provisioning import provision_text

HEAD = 'AWSTemplateFormatVersion: "2010-09-09"\nTransform: AWS::Serverless-2016-10-31\n'


def topics(count: int) -> str:
    return "Resources:\n" + "".join(f"  Topic{n}:\n    Type: AWS::SNS::Topic\n" for n in range(count))


def with_resources(count: int) -> str:
    return HEAD + topics(count)


def with_parameters(count: int) -> str:
    parameters = "".join(f"  Parameter{n}:\n    Type: String\n    Default: x\n" for n in range(count))
    return HEAD + "Parameters:\n" + parameters + topics(1)


def with_outputs(count: int) -> str:
    outputs = "".join(f"  Output{n}:\n    Value: !Ref Topic0\n" for n in range(count))
    return HEAD + topics(1) + "Outputs:\n" + outputs


def with_description(size: int) -> str:
    return HEAD + f"Description: {'d' * size}\n" + topics(1)


def with_size(size: int) -> str:
    text = HEAD + topics(1)
    return text + "#" * (size - len(text) - 1) + "\n"


def with_logical_id(length: int) -> str:
    return HEAD + f"Resources:\n  {'T' * length}:\n    Type: AWS::SNS::Topic\n"


CASES: dict[str, tuple[Callable[[int], str], int, str]] = {
    "resources": (
        with_resources,
        MAX_RESOURCES,
        "Number of resources, 501, is greater than maximum allowed, 500",
    ),
    "parameters": (
        with_parameters,
        MAX_PARAMETERS,
        "Number of parameters, 201, is greater than maximum allowed",
    ),
    "outputs": (with_outputs, MAX_OUTPUTS, "Number of outputs, 201, is greater than maximum allowed, 200"),
    "description": (with_description, MAX_DESCRIPTION_BYTES, "Description is 1025 bytes; at most 1024"),
    "size": (with_size, MAX_TEMPLATE_BYTES, "at most 1048576 bytes; this one is 1048577"),
    "logical id": (with_logical_id, MAX_LOGICAL_ID_CHARS, "is 256 characters; names are at most 255"),
}


@pytest.mark.parametrize("quota", CASES)
def test_one_over_a_quota_stops_the_deployment_and_the_quota_itself_is_accepted(
    quota: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make, limit, says = CASES[quota]
    at_limit = tmp_path / "at-limit.yaml"
    at_limit.write_text(make(limit))
    check_template_quotas(load_template(at_limit))

    with pytest.raises(TemplateQuotaExceeded, match=says):
        provision_text(tmp_path, monkeypatch, make(limit + 1), "over-a-quota")


def test_the_product_template_is_within_every_quota() -> None:
    template = load_template()

    check_template_quotas(template)
    assert len(template.resources) < MAX_RESOURCES
    assert template.source_bytes < MAX_TEMPLATE_BYTES
