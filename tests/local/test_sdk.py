"""The runtime's SDK speed-ups leave what the SDK sends unchanged."""

from __future__ import annotations

from typing import Any

import boto3
import botocore.useragent
import pytest

from filepipe.local.sdk import memoize_user_agent_sanitizer


def _user_agent(client: Any) -> str:
    sent: list[str] = []

    def capture(request: Any, **_: Any) -> None:
        sent.append(request.headers["User-Agent"].decode())
        raise RuntimeError("captured")  # nothing needs to leave this process

    client.meta.events.register_first("before-send.s3.ListBuckets", capture)
    try:
        with pytest.raises(RuntimeError, match="captured"):
            client.list_buckets()
    finally:
        client.meta.events.unregister("before-send.s3.ListBuckets", capture)
    return sent[0]


def test_the_memoized_sanitizer_gives_the_same_components_and_header(monkeypatch: pytest.MonkeyPatch) -> None:
    original = botocore.useragent.sanitize_user_agent_string_component
    monkeypatch.setattr(botocore.useragent, "sanitize_user_agent_string_component", original)
    monkeypatch.setenv("AWS_EXECUTION_ENV", "AWS_Lambda_python3.11 (local/é#1)")  # characters it replaces
    session = boto3.session.Session(
        aws_access_key_id="AKIALOCAL", aws_secret_access_key="x", region_name="us-east-1"
    )
    client = session.client("s3", endpoint_url="http://127.0.0.1:9")
    before = _user_agent(client)

    memoize_user_agent_sanitizer()
    memoized = botocore.useragent.sanitize_user_agent_string_component
    assert memoized is not original
    for text, allow_hash in [("a b/c#d", True), ("a b/c#d", False), ("Boto3", False), ("é~!|`", True)]:
        assert memoized(text, allow_hash=allow_hash) == original(text, allow_hash)
    assert _user_agent(client) == before
    assert "AWS_Lambda_python3.11" in before
    memoize_user_agent_sanitizer()  # a second call keeps the one cache
    assert botocore.useragent.sanitize_user_agent_string_component is memoized
