"""Verify Cognito user pool tokens as API Gateway's JWT authorizer does, for the local runtime.

The local runtime calls :meth:`CognitoJwtAuthorizer.verify_header` with a request's ``Authorization``
header, puts :func:`gateway_claims` of the result in ``requestContext.authorizer.jwt.claims`` and
answers ``401 {"message":"Unauthorized"}`` when it raises :class:`Unauthorized`.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jwt

JwksFetcher = Callable[[str], Mapping[str, Any]]
Clock = Callable[[], float]

SIGNING_ALGORITHM = "RS256"
# Where each kind of Cognito token names the app client it was issued to.
AUDIENCE_CLAIM = {"id": "aud", "access": "client_id"}
JWKS_TIMEOUT_SECONDS = 5.0


class Unauthorized(Exception):
    """The request carries no token API Gateway would accept; ``reason`` says why (for logs only)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def fetch_jwks(url: str) -> Mapping[str, Any]:
    """GET the pool's JSON Web Key Set."""
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"not an HTTP(S) JWKS URL: {url}")
    with urllib.request.urlopen(url, timeout=JWKS_TIMEOUT_SECONDS) as response:  # noqa: S310 (scheme checked)
        document: Mapping[str, Any] = json.load(response)
    return document


def gateway_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    """Claims as API Gateway hands them to a function: every value a string, lists as ``[a b]``."""

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list):
            return "[" + " ".join(text(item) for item in value) + "]"
        if isinstance(value, dict):
            return json.dumps(value, separators=(",", ":"))
        return str(value)

    return {name: text(value) for name, value in claims.items()}


class CognitoJwtAuthorizer:
    """RS256 signature against the pool's JWKS (cached), issuer, audience, time claims and token_use.

    ``audiences`` are the app client ids the API accepts: an ID token names its client in ``aud``, an
    access token in ``client_id``, and API Gateway accepts either.
    """

    def __init__(
        self,
        user_pool_id: str,
        audiences: Iterable[str],
        *,
        region: str | None = None,
        endpoint: str | None = None,
        issuer: str | None = None,
        jwks_fetcher: JwksFetcher = fetch_jwks,
        clock: Clock = time.time,
        leeway_seconds: float = 0.0,
        jwks_max_age_seconds: float = 3600.0,
        unknown_key_refetch_seconds: float = 60.0,
    ) -> None:
        region = region or user_pool_id.split("_", 1)[0]
        regional = f"https://cognito-idp.{region}.amazonaws.com"
        self.user_pool_id = user_pool_id
        self.audiences = frozenset(audiences)
        if not self.audiences:
            raise ValueError("at least one audience (app client id) is required")
        self.issuer = issuer or f"{regional}/{user_pool_id}"
        self.jwks_url = f"{(endpoint or regional).rstrip('/')}/{user_pool_id}/.well-known/jwks.json"
        self._fetch = jwks_fetcher
        self._clock = clock
        self._leeway = leeway_seconds
        self._max_age = jwks_max_age_seconds
        self._refetch_after = unknown_key_refetch_seconds
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------ keys
    def _refresh(self) -> None:
        try:
            document = self._fetch(self.jwks_url)
            keys = {
                str(jwk["kid"]): jwt.PyJWK(dict(jwk), algorithm=SIGNING_ALGORITHM).key
                for jwk in document.get("keys", [])
                if jwk.get("kid") and jwk.get("kty") == "RSA"
            }
        except Exception as error:
            raise Unauthorized(f"signing keys unavailable from {self.jwks_url}: {error}") from error
        self._keys = keys
        self._fetched_at = self._clock()

    def _signing_key(self, kid: str) -> Any:
        """The key for ``kid``; the set is refetched when stale, or when a new key may have rotated in."""
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self._max_age
            may_have_rotated = (
                kid not in self._keys
                and self._fetched_at is not None
                and now - self._fetched_at >= self._refetch_after
            )
            if stale or may_have_rotated:
                self._refresh()
            key = self._keys.get(kid)
        if key is None:
            raise Unauthorized(f"token signed with unknown key {kid!r}")
        return key

    # ------------------------------------------------------------ tokens
    def verify_header(self, authorization: str | None) -> dict[str, Any]:
        """Claims of the token in an ``Authorization`` header (``Bearer <jwt>`` or the bare token)."""
        if not authorization or not authorization.strip():
            raise Unauthorized("no Authorization header")
        scheme, _, rest = authorization.strip().partition(" ")
        token = rest.strip() if scheme.lower() == "bearer" else authorization.strip()
        if not token:
            raise Unauthorized("empty bearer token")
        return self.verify(token)

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims if API Gateway would accept it; raises :class:`Unauthorized` otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise Unauthorized(f"malformed token: {error}") from error
        if header.get("alg") != SIGNING_ALGORITHM:
            raise Unauthorized(f"unsupported signing algorithm {header.get('alg')!r}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("token header has no key id")
        key = self._signing_key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[SIGNING_ALGORITHM],
                # Time, issuer and audience are checked below, against the injectable clock.
                options={
                    "verify_signature": True,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.InvalidSignatureError as error:
            raise Unauthorized("bad signature") from error
        except jwt.PyJWTError as error:
            raise Unauthorized(f"malformed token: {error}") from error
        self._check_claims(claims)
        return claims

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        if claims.get("iss") != self.issuer:
            raise Unauthorized(f"wrong issuer {claims.get('iss')!r}")
        token_use = claims.get("token_use")
        if token_use not in AUDIENCE_CLAIM:
            raise Unauthorized(f"token_use {token_use!r} is neither id nor access")
        audience = claims.get(AUDIENCE_CLAIM[token_use])
        named = set(audience) if isinstance(audience, list) else {audience}
        if not named & self.audiences:
            raise Unauthorized(f"wrong audience {audience!r}")
        now = self._clock()
        expires = _number(claims, "exp", required=True)
        if expires is not None and now >= expires + self._leeway:
            raise Unauthorized("token expired")
        not_before = _number(claims, "nbf", required=False)
        if not_before is not None and now + self._leeway < not_before:
            raise Unauthorized("token not valid yet")
        issued = _number(claims, "iat", required=True)
        if issued is not None and issued > now + self._leeway:
            raise Unauthorized("token issued in the future")


def _number(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise Unauthorized(f"token has no {name} claim")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthorized(f"{name} claim is not a number")
    return float(value)
