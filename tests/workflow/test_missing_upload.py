"""An upload version that vanishes mid-run ends FAILED as SourceMissing, whichever step meets it.

The steps read the upload under their own roles, as on AWS (tests/iam.py): without s3:ListBucket on the
ingest bucket S3 would answer AccessDenied, and the record would blame permissions for a missing file.
"""

from __future__ import annotations

from typing import Any

import pytest

from common.model import FileRef
from filepipe.local.services.awslambda.invoke import InvokeResult, invoke_in_process
from tests import images
from tests.workflow.harness import Pipeline

# Each step that reads the upload, with each Scanner whose stack has it (GuardDuty's verdict reads nothing:
# GuardDuty itself reads the upload, and tells a missing one as ACCESS_DENIED).
CASES = [
    (scanner, step)
    for step in ("ValidateFunction", "ScanFunction", "ThumbnailsFunction", "PromoteFunction")
    for scanner in ("ClamAV", "GuardDuty")
    if not (step == "ScanFunction" and scanner == "GuardDuty")
]


@pytest.mark.parametrize(("scanner", "step"), CASES, ids=[f"{s}-{c}" for c, s in CASES], indirect=["scanner"])
def test_an_upload_gone_mid_run_is_recorded_as_missing(pipeline: Pipeline, step: str) -> None:
    def remove_then_run(spec: Any, event: dict[str, Any]) -> InvokeResult:
        ref = FileRef.from_state(event)  # the version itself, as a lifecycle expiry or an operator removes it
        pipeline.s3.delete_object(Bucket=ref.bucket, Key=ref.key, VersionId=ref.version)
        return invoke_in_process(spec, event)

    pipeline.router.replace(step, remove_then_run)
    ref, execution = pipeline.process(images.jpeg((64, 64)))

    assert execution["status"] == "FAILED"
    record = pipeline.record(ref)
    assert record["status"] == "FAILED"
    assert record["error"]["code"] == "SourceMissing"
