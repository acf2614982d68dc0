"""The web UI's server: files, config.json, and index.html for every path CloudFront would fall back on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from werkzeug.test import EnvironBuilder

from filepipe.local.services.cloudfront.web import SiteApp


def get(app: SiteApp, path: str, method: str = "GET") -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"] = status
        seen["headers"] = dict(headers)

    body = b"".join(app(EnvironBuilder(path=path, method=method).get_environ(), start_response))
    return seen["status"], seen["headers"], body


def site(tmp_path: Path) -> SiteApp:
    root = tmp_path / "site"
    (root / "js").mkdir(parents=True)
    (root / "index.html").write_text("<html>app</html>")
    (root / "js" / "app.js").write_text("export {};")
    (tmp_path / "secret.txt").write_text("outside")
    return SiteApp(root, {"apiUrl": "http://127.0.0.1:8001", "region": "us-east-1"})


def test_files_and_config_are_served(tmp_path: Path) -> None:
    app = site(tmp_path)
    status, headers, body = get(app, "/config.json")
    assert status == "200 OK"
    assert json.loads(body) == {"apiUrl": "http://127.0.0.1:8001", "region": "us-east-1"}
    assert headers["Cache-Control"] == "no-store"
    status, headers, body = get(app, "/js/app.js")
    assert (status, body) == ("200 OK", b"export {};")
    assert headers["Content-Type"].startswith(("text/javascript", "application/javascript"))
    assert get(app, "/")[2] == b"<html>app</html>"


def test_unknown_paths_get_the_app_and_nothing_outside_the_root_is_served(tmp_path: Path) -> None:
    app = site(tmp_path)
    assert get(app, "/s/share-token-123")[2] == b"<html>app</html>"
    assert get(app, "/../secret.txt")[2] == b"<html>app</html>"
    assert get(app, "/%2e%2e/secret.txt")[2] == b"<html>app</html>"


def test_head_has_the_length_and_no_body_and_other_methods_are_refused(tmp_path: Path) -> None:
    app = site(tmp_path)
    status, headers, body = get(app, "/js/app.js", method="HEAD")
    assert (status, headers["Content-Length"], body) == ("200 OK", "10", b"")
    assert get(app, "/index.html", method="POST")[0] == "405 Method Not Allowed"
