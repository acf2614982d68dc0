"""S3's checks of a presigned (SigV4 query) request's lifetime: at most a week, unexpired, session valid."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from filepipe.local.services.s3.post import S3PostError

# SigV4 signatures last at most a week.
MAX_EXPIRES_SECONDS = 7 * 24 * 3600
_AMZ_DATE = "%Y%m%dT%H%M%SZ"

SessionExpiry = Callable[[str], datetime | None]


def is_presigned_s3(query: Mapping[str, str]) -> bool:
    """A request signed in its query string (a presigned URL) for S3."""
    credential = query.get("X-Amz-Credential", "")
    return "X-Amz-Signature" in query and credential.split("/")[3:4] == ["s3"]


def _query_error(message: str) -> S3PostError:
    return S3PostError(400, "AuthorizationQueryParametersError", message)


def check_lifetime(query: Mapping[str, str], now: datetime, session_expiry: SessionExpiry) -> None:
    """Refuse a presigned S3 request as S3 does when its lifetime is malformed, too long or over."""
    try:
        expires = int(query.get("X-Amz-Expires", ""))
    except ValueError as error:
        raise _query_error("X-Amz-Expires should be a number") from error
    if expires < 0:
        raise _query_error("X-Amz-Expires must be non-negative")
    if expires > MAX_EXPIRES_SECONDS:
        raise _query_error(
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be "
            f"less than {MAX_EXPIRES_SECONDS} seconds"
        )
    try:
        signed = datetime.strptime(query.get("X-Amz-Date", ""), _AMZ_DATE).replace(tzinfo=UTC)
    except ValueError as error:
        message = "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\""
        raise _query_error(message) from error
    expiry = signed + timedelta(seconds=expires)
    if now > expiry:
        raise S3PostError(
            403,
            "AccessDenied",
            "Request has expired",
            {
                "X-Amz-Expires": str(expires),
                "Expires": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ServerTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )
    if "X-Amz-Security-Token" in query:
        # Signed with temporary credentials: the URL works no longer than they do.
        access_key = query.get("X-Amz-Credential", "").split("/")[0]
        session_ends = session_expiry(access_key)
        if session_ends is not None and now >= session_ends:
            raise S3PostError(400, "ExpiredToken", "The provided token has expired.")
