"""DynamoDB adapter for request links: keyed by the token's SHA-256 (never the token), indexed by owner."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from common.links import LinkItems
from common.records import from_item, to_item

REQUEST_SK = "REQUEST"
OWNER_INDEX = "gsi1"


def request_pk(request_id: str) -> str:
    return f"REQUEST#{request_id}"


def owner_index_pk(owner_id: str) -> str:
    return f"REQUESTS#{owner_id}"


class RequestLinks(LinkItems):
    """Request links in the single table, all under ``pk = REQUEST#sha256(token)``:

    - ``sk = REQUEST``: the link, indexed by its owner (``gsi1pk = REQUESTS#ownerId``, newest last). It
      counts what it can still take down, ``filesLeft`` and ``bytesLeft``, so that one conditional update
      reserves a file and its bytes (DynamoDB conditions compare attributes but cannot add them);
    - ``sk = GUESSES#window``: password attempts in one rate-limit window (``common.links``).

    ``closesAtEpoch`` is when guests can no longer upload; ``expiresAtEpoch``, the table's TTL, is later,
    so the owner still sees a closed link for a while before DynamoDB removes it.
    """

    kind = "request link"

    @staticmethod
    def link_pk(link_id: str) -> str:
        return request_pk(link_id)

    @staticmethod
    def key(request_id: str) -> dict[str, Any]:
        return to_item({"pk": request_pk(request_id), "sk": REQUEST_SK})

    def create(self, link: Mapping[str, Any]) -> None:
        """Write a new link (``requestId``, ``ownerId``, ``createdAt``, limits, expiry, settings)."""
        values = {
            "pk": request_pk(link["requestId"]),
            "sk": REQUEST_SK,
            "gsi1pk": owner_index_pk(link["ownerId"]),
            "gsi1sk": f"{link['createdAt']}#{link['requestId']}",
            "filesLeft": link["maxFiles"],
            "bytesLeft": link["maxBytes"],
            **link,
        }
        self._call("put_item", Item=to_item(values), ConditionExpression="attribute_not_exists(pk)")

    def get(self, request_id: str) -> dict[str, Any] | None:
        response = self._call("get_item", Key=self.key(request_id), ConsistentRead=True)
        item = response.get("Item")
        return from_item(item) if item else None

    def list_for_owner(self, owner_id: str) -> list[dict[str, Any]]:
        """The owner's links, newest first (the index is eventually consistent)."""
        items = self._query(
            IndexName=OWNER_INDEX,
            KeyConditionExpression="gsi1pk = :pk",
            ExpressionAttributeValues=to_item({":pk": owner_index_pk(owner_id)}),
            ScanIndexForward=False,
        )
        return [from_item(item) for item in items]

    def reserve(self, request_id: str, size: int, now_epoch: int) -> dict[str, Any] | None:
        """Take one file and ``size`` bytes from an open link, or nothing: None when it is gone, closed,
        or has no file or not enough bytes left. One conditional update, so racing guests cannot together
        exceed the link's limits."""
        response = self._conditional(
            "update_item",
            Key=self.key(request_id),
            UpdateExpression="SET filesLeft = filesLeft - :one, bytesLeft = bytesLeft - :size",
            ConditionExpression=(
                "attribute_exists(pk) AND closesAtEpoch > :now AND filesLeft >= :one AND bytesLeft >= :size"
            ),
            ExpressionAttributeValues=to_item({":one": 1, ":size": size, ":now": now_epoch}),
            ReturnValues="ALL_NEW",
        )
        return from_item(response["Attributes"]) if response else None

    def release(self, request_id: str, size: int) -> None:
        """Give back a reservation whose upload was never issued."""
        self._conditional(
            "update_item",
            Key=self.key(request_id),
            UpdateExpression="SET filesLeft = filesLeft + :one, bytesLeft = bytesLeft + :size",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=to_item({":one": 1, ":size": size}),
        )

    def update(
        self,
        request_id: str,
        owner_id: str,
        changes: Mapping[str, Any],
        removals: Iterable[str],
        limits_were: Mapping[str, int],
    ) -> dict[str, Any] | None:
        """Change this owner's link. A new ``maxFiles`` or ``maxBytes`` moves what is left by as much, in
        the same update as guests' reservations take from it; ``limits_were`` (the limits read before)
        must still hold. None when they have no such link or its limits changed meanwhile."""
        additions = {
            left: int(changes[limit]) - int(limits_were[limit])
            for limit, left in (("maxFiles", "filesLeft"), ("maxBytes", "bytesLeft"))
            if limit in changes
        }
        return self.update_owned(self.key(request_id), owner_id, changes, removals, additions, limits_were)

    def delete(self, request_id: str, owner_id: str) -> bool:
        """Remove this owner's link, then its password windows; False when they have no such link."""
        response = self._conditional(
            "delete_item",
            Key=self.key(request_id),
            ConditionExpression="ownerId = :owner",
            ExpressionAttributeValues=to_item({":owner": owner_id}),
        )
        if response is None:
            return False
        self.purge(request_id)
        return True
