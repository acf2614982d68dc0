"""HTTP API resources as API Gateway creates them: the integration timeout's bounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.local.provisioning import provision_text

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
  Reports:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: handler.main
      InlineCode: "def main(event, context): return {{}}"
      Events:
        Get:
          Type: HttpApi
          Properties: {{ApiId: !Ref Api, Method: GET, Path: /reports, TimeoutInMillis: {timeout}}}
"""


@pytest.mark.parametrize("timeout", [49, 30_001])
def test_an_integration_timeout_outside_50_ms_to_30_s_stops_the_deployment(
    timeout: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="timeout must be between 50 and 30000 ms"):
        provision_text(tmp_path, monkeypatch, TEMPLATE.format(timeout=timeout), "slow-api")


@pytest.mark.parametrize("timeout", [50, 30_000])
def test_integration_timeouts_at_the_bounds_are_recorded_on_the_route(
    timeout: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = provision_text(tmp_path, monkeypatch, TEMPLATE.format(timeout=timeout), "slow-api")

    [route] = stack.http_apis["Api"].routes
    assert (route.route_key, route.timeout_ms) == ("GET /reports", timeout)
