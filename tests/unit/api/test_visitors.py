"""What a download log may say about a visitor: browser and OS family, a country code; no address."""

from __future__ import annotations

import pytest

from api.visitors import Visitor

AGENTS = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Safari/537.36 Edg/131.0.0.0": ("Edge", "Windows"),
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 "
    "Safari/537.36": ("Chrome", "Linux"),
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Mobile Safari/537.36": ("Chrome", "Android"),
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
    "Safari/605.1.15": ("Safari", "macOS"),
    "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0 "
    "Mobile/15E148 Safari/604.1": ("Chrome", "iOS"),
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Safari/537.36": ("Chrome", "ChromeOS"),
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0": ("Firefox", "Linux"),
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Safari/537.36 OPR/115.0.0.0": ("Opera", "Windows"),
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)": ("Bot", "Other"),
    "curl/8.11.0": ("curl", "Other"),
    "Wget/1.24.5": ("Wget", "Other"),
    "python-requests/2.32.3": ("Other", "Other"),
    "": ("Unknown", "Unknown"),
    "   ": ("Unknown", "Unknown"),
}


@pytest.mark.parametrize(("agent", "expected"), AGENTS.items())
def test_browser_and_platform_families(agent: str, expected: tuple[str, str]) -> None:
    visitor = Visitor(user_agent=agent)

    assert (visitor.browser, visitor.platform) == expected


@pytest.mark.parametrize(
    ("header", "code"),
    [("DE", "DE"), ("de", "DE"), (" fr ", "FR"), ("XYZ", None), ("1A", None), ("", None), (None, None)],
)
def test_only_two_letter_country_codes_are_kept(header: str | None, code: str | None) -> None:
    assert Visitor(country=header).country_code == code


def test_a_client_bucket_is_per_link_and_too_coarse_to_name_an_address() -> None:
    here, there = Visitor(address="203.0.113.10"), Visitor(address="203.0.113.11")
    link, other_link = "a" * 64, "b" * 64

    assert here.bucket(link) == Visitor(address="203.0.113.10").bucket(link)
    assert here.bucket(link) != there.bucket(link)
    assert here.bucket(link) != here.bucket(other_link)
    assert len(here.bucket(link) or "") == 5  # 20 bits: about 4,000 IPv4 addresses share each value
    assert Visitor().bucket(link) is None


def test_a_huge_user_agent_is_read_only_in_part() -> None:
    visitor = Visitor(user_agent="x" * 100_000 + " Firefox/133.0")

    assert visitor.browser == "Other"
