"""Password checks on public links (shares, request links): attempts counted, then the slow hash."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from api.throttles import RetryLater
from api.visitors import Visitor
from common.observability import logger

if TYPE_CHECKING:
    from common.links import LinkItems

# Password attempts per link and per client in one window; right passwords are given back.
ATTEMPT_WINDOW_SECONDS = 15 * 60
ATTEMPTS_PER_LINK = 30
ATTEMPTS_PER_CLIENT = 10


class TooManyAttempts(RetryLater):
    """Too many password attempts on one link (or from one client) in this window: answered with a 429."""

    code = "TooManyAttempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many password attempts", retry_after)


def admit(
    counter: LinkItems,
    link_id: str,
    stored_hash: str | None,
    password: str | None,
    visitor: Visitor,
    now_epoch: int,
    verify: Callable[[str, str], bool],
    refusal: Callable[[], Exception],
) -> None:
    """Let a visitor through a link without a password, or with the right one; a missing or wrong one gets
    ``refusal()``, the same answer as an unknown link.

    Every attempt is counted before the slow hash runs, so parallel guesses cannot outrun the limit.
    """
    if not stored_hash:
        return
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
