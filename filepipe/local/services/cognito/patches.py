"""Cognito's side of moto the runtime completes: RevokeToken, which moto lacks, on moto's user pools."""

from __future__ import annotations

import base64
import json


class TokenRevocationError(Exception):
    """Cognito's answer to a RevokeToken it refuses: its error code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def revoke_refresh_token(account: str, client_id: str, token: str, client_secret: str | None = None) -> None:
    """Cognito's RevokeToken, which moto lacks: a refresh token and the access tokens it issued stop working.

    As OAuth's revocation (RFC 7009) answers, a token that is unknown or already revoked is not an error.
    Relies on ``moto.cognitoidp.models.cognitoidp_backends`` and each pool's ``clients`` (their
    ``generate_secret``, ``secret`` and ``extended_config``), ``refresh_tokens`` (token -> client id,
    username, origin jti; None once signed out) and ``access_tokens``.
    """
    from moto.cognitoidp.models import cognitoidp_backends

    if not token or not client_id:
        raise TokenRevocationError("InvalidParameterException", "Token and ClientId are required.")
    if token.count(".") == 2:
        raise TokenRevocationError("UnsupportedTokenTypeException", "Only refresh tokens can be revoked.")
    for backend in list(cognitoidp_backends[account].values()):
        for pool in list(backend.user_pools.values()):
            client = pool.clients.get(client_id)
            if client is None:
                continue
            if client.generate_secret and client_secret != client.secret:
                raise TokenRevocationError("UnauthorizedException", "Client authentication failed.")
            if not client.extended_config.get("EnableTokenRevocation", True):
                raise TokenRevocationError(
                    "UnsupportedOperationException", "Token revocation is not enabled for this client."
                )
            issued = pool.refresh_tokens.get(token)
            if issued is None:
                return
            issued_to, _username, origin_jti = issued
            if issued_to != client_id:
                raise TokenRevocationError(
                    "UnauthorizedException", "The token was not issued to this client."
                )
            pool.refresh_tokens[token] = None  # moto's mark of a signed-out refresh token
            for access_token in list(pool.access_tokens):
                payload = access_token.split(".")[1]
                claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
                if claims.get("origin_jti") == origin_jti:
                    pool.access_tokens.pop(access_token, None)
            return
    raise TokenRevocationError("UnauthorizedException", f"No app client {client_id}.")
