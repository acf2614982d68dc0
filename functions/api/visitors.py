"""Who downloads a share, as coarsely as the owner needs: browser and OS family, country; never an address."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# First match wins: Edge and Opera also say "Chrome", Chrome also says "Safari".
_BROWSERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Bot", re.compile(r"bot\b|crawler|spider|preview|facebookexternalhit|slurp", re.IGNORECASE)),
    ("Edge", re.compile(r"\bEdg(e|A|iOS)?/")),
    ("Opera", re.compile(r"\bOPR/|\bOpera\b")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/")),
    ("Firefox", re.compile(r"\bFirefox/|\bFxiOS/")),
    ("Chrome", re.compile(r"(\b|Headless)Chrome/|\bCriOS/|\bChromium/")),
    ("Safari", re.compile(r"\bVersion/[\d.]+.*\bSafari/")),
    ("curl", re.compile(r"^curl/")),
    ("Wget", re.compile(r"^Wget/", re.IGNORECASE)),
)
_PLATFORMS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Android", re.compile(r"\bAndroid\b")),
    ("iOS", re.compile(r"\b(iPhone|iPad|iPod)\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("Linux", re.compile(r"\bLinux\b")),
)
_COUNTRY = re.compile(r"[A-Z]{2}")
# 20 bits of a per-link hash of the address: enough to tell the few clients guessing at one link apart,
# too few to say which address it was (each value stands for thousands of IPv4 addresses).
CLIENT_BUCKET_HEX = 5
MAX_USER_AGENT_CHARS = 1024


@dataclass(frozen=True)
class Visitor:
    """What the request says about its sender; only coarse parts of it are ever stored."""

    address: str | None = None
    user_agent: str = ""
    country: str | None = None

    @property
    def browser(self) -> str:
        agent = self.user_agent[:MAX_USER_AGENT_CHARS]
        if not agent.strip():
            return "Unknown"
        return next((name for name, pattern in _BROWSERS if pattern.search(agent)), "Other")

    @property
    def platform(self) -> str:
        agent = self.user_agent[:MAX_USER_AGENT_CHARS]
        if not agent.strip():
            return "Unknown"
        return next((name for name, pattern in _PLATFORMS if pattern.search(agent)), "Other")

    @property
    def country_code(self) -> str | None:
        """The country a CDN in front of the API reported (CloudFront-Viewer-Country); None without one."""
        code = (self.country or "").strip().upper()
        return code if _COUNTRY.fullmatch(code) else None

    def bucket(self, share_id: str) -> str | None:
        """The client's rate-limit bucket for one link, or None when the address is unknown."""
        if not self.address:
            return None
        digest = hashlib.sha256(f"{share_id}:{self.address}".encode()).hexdigest()
        return digest[:CLIENT_BUCKET_HEX]
