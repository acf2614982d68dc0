"""The HTTP API front: route selection, JWT authorization, CORS and the payload format 2.0 both ways."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.test import EnvironBuilder

from filepipe.local.services.apigateway.http_api import HttpApiFront, RouteTable
from filepipe.local.services.apigateway.jwt_authorizer import CognitoJwtAuthorizer
from filepipe.local.services.awslambda.invoke import InvokeResult
from filepipe.local.services.awslambda.runner import MAX_SYNC_PAYLOAD, RequestTooLarge
from filepipe.local.stack.model import HttpApiSpec, HttpRoute, JwtAuthorizerSpec

POOL = "us-east-1_TESTPOOL"
ISSUER = f"https://cognito-idp.us-east-1.amazonaws.com/{POOL}"
CLIENT_ID = "client123"
WEB = "http://127.0.0.1:8000"
PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_JWK = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(PRIVATE_KEY.public_key()))
FILES = "arn:aws:lambda:us-east-1:123456789012:function:files"
PUBLIC = "arn:aws:lambda:us-east-1:123456789012:function:public"


def token(**overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "7d1c2f3e-0000-4000-8000-000000000001",
        "aud": CLIENT_ID,
        "token_use": "id",
        "email": "someone@example.com",
        "cognito:groups": ["a", "b"],
        "iat": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, PRIVATE_KEY, algorithm="RS256", headers={"kid": "key1"})


def spec() -> HttpApiSpec:
    routes = [
        HttpRoute("GET", "/files", FILES, "2.0", "UserPoolJwt"),
        HttpRoute("GET", "/files/{fileId}", FILES, "2.0", "UserPoolJwt"),
        HttpRoute("GET", "/files/latest", FILES, "2.0", "UserPoolJwt"),
        HttpRoute("POST", "/files/{fileId}/shares", FILES, "2.0", "UserPoolJwt"),
        HttpRoute("GET", "/shares/{token}", PUBLIC, "2.0", None),
        HttpRoute("ANY", "/assets/{proxy+}", PUBLIC, "2.0", None),
        HttpRoute("GET", "/reports", PUBLIC, "2.0", None, timeout_ms=300),
    ]
    authorizer = JwtAuthorizerSpec("UserPoolJwt", ISSUER, (CLIENT_ID,), "$request.header.Authorization")
    cors = {
        "AllowOrigins": [WEB],
        "AllowHeaders": ["authorization", "content-type"],
        "AllowMethods": ["GET", "POST", "DELETE", "OPTIONS"],
        "MaxAge": 600,
    }
    return HttpApiSpec(
        "HttpApi", "api123", "api", routes, {"UserPoolJwt": authorizer}, cors, {"$default": {}}
    )


class FakeFunctions:
    """Records the events the front sends and answers with a canned result."""

    def __init__(self, result: Any = None, function_error: str | None = None, held: bool = False) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.result = result if result is not None else {"statusCode": 200, "body": "{}"}
        self.function_error = function_error
        self.release = threading.Event()  # a held function runs until the test releases it
        if not held:
            self.release.set()
        self.finished = threading.Event()

    def __call__(self, function: str, payload: bytes) -> InvokeResult:
        if len(payload) >= MAX_SYNC_PAYLOAD:
            raise RequestTooLarge("as the Lambda runner refuses it")
        self.events.append((function, json.loads(payload)))
        self.release.wait(10)
        self.finished.set()
        return InvokeResult(json.dumps(self.result).encode(), self.function_error)


def front(functions: FakeFunctions) -> HttpApiFront:
    authorizer = CognitoJwtAuthorizer(
        POOL, [CLIENT_ID], jwks_fetcher=lambda url: {"keys": [{**PUBLIC_JWK, "kid": "key1"}]}
    )
    return HttpApiFront(
        spec(),
        functions,
        account="123456789012",
        region="us-east-1",
        aws_endpoint="http://127.0.0.1:9",
        authorizers={"UserPoolJwt": authorizer},
    )


def call(app: HttpApiFront, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
    environ = EnvironBuilder(method=method, path=path, **kwargs).get_environ()
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        captured["status"] = int(status.split()[0])
        captured["headers"] = {name.lower(): value for name, value in headers}

    body = b"".join(app(environ, start_response))
    return captured["status"], captured["headers"], body


def bearer(value: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {value or token()}", "Origin": WEB}


def test_routes_pick_the_most_specific_match() -> None:
    table = RouteTable(spec().routes)
    assert table.match("GET", "/files/latest")[0].path == "/files/latest"  # type: ignore[index]
    route, parameters = table.match("GET", "/files/01ABC")  # type: ignore[misc]
    assert (route.path, parameters) == ("/files/{fileId}", {"fileId": "01ABC"})
    route, parameters = table.match("DELETE", "/assets/css/site.css")  # type: ignore[misc]
    assert (route.route_key, parameters) == ("ANY /assets/{proxy+}", {"proxy": "css/site.css"})
    assert table.match("DELETE", "/files") is None
    assert table.match("GET", "/nowhere") is None


def test_an_authorized_request_gets_the_2_0_event() -> None:
    functions = FakeFunctions()
    status, headers, _ = call(
        front(functions),
        "POST",
        "/files/01ABC/shares",
        query_string="a=1&a=2&b=",
        headers={**bearer(), "Cookie": "c1=x; c2=y", "X-Trace": "t"},
        data=json.dumps({"expiresInSeconds": 60}),
        content_type="application/json",
    )
    assert status == 200
    assert headers["access-control-allow-origin"] == WEB
    assert headers["apigw-requestid"]
    [(function, event)] = functions.events
    assert function == FILES
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /files/{fileId}/shares"
    assert event["rawPath"] == "/files/01ABC/shares"
    assert event["rawQueryString"] == "a=1&a=2&b="
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["pathParameters"] == {"fileId": "01ABC"}
    assert event["cookies"] == ["c1=x", "c2=y"]
    assert event["headers"]["x-trace"] == "t"
    assert "cookie" not in event["headers"]
    assert json.loads(event["body"]) == {"expiresInSeconds": 60}
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["http"]["method"] == "POST"
    assert context["http"]["path"] == "/files/01ABC/shares"
    assert context["stage"] == "$default"
    assert context["apiId"] == "api123"
    claims = context["authorizer"]["jwt"]["claims"]
    assert claims["sub"] == "7d1c2f3e-0000-4000-8000-000000000001"
    assert claims["cognito:groups"] == "[a b]"
    assert isinstance(claims["exp"], str)
    assert context["authorizer"]["jwt"]["scopes"] is None


def test_a_binary_body_is_base64_encoded() -> None:
    functions = FakeFunctions()
    call(
        front(functions),
        "POST",
        "/files/x/shares",
        headers=bearer(),
        data=b"\xff\xd8\xff",
        content_type="image/jpeg",
    )
    [(_, event)] = functions.events
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\xd8\xff"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "no header"),
        ({"Authorization": "Bearer not-a-jwt"}, "malformed"),
        ({"Authorization": f"Bearer {token(exp=int(time.time()) - 5)}"}, "expired"),
        ({"Authorization": f"Bearer {token(aud='someone-else')}"}, "wrong audience"),
        ({"Authorization": f"Bearer {token(iss='https://example.com/pool')}"}, "wrong issuer"),
        ({"Authorization": f"Bearer {token(token_use='refresh')}"}, "wrong token_use"),
        ({"Authorization": "Bearer " + token()[:-4] + "AAAA"}, "bad signature"),
    ],
)
def test_requests_without_a_valid_token_are_401_and_never_reach_the_function(
    headers: dict[str, str], reason: str
) -> None:
    functions = FakeFunctions()
    status, response_headers, body = call(
        front(functions), "GET", "/files", headers={**headers, "Origin": WEB}
    )
    assert status == 401, reason
    assert json.loads(body) == {"message": "Unauthorized"}
    assert response_headers["www-authenticate"].startswith("Bearer")
    assert response_headers["access-control-allow-origin"] == WEB
    assert functions.events == []


def test_an_access_token_is_accepted_by_client_id() -> None:
    functions = FakeFunctions()
    access = token(aud=None, client_id=CLIENT_ID, token_use="access")
    assert call(front(functions), "GET", "/files", headers=bearer(access))[0] == 200


def test_public_routes_need_no_token() -> None:
    functions = FakeFunctions({"statusCode": 200, "body": '{"name":"a"}'})
    status, _, body = call(front(functions), "GET", "/shares/tok")
    assert (status, json.loads(body)) == (200, {"name": "a"})
    assert "authorizer" not in functions.events[0][1]["requestContext"]


def test_unknown_routes_are_404_like_api_gateway() -> None:
    status, _, body = call(front(FakeFunctions()), "GET", "/nowhere", headers=bearer())
    assert (status, json.loads(body)) == (404, {"message": "Not Found"})


def test_preflight_is_answered_for_allowed_origins_only() -> None:
    app = front(FakeFunctions())
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    status, headers, _ = call(app, "OPTIONS", "/files/x/shares", headers={**preflight, "Origin": WEB})
    assert status == 204
    assert headers["access-control-allow-origin"] == WEB
    assert headers["access-control-allow-methods"] == "GET,POST,DELETE,OPTIONS"
    assert headers["access-control-allow-headers"] == "authorization,content-type"
    assert headers["access-control-max-age"] == "600"
    status, headers, _ = call(
        app, "OPTIONS", "/files/x/shares", headers={**preflight, "Origin": "https://evil.example"}
    )
    assert status == 204
    assert "access-control-allow-origin" not in headers
    _, headers, _ = call(app, "GET", "/shares/tok", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in headers


def test_the_function_result_becomes_the_response() -> None:
    result = {
        "statusCode": 201,
        "headers": {"Content-Type": "text/plain", "Access-Control-Allow-Origin": "*"},
        "cookies": ["a=1; Secure"],
        "body": base64.b64encode(b"raw").decode(),
        "isBase64Encoded": True,
    }
    app = front(FakeFunctions(result))
    environ = EnvironBuilder(method="GET", path="/shares/tok", headers=[("Origin", WEB)]).get_environ()
    seen: list[tuple[str, str]] = []
    body = b"".join(app(environ, lambda status, headers: seen.extend([("status", status), *headers])))
    assert body == b"raw"
    assert ("status", "201 Created") in seen
    assert ("Set-Cookie", "a=1; Secure") in seen
    assert ("Access-Control-Allow-Origin", WEB) in seen  # the API's CORS, never the function's
    assert ("Access-Control-Allow-Origin", "*") not in seen


def test_a_result_without_status_code_is_200_json() -> None:
    status, headers, body = call(front(FakeFunctions({"hello": "world"})), "GET", "/shares/tok")
    assert (status, headers["content-type"], json.loads(body)) == (
        200,
        "application/json",
        {"hello": "world"},
    )


def test_a_function_error_is_500_internal_server_error() -> None:
    functions = FakeFunctions({"errorType": "ValueError", "errorMessage": "boom"}, function_error="Unhandled")
    status, _, body = call(front(functions), "GET", "/shares/tok")
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})


def test_bodies_over_10_mb_are_refused() -> None:
    environ = EnvironBuilder(
        method="POST", path="/files/x/shares", headers=list(bearer().items())
    ).get_environ()
    environ["CONTENT_LENGTH"] = str(10 * 1024 * 1024 + 1)
    environ["wsgi.input"] = io.BytesIO(b"")
    captured: list[str] = []
    front(FakeFunctions())(environ, lambda status, headers: captured.append(status))
    assert captured == ["413 Payload Too Large"]


def test_a_body_the_api_takes_but_invoke_refuses_is_a_json_500_and_never_reaches_the_function() -> None:
    functions = FakeFunctions()
    body = b"x" * (MAX_SYNC_PAYLOAD - 1000)  # under API Gateway's 10 MB, over Invoke's 6 MB as an event
    status, headers, answer = call(
        front(functions), "POST", "/files/x/shares", data=body, headers=list(bearer().items())
    )
    assert (status, headers["content-type"], json.loads(answer)) == (
        500,
        "application/json",
        {"message": "Internal Server Error"},
    )
    assert functions.events == []


def test_a_function_slower_than_the_integration_timeout_is_a_503_and_runs_on() -> None:
    slow = FakeFunctions({"statusCode": 200, "body": "late"}, held=True)

    status, headers, body = call(front(slow), "GET", "/reports")  # answered at the route's 300 ms

    assert (status, headers["content-type"], json.loads(body)) == (
        503,
        "application/json",
        {"message": "Service Unavailable"},
    )
    assert not slow.finished.is_set(), "the caller was answered while the function still ran"
    slow.release.set()
    assert slow.finished.wait(5), "the invocation went on to its end, as on Lambda"
    assert call(front(FakeFunctions()), "GET", "/reports")[0] == 200
