"""The API functions' cold start: importing a handler loads neither boto3 nor Pillow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

FUNCTIONS_DIR = Path(__file__).resolve().parents[3] / "functions"
PROBE = """
import json, sys
import {module}
print(json.dumps({{name: name in sys.modules for name in ("boto3", "PIL", "botocore.client")}}))
"""


@pytest.mark.parametrize("module", ["api.handler", "api.public_handler"])
def test_handler_import_loads_no_boto3_and_no_pillow(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        cwd=FUNCTIONS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == {"boto3": False, "PIL": False, "botocore.client": False}
