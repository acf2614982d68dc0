"""AWS SDK speed-ups for the runtime and its function workers that leave every request unchanged."""

from __future__ import annotations

import functools


def memoize_user_agent_sanitizer() -> None:
    """Sanitize each User-Agent component once per process rather than character by character per request.

    botocore rebuilds the User-Agent header for every request and filters each of its ~15 components one
    character at a time (about a tenth of a light function's time here). The filter is a pure function of
    its arguments and the components barely vary, so a cache returns exactly what it would.
    """
    try:
        import botocore.useragent as useragent
    except ImportError:
        return
    sanitize = useragent.sanitize_user_agent_string_component
    if not hasattr(sanitize, "cache_info"):
        useragent.sanitize_user_agent_string_component = functools.lru_cache(maxsize=1024)(sanitize)
