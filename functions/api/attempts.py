"""Password checks on public links (shares, request links): attempts counted, then the slow hash."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from api.visitors import Visitor
from common.errors import ServiceThrottled
from common.observability import logger

# Password attempts per link and per client in one window; right passwords are given back.
ATTEMPT_WINDOW_SECONDS = 15 * 60
ATTEMPTS_PER_LINK = 30
ATTEMPTS_PER_CLIENT = 10


class TooManyAttempts(ServiceThrottled):
    """Too many password attempts on one link (or from one client) in this window: answered with a 429."""

    code = "TooManyAttempts"

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, -(-retry_after // 60))
        super().__init__(
            f"too many password attempts; try again in {minutes} minute{'s' if minutes > 1 else ''}",
            code=self.code,
        )
        self.retry_after = retry_after


class AttemptCounter(Protocol):
    def take_attempt(
        self,
        link_id: str,
        window_start: int,
        client: str | None,
        link_limit: int,
        client_limit: int,
        expires_epoch: int,
        /,
    ) -> bool: ...

    def return_attempt(self, link_id: str, window_start: int, client: str | None, /) -> None: ...


def admit(
    counter: AttemptCounter,
    link_id: str,
    stored_hash: str,
    password: str | None,
    visitor: Visitor,
    now_epoch: int,
    verify: Callable[[str, str], bool],
    refusal: Callable[[], Exception],
) -> None:
    """Let a visitor with the right password through; a missing or wrong one gets ``refusal()``, the same
    answer as an unknown link.

    Every attempt is counted before the slow hash runs, so parallel guesses cannot outrun the limit.
    """
    if password is None:
        raise refusal()
    window = now_epoch - now_epoch % ATTEMPT_WINDOW_SECONDS
    window_end = window + ATTEMPT_WINDOW_SECONDS
    client = visitor.bucket(link_id)
    if not counter.take_attempt(link_id, window, client, ATTEMPTS_PER_LINK, ATTEMPTS_PER_CLIENT, window_end):
        logger.warning("password attempts limited", extra={"linkId": link_id})
        raise TooManyAttempts(window_end - now_epoch)
    if not verify(password, stored_hash):
        raise refusal()
    counter.return_attempt(link_id, window, client)
