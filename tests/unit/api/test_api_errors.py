"""Error answers: always the JSON error shape, 4xx for every bad input, 500 only from the catch-all."""

from __future__ import annotations

import json
from typing import Any

import pytest

import api.gateway
from common.errors import ServiceThrottled
from common.model import Status
from common.records import FileRecords
from common.settings import SettingsError
from tests.unit.api.support import EVENTS_DIR, PUBLIC_EVENTS, ApiClient, Seeder, load_event, new_user

ALL_EVENTS = sorted(path.stem for path in EVENTS_DIR.glob("*.json"))
PATH_PARAMS = {"fileId", "token"}


def test_every_sample_event_is_a_real_shaped_http_api_v2_event() -> None:
    assert len(ALL_EVENTS) == 29
    for name in ALL_EVENTS:
        event = load_event(name)
        method, route = event["routeKey"].split(" ", 1)
        context = event["requestContext"]
        assert event["version"] == "2.0"
        assert context["routeKey"] == event["routeKey"]
        assert context["http"]["method"] == method
        assert context["http"]["path"] == event["rawPath"]
        assert context["stage"] == "$default"
        for param, value in (event.get("pathParameters") or {}).items():
            assert "{" + param + "}" in route
            assert value in event["rawPath"]
        if name in PUBLIC_EVENTS:
            assert "authorizer" not in context
            assert "authorization" not in event["headers"]
        else:
            assert context["authorizer"]["jwt"]["claims"]["sub"]
            assert event["headers"]["authorization"].startswith("Bearer ")
        if "body" in event:
            json.loads(event["body"])
            assert event["headers"]["content-type"] == "application/json"


@pytest.mark.parametrize("name", ALL_EVENTS)
def test_garbage_never_reaches_the_catch_all(client: ApiClient, name: str) -> None:
    """Every route, fed the usual junk in its body, path and query, answers a 4xx (the client checks)."""
    params = set(load_event(name).get("pathParameters") or {}) & PATH_PARAMS
    bodies = [
        "",
        "not json",
        "{",
        "[]",
        "null",
        "0",
        '"text"',
        "{}",
        json.dumps({"name": "x" * 100_000}),
        "\u0000",
    ]
    path_values = ["", "..", "x" * 2000, "%2e%2e%2f", "日本語", "01JD8M3Q6W9Z2X4C5V7B8N0K1P", "0" * 64]
    owner = new_user()
    answered: set[int] = set()
    for body in bodies:
        response = client.call(name, sub=None if name in PUBLIC_EVENTS else owner, raw_body=body)
        answered.add(response.status)
    for value in path_values:
        path = {param: value for param in params}
        if path and value:
            response = client.call(name, sub=None if name in PUBLIC_EVENTS else owner, path=path)
            answered.add(response.status)
    for query in ({"limit": "-1"}, {"limit": "1e9"}, {"nextToken": "\u0000"}, {"unknown": "1"}):
        answered.add(client.call(name, query=query).status)
    assert answered
    assert max(answered) < 500


def test_unknown_routes_answer_404_in_the_error_shape(client: ApiClient) -> None:
    event = client.event("list_files", sub=new_user())
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/nothing/here"

    response = client.send("list_files", event)

    assert response.status == 404
    assert response.body == {"error": {"code": "RouteNotFound", "message": "no route GET /nothing/here"}}


def test_requests_without_claims_are_401(client: ApiClient) -> None:
    event = client.event("list_files")
    del event["requestContext"]["authorizer"]

    response = client.send("list_files", event)

    assert response.status == 401
    assert response.body["error"]["code"] == "Unauthorized"


def test_claims_with_a_strange_subject_are_401(client: ApiClient) -> None:
    response = client.send("list_files", client.event("list_files", sub="../../other-user"))

    assert response.status == 401


def test_every_answer_forbids_caching_and_sniffing(client: ApiClient, seed: Seeder) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY)

    for response in (
        client.call("get_file", sub=owner, path={"fileId": file_id}),
        client.call("get_file", sub=owner, path={"fileId": "nope"}),
        client.call("get_share", path={"token": "nope"}),
    ):
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Type"] == "application/json"


def test_a_defect_answers_500_in_the_error_shape_and_is_logged(
    client: ApiClient, monkeypatch: pytest.MonkeyPatch, internal_errors: list[Exception]
) -> None:
    logged: list[tuple[str, Any]] = []

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(FileRecords, "list_for_owner", broken)
    monkeypatch.setattr(
        api.gateway.logger, "exception", lambda message, **kwargs: logged.append((message, kwargs))
    )

    response = client.send("list_files", client.event("list_files", sub=new_user()))

    assert response.status == 500
    assert response.body == {
        "error": {"code": "InternalError", "message": "something went wrong on our side"}
    }
    assert [type(error) for error in internal_errors] == [RuntimeError]
    assert logged == [("unhandled error", {"extra": {"errorType": "RuntimeError"}})]
    internal_errors.clear()


def test_throttling_that_outlasts_retries_is_429(client: ApiClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def throttled(*args: Any, **kwargs: Any) -> Any:
        raise ServiceThrottled("DynamoDB throttled get_item")

    monkeypatch.setattr(FileRecords, "get", throttled)

    response = client.call("get_file", sub=new_user(), path={"fileId": "01JD8M3Q6W9Z2X4C5V7B8N0K1P"})

    assert response.status == 429
    assert response.error_code == "ServiceThrottled"
    assert response.headers["Retry-After"] == "1"


@pytest.mark.parametrize(("name", "variable"), [("list_files", "WEB_URL"), ("get_share", "CLEAN_BUCKET")])
def test_missing_configuration_fails_the_invocation_loudly(
    client: ApiClient, settings_env: pytest.MonkeyPatch, name: str, variable: str
) -> None:
    settings_env.delenv(variable)

    with pytest.raises(SettingsError, match=variable):
        client.send(name, client.event(name))
