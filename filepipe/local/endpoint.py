"""The AWS endpoint: moto behind a WSGI layer for Lambda invokes, S3 POST checks and operations moto lacks."""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from filepipe.local.enforcement.enforcer import Enforcer, Refused
from filepipe.local.http_server import status_line
from filepipe.local.iam import acting
from filepipe.local.services.awslambda.runner import (
    FunctionNotFound,
    InvalidRequestContent,
    LambdaRunner,
    RequestTooLarge,
    Throttled,
)
from filepipe.local.services.cognito.patches import TokenRevocationError, revoke_refresh_token
from filepipe.local.services.s3.post import (
    S3PostError,
    SecretLookup,
    check_post,
    object_headers,
    parse_form,
    signed_put_headers,
)
from filepipe.local.services.s3.presigned import check_lifetime, is_presigned_s3
from filepipe.local.services.sts.patches import session_expiration

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
StartResponse = Callable[..., Any]
Response = tuple[int, list[tuple[str, str]], bytes]
# Answers the requests of operations moto lacks (GuardDuty's SendObjectMalwareScan); None for the others.
LocalOperations = Callable[[dict[str, Any]], Response | None]

_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
# The JSON-protocol services a browser calls directly (sign-in); AWS answers their CORS for any origin.
_BROWSER_TARGETS = ("AWSCognitoIdentityProviderService.", "AWSCognitoIdentityService.")
_REVOKE_TOKEN_TARGET = "AWSCognitoIdentityProviderService.RevokeToken"  # noqa: S105 - an action name
# The services a browser calls unsigned, by their JSON target's prefix.
_UNSIGNED_TARGETS = {
    "AWSCognitoIdentityProviderService": "cognito-idp",
    "AWSCognitoIdentityService": "cognito-identity",
}
# The service a SigV4 signature was made for: ``.../20261122/us-east-1/dynamodb/aws4_request``.
_SIGNED_SERVICE = re.compile(r"^[^/]+/\d{8}/[^/]+/(?P<service>[^/]+)/aws4_request")


def _reply(start_response: StartResponse, response: Response) -> list[bytes]:
    status, headers, body = response
    start_response(status_line(status), [*headers, ("Content-Length", str(len(body)))])
    return [body]


def _read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(length) if length else b""


def request_label(environ: dict[str, Any]) -> str:
    """``service Action`` of a request, as CloudTrail would name it; S3's REST calls by their method.

    The service is the one the request was signed for (in its header or, presigned, in its query);
    the few unsigned calls are named by their target (browser sign-in) or their form (S3 POST).
    """
    method = str(environ.get("REQUEST_METHOD", "GET"))
    path = str(environ.get("PATH_INFO", ""))
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    query = str(environ.get("QUERY_STRING", ""))
    authorization = str(environ.get("HTTP_AUTHORIZATION", ""))
    credential = authorization.partition("Credential=")[2]
    if not credential and "X-Amz-Credential=" in query:
        credential = parse_qs(query).get("X-Amz-Credential", [""])[0]
    signed = _SIGNED_SERVICE.match(credential)
    if signed:
        service = signed.group("service")
    elif target:
        prefix = target.partition(".")[0]
        service = _UNSIGNED_TARGETS.get(prefix, prefix)
    else:
        service = "s3" if method == "POST" else "unsigned"
    if target:
        action = target.rpartition(".")[2]
    elif _INVOKE_PATH.match(path):
        action = "Invoke"
    elif "Action=" in query:
        action = parse_qs(query).get("Action", [method])[0]
    elif str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded"):
        action = _form_action(environ) or method
    elif service == "s3" and method == "POST" and not authorization and not query:
        action = "PostObject"
    else:
        action = method
    return f"{service} {action}"


def _form_action(environ: dict[str, Any]) -> str | None:
    """The ``Action`` of a query-protocol request (SES, IAM, STS) sent as a form; moto still gets the body."""
    body = _read_body(environ)
    environ["wsgi.input"] = io.BytesIO(body)
    actions = parse_qs(body.decode("utf-8", "replace")).get("Action")
    return actions[0] if actions else None


