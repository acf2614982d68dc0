"""DynamoDB adapter for password attempts on a link: one counter item per rate-limit window."""

from __future__ import annotations

from typing import Any

from common.aws import THROTTLING_CODES, error_code
from common.errors import ServiceThrottled
from common.records import to_item

GUESSES_PREFIX = "GUESSES#"


class PasswordAttempts:
    """Counts attempts in ``pk = <link's pk>, sk = GUESSES#window``: a total for the link and one per client
    bucket. The item's ``expiresAtEpoch`` (the table's TTL) is the window's end, so old windows go by
    themselves."""

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._db = dynamodb
        self._table = table_name

    def _update(self, **kwargs: Any) -> bool:
        """True when the update was made, False when its condition failed."""
        try:
            self._db.update_item(TableName=self._table, **kwargs)
        except Exception as error:
            code = error_code(error)
            if code == "ConditionalCheckFailedException":
                return False
            if code in THROTTLING_CODES:
                raise ServiceThrottled("DynamoDB throttled update_item") from error
            raise
        return True

    @staticmethod
    def _key(pk: str, window_start: int) -> dict[str, Any]:
        return to_item({"pk": pk, "sk": f"{GUESSES_PREFIX}{window_start}"})

    def take(
        self,
        pk: str,
        window_start: int,
        client: str | None,
        link_limit: int,
        client_limit: int,
        expires_epoch: int,
    ) -> bool:
        """Count one attempt in this window; False (nothing counted) when a limit is reached."""
        names = {"#total": "attempts"}
        values: dict[str, Any] = {":one": 1, ":link_limit": link_limit, ":ttl": expires_epoch}
        update = "ADD #total :one SET expiresAtEpoch = :ttl"
        condition = "(attribute_not_exists(#total) OR #total < :link_limit)"
        if client:
            names["#client"] = f"client_{client}"
            values[":client_limit"] = client_limit
            update = "ADD #total :one, #client :one SET expiresAtEpoch = :ttl"
            condition += " AND (attribute_not_exists(#client) OR #client < :client_limit)"
        return self._update(
            Key=self._key(pk, window_start),
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item(values),
        )

    def give_back(self, pk: str, window_start: int, client: str | None) -> None:
        """Return the attempt of a right password: only wrong ones use up the allowance."""
        names = {"#total": "attempts"}
        update = "ADD #total :minus"
        if client:
            names["#client"] = f"client_{client}"
            update = "ADD #total :minus, #client :minus"
        self._update(
            Key=self._key(pk, window_start),
            UpdateExpression=update,
            ConditionExpression="attribute_exists(pk) AND #total > :zero",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item({":minus": -1, ":zero": 0}),
        )
