"""The local runtime's JWT authorizer accepts exactly the Cognito tokens API Gateway's authorizer would."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from moto.cognitoidp.responses import CognitoIdpJsonWebKeyResponse

from filepipe.local.services.apigateway.jwt_authorizer import (
    CognitoJwtAuthorizer,
    Unauthorized,
    gateway_claims,
)
from tests.stack import StackFixture

REGION = "us-east-1"
PASSWORD = "Correct-Horse-Battery-9"
MOTO_JWKS: Mapping[str, Any] = json.loads(CognitoIdpJsonWebKeyResponse.json_web_key)


@dataclass
class Pool:
    pool_id: str
    client_id: str
    sub: str
    id_token: str
    access_token: str

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{REGION}.amazonaws.com/{self.pool_id}"


@pytest.fixture(scope="module")
def pool(api_stack: StackFixture) -> Pool:
    """The template's user pool and web client, a confirmed user, and the tokens moto issues to them."""
    idp = api_stack.client("cognito-idp")
    pool_id = api_stack.physical("UserPool")
    client_id = api_stack.physical("UserPoolClient")
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="alice@example.com",
        TemporaryPassword="Temporary-Pass-1",
        MessageAction="SUPPRESS",
    )
    idp.admin_set_user_password(
        UserPoolId=pool_id, Username="alice@example.com", Password=PASSWORD, Permanent=True
    )
    result = idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "alice@example.com", "PASSWORD": PASSWORD},
    )["AuthenticationResult"]
    user = idp.admin_get_user(UserPoolId=pool_id, Username="alice@example.com")
    sub = next(attribute["Value"] for attribute in user["UserAttributes"] if attribute["Name"] == "sub")
    return Pool(pool_id, client_id, sub, result["IdToken"], result["AccessToken"])


class CountingJwks:
    def __init__(self, *documents: Mapping[str, Any]) -> None:
        self.documents = list(documents)
        self.urls: list[str] = []

    def __call__(self, url: str) -> Mapping[str, Any]:
        self.urls.append(url)
        return self.documents[min(len(self.urls), len(self.documents)) - 1]


def _authorizer(pool: Pool, **kwargs: Any) -> CognitoJwtAuthorizer:
    kwargs.setdefault("jwks_fetcher", CountingJwks(MOTO_JWKS))
    return CognitoJwtAuthorizer(pool.pool_id, [pool.client_id], **kwargs)


def test_moto_id_and_access_tokens_verify_against_the_pools_jwks(pool: Pool) -> None:
    fetcher = CountingJwks(MOTO_JWKS)
    authorizer = _authorizer(pool, jwks_fetcher=fetcher)

    id_claims = authorizer.verify_header(f"Bearer {pool.id_token}")
    access_claims = authorizer.verify_header(f"bearer {pool.access_token}")
    bare = authorizer.verify_header(pool.id_token)

    assert id_claims["sub"] == access_claims["sub"] == bare["sub"] == pool.sub
    assert id_claims["token_use"] == "id"
    assert id_claims["aud"] == pool.client_id
    assert access_claims["token_use"] == "access"
    assert access_claims["client_id"] == pool.client_id
    assert id_claims["iss"] == pool.issuer
    assert fetcher.urls == [
        f"https://cognito-idp.{REGION}.amazonaws.com/{pool.pool_id}/.well-known/jwks.json"
    ]


def test_the_jwks_url_follows_a_local_cognito_endpoint(pool: Pool) -> None:
    authorizer = _authorizer(pool, endpoint="http://127.0.0.1:5000/")

    assert authorizer.jwks_url == f"http://127.0.0.1:5000/{pool.pool_id}/.well-known/jwks.json"
    assert authorizer.issuer == pool.issuer


def test_moto_token_expires_with_the_injected_clock(pool: Pool) -> None:
    expires = jwt.decode(pool.id_token, options={"verify_signature": False})["exp"]

    valid = _authorizer(pool, clock=lambda: expires - 1).verify(pool.id_token)
    with pytest.raises(Unauthorized, match="expired"):
        _authorizer(pool, clock=lambda: expires).verify(pool.id_token)

    assert valid["sub"] == pool.sub


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "   ",
        "Bearer",
        "Bearer ",
        "Bearer abc",
        "Bearer a.b.c",
        "Basic dXNlcjpwYXNz",
        "Bearer e30.e30.e30",
    ],
)
def test_malformed_headers_are_unauthorized(pool: Pool, header: str | None) -> None:
    with pytest.raises(Unauthorized) as raised:
        _authorizer(pool).verify_header(header)

    assert raised.value.reason