def _call(app: WsgiApp, environ: dict[str, Any]) -> Response:
    """Run a WSGI app and collect its response."""
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"] = int(status.split(" ", 1)[0])
        captured["headers"] = headers
        return lambda data: None

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return captured["status"], list(captured["headers"]), body


class AwsEndpoint:
    """WSGI middleware in front of moto: everything it does not handle goes to moto unchanged."""

    def __init__(
        self,
        moto_app: WsgiApp,
        runner: LambdaRunner,
        secret_for: SecretLookup,
        local_routes: dict[str, Callable[[], Any]] | None = None,
        account: str = "123456789012",
        iam: Enforcer | None = None,
        local_operations: LocalOperations | None = None,
    ) -> None:
        self._account = account
        self._local_operations = local_operations
        self._iam = iam
        self._moto = moto_app
        self._runner = runner
        self._secret_for = secret_for
        self._local_routes = local_routes or {}
        self._requests: Counter[str] = Counter()
        self._requests_lock = threading.Lock()

    def request_counts(self) -> dict[str, int]:
        """Requests answered so far, by ``service Action`` (``request_label``): how chatty a workflow is."""
        with self._requests_lock:
            return dict(sorted(self._requests.items()))

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_filepipe/"):
            return _reply(start_response, self._local(path))
        label = request_label(environ)
        with self._requests_lock:
            self._requests[label] += 1
        invoke = _INVOKE_PATH.match(path)
        if self._is_post_object(environ, method, path):
            return _reply(start_response, self._post_object(environ, path))  # decided on its form's signer
        presigned_refusal = self._presigned_refusal(environ)
        if presigned_refusal is not None:  # S3 checks a URL's lifetime before who signed it
            return _reply(start_response, presigned_refusal)
        hides_missing: Callable[[], bool] | None = None
        # A CORS preflight carries no credentials: AWS answers it from the resource's CORS rules alone.
        if self._iam is not None and method != "OPTIONS":
            try:
                gate = self._iam.check(environ)
            except Refused as refused:
                return _reply(start_response, refused.response)
            if gate is not None and gate.needs.reads_from is not None:
                hides_missing = gate.hides_missing
        if self._local_operations is not None:  # after IAM: the caller may make the request
            answered = self._local_operations(environ)
            if answered is not None:
                return _reply(start_response, answered)
        if method == "POST" and invoke:
            name = unquote(invoke.group("name"))
            if self._runner.knows(name):
                return _reply(start_response, self._invoke(name, environ))
        if self._is_browser_json_call(environ, method, path):
            return self._with_open_cors(environ, start_response, method)
        if hides_missing is not None:
            return self._moto_hiding_missing(environ, start_response, hides_missing)
        return self._moto(environ, start_response)

    def _moto_hiding_missing(
        self, environ: dict[str, Any], start_response: StartResponse, hides_missing: Callable[[], bool]
    ) -> Iterable[bytes]:
        """moto's answer, except that a missing object is a 403 for a caller who may not list its bucket.

        S3 does so to keep which keys exist from callers without s3:ListBucket; the check runs only when
        moto answers 404, so found objects cost nothing more.
        """
        from filepipe.local.iam.refusals import s3_access_denied

        hidden: list[bool] = []

        def answer(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if status.startswith("404") and hides_missing():
                hidden.append(True)
                denied_status, denied_headers, body = s3_access_denied(
                    "Access Denied", head=environ.get("REQUEST_METHOD") == "HEAD"
                )
                return start_response(
                    status_line(denied_status),
                    [*denied_headers, ("Content-Length", str(len(body)))],
                    exc_info,
                )
            return start_response(status, headers, exc_info)

        chunks = self._moto(environ, answer)
        if not hidden:
            return chunks
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
        return [s3_access_denied("Access Denied", head=environ.get("REQUEST_METHOD") == "HEAD")[2]]

    # ------------------------------------------------------------ runtime routes
    def _local(self, path: str) -> Response:
        handler = self._local_routes.get(path.removeprefix("/_filepipe/").strip("/"))
        if handler is None:
            return 404, [("Content-Type", "application/json")], b'{"message": "Not Found"}'
        return 200, [("Content-Type", "application/json")], json.dumps(handler(), default=str).encode()

    # ------------------------------------------------------------ Lambda
    def _invoke(self, name: str, environ: dict[str, Any]) -> Response:
        request_id = str(uuid.uuid4())
        payload = _read_body(environ) or b"{}"
        invocation_type = environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse")
        client_context = environ.get("HTTP_X_AMZ_CLIENT_CONTEXT")
        headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)]
        try:
            if invocation_type == "DryRun":
                self._runner.resolve(name)
                return 204, headers, b""
            if invocation_type == "Event":
                self._runner.invoke_event(name, payload)
                return 202, headers, b""
            context = base64.b64decode(client_context).decode() if client_context else None
            result = self._runner.invoke(name, payload, client_context=context)
        except FunctionNotFound:
            return self._lambda_error(
                404, "ResourceNotFoundException", f"Function not found: {name}", headers
            )
        except (InvalidRequestContent, ValueError) as error:
            return self._lambda_error(400, "InvalidRequestContentException", str(error), headers)
        except Throttled as error:
            return self._lambda_error(429, "TooManyRequestsException", str(error), headers)
        except RequestTooLarge as error:
            return self._lambda_error(413, "RequestEntityTooLargeException", str(error), headers)
        headers.append(("X-Amz-Executed-Version", "$LATEST"))
        if result.function_error:
            headers.append(("X-Amz-Function-Error", result.function_error))
        return 200, headers, result.payload

    @staticmethod
    def _lambda_error(status: int, code: str, message: str, headers: list[tuple[str, str]]) -> Response:
        body = json.dumps({"Type": "User", "message": message}).encode()
        return status, [*headers, ("x-amzn-ErrorType", code)], body

    # ------------------------------------------------------------ S3 presigned requests
    @staticmethod
    def _presigned_refusal(environ: dict[str, Any]) -> Response | None:
        query_string = str(environ.get("QUERY_STRING", ""))
        if "X-Amz-Signature=" not in query_string:  # most requests are signed in a header
            return None
        query = {name: values[0] for name, values in parse_qs(query_string).items()}
        if not is_presigned_s3(query):
            return None
        try:
            check_lifetime(query, datetime.now(UTC), session_expiration)
        except S3PostError as error:
            body = b"" if environ.get("REQUEST_METHOD") == "HEAD" else error.to_xml()
            return error.status, [("Content-Type", "application/xml")], body
        return None

    # ------------------------------------------------------------ S3 POST Object
    @staticmethod
    def _is_post_object(environ: dict[str, Any], method: str, path: str) -> bool:
        if method != "POST" or environ.get("HTTP_AUTHORIZATION") or environ.get("QUERY_STRING"):
            return False
        if not str(environ.get("CONTENT_TYPE", "")).startswith("multipart/form-data"):
            return False
        return bool(re.fullmatch(r"/[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]/?", path))

    def _post_object(self, environ: dict[str, Any], path: str) -> Response:
        bucket = path.strip("/")
        origin = environ.get("HTTP_ORIGIN")
        xml = [("Content-Type", "application/xml")]
        if not environ.get("CONTENT_LENGTH"):
            error = S3PostError(
                411, "MissingContentLength", "You must provide the Content-Length HTTP header."
            )
            return error.status, xml, error.to_xml()
        from moto.s3.models import s3_backends

        try:  # the credential's scope must name the bucket's region; an unknown bucket is moto's to answer
            region: str | None = s3_backends[self._account]["aws"].get_bucket(bucket).region_name
        except Exception:
            region = None
        try:
            form = parse_form(_read_body(environ), str(environ["CONTENT_TYPE"]))
            accepted = check_post(bucket, form, self._secret_for, region=region)
            tagging = accepted.form.fields.get("tagging")
            tagging_header = _tagging_header(tagging) if tagging else None
        except S3PostError as error:
            return error.status, self._cors_for(bucket, origin, "POST", xml), error.to_xml()
        if self._iam is not None:
            try:  # authorised as its signer's s3:PutObject at the time of the upload
                self._iam.check_post(bucket, accepted.key, accepted.form.fields)
            except Refused as refused:
                status, refusal_headers, body = refused.response
                return status, self._cors_for(bucket, origin, "POST", refusal_headers), body

        headers = object_headers(accepted.form)
        put = {
            key: value
            for key, value in environ.items()
            if key.startswith("wsgi.")
            or key in {"SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR"}
        }
        put.update(
            REQUEST_METHOD="PUT",
            PATH_INFO=f"/{bucket}/{accepted.key}",
            QUERY_STRING="",
            CONTENT_LENGTH=str(form.size),
            HTTP_HOST=environ.get("HTTP_HOST", "127.0.0.1"),
        )
        put["wsgi.input"] = io.BytesIO(form.content)
        # The stream ends where the file does: werkzeug reads it in one go instead of through a
        # length-limiting wrapper that copies it 8 KiB at a time.
        put["wsgi.input_terminated"] = True
        for name, value in headers.items():
            if name == "content-type":
                put["CONTENT_TYPE"] = value
            else:
                put["HTTP_" + name.upper().replace("-", "_")] = value
        if tagging_header:
            put["HTTP_X_AMZ_TAGGING"] = tagging_header
        if "CONTENT_TYPE" not in put:
            put["CONTENT_TYPE"] = "binary/octet-stream"
        # The object is written as the form's signer, as S3 does: an unsigned PUT is an anonymous write,
        # which moto refuses on a key that exists (a browser posting the same form again after a lost
        # response would get a 403 where S3 stores a new version).
        secret = self._secret_for(accepted.access_key) or ""
        signed = signed_put_headers(
            put["HTTP_HOST"],
            bucket,
            accepted.key,
            region or "us-east-1",
            accepted.access_key,
            secret,
            accepted.form.fields.get("x-amz-security-token"),
        )
        for name, value in signed.items():
            put["HTTP_" + name.upper().replace("-", "_")] = value
        status, moto_headers, body = _call(self._moto, put)
        if status >= 300:  # the length is the reply's own, set once when it is sent
            return status, [(n, v) for n, v in moto_headers if n.lower() != "content-length"], body
        stored = {name.lower(): value for name, value in moto_headers}
        etag = stored.get("etag", "")
        host = environ.get("HTTP_HOST", "127.0.0.1")
        location = f"http://{host}/{bucket}/{quote(accepted.key)}"
        response_headers = [("ETag", etag), ("Location", location)]
        if "x-amz-version-id" in stored:
            response_headers.append(("x-amz-version-id", stored["x-amz-version-id"]))
        response_headers = self._cors_for(bucket, origin, "POST", response_headers)
        redirect = accepted.form.fields.get("success_action_redirect")
        if redirect:
            query = urlencode({"bucket": bucket, "key": accepted.key, "etag": etag})
            separator = "&" if "?" in redirect else "?"
            return 303, [*response_headers, ("Location", f"{redirect}{separator}{query}")], b""
        wanted = accepted.form.fields.get("success_action_status", "204")
        if wanted == "201":
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<PostResponse><Location>{escape(location)}</Location><Bucket>{escape(bucket)}</Bucket>"
                f"<Key>{escape(accepted.key)}</Key><ETag>{escape(etag)}</ETag></PostResponse>"
            ).encode()
            return 201, [*response_headers, ("Content-Type", "application/xml")], body
        return (200 if wanted == "200" else 204), response_headers, b""

    def _cors_for(
        self, bucket: str, origin: str | None, method: str, headers: list[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """The bucket's CORS answer for a cross-origin request, from its own CORS configuration."""
        if not origin:
            return headers
        from moto.s3.models import s3_backends

        try:
            rules = s3_backends[self._account]["aws"].get_bucket(bucket).cors
        except Exception:
            return headers
        for rule in rules:
            origins = rule.allowed_origins or []
            if method in (rule.allowed_methods or []) and any(
                re.fullmatch(re.escape(allowed).replace(r"\*", ".*"), origin) for allowed in origins
            ):
                extra = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
                extra.append(("Access-Control-Allow-Methods", ", ".join(rule.allowed_methods)))
                if rule.exposed_headers:
                    extra.append(("Access-Control-Expose-Headers", ", ".join(rule.exposed_headers)))
                return [*headers, *extra]
        return headers

    # ------------------------------------------------------------ CORS of the browser-facing JSON APIs
    @staticmethod
    def _is_browser_json_call(environ: dict[str, Any], method: str, path: str) -> bool:
        if str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith(_BROWSER_TARGETS):
            return True
        if path.endswith("/.well-known/jwks.json") or path.endswith("/.well-known/openid-configuration"):
            return True
        requested = str(environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "")).lower()
        return method == "OPTIONS" and path in {"", "/"} and "x-amz-target" in requested

    def _with_open_cors(
        self, environ: dict[str, Any], start_response: StartResponse, method: str
    ) -> Iterable[bytes]:
        cors = [("Access-Control-Allow-Origin", "*")]
        if method == "OPTIONS":
            requested = environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "content-type,x-amz-target")
            cors += [
                ("Access-Control-Allow-Methods", "POST, GET, OPTIONS"),
                ("Access-Control-Allow-Headers", requested),
                ("Access-Control-Max-Age", "86400"),
            ]
            return _reply(start_response, (200, cors, b""))

        def with_cors(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            present = {name.lower() for name, _ in headers}
            extra = [(n, v) for n, v in cors if n.lower() not in present]
            return start_response(status, [*headers, *extra], exc_info)

        if environ.get("HTTP_X_AMZ_TARGET") == _REVOKE_TOKEN_TARGET:
            return _reply(with_cors, self._revoke_token(environ))
        return self._moto(environ, with_cors)

    def _revoke_token(self, environ: dict[str, Any]) -> Response:
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", str(uuid.uuid4()))]
        try:
            request = json.loads(_read_body(environ) or b"{}")
            if not isinstance(request, dict):
                raise TypeError("the body is not a JSON object")
            revoke_refresh_token(
                self._account,
                str(request.get("ClientId") or ""),
                str(request.get("Token") or ""),
                request.get("ClientSecret"),
            )
        except (ValueError, TypeError) as error:
            body = {"__type": "InvalidParameterException", "message": f"Malformed request: {error}"}
            return 400, headers, json.dumps(body).encode()
        except TokenRevocationError as error:
            return 400, headers, json.dumps({"__type": error.code, "message": str(error)}).encode()
        return 200, headers, b"{}"


class RawBody(io.BytesIO):
    """A response body as botocore reads it (``read`` and ``stream``)."""

    def stream(self, amt: int = 65536, decode_content: bool | None = None) -> Iterator[bytes]:
        while chunk := self.read(amt):
            yield chunk


def in_process_transport(app: WsgiApp) -> Callable[..., Any]:
    """A botocore ``before-send`` handler that hands each request to ``app`` in this process.

    The runtime's own clients (the provisioner, pollers, event delivery) talk to the AWS endpoint it
    serves itself: the same WSGI stack answers, without a socket, a server thread or HTTP parsing.
    """
    from botocore.awsrequest import AWSResponse
    from werkzeug.test import EnvironBuilder

    def before_send(request: Any, **_: Any) -> Any:
        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        if isinstance(body, str):
            body = body.encode()
        url = urlsplit(request.url)
        headers = [
            (name, value.decode() if isinstance(value, bytes) else str(value))
            for name, value in request.headers.items()
        ]
        environ = EnvironBuilder(
            path=url.path or "/",
            base_url=f"{url.scheme}://{url.netloc}",
            query_string=url.query,
            method=request.method,
            headers=headers,
            data=body or b"",
        ).get_environ()
        principal = acting.current()
        if principal is not None:  # the runtime acting for a rule, a schedule or a role
            environ[acting.ENVIRON_KEY] = principal
        status, response_headers, payload = _call(app, environ)
        return AWSResponse(request.url, status, dict(response_headers), RawBody(payload))

    return before_send


def _tagging_header(tagging_xml: str) -> str:
    """S3's POST ``tagging`` field (an XML Tagging document) as the x-amz-tagging header of a PUT."""
    try:
        root = ElementTree.fromstring(tagging_xml)  # noqa: S314 - a local request's own form field
    except ElementTree.ParseError as error:
        raise S3PostError(400, "MalformedXML", "The XML you provided was not well-formed.") from error
    pairs = []
    for tag in root.iter():
        if tag.tag.endswith("Tag"):
            key = next((c.text or "" for c in tag if c.tag.endswith("Key")), "")
            value = next((c.text or "" for c in tag if c.tag.endswith("Value")), "")
            pairs.append((key, value))
    return urlencode(pairs)
