"""The HTTP API front: routes, JWT authorizer, CORS and the 2.0 payload as API Gateway HTTP APIs do them."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from filepipe.local.http_server import status_line
from filepipe.local.services.apigateway.jwt_authorizer import (
    CognitoJwtAuthorizer,
    Unauthorized,
    gateway_claims,
)
from filepipe.local.services.awslambda.invoke import InvokeResult
from filepipe.local.services.awslambda.runner import RequestTooLarge, Throttled
from filepipe.local.stack.model import HttpApiSpec, HttpRoute, JwtAuthorizerSpec

Invoke = Callable[[str, bytes], InvokeResult]


class IntegrationTimeout(Exception):
    """The function did not answer within the route's integration timeout."""


StartResponse = Callable[..., Any]
Response = tuple[int, list[tuple[str, str]], bytes]

MAX_BODY_BYTES = 10 * 1024 * 1024
_TEXT_TYPES = re.compile(
    r"^(text/|application/(json|xml|javascript|x-www-form-urlencoded)|[^;]*\+(json|xml))"
)
_COGNITO_ISSUER = re.compile(
    r"^https://cognito-idp\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<pool>[\w-]+)$"
)


def _json_message(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps({"message": message}).encode()
    return status, [("Content-Type", "application/json"), *(headers or [])], body


@dataclass(frozen=True)
class _CompiledRoute:
    route: HttpRoute
    pattern: re.Pattern[str] | None
    static_segments: int
    greedy: bool

    @property
    def rank(self) -> tuple[int, int, int, int]:
        """Lower is more specific: exact paths, then more literal segments, then greedy, then $default."""
        is_default = self.pattern is None
        return (int(is_default), int(self.greedy), -self.static_segments, int(self.route.method == "ANY"))


def _compile(route: HttpRoute) -> _CompiledRoute:
    if route.path == "$default":
        return _CompiledRoute(route, None, 0, False)
    parts = []
    static = 0
    greedy = False
    for segment in route.path.strip("/").split("/") if route.path != "/" else []:
        match = re.fullmatch(r"\{([A-Za-z0-9_]+)(\+?)\}", segment)
        if match is None:
            parts.append(re.escape(segment))
            static += 1
        elif match.group(2):
            parts.append(f"(?P<{match.group(1)}>.+)")
            greedy = True
        else:
            parts.append(f"(?P<{match.group(1)}>[^/]+)")
    return _CompiledRoute(route, re.compile("^/" + "/".join(parts) + "$"), static, greedy)


class RouteTable:
    """Selects the route API Gateway would pick for a method and path."""

    def __init__(self, routes: Iterable[HttpRoute]) -> None:
        self._routes = sorted((_compile(route) for route in routes), key=lambda r: r.rank)

    def match(self, method: str, path: str) -> tuple[HttpRoute, dict[str, str]] | None:
        for compiled in self._routes:
            if compiled.route.method not in (method, "ANY") and compiled.pattern is not None:
                continue
            if compiled.pattern is None:
                return compiled.route, {}
            found = compiled.pattern.match(path)
            if found:
                return compiled.route, {name: value for name, value in found.groupdict().items()}
        return None


def _origin_allowed(origin: str, allowed: Iterable[str]) -> bool:
    return any(entry == "*" or entry.rstrip("/") == origin for entry in allowed)


class HttpApiFront:
    """A WSGI app that answers for one HTTP API of the stack."""

    def __init__(
        self,
        spec: HttpApiSpec,
        invoke: Invoke,
        *,
        account: str,
        region: str,
        aws_endpoint: str,
        authorizers: Mapping[str, CognitoJwtAuthorizer] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self._invoke = invoke
        self._account = account
        self._region = region
        self._routes = RouteTable(spec.routes)
        self._clock = clock
        self._cors = spec.cors or {}
        self._authorizers = dict(authorizers or {})
        for name, authorizer in spec.authorizers.items():
            if name not in self._authorizers:
                self._authorizers[name] = self._cognito_authorizer(authorizer, aws_endpoint)
        stage_names = list(spec.stages) or ["$default"]
        self._stage = "$default" if "$default" in stage_names else stage_names[0]
        self._stage_variables = spec.stages.get(self._stage, {})

    @staticmethod
    def _cognito_authorizer(spec: JwtAuthorizerSpec, aws_endpoint: str) -> CognitoJwtAuthorizer:
        match = _COGNITO_ISSUER.match(spec.issuer)
        if match is None:
            raise ValueError(f"authorizer {spec.name}: issuer {spec.issuer} is not a Cognito user pool")
        return CognitoJwtAuthorizer(
            match.group("pool"),
            spec.audiences,
            region=match.group("region"),
            endpoint=aws_endpoint,
            issuer=spec.issuer,
        )

    # ------------------------------------------------------------ WSGI
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        request_id = base64.b32encode(uuid.uuid4().bytes[:10]).decode().rstrip("=")
        status, headers, body = self.handle(environ, request_id)
        headers = [*headers, ("apigw-requestid", request_id), ("Content-Length", str(len(body)))]
        start_response(status_line(status), headers)
        return [body]

    def handle(self, environ: dict[str, Any], request_id: str) -> Response:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "/") or "/"
        origin = environ.get("HTTP_ORIGIN")
        if self._stage != "$default":
            prefix = f"/{self._stage}"
            if not (path == prefix or path.startswith(prefix + "/")):
                return _json_message(404, "Not Found")
            path = path[len(prefix) :] or "/"

        if (
            self._cors
            and method == "OPTIONS"
            and origin
            and environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")
        ):
            return self._preflight(environ, origin)

        status, headers, body = self._route(environ, method, path, request_id)
        if self._cors:
            headers = [(n, v) for n, v in headers if not n.lower().startswith("access-control-")]
            headers += self._cors_headers(origin)
        return status, headers, body

    # ------------------------------------------------------------ CORS
    def _preflight(self, environ: dict[str, Any], origin: str) -> Response:
        if not _origin_allowed(origin, self._cors.get("AllowOrigins", [])):
            return 204, [], b""
        requested_method = str(environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD", "")).upper()
        methods = [m.upper() for m in self._cors.get("AllowMethods", [])]
        if "*" not in methods and requested_method not in methods:
            return 204, [], b""
        requested = [
            h.strip().lower()
            for h in str(environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "")).split(",")
            if h.strip()
        ]
        allowed_headers = [h.lower() for h in self._cors.get("AllowHeaders", [])]
        if "*" not in allowed_headers and any(h not in allowed_headers for h in requested):
            return 204, [], b""
        headers = [
            ("Access-Control-Allow-Origin", self._allow_origin_value(origin)),
            ("Access-Control-Allow-Methods", ",".join(methods)),
            ("Vary", "Origin"),
        ]
        if requested:
            headers.append(("Access-Control-Allow-Headers", ",".join(requested)))
        if "MaxAge" in self._cors:
            headers.append(("Access-Control-Max-Age", str(self._cors["MaxAge"])))
        if self._cors.get("AllowCredentials"):
            headers.append(("Access-Control-Allow-Credentials", "true"))
        return 204, headers, b""

    def _allow_origin_value(self, origin: str) -> str:
        allowed = self._cors.get("AllowOrigins", [])
        return "*" if "*" in allowed and not self._cors.get("AllowCredentials") else origin

    def _cors_headers(self, origin: str | None) -> list[tuple[str, str]]:
        if not origin or not _origin_allowed(origin, self._cors.get("AllowOrigins", [])):
            return []
        headers = [("Access-Control-Allow-Origin", self._allow_origin_value(origin)), ("Vary", "Origin")]
        if self._cors.get("ExposeHeaders"):
            headers.append(("Access-Control-Expose-Headers", ",".join(self._cors["ExposeHeaders"])))
        if self._cors.get("AllowCredentials"):
            headers.append(("Access-Control-Allow-Credentials", "true"))
        return headers

    # ------------------------------------------------------------ routing, authorization, invocation
    def _route(self, environ: dict[str, Any], method: str, path: str, request_id: str) -> Response:
        matched = self._routes.match(method, path)
        if matched is None:
            return _json_message(404, "Not Found")
        route, path_parameters = matched
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > MAX_BODY_BYTES:
            return _json_message(413, "Request Entity Too Large")
        body = environ["wsgi.input"].read(length) if length else b""

        authorizer_context: dict[str, Any] | None = None
        if route.authorizer is not None:
            decision = self._authorize(environ, route)
            if isinstance(decision, tuple):
                return decision
            authorizer_context = decision

        event = self.event(environ, route, path, path_parameters, body, request_id, authorizer_context)
        try:
            result = self._invoke_within(route, json.dumps(event).encode())
        except IntegrationTimeout:
            return _json_message(503, "Service Unavailable")
        except Throttled:
            return _json_message(503, "Service Unavailable")
        except RequestTooLarge:
            # Under the API's 10 MB but over Invoke's 6 MB once in the event: the integration fails.
            return _json_message(500, "Internal Server Error")
        if result.function_error is not None:
            return _json_message(500, "Internal Server Error")
        return self._response(result.payload)

    def _invoke_within(self, route: HttpRoute, payload: bytes) -> InvokeResult:
        """Invoke the route's function; past the integration's timeout the caller is answered without it,
        as API Gateway answers, while the invocation runs on to its end as it does on Lambda."""
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def call() -> None:
            try:
                outcome["result"] = self._invoke(route.function_arn, payload)
            except BaseException as error:  # handed to the waiting request below
                outcome["error"] = error
            finally:
                done.set()

        threading.Thread(target=call, name=f"integration-{route.route_key}", daemon=True).start()
        if not done.wait(route.timeout_ms / 1000):
            raise IntegrationTimeout(route.route_key)
        if "error" in outcome:
            raise outcome["error"]
        result: InvokeResult = outcome["result"]
        return result

    def _authorize(self, environ: dict[str, Any], route: HttpRoute) -> dict[str, Any] | Response:
        assert route.authorizer is not None
        spec = self.spec.authorizers[route.authorizer]
        header = spec.identity_source.removeprefix("$request.header.")
        value = environ.get("HTTP_" + header.upper().replace("-", "_"))
        if not value:
            return _json_message(401, "Unauthorized", [("www-authenticate", "Bearer")])
        try:
            claims = self._authorizers[route.authorizer].verify_header(value)
        except Unauthorized as error:
            description = error.reason.replace('"', "'")
            challenge = f'Bearer scope="" error="invalid_token" error_description="{description}"'
            return _json_message(401, "Unauthorized", [("www-authenticate", challenge)])
        token_scopes = str(claims.get("scope", "")).split()
        if route.scopes and not set(route.scopes) & set(token_scopes):
            challenge = (
                f'Bearer scope="{" ".join(route.scopes)}" error="insufficient_scope" '
                'error_description="the token does not have the scopes the route requires"'
            )
            return _json_message(403, "Forbidden", [("www-authenticate", challenge)])
        return {"jwt": {"claims": gateway_claims(claims), "scopes": token_scopes if route.scopes else None}}

    def event(
        self,
        environ: dict[str, Any],
        route: HttpRoute,
        path: str,
        path_parameters: dict[str, str],
        body: bytes,
        request_id: str,
        authorizer: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """The payload format 2.0 event API Gateway sends the integration."""
        headers: dict[str, str] = {}
        cookies: list[str] = []
        for key, value in environ.items():
            if not isinstance(key, str):
                continue
            if key.startswith("HTTP_"):
                name = key[5:].replace("_", "-").lower()
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
                name = key.replace("_", "-").lower()
            else:
                continue
            if name == "cookie":
                cookies.extend(part.strip() for part in str(value).split(";") if part.strip())
                continue
            headers[name] = f"{headers[name]},{value}" if name in headers else str(value)
        raw_query = str(environ.get("QUERY_STRING", ""))
        query: dict[str, str] = {}
        for name, value in parse_qsl(raw_query, keep_blank_values=True):
            query[name] = f"{query[name]},{value}" if name in query else value
        now = self._clock()
        host = headers.get("host", "localhost")
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": path if self._stage == "$default" else f"/{self._stage}{path}",
            "rawQueryString": raw_query,
            "headers": headers,
            "requestContext": {
                "accountId": self._account,
                "apiId": self.spec.api_id,
                "domainName": host,
                "domainPrefix": host.split(".")[0],
                "http": {
                    "method": environ.get("REQUEST_METHOD", "GET").upper(),
                    "path": path if self._stage == "$default" else f"/{self._stage}{path}",
                    "protocol": environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                    "sourceIp": environ.get("REMOTE_ADDR", "127.0.0.1"),
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": request_id,
                "routeKey": route.route_key,
                "stage": self._stage,
                "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(now * 1000),
            },
            "isBase64Encoded": False,
        }
        if cookies:
            event["cookies"] = cookies
        if query:
            event["queryStringParameters"] = query
        if path_parameters:
            event["pathParameters"] = path_parameters
        if authorizer is not None:
            event["requestContext"]["authorizer"] = authorizer
        if self._stage_variables:
            event["stageVariables"] = dict(self._stage_variables)
        if body:
            content_type = headers.get("content-type", "")
            text = None
            if _TEXT_TYPES.match(content_type.lower()) or not content_type:
                try:
                    text = body.decode()
                except UnicodeDecodeError:
                    text = None
            if text is None:
                event["body"] = base64.b64encode(body).decode()
                event["isBase64Encoded"] = True
            else:
                event["body"] = text
        return event

    @staticmethod
    def _response(payload: bytes) -> Response:
        """Map the function's result to HTTP as payload format 2.0 defines it."""
        try:
            result = json.loads(payload or b"null")
        except ValueError:
            return _json_message(500, "Internal Server Error")
        if not isinstance(result, dict) or "statusCode" not in result:
            text = result if isinstance(result, str) else json.dumps(result)
            return 200, [("Content-Type", "application/json")], text.encode()
        try:
            status = int(result["statusCode"])
        except (TypeError, ValueError):
            return _json_message(500, "Internal Server Error")
        headers = [(str(name), str(value)) for name, value in (result.get("headers") or {}).items()]
        headers += [("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or []]
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", "application/json"))
        raw = result.get("body")
        if raw is None:
            body = b""
        elif result.get("isBase64Encoded"):
            body = base64.b64decode(str(raw))
        else:
            body = str(raw).encode()
        return status, headers, body
