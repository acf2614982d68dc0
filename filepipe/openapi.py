"""Generate the HTTP API's OpenAPI document from the two API functions' routes and models.

``python -m filepipe.openapi`` writes ``api/openapi.json``; ``--check`` only reports whether the
committed file still matches the code (exit status 1 when it does not).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from filepipe.function_code import use_function_code

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT_PATH = ROOT / "api" / "openapi.json"
TITLE = "filepipe API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Upload files through presigned URLs, follow their processing, download and share them. Every route "
    "needs a Cognito user pool token (`Authorization: Bearer ...`) except the public share-link and "
    "request-link routes. "
    'Errors are JSON `{"error": {"code": ..., "message": ...}}` with a 4xx status; a 5xx is always a defect.'
)
HANDLER_MODULES = ("api.handler", "api.public_handler")
# Powertools documents its own 422 body for validation errors; this API answers those with a 400 and
# the error body each route declares, so the 422 entries and their schemas are dropped.
_POWERTOOLS_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")


def _resolvers() -> list[Any]:
    return [importlib.import_module(name).app for name in HANDLER_MODULES]


def _security_schemes() -> dict[str, Any]:
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    from api.gateway import SECURITY_SCHEME

    return {
        SECURITY_SCHEME: HTTPBearer(
            bearerFormat="JWT",
            description="A Cognito user pool ID or access token; API Gateway's JWT authorizer checks it.",
        )
    }


def _merge(documents: list[dict[str, Any]]) -> dict[str, Any]:
    merged = documents[0]
    schemas = merged.setdefault("components", {}).setdefault("schemas", {})
    for document in documents[1:]:
        for path, operations in document.get("paths", {}).items():
            target = merged.setdefault("paths", {}).setdefault(path, {})
            for method, operation in operations.items():
                if method in target:
                    raise ValueError(f"{method.upper()} {path} is defined by two functions")
                target[method] = operation
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            if schemas.setdefault(name, schema) != schema:
                raise ValueError(f"two different schemas are both named {name}")
    return merged


def _drop_powertools_validation_errors(document: dict[str, Any]) -> None:
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    schemas = document.get("components", {}).get("schemas", {})
    for name in _POWERTOOLS_VALIDATION_SCHEMAS:
        schemas.pop(name, None)


def build_document() -> dict[str, Any]:
    use_function_code()
    schemes = _security_schemes()
    documents = [
        json.loads(
            resolver.get_openapi_json_schema(
                title=TITLE, version=VERSION, description=DESCRIPTION, security_schemes=schemes
            )
        )
        for resolver in _resolvers()
    ]
    document = _merge(documents)
    _drop_powertools_validation_errors(document)
    document["paths"] = dict(sorted(document["paths"].items()))
    document["components"]["schemas"] = dict(sorted(document["components"]["schemas"].items()))
    return document


def render_document() -> str:
    return json.dumps(build_document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m filepipe.openapi", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed document is out of date")
    parser.add_argument("--output", type=Path, default=DOCUMENT_PATH, help="where the document goes")
    args = parser.parse_args(argv)
    rendered = render_document()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != rendered:
            print(f"{args.output} is out of date: run python -m filepipe.openapi", file=sys.stderr)
            return 1
        print(f"{args.output} matches the code")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(rendered, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