def test_wrong_audience_and_wrong_issuer_are_unauthorized(pool: Pool) -> None:
    other_client = CognitoJwtAuthorizer(
        pool.pool_id, ["some-other-client"], jwks_fetcher=CountingJwks(MOTO_JWKS)
    )
    other_pool = CognitoJwtAuthorizer(
        "us-east-1_OtherPool",
        [pool.client_id],
        endpoint=f"https://cognito-idp.{REGION}.amazonaws.com",
        jwks_fetcher=CountingJwks(MOTO_JWKS),
    )

    for token in (pool.id_token, pool.access_token):
        with pytest.raises(Unauthorized, match="audience"):
            other_client.verify(token)
        with pytest.raises(Unauthorized, match="issuer"):
            other_pool.verify(token)


def test_a_tampered_token_fails_its_signature(pool: Pool) -> None:
    header, _, signature = pool.id_token.split(".")
    claims = jwt.decode(pool.id_token, options={"verify_signature": False})
    forged = jwt.utils.base64url_encode(json.dumps({**claims, "sub": "someone-else"}).encode()).decode()

    with pytest.raises(Unauthorized, match="signature"):
        _authorizer(pool).verify(f"{header}.{forged}.{signature}")


# ---------------------------------------------------------------- tokens signed with a key of our own


@dataclass
class Signer:
    key: rsa.RSAPrivateKey
    kid: str

    def jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}

    def sign(self, claims: Mapping[str, Any], **headers: Any) -> str:
        return jwt.encode(dict(claims), self.key, algorithm="RS256", headers={"kid": self.kid, **headers})


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer(rsa.generate_private_key(public_exponent=65537, key_size=2048), "test-key-1")


NOW = 1_900_000_000.0


def _claims(pool: Pool, **overrides: Any) -> dict[str, Any]:
    claims = {
        "sub": pool.sub,
        "iss": pool.issuer,
        "aud": pool.client_id,
        "token_use": "id",
        "iat": int(NOW) - 60,
        "auth_time": int(NOW) - 60,
        "exp": int(NOW) + 3600,
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def _own(pool: Pool, signer: Signer, **kwargs: Any) -> CognitoJwtAuthorizer:
    return _authorizer(pool, jwks_fetcher=CountingJwks({"keys": [signer.jwk()]}), clock=lambda: NOW, **kwargs)


def test_own_key_token_with_good_claims_passes(pool: Pool, signer: Signer) -> None:
    token = signer.sign(_claims(pool))

    assert _own(pool, signer).verify(token)["sub"] == pool.sub


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": int(NOW) - 1}, "expired"),
        ({"exp": int(NOW)}, "expired"),
        ({"exp": None}, "no exp"),
        ({"exp": "tomorrow"}, "not a number"),
        ({"nbf": int(NOW) + 30}, "not valid yet"),
        ({"iat": int(NOW) + 30}, "future"),
        ({"iat": None}, "no iat"),
        ({"aud": "another-client"}, "audience"),
        ({"aud": None}, "audience"),
        ({"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Elsewhere"}, "issuer"),
        ({"iss": "https://evil.example.com"}, "issuer"),
        ({"token_use": "refresh"}, "token_use"),
        ({"token_use": None}, "token_use"),
        ({"token_use": "access"}, "audience"),  # an access token names its client in client_id, not aud
    ],
)
def test_own_key_tokens_with_bad_claims_are_unauthorized(
    pool: Pool, signer: Signer, overrides: dict[str, Any], reason: str
) -> None:
    token = signer.sign(_claims(pool, **overrides))

    with pytest.raises(Unauthorized, match=reason):
        _own(pool, signer).verify(token)


def test_leeway_tolerates_small_clock_skew(pool: Pool, signer: Signer) -> None:
    token = signer.sign(_claims(pool, exp=int(NOW) - 5, iat=int(NOW) + 5))

    assert _own(pool, signer, leeway_seconds=10).verify(token)["sub"] == pool.sub
    with pytest.raises(Unauthorized):
        _own(pool, signer).verify(token)


