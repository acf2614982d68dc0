"""Share passwords: scrypt hashes with their own parameters, so the cost can rise without breaking links."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

SALT_BYTES = 16
KEY_BYTES = 32
_SCHEME = "scrypt"


@dataclass(frozen=True)
class ScryptCost:
    """scrypt's work factors; memory is 128 * n * r bytes."""

    n: int
    r: int
    p: int

    @property
    def max_memory(self) -> int:
        return 2 * 128 * self.n * self.r * self.p  # headroom over scrypt's own need; hashlib refuses less


# 32 MiB and ~0.15 s on one core (measured here), ~0.3 s on the share function's 1,024 MB (0.58 vCPU): every
# protected download verifies once, so this is below OWASP's login-password baseline (n=2**17, 128 MiB),
# while online guessing is held to a few dozen attempts per link per quarter hour.
DEFAULT_COST = ScryptCost(n=2**15, r=8, p=1)
# What a stored hash may ask for: a tampered or corrupt item must not make verification run for minutes.
_MAX_N = 2**20
_MAX_R = 16
_MAX_P = 4


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, cost: ScryptCost) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=cost.n,
        r=cost.r,
        p=cost.p,
        maxmem=cost.max_memory,
        dklen=KEY_BYTES,
    )


def hash_password(password: str, cost: ScryptCost | None = None) -> str:
    """``scrypt$n$r$p$salt$key``, salt and key base64url: everything verification needs, and no secret."""
    cost = cost or DEFAULT_COST
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, cost)
    return f"{_SCHEME}${cost.n}${cost.r}${cost.p}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from; a malformed hash matches nothing."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        cost = ScryptCost(int(n), int(r), int(p))
        expected = _unb64(key)
        salt_bytes = _unb64(salt)
    except ValueError:
        return False
    if scheme != _SCHEME or not (1 < cost.n <= _MAX_N and 0 < cost.r <= _MAX_R and 0 < cost.p <= _MAX_P):
        return False
    if cost.n & (cost.n - 1) or len(expected) != KEY_BYTES:
        return False
    return hmac.compare_digest(_derive(password, salt_bytes, cost), expected)
