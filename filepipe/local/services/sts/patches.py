"""STS's side of moto the runtime reads: when a role session's credentials expire."""

from __future__ import annotations

from datetime import UTC, datetime


def session_expiration(access_key: str) -> datetime | None:
    """When the role session moto's STS issued ``access_key`` for ends; None for any other key.

    Relies on ``moto.sts.models.sts_backends`` (accounts, then partitions) and each backend's
    ``assumed_roles``, whose ``access_key_id`` and ``expiration`` (UTC, naive) it reads.
    """
    from moto.sts.models import sts_backends

    for account in list(sts_backends.values()):
        for backend in list(account.values()):
            for session in list(backend.assumed_roles):
                if session.access_key_id == access_key:
                    ends: datetime = session.expiration
                    return ends if ends.tzinfo else ends.replace(tzinfo=UTC)
    return None
