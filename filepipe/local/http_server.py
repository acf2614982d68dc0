"""HTTP/1.1 keep-alive for werkzeug's threaded development server.

werkzeug's server closes every connection after one response (it cannot tell where an unread request
body ends), so each AWS SDK call from a function costs a TCP connection and a server thread. Here a
request's body is read whole before the application runs, which makes the next request's first byte
unambiguous: the connection then stays open for the next call, served by the same thread.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from werkzeug.exceptions import InternalServerError
from werkzeug.serving import WSGIRequestHandler

log = logging.getLogger("filepipe.local.http")

# Statuses (and HEAD answers) that never carry a body, hence never a Content-Length of their own.
_NO_BODY = frozenset({204, 304})
Answer = tuple[str, list[tuple[str, str]], list[bytes]]
# Python 3.11 still names 413 after RFC 2616 ("Request Entity Too Large"); RFC 7231 renamed it.
_PHRASES = {413: "Payload Too Large"}


def status_line(status: int) -> str:
    """``"404 Not Found"``: a WSGI status line for ``status``."""
    try:
        phrase = _PHRASES.get(status) or HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return f"{status} {phrase}"


class KeepAliveRequestHandler(WSGIRequestHandler):
    """Answers with Content-Length framing and keeps HTTP/1.1 connections open between requests.

    Combine it with another handler class (``class H(KeepAliveRequestHandler, Other)``) to keep that
    one's environ; a kept-alive connection holds its thread until the client closes it.
    """

    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; on an open connection Nagle's algorithm would hold
    # the body back until the client acknowledges the headers (a delayed ACK: tens of milliseconds).
    disable_nagle_algorithm = True

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        return

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        environ = self.make_environ()
        if "wsgi.input_terminated" in environ:
            # A chunked body: werkzeug's own handling, and the connection closes after it as before.
            self.close_connection = True
            super().run_wsgi()
            return
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            super().run_wsgi()
            return
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            self.close_connection = True  # the client went away mid-body
            return
        environ["wsgi.input"] = io.BytesIO(body)
        environ["wsgi.input_terminated"] = True
        try:
            answer = self._call(self.server.app, environ)
        except Exception:
            log.exception("error on request %s %s", self.command, self.path)
            self.close_connection = True
            answer = self._call(InternalServerError(), environ)
        try:
            self._send(environ, *answer)
        except (TimeoutError, ConnectionError):
            self.close_connection = True

    @staticmethod
    def _call(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> Answer:
        started: dict[str, Any] = {}
        written: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if exc_info is not None and "sent" in started:
                raise exc_info[1].with_traceback(exc_info[2])
            started.update(status=status, headers=list(headers))
            return written.append

        result = app(environ, start_response)
        try:
            chunks = [*written, *(chunk for chunk in result if chunk)]
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if "status" not in started:
            raise RuntimeError("the application returned without calling start_response")
        started["sent"] = True
        return started["status"], started["headers"], chunks

    def _send(
        self, environ: dict[str, Any], status: str, headers: list[tuple[str, str]], chunks: list[bytes]
    ) -> None:
        code_text, _, reason = status.partition(" ")
        code = int(code_text)
        self.send_response(code, reason)
        names = set()
        for name, value in headers:
            names.add(name.lower())
            if name.lower() == "connection":
                if value.lower() == "close":
                    self.close_connection = True
                continue
            self.send_header(name, value)
        sends_body = environ["REQUEST_METHOD"] != "HEAD" and code not in _NO_BODY and code >= 200
        if "content-length" not in names and sends_body:
            self.send_header("Content-Length", str(sum(len(chunk) for chunk in chunks)))
        if self.close_connection or self.request_version != "HTTP/1.1":
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if sends_body:
            for chunk in chunks:
                self.wfile.write(chunk)
        self.wfile.flush()
