"""Lazily created, cached boto3 clients: nothing talks to AWS at import time."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from botocore.config import Config

# Standard mode retries throttling and transient errors with backoff before a domain error surfaces.
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=30)
# botocore still presigns us-east-1 URLs with SigV2, which S3 refuses for buckets created since 2020.
# Its default host for presigned URLs is the global bucket.s3.amazonaws.com, which S3 answers with a
# redirect for a new bucket outside us-east-1, and a browser's POST cannot follow that: always sign for
# the bucket's regional virtual host.
_S3_CONFIG = _CLIENT_CONFIG.merge(
    Config(
        signature_version="s3v4",
        s3={"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"},
    )
)
# An endpoint override (the local runtime) serves every bucket under one host: path-style URLs.
_S3_ENDPOINT_CONFIG = _CLIENT_CONFIG.merge(Config(signature_version="s3v4", s3={"addressing_style": "path"}))


@cache
def client(service: str) -> Any:
    import boto3  # deferred: boto3's import costs ~100 ms of cold start in the API functions

    config = _CLIENT_CONFIG
    if service == "s3":
        config = _S3_ENDPOINT_CONFIG if os.environ.get("AWS_ENDPOINT_URL") else _S3_CONFIG
    return boto3.session.Session().client(service, config=config)


def reset_clients() -> None:
    """Forget cached clients (tests switch endpoints and credentials between cases)."""
    client.cache_clear()


def error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "Throttling",
        "SlowDown",
        "TooManyRequestsException",
    }
)
