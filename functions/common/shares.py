"""DynamoDB adapter for share links: keyed by the token's SHA-256 (never the token), indexed by file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.aws import THROTTLING_CODES, error_code
from common.errors import ServiceThrottled
from common.records import from_item, to_item

SHARE_SK = "SHARE"
FILE_INDEX = "gsi1"


def share_pk(share_id: str) -> str:
    return f"SHARE#{share_id}"


def file_index_pk(file_id: str) -> str:
    return f"FILE#{file_id}"


class ShareRecords:
    """Share items in the single table: ``pk = SHARE#sha256(token)``, ``gsi1pk = FILE#fileId``.

    ``shareId`` is the token's SHA-256 in hex: what the owner sees and revokes by. ``expiresAtEpoch``
    is the table's TTL attribute, so DynamoDB removes expired links on its own; reads still check
    expiry themselves because TTL deletion can lag by days.
    """

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._db = dynamodb
        self._table = table_name

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._db, operation)(TableName=self._table, **kwargs)
        except Exception as error:
            if error_code(error) in THROTTLING_CODES:
                raise ServiceThrottled(f"DynamoDB throttled {operation}") from error
            raise

    @staticmethod
    def _is_condition_failure(error: Exception) -> bool:
        return error_code(error) == "ConditionalCheckFailedException"

    def key(self, share_id: str) -> dict[str, Any]:
        return to_item({"pk": share_pk(share_id), "sk": SHARE_SK})

    def create(self, share: Mapping[str, Any]) -> None:
        """Write a new share (``shareId``, ``fileId``, ``ownerId``, ``createdAt``, expiry, limits)."""
        values = {
            "pk": share_pk(share["shareId"]),
            "sk": SHARE_SK,
            "gsi1pk": file_index_pk(share["fileId"]),
            "gsi1sk": f"{share['createdAt']}#{share['shareId']}",
            "downloads": 0,
            **share,
        }
        self._call("put_item", Item=to_item(values), ConditionExpression="attribute_not_exists(pk)")

    def get(self, share_id: str) -> dict[str, Any] | None:
        response = self._call("get_item", Key=self.key(share_id), ConsistentRead=True)
        item = response.get("Item")
        return from_item(item) if item else None

    def list_for_file(self, file_id: str) -> list[dict[str, Any]]:
        """Every share of one file, newest first (the index is eventually consistent)."""
        kwargs: dict[str, Any] = {
            "IndexName": FILE_INDEX,
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": to_item({":pk": file_index_pk(file_id)}),
            "ScanIndexForward": False,
        }
        shares: list[dict[str, Any]] = []
        while True:
            response = self._call("query", **kwargs)
            shares.extend(from_item(item) for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                return shares
            kwargs["ExclusiveStartKey"] = last

    def delete(self, share_id: str, owner_id: str) -> bool:
        """Remove the share if this owner has it; False when there is no such share of theirs."""
        try:
            self._call(
                "delete_item",
                Key=self.key(share_id),
                ConditionExpression="ownerId = :owner",
                ExpressionAttributeValues=to_item({":owner": owner_id}),
            )
        except Exception as error:
            if self._is_condition_failure(error):
                return False
            raise
        return True

    def count_download(self, share_id: str, now_epoch: int) -> dict[str, Any] | None:
        """Count one download if the share still exists, is unexpired and has downloads left.

        One conditional UpdateItem, so concurrent downloads can never exceed ``maxDownloads``.
        Returns the share after counting, or None when the condition failed.
        """
        try:
            response = self._call(
                "update_item",
                Key=self.key(share_id),
                UpdateExpression="SET downloads = if_not_exists(downloads, :zero) + :one",
                ConditionExpression=(
                    "attribute_exists(pk) AND expiresAtEpoch > :now "
                    "AND (attribute_not_exists(maxDownloads) OR downloads < maxDownloads)"
                ),
                ExpressionAttributeValues=to_item({":zero": 0, ":one": 1, ":now": now_epoch}),
                ReturnValues="ALL_NEW",
            )
        except Exception as error:
            if self._is_condition_failure(error):
                return None
            raise
        return from_item(response["Attributes"])
