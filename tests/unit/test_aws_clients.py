"""The functions' boto3 clients: how they sign and where their presigned URLs point."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from common.aws import client, reset_clients


@pytest.fixture
def region(aws_env: None, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[str]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", request.param)
    monkeypatch.setenv("AWS_REGION", request.param)
    reset_clients()
    yield request.param
    reset_clients()


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-2", "ap-southeast-2"], indirect=True)
def test_presigned_urls_use_the_buckets_regional_host(region: str) -> None:
    # A new bucket outside us-east-1 answers the global host with a redirect a browser POST cannot follow.
    s3 = client("s3")
    post = s3.generate_presigned_post("filepipe-ingest", "uploads/u/f", ExpiresIn=60)
    get = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "filepipe-files", "Key": "k"}, ExpiresIn=60
    )
    assert urlsplit(post["url"]).hostname == f"filepipe-ingest.s3.{region}.amazonaws.com"
    assert urlsplit(get).hostname == f"filepipe-files.s3.{region}.amazonaws.com"
    assert post["fields"]["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert "X-Amz-Signature=" in get


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:8002", "http://localhost:8002"])
@pytest.mark.parametrize("region", ["us-east-1"], indirect=True)
def test_a_local_endpoint_gets_path_style_urls(
    region: str, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    reset_clients()
    post = client("s3").generate_presigned_post("filepipe-ingest", "uploads/u/f", ExpiresIn=60)
    assert post["url"] == f"{endpoint}/filepipe-ingest"
