"""The test template of a bucket GuardDuty protects, copies of it with a mistake, and runtimes of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from filepipe.runtime_state import ACCESS_KEY_ID, SECRET_ACCESS_KEY
from tests.local.conftest import LocalProcess
from tests.local.provisioning import Mutation

TEMPLATE = Path(__file__).with_name("template.yaml")
REGION = "us-east-1"
ACCOUNT = "123456789012"


def template_text(*mutations: Mutation) -> str:
    text = TEMPLATE.read_text()
    for mutate in mutations:
        text = mutate(text)
    return text


def write_template(folder: Path, *mutations: Mutation) -> Path:
    path = folder / "template.yaml"
    path.write_text(template_text(*mutations))
    return path


def start(folder: Path, *mutations: Mutation, extra_args: tuple[str, ...] = ()) -> LocalProcess:
    """`filepipe local` on a copy of the test template changed by ``mutations``."""
    (folder / "state").mkdir()
    template = write_template(folder, *mutations)
    return LocalProcess(folder / "state", ["--template", str(template), *extra_args])


def admin(stack: LocalProcess, service: str) -> Any:
    """A client of the operator: the runtime's key, the account's administrator."""
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=stack.aws_endpoint,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(signature_version="s3v4", retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def outputs(stack: LocalProcess) -> dict[str, str]:
    found: dict[str, str] = json.loads((stack.state_dir / "runtime.json").read_text())["outputs"]
    return found
