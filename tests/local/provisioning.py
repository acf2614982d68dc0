"""A template a test writes, provisioned into moto as `filepipe local` provisions template.yaml."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from filepipe.local.provision.provisioner import provision
from filepipe.local.stack.model import Stack
from filepipe.template import load_template

REGION = "us-east-1"


Mutation = Callable[[str], str]


def replace(old: str, new: str) -> Mutation:
    """A mutation replacing one exact snippet of a template (which must be there exactly once)."""

    def mutate(text: str) -> str:
        assert text.count(old) == 1, f"the snippet to change is not in the template once:\n{old}"
        return text.replace(old, new)

    return mutate


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def provision_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, stack_name: str) -> Stack:
    template = tmp_path / "template.yaml"
    template.write_text(text)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        return provision(client, load_template(template), stack_name, REGION)
