"""Where the journey runs: `filepipe local` started here, or the stack named in $FILEPIPE_TEST_STACK."""

from __future__ import annotations

import argparse
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from requests.adapters import HTTPAdapter

from filepipe.local.client import BrowserClient
from filepipe.ops.target import Target, add_target_arguments, resolve_target
from filepipe.template import TEMPLATE_PATH
from tests.local.conftest import DEMO_EMAIL_ARGS, LocalProcess, local_stack  # noqa: F401  (local_stack: a fixture)

STACK_ENV = "FILEPIPE_TEST_STACK"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})
# The owner's account lives in the SES mailbox simulator: a stack that sends email (in or out of the SES
# sandbox) delivers there without a bounce, and the label keeps concurrent runs apart.
EMAIL_DOMAIN = "simulator.amazonses.com"
MAX_LIST_PAGES = 20
# A local target that runs `filepipe local` with another value of the template's Scanner parameter.
LOCAL_SCANNER = "local-scanner:"
OTHER_LOCAL_SCANNERS = ("ClamAV",)


def _default_scanner() -> str:
    """The template's Scanner default, which the shared local runtime runs; the others must be the rest."""
    from samtranslator.yaml_helper import yaml_parse

    scanner = yaml_parse(TEMPLATE_PATH.read_text())["Parameters"]["Scanner"]
    default = str(scanner["Default"])
    if {default, *OTHER_LOCAL_SCANNERS} != set(scanner["AllowedValues"]) or default in OTHER_LOCAL_SCANNERS:
        raise pytest.UsageError(
            f"OTHER_LOCAL_SCANNERS {OTHER_LOCAL_SCANNERS} must be every Scanner but the default, {default}"
        )
    return default


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One target per run: the stack in $FILEPIPE_TEST_STACK when set, else the local runtime."""
    if "target" not in metafunc.fixturenames:
        return
    stack = os.environ.get(STACK_ENV, "").strip()
    if stack:
        targets = [pytest.param(stack, id=f"aws-{stack}")]
    else:
        # Locally, once with the template's default scanner and once with each other one.
        targets = [
            pytest.param(None, id=f"local-{_default_scanner().lower()}", marks=pytest.mark.local),
            *(
                pytest.param(
                    f"{LOCAL_SCANNER}{scanner}", id=f"local-{scanner.lower()}", marks=pytest.mark.local
                )
                for scanner in OTHER_LOCAL_SCANNERS
            ),
        ]
    metafunc.parametrize("target", targets, indirect=True)


class LoopbackOnly(HTTPAdapter):
    """Sends requests to this machine only: the local journey must never reach a real endpoint."""

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if urlsplit(request.url).hostname not in LOOPBACK_HOSTS:
            raise AssertionError(f"the local journey tried to leave this machine: {request.url}")
        return super().send(request, *args, **kwargs)


@dataclass(frozen=True)
class JourneyTarget:
    """Where the journey runs: the web UI's address, an operator's clients and the waits that suit it."""

    description: str
    web_url: str
    operator: Target
    final_within_seconds: float
    poll_seconds: float
    loopback_only: bool

    def browser(self) -> BrowserClient:
        """A fresh browser on the web UI: anonymous until it signs in."""
        client = BrowserClient(self.web_url)
        if self.loopback_only:
            for scheme in ("http://", "https://"):
                client.http.mount(scheme, LoopbackOnly())
        return client

    def wait_final(self, client: BrowserClient, file_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Each file's record once final; one deadline for all of them."""
        deadline = time.monotonic() + self.final_within_seconds
        return {
            file_id: client.wait_final(
                file_id, timeout=max(0.0, deadline - time.monotonic()), interval=self.poll_seconds
            )
            for file_id in file_ids
        }


def _operator(*argv: str) -> Target:
    parser = argparse.ArgumentParser()
    add_target_arguments(parser)
    return resolve_target(parser.parse_args(list(argv)), environ={})


@pytest.fixture
def target(request: pytest.FixtureRequest) -> Iterator[JourneyTarget]:
    stack: str | None = request.param
    if stack and stack.startswith(LOCAL_SCANNER):
        request.getfixturevalue("aws_env")
        scanner = stack.removeprefix(LOCAL_SCANNER)
        local = LocalProcess(
            request.getfixturevalue("tmp_path"), [*DEMO_EMAIL_ARGS, "--parameter", f"Scanner={scanner}"]
        )
        try:
            yield _local_target(local)
        finally:
            local.stop()
        return
    if stack:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        operator = _operator("--stack", stack, *(["--region", region] if region else []))
        # Cold starts, a scan of a fresh definitions database and a Standard workflow's transitions.
        yield JourneyTarget(
            operator.description, operator.output("WebUrl"), operator, 180.0, 2.0, loopback_only=False
        )
        return
    request.getfixturevalue("aws_env")  # before the runtime starts: it inherits no real credentials
    yield _local_target(request.getfixturevalue("local_stack"))


def _local_target(local: LocalProcess) -> JourneyTarget:
    operator = _operator("--endpoint", local.aws_endpoint, "--state-dir", str(local.state_dir))
    for service in ("cognito-idp", "cloudformation"):
        assert urlsplit(operator.client(service).meta.endpoint_url).hostname in LOOPBACK_HOSTS
    return JourneyTarget(operator.description, local.web_url, operator, 30.0, 0.1, loopback_only=True)


@dataclass(frozen=True)
class Account:
    email: str
    password: str


@pytest.fixture
def account(target: JourneyTarget) -> Iterator[Account]:
    """A new user, created as an operator does (no invitation email); it and its files go afterwards."""
    cognito = target.operator.client("cognito-idp")
    pool = target.operator.output("UserPoolId")
    email = f"success+journey-{secrets.token_hex(6)}@{EMAIL_DOMAIN}"
    password = f"Journey-{secrets.token_hex(8)}-Aa9"
    cognito.admin_create_user(
        UserPoolId=pool,
        Username=email,
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
        MessageAction="SUPPRESS",
    )
    try:
        cognito.admin_set_user_password(UserPoolId=pool, Username=email, Password=password, Permanent=True)
        yield Account(email, password)
        _delete_files(target, Account(email, password))
    finally:
        cognito.admin_delete_user(UserPoolId=pool, Username=email)


def _delete_files(target: JourneyTarget, account: Account) -> None:
    """Whatever the journey left: a deployed stack keeps no test data."""
    owner = target.browser()
    owner.sign_in(account.email, account.password)
    file_ids: list[str] = []
    next_token: str | None = None
    for _ in range(MAX_LIST_PAGES):
        page = owner.call(
            "GET", "/files" + (f"?nextToken={quote(next_token, safe='')}" if next_token else "")
        )
        file_ids += [item["fileId"] for item in page["items"]]
        next_token = page.get("nextToken")
        if not next_token:
            break
    for file_id in file_ids:
        owner.call("DELETE", f"/files/{file_id}", expect=204)
