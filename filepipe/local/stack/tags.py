"""CloudFormation tags (a list of Key/Value pairs, or a map) in the two shapes the services' APIs take."""

from __future__ import annotations

from typing import Any


def tag_list(tags: Any) -> list[dict[str, str]]:
    if isinstance(tags, dict):
        return [{"Key": str(k), "Value": str(v)} for k, v in tags.items()]
    return [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in tags or []]


def tag_map(tags: Any) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tag_list(tags)}
