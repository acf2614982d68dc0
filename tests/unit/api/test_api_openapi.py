"""The committed OpenAPI document is what the code generates, and it agrees with the template's routes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from filepipe.openapi import DOCUMENT_PATH, render_document
from filepipe.template import Template

ROOT = Path(__file__).resolve().parents[3]
METHODS = {"get", "post", "put", "patch", "delete"}


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if method in METHODS
    }


def test_committed_document_matches_the_code() -> None:
    assert DOCUMENT_PATH.read_text(encoding="utf-8") == render_document(), (
        "api/openapi.json is out of date: run .venv/bin/python -m filepipe.openapi"
    )


def test_check_command_reports_a_stale_document(tmp_path: Path) -> None:
    stale = tmp_path / "openapi.json"
    stale.write_text("{}\n")
    command = [sys.executable, "-m", "filepipe.openapi", "--check", "--output"]

    current = subprocess.run(
        [*command, str(DOCUMENT_PATH)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    outdated = subprocess.run([*command, str(stale)], cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert current.returncode == 0, current.stderr
    assert outdated.returncode == 1
    assert "out of date" in outdated.stderr


def test_public_routes_need_no_token_and_all_others_a_jwt_bearer() -> None:
    document = json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))
    public = {
        ("GET", "/shares/{token}"),
        ("POST", "/shares/{token}/unlock"),
        ("POST", "/shares/{token}/download"),
        ("GET", "/requests/{token}"),
        ("POST", "/requests/{token}/unlock"),
        ("POST", "/requests/{token}/uploads"),
        ("POST", "/requests/{token}/uploads/{fileId}/progress"),
        ("POST", "/requests/{token}/uploads/{fileId}/parts"),
        ("POST", "/requests/{token}/uploads/{fileId}/complete"),
        ("POST", "/requests/{token}/status"),
    }

    operations = _operations(document)

    assert document["components"]["securitySchemes"] == {
        "UserPoolJwt": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A Cognito user pool ID or access token; API Gateway's JWT authorizer checks it.",
        }
    }
    assert "security" not in document
    assert public <= operations.keys()
    for key, operation in operations.items():
        if key in public:
            assert not operation.get("security"), key
        else:
            assert operation["security"] == [{"UserPoolJwt": []}], key


def test_document_describes_our_errors_not_powertools_validation_bodies() -> None:
    document = json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))

    for key, operation in _operations(document).items():
        assert "422" not in operation["responses"], key
        errors = [status for status in operation["responses"] if status.startswith("4")]
        assert errors, key
        for status in errors:
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (key, status)
    assert (
        not {"HTTPValidationError", "ValidationError", "ResponseValidationError"}
        & document["components"]["schemas"].keys()
    )
    upload = document["paths"]["/uploads"]["post"]
    assert upload["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateUploadRequest"
    }
    assert set(upload["responses"]) >= {"201", "400"}


def test_document_and_template_declare_the_same_routes_and_authorizers(template: Template) -> None:
    document = json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))
    template_paths = template.resources["HttpApi"]["Properties"]["Body"]["paths"]

    template_operations = _operations({"paths": template_paths})

    assert template_operations.keys() == _operations(document).keys()
    for key, operation in _operations(document).items():
        gateway = template_operations[key]
        expects_token = gateway.get("security") != [{"NONE": []}]
        assert bool(operation.get("security")) == expects_token, key
        function = "ApiFunction" if expects_token else "ShareApiFunction"
        assert function in json.dumps(gateway["x-amazon-apigateway-integration"]), key
