"""HTTP plumbing shared by both API functions: JSON errors, the caller's identity, the resolver."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import ServiceError, UnauthorizedError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from api.models import FIELD_ERROR_CODES, ErrorResponse
from common.errors import Conflict, FilepipeError, InvalidRequest, NotFound, ServiceThrottled
from common.observability import logger

JSON = "application/json"
SECURITY_SCHEME = "UserPoolJwt"
JWT_SECURITY: list[dict[str, list[str]]] = [{SECURITY_SCHEME: []}]
# Cognito subs are UUIDs; the same alphabet as the owner segment of ingest keys, so keys always parse.
_OWNER_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_STATUS_BY_ERROR: tuple[tuple[type[FilepipeError], int], ...] = (
    (InvalidRequest, 400),
    (NotFound, 404),
    (Conflict, 409),
    (ServiceThrottled, 429),
)
_RESPONSE_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
_ERROR_DESCRIPTIONS = {
    400: "The request is invalid; error.code says which part.",
    401: "No valid token.",
    404: "No such resource for this caller.",
    409: "The file's status does not allow this.",
    415: "The body is not JSON.",
    429: "Too many requests; retry later.",
}


def error_json(code: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message}})


def error_response(status: int, code: str, message: str) -> Response[Any]:
    return Response(status_code=status, content_type=JSON, body=error_json(code, message))


def error_responses(*statuses: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI entries for the error statuses a route can answer, all with the error body."""
    return {
        status: {"description": _ERROR_DESCRIPTIONS[status], "content": {JSON: {"model": ErrorResponse}}}
        for status in statuses
    }


def success_response(status: int, description: str, model: Any) -> dict[int, OpenAPIResponse]:
    return {status: {"description": description, "content": {JSON: {"model": model}}}}


def caller_id(app: APIGatewayHttpResolver) -> str:
    """The ``sub`` claim the JWT authorizer verified; every key and record of the caller hangs off it."""
    claims = app.current_event.request_context.authorizer.jwt_claim or {}
    subject = claims.get("sub")
    if not isinstance(subject, str) or not _OWNER_ID.fullmatch(subject):
        raise UnauthorizedError("the request carries no valid user identity")
    logger.append_keys(ownerId=subject)
    return subject


def caller_email(app: APIGatewayHttpResolver) -> str | None:
    """The verified email of the caller (id tokens carry it), where the owner's notifications go."""
    claims = app.current_event.request_context.authorizer.jwt_claim or {}
    email = claims.get("email")
    verified = str(claims.get("email_verified", "true")).lower() == "true"
    return email if isinstance(email, str) and "@" in email and verified else None


def _validation_error(errors: Sequence[Any]) -> tuple[str, str]:
    """One error code for the first problem, and a message that lists every problem (never the input)."""
    first = errors[0] if errors else {}
    kind = first.get("type", "")
    if kind == "json_invalid":
        return "InvalidJson", "the body is not valid JSON"
    location = [part for part in first.get("loc", ()) if isinstance(part, str)]
    field = location[1] if len(location) > 1 else None  # the top-level field, for nested problems too
    if kind == "missing":
        code = "MissingField"
    elif kind[:1].isupper():  # our own PydanticCustomError types are already error codes
        code = kind
    else:
        code = FIELD_ERROR_CODES.get(field or "", "InvalidRequest")
    problems = []
    for error in errors:
        location = error.get("loc", ("body",))
        where = ".".join(str(part) for part in location[1:]) or str(location[0])
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return code, "; ".join(problems)


def build_resolver() -> APIGatewayHttpResolver:
    """A resolver with request validation whose every answer, errors included, is our JSON shape."""
    app = APIGatewayHttpResolver(enable_validation=True)

    @app.exception_handler(RequestValidationError)
    def invalid_request(error: RequestValidationError) -> Response[Any]:
        code, message = _validation_error(error.errors())
        return error_response(400, code, message)

    @app.exception_handler(RequestUnsupportedContentType)
    def unsupported_body(error: RequestUnsupportedContentType) -> Response[Any]:
        return error_response(415, "UnsupportedMediaType", "send the body as application/json")

    @app.exception_handler(FilepipeError)
    def domain_error(error: FilepipeError) -> Response[Any]:
        for error_type, status in _STATUS_BY_ERROR:
            if isinstance(error, error_type):
                response = error_response(status, error.code, error.message)
                if status == 429:
                    response.headers["Retry-After"] = str(getattr(error, "retry_after", 1))
                return response
        return _internal_error(error)

    @app.exception_handler(ServiceError)
    def service_error(error: ServiceError) -> Response[Any]:
        status = HTTPStatus(error.status_code)
        return error_response(status.value, status.phrase.replace(" ", ""), str(error.msg))

    @app.exception_handler(Exception)
    def unexpected(error: Exception) -> Response[Any]:
        return _internal_error(error)

    @app.not_found
    def no_route(error: Exception) -> Response[Any]:
        event = app.current_event
        return error_response(404, "RouteNotFound", f"no route {event.http_method} {event.path}")

    return app


def _internal_error(error: Exception) -> Response[Any]:
    # Reaching this is a defect by definition: log everything, tell the caller nothing internal.
    logger.exception("unhandled error", extra={"errorType": type(error).__name__})
    return error_response(500, "InternalError", "something went wrong on our side")


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == JSON or (media_type.startswith("application/") and media_type.endswith("+json"))


def resolve(app: APIGatewayHttpResolver, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Route the event; bodies that are not JSON are refused before the validator tries to parse them."""
    headers = {str(name).lower(): value for name, value in (event.get("headers") or {}).items()}
    content_type = headers.get("content-type")
    if event.get("body") and content_type and not _is_json(str(content_type)):
        response: dict[str, Any] = {
            "statusCode": 415,
            "headers": {"Content-Type": JSON},
            "body": error_json("UnsupportedMediaType", "send the body as application/json"),
            "isBase64Encoded": False,
        }
    else:
        response = app.resolve(event, context)
    response.setdefault("headers", {}).update(_RESPONSE_HEADERS)
    return response
