"""A client that uses a running stack as the web UI does: Cognito sign-in, the HTTP API, S3 POST uploads."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests

FINAL_STATUSES = frozenset({"READY", "REJECTED", "QUARANTINED", "FAILED"})


class ApiError(RuntimeError):
    """An HTTP API or S3 call answered with an unexpected status."""

    def __init__(self, status: int, body: str, what: str) -> None:
        super().__init__(f"{what}: HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class UploadTicket:
    file_id: str
    url: str
    fields: dict[str, str]


class BrowserClient:
    """Signs in through the user pool's public API, then calls the API with its ID token from the web UI."""

    def __init__(self, web_url: str, timeout: float = 30.0) -> None:
        self.web_url = web_url.rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()
        self.http.headers["Origin"] = self.web_url
        self.config: dict[str, Any] = self._get_json(f"{self.web_url}/config.json")
        self.api_url = str(self.config["apiUrl"]).rstrip("/")
        self.id_token: str | None = None

    def _get_json(self, url: str) -> Any:
        response = self.http.get(url, timeout=self.timeout)
        if response.status_code != 200:
            raise ApiError(response.status_code, response.text, f"GET {url}")
        return response.json()

    # ------------------------------------------------------------ Cognito
    def cognito(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(
            self.config["cognitoEndpoint"],
            json=body,
            headers={
                "X-Amz-Target": f"AWSCognitoIdentityProviderService.{action}",
                "Content-Type": "application/x-amz-json-1.1",
            },
            timeout=self.timeout,
        )
        if response.status_code != 200:
            raise ApiError(response.status_code, response.text, f"Cognito {action}")
        result: dict[str, Any] = response.json()
        return result

    def sign_in(self, email: str, password: str) -> str:
        result = self.cognito(
            "InitiateAuth",
            {
                "AuthFlow": "USER_PASSWORD_AUTH",
                "ClientId": self.config["userPoolClientId"],
                "AuthParameters": {"USERNAME": email, "PASSWORD": password},
            },
        )
        self.id_token = str(result["AuthenticationResult"]["IdToken"])
        return self.id_token

    # ------------------------------------------------------------ HTTP API
    def request(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.id_token}"} if auth and self.id_token else {}
        return self.http.request(
            method, f"{self.api_url}{path}", json=body, headers=headers, timeout=self.timeout
        )

    def call(self, method: str, path: str, body: Any = None, *, expect: int = 200, auth: bool = True) -> Any:
        response = self.request(method, path, body, auth=auth)
        if response.status_code != expect:
            raise ApiError(response.status_code, response.text, f"{method} {path}")
        return response.json() if response.content else None

    def request_upload(self, name: str, size: int, content_type: str) -> UploadTicket:
        ticket = self.call(
            "POST", "/uploads", {"name": name, "size": size, "contentType": content_type}, expect=201
        )
        return UploadTicket(str(ticket["fileId"]), str(ticket["url"]), dict(ticket["fields"]))

    def post_file(self, ticket: UploadTicket, data: bytes, content_type: str) -> requests.Response:
        """The browser's form POST to S3: the policy's fields first, the file last."""
        files = {name: (None, value) for name, value in ticket.fields.items()}
        files["file"] = ("upload", data, content_type)  # type: ignore[assignment]
        return self.http.post(ticket.url, files=files, timeout=self.timeout)

    def upload(self, name: str, data: bytes, content_type: str) -> str:
        ticket = self.request_upload(name, len(data), content_type)
        response = self.post_file(ticket, data, content_type)
        if response.status_code not in (200, 201, 204):
            raise ApiError(response.status_code, response.text, "S3 POST upload")
        return ticket.file_id

    def wait_final(self, file_id: str, timeout: float = 30.0, interval: float = 0.05) -> dict[str, Any]:
        """Poll GET /files/{id} until the file reaches a final status."""
        deadline = time.monotonic() + timeout
        while True:
            record: dict[str, Any] = self.call("GET", f"/files/{file_id}")
            if record["status"] in FINAL_STATUSES:
                return record
            if time.monotonic() >= deadline:
                raise TimeoutError(f"file {file_id} still {record['status']} after {timeout} s")
            time.sleep(interval)

    def download(self, url: str) -> requests.Response:
        response = self.http.get(url, timeout=self.timeout)
        if response.status_code != 200:
            raise ApiError(response.status_code, response.text, f"GET {url}")
        return response
