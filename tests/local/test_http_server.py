"""Keep-alive serving: several requests per connection, each answered as werkzeug's server answers it."""

from __future__ import annotations

import contextlib
import http.client
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from filepipe.local.http_server import KeepAliveRequestHandler


def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/fail":
        raise RuntimeError("the application failed")
    if path == "/empty":
        start_response("204 No Content", [])
        return []
    if path == "/ignore-body":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"did not read it"]
    if path == "/object":
        # A HEAD answer announces the size of what a GET would return, and sends nothing.
        start_response("200 OK", [("Content-Length", "11"), ("ETag", '"abc"')])
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [b"hello world"]
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [b"echo:", body]


def _connect(port: int) -> contextlib.closing[http.client.HTTPConnection]:
    return contextlib.closing(http.client.HTTPConnection("127.0.0.1", port, timeout=5))


@pytest.fixture
def server() -> Iterator[tuple[int, list[str]]]:
    threads: list[str] = []

    def tracking(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        threads.append(threading.current_thread().name)
        return app(environ, start_response)

    http_server = make_server(
        "127.0.0.1", 0, tracking, threaded=True, request_handler=KeepAliveRequestHandler
    )
    thread = threading.Thread(target=http_server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield http_server.server_port, threads
    finally:
        http_server.shutdown()
        http_server.server_close()


def test_one_connection_serves_several_requests_whether_or_not_bodies_are_read(
    server: tuple[int, list[str]],
) -> None:
    port, threads = server
    with _connect(port) as connection:
        answers = []
        for method, path, body in [
            ("POST", "/echo", b"first"),
            ("POST", "/ignore-body", b"x" * 100_000),
            ("GET", "/echo", None),
            ("POST", "/echo", b"last"),
        ]:
            connection.request(method, path, body=body)
            response = connection.getresponse()
            answers.append((response.status, response.read(), response.getheader("Connection")))
        assert answers == [
            (200, b"echo:first", None),
            (200, b"did not read it", None),
            (200, b"echo:", None),
            (200, b"echo:last", None),
        ]
        assert len(set(threads)) == 1  # one connection, one server thread


def test_head_and_no_content_answers_keep_their_headers_and_send_no_body(
    server: tuple[int, list[str]],
) -> None:
    port, _ = server
    with _connect(port) as connection:
        connection.request("HEAD", "/object")
        head = connection.getresponse()
        assert (head.status, head.getheader("Content-Length"), head.getheader("ETag")) == (200, "11", '"abc"')
        assert head.read() == b""
        connection.request("DELETE", "/empty")
        empty = connection.getresponse()
        assert (empty.status, empty.getheader("Content-Length"), empty.read()) == (204, None, b"")
        connection.request("GET", "/object")
        got = connection.getresponse()
        assert (got.status, got.read()) == (200, b"hello world")


def test_a_failing_application_answers_500_and_closes(server: tuple[int, list[str]]) -> None:
    port, _ = server
    with _connect(port) as connection:
        connection.request("GET", "/fail")
        failed = connection.getresponse()
        assert failed.status == 500
        assert b"Internal Server Error" in failed.read()
        assert failed.getheader("Connection") == "close"


def test_a_client_asking_to_close_and_a_chunked_body_end_the_connection(
    server: tuple[int, list[str]],
) -> None:
    port, _ = server
    with _connect(port) as connection:
        connection.request("POST", "/echo", body=b"bye", headers={"Connection": "close"})
        closing = connection.getresponse()
        assert (closing.read(), closing.getheader("Connection")) == (b"echo:bye", "close")
    with _connect(port) as chunked:
        chunked.request("POST", "/echo", body=iter([b"in ", b"chunks"]), encode_chunked=True)
        response = chunked.getresponse()
        assert (response.status, response.read()) == (200, b"echo:in chunks")
        assert response.getheader("Connection") == "close"
