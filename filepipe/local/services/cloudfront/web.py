"""The web UI's files as CloudFront serves them (index.html for unknown paths), plus config.json."""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any

StartResponse = Callable[..., Any]


class SiteApp:
    """Serves ``root`` at ``/``; as the distribution's 403 -> /index.html rule, missing paths get the app."""

    def __init__(self, root: Path, config: dict[str, Any]) -> None:
        self._root = root.resolve()
        self._config = json.dumps(config, indent=2).encode()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            headers = [("Allow", "GET, HEAD")]
            return self._send(start_response, "405 Method Not Allowed", b"", "text/plain", headers)
        path = environ.get("PATH_INFO", "/") or "/"
        if path == "/config.json":
            response = self._send(start_response, "200 OK", self._config, "application/json", no_store=True)
        else:
            file = self._file(path) or self._root / "index.html"
            if not file.is_file():
                return self._send(start_response, "404 Not Found", b"Not Found", "text/plain")
            content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            if content_type.startswith("text/") or content_type in (
                "application/javascript",
                "application/json",
            ):
                content_type += "; charset=utf-8"
            no_store = file.name == "index.html"
            response = self._send(
                start_response, "200 OK", file.read_bytes(), content_type, no_store=no_store
            )
        return response if method == "GET" else [b""]

    def _file(self, path: str) -> Path | None:
        relative = path.lstrip("/") or "index.html"
        candidate = (self._root / relative).resolve()
        if candidate.is_dir():
            candidate = candidate / "index.html"
        if not candidate.is_relative_to(self._root) or not candidate.is_file():
            return None
        return candidate

    @staticmethod
    def _send(
        start_response: StartResponse,
        status: str,
        body: bytes,
        content_type: str,
        extra: list[tuple[str, str]] | None = None,
        *,
        no_store: bool = False,
    ) -> list[bytes]:
        headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("X-Content-Type-Options", "nosniff"),
            ("Cache-Control", "no-store" if no_store else "no-cache"),
            *(extra or []),
        ]
        start_response(status, headers)
        return [body]
