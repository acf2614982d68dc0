"""The S3 role check the workflow tests run under: it must refuse what S3 on AWS refuses, and only that."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.iam import RolePolicy, answer_as_aws
from tests.stack import REGION

BUCKET = "filepipe-role-check"
OBJECTS = f"arn:aws:s3:::{BUCKET}/data/*"
READ = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": OBJECTS}
LIST = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}"}


@pytest.fixture
def s3(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        client.put_object(Bucket=BUCKET, Key="data/present", Body=b"x")
        yield client


def _as(s3: Any, *statements: dict[str, Any]) -> Any:
    """A second client of the same moto, answering as a role with these statements."""
    role = RolePolicy("checked-role", statements)
    client = boto3.client("s3", region_name=REGION)
    answer_as_aws(client, lambda: role)
    return client


def _status_and_code(call: Any) -> tuple[int, str]:
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def test_a_missing_object_is_a_403_without_list_and_a_404_with_it(s3: Any) -> None:
    reader = _as(s3, READ)
    assert _status_and_code(lambda: reader.get_object(Bucket=BUCKET, Key="data/absent")) == (
        403,
        "AccessDenied",
    )
    assert _status_and_code(lambda: reader.head_object(Bucket=BUCKET, Key="data/absent")) == (403, "403")
    assert reader.get_object(Bucket=BUCKET, Key="data/present")["Body"].read() == b"x"

    lister = _as(s3, READ, LIST)
    assert _status_and_code(lambda: lister.get_object(Bucket=BUCKET, Key="data/absent")) == (404, "NoSuchKey")
    assert _status_and_code(lambda: lister.head_object(Bucket=BUCKET, Key="data/absent")) == (404, "404")


def test_a_list_grant_limited_to_a_prefix_lists_there_but_does_not_reveal_missing_objects(s3: Any) -> None:
    limited = {**LIST, "Condition": {"StringLike": {"s3:prefix": ["data/*"]}}}
    reader = _as(s3, READ, limited)

    assert reader.list_objects_v2(Bucket=BUCKET, Prefix="data/")["KeyCount"] == 1
    assert _status_and_code(lambda: reader.list_objects_v2(Bucket=BUCKET)) == (403, "AccessDenied")
    # AWS does not document that such a grant turns the 403 into a 404, so the check never counts on it.
    assert _status_and_code(lambda: reader.head_object(Bucket=BUCKET, Key="data/absent")) == (403, "403")


def test_naming_a_version_needs_the_version_actions(s3: Any) -> None:
    version = s3.list_object_versions(Bucket=BUCKET)["Versions"][0]["VersionId"]
    reader = _as(s3, READ, LIST, {"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": OBJECTS})

    assert _status_and_code(
        lambda: reader.get_object(Bucket=BUCKET, Key="data/present", VersionId=version)
    ) == (403, "AccessDenied")
    assert _status_and_code(
        lambda: reader.delete_object(Bucket=BUCKET, Key="data/present", VersionId=version)
    ) == (403, "AccessDenied")
    assert _status_and_code(
        lambda: reader.copy_object(
            CopySource={"Bucket": BUCKET, "Key": "data/present", "VersionId": version},
            Bucket=BUCKET,
            Key="data/copy",
        )
    ) == (403, "AccessDenied")


def test_writes_outside_the_granted_resource_and_any_denied_action_are_refused(s3: Any) -> None:
    writer = _as(
        s3,
        {"Effect": "Allow", "Action": "s3:*Object", "Resource": OBJECTS},
        {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"},
    )
    writer.put_object(Bucket=BUCKET, Key="data/new", Body=b"y")
    assert _status_and_code(lambda: writer.put_object(Bucket=BUCKET, Key="other/new", Body=b"y")) == (
        403,
        "AccessDenied",
    )
    assert _status_and_code(lambda: writer.delete_object(Bucket=BUCKET, Key="data/new")) == (
        403,
        "AccessDenied",
    )
    assert s3.get_object(Bucket=BUCKET, Key="data/new")["Body"].read() == b"y"


def test_a_call_the_check_cannot_judge_is_refused_and_presigning_is_left_alone(s3: Any) -> None:
    reader = _as(s3, READ)
    with pytest.raises(ValueError, match="GetBucketAccelerateConfiguration"):
        reader.get_bucket_accelerate_configuration(Bucket=BUCKET)
    # A presigned URL is authorised when it is used, by whoever signed it; signing sends nothing.
    assert "other/key" in reader.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "other/key"}
    )
