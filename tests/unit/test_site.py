"""Publishing the web UI: config.json from the stack's outputs and the site files in the bucket."""

from __future__ import annotations

import json

from filepipe.site import FRONTEND, publish, site_config, start_definitions_update
from tests.stack import REGION, StackFixture


def test_config_comes_from_the_stack_outputs(stack: StackFixture) -> None:
    config = site_config(stack.stack.outputs, REGION)

    assert config["apiUrl"] == stack.stack.outputs["ApiUrl"]
    assert config["userPoolId"] == stack.physical("UserPool")
    assert config["userPoolClientId"] == stack.physical("UserPoolClient")
    assert config["cognitoEndpoint"] == f"https://cognito-idp.{REGION}.amazonaws.com/"
    assert config["maxFileBytes"] == int(stack.stack.parameters["MaxFileBytes"])
    assert "image/jpeg" in config["allowedTypes"]


def test_publish_uploads_the_site_and_removes_stale_files(stack: StackFixture) -> None:
    s3 = stack.client("s3")
    bucket = stack.physical("SiteBucket")
    s3.put_object(Bucket=bucket, Key="old-bundle.js", Body=b"stale")

    keys = publish(s3, bucket, {"apiUrl": "https://api.example.com"})

    listed = {item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed == set(keys)
    assert "index.html" in listed
    assert "old-bundle.js" not in listed
    index = s3.get_object(Bucket=bucket, Key="index.html")
    assert index["ContentType"] == "text/html"
    assert index["CacheControl"].startswith("no-cache")
    assert index["Body"].read() == (FRONTEND / "index.html").read_bytes()
    config = s3.get_object(Bucket=bucket, Key="config.json")
    assert json.loads(config["Body"].read()) == {"apiUrl": "https://api.example.com"}


class _Lambda:
    def __init__(self) -> None:
        self.invoked: list[dict[str, str]] = []

    def invoke(self, **kwargs: str) -> None:
        self.invoked.append(kwargs)


def test_the_definitions_update_starts_once_in_clamav_mode_only(stack: StackFixture) -> None:
    awslambda = _Lambda()
    # The template's default scanner, GuardDuty, has no definitions update to start.
    assert "DefinitionsUpdateFunctionName" not in stack.stack.outputs
    assert start_definitions_update(awslambda, stack.stack.outputs) is False
    assert start_definitions_update(awslambda, {"DefinitionsUpdateFunctionName": "s-Definitions-1"}) is True
    assert awslambda.invoked == [{"FunctionName": "s-Definitions-1", "InvocationType": "Event"}]