def test_access_tokens_are_matched_on_client_id(pool: Pool, signer: Signer) -> None:
    token = signer.sign(_claims(pool, token_use="access", aud=None, client_id=pool.client_id))

    assert _own(pool, signer).verify(token)["client_id"] == pool.client_id


def test_other_algorithms_are_refused(pool: Pool, signer: Signer) -> None:
    claims = _claims(pool)
    segments = ({"alg": "none", "typ": "JWT", "kid": signer.kid}, claims)
    unsigned = (
        ".".join(jwt.utils.base64url_encode(json.dumps(part).encode()).decode() for part in segments) + "."
    )
    hmac = jwt.encode(
        claims,
        "a-shared-secret-that-is-long-enough-for-hs256",
        algorithm="HS256",
        headers={"kid": signer.kid},
    )

    for token in (unsigned, hmac):
        with pytest.raises(Unauthorized, match="algorithm"):
            _own(pool, signer).verify(token)


def test_unknown_key_ids_and_foreign_keys_are_refused(pool: Pool, signer: Signer) -> None:
    stranger = Signer(rsa.generate_private_key(public_exponent=65537, key_size=2048), signer.kid)

    with pytest.raises(Unauthorized, match="unknown key"):
        _own(pool, signer).verify(signer.sign(_claims(pool), kid="not-in-the-set"))
    with pytest.raises(Unauthorized, match="signature"):
        _own(pool, signer).verify(stranger.sign(_claims(pool)))


def test_keys_are_cached_refreshed_when_old_and_refetched_for_a_rotated_key(
    pool: Pool, signer: Signer
) -> None:
    rotated = Signer(rsa.generate_private_key(public_exponent=65537, key_size=2048), "test-key-2")
    fetcher = CountingJwks({"keys": [signer.jwk()]}, {"keys": [signer.jwk(), rotated.jwk()]})
    clock = [NOW]
    authorizer = _authorizer(pool, jwks_fetcher=fetcher, clock=lambda: clock[0])

    for _ in range(5):
        authorizer.verify(signer.sign(_claims(pool)))
    assert len(fetcher.urls) == 1

    clock[0] += 10
    with pytest.raises(Unauthorized, match="unknown key"):
        authorizer.verify(rotated.sign(_claims(pool)))
    assert len(fetcher.urls) == 1, "an unknown kid right after a fetch does not hammer the endpoint"

    clock[0] += 60
    assert authorizer.verify(rotated.sign(_claims(pool)))["sub"] == pool.sub
    assert len(fetcher.urls) == 2

    clock[0] += 3600
    authorizer.verify(signer.sign(_claims(pool, exp=int(clock[0]) + 60)))
    assert len(fetcher.urls) == 3, "a key set older than an hour is fetched again"


def test_unreachable_keys_mean_unauthorized(pool: Pool, signer: Signer) -> None:
    def down(url: str) -> Mapping[str, Any]:
        raise OSError("connection refused")

    with pytest.raises(Unauthorized, match="signing keys unavailable"):
        _authorizer(pool, jwks_fetcher=down).verify(signer.sign(_claims(pool)))


@pytest.fixture
def jwks_server(signer: Signer) -> Iterator[tuple[str, list[str]]]:
    """A JWKS endpoint on 127.0.0.1, as a local Cognito serves it."""
    requested: list[str] = []
    body = json.dumps({"keys": [signer.jwk()]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requested.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_default_fetcher_reads_the_jwks_over_http_once(
    pool: Pool, signer: Signer, jwks_server: tuple[str, list[str]]
) -> None:
    endpoint, requested = jwks_server
    authorizer = CognitoJwtAuthorizer(pool.pool_id, [pool.client_id], endpoint=endpoint, clock=lambda: NOW)
    started = time.monotonic()

    for _ in range(3):
        assert authorizer.verify(signer.sign(_claims(pool)))["sub"] == pool.sub

    assert requested == [f"/{pool.pool_id}/.well-known/jwks.json"]
    assert time.monotonic() - started < 5


def test_gateway_claims_are_strings_as_api_gateway_passes_them() -> None:
    claims = {"sub": "abc", "exp": 1900000000, "email_verified": True, "cognito:groups": ["admins", "users"]}

    assert gateway_claims(claims) == {
        "sub": "abc",
        "exp": "1900000000",
        "email_verified": "true",
        "cognito:groups": "[admins users]",
    }
