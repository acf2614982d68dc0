"""The principal the runtime's own in-process requests act as (an EventBridge rule, a schedule's role).

Unset, the runtime's requests are the account administrator's, as an operator's are.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from filepipe.local.iam.principals import Principal

# The WSGI environ key the in-process transport passes the acting principal under: a server-side key
# (WSGI keeps "x.y" names for servers and middleware), which no HTTP client can set.
ENVIRON_KEY = "filepipe.principal"

_acting: ContextVar[Principal | None] = ContextVar("filepipe_acting_principal", default=None)


def current() -> Principal | None:
    return _acting.get()


@contextmanager
def acting_as(principal: Principal | None) -> Iterator[None]:
    """Within, the runtime's in-process AWS requests of this thread are ``principal``'s."""
    token = _acting.set(principal)
    try:
        yield
    finally:
        _acting.reset(token)
