"""What share and request links keep alike: a link's items under one key, its password windows among them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from common.aws import THROTTLING_CODES, error_code
from common.errors import ServiceThrottled
from common.records import from_item, to_item
from common.table import Table

GUESSES_PREFIX = "GUESSES#"
_BATCH_WRITE_ITEMS = 25  # DynamoDB's BatchWriteItem limit
_BATCH_ROUNDS = 5  # unprocessed items are sent again at most this often


class LinkItems(Table):
    """A link's items share ``pk = link_pk(link_id)``. Password attempts are counted in
    ``sk = GUESSES#window``: a total for the link and one per client bucket; the item's ``expiresAtEpoch``
    (the table's TTL) is the window's end, so old windows go by themselves."""

    kind = "link"  # what the items are called in a ServiceThrottled message

    @staticmethod
    def link_pk(link_id: str) -> str:
        raise NotImplementedError

    def update_owned(
        self,
        key: Mapping[str, Any],
        owner_id: str,
        changes: Mapping[str, Any],
        removals: Iterable[str] = (),
        additions: Mapping[str, int] | None = None,
        unchanged: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Set ``changes``, remove ``removals`` and add ``additions`` (atomic counters) on an item of
        ``owner_id`` whose ``unchanged`` attributes still hold those values: the new item, else None."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {":owner": owner_id}
        clauses: dict[str, list[str]] = {"SET": [], "REMOVE": [], "ADD": []}
        conditions = ["attribute_exists(pk)", "ownerId = :owner"]
        for index, (name, value) in enumerate(changes.items()):
            names[f"#s{index}"], values[f":s{index}"] = name, value
            clauses["SET"].append(f"#s{index} = :s{index}")
        for index, name in enumerate(removals):
            names[f"#r{index}"] = name
            clauses["REMOVE"].append(f"#r{index}")
        for index, (name, amount) in enumerate((additions or {}).items()):
            names[f"#a{index}"], values[f":a{index}"] = name, amount
            clauses["ADD"].append(f"#a{index} :a{index}")
        for index, (name, value) in enumerate((unchanged or {}).items()):
            names[f"#u{index}"], values[f":u{index}"] = name, value
            conditions.append(f"#u{index} = :u{index}")
        response = self._conditional(
            "update_item",
            Key=key,
            UpdateExpression=" ".join(
                f"{verb} {', '.join(parts)}" for verb, parts in clauses.items() if parts
            ),
            ConditionExpression=" AND ".join(conditions),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item(values),
            ReturnValues="ALL_NEW",
        )
        return from_item(response["Attributes"]) if response else None

    def _attempts_key(self, link_id: str, window_start: int) -> dict[str, Any]:
        return to_item({"pk": self.link_pk(link_id), "sk": f"{GUESSES_PREFIX}{window_start}"})

    def take_attempt(
        self,
        link_id: str,
        window_start: int,
        client: str | None,
        link_limit: int,
        client_limit: int,
        expires_epoch: int,
    ) -> bool:
        """Count one password attempt in this window; False (nothing counted) when a limit is reached."""
        names = {"#total": "attempts"}
        values: dict[str, Any] = {":one": 1, ":link_limit": link_limit, ":ttl": expires_epoch}
        update = "ADD #total :one SET expiresAtEpoch = :ttl"
        condition = "(attribute_not_exists(#total) OR #total < :link_limit)"
        if client:
            names["#client"] = f"client_{client}"
            values[":client_limit"] = client_limit
            update = "ADD #total :one, #client :one SET expiresAtEpoch = :ttl"
            condition += " AND (attribute_not_exists(#client) OR #client < :client_limit)"
        response = self._conditional(
            "update_item",
            Key=self._attempts_key(link_id, window_start),
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item(values),
        )
        return response is not None

    def return_attempt(self, link_id: str, window_start: int, client: str | None) -> None:
        """Give back the attempt of a right password: only wrong ones use up the allowance."""
        names = {"#total": "attempts"}
        update = "ADD #total :minus"
        if client:
            names["#client"] = f"client_{client}"
            update = "ADD #total :minus, #client :minus"
        self._conditional(
            "update_item",
            Key=self._attempts_key(link_id, window_start),
            UpdateExpression=update,
            ConditionExpression="attribute_exists(pk) AND #total > :zero",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item({":minus": -1, ":zero": 0}),
        )

    def purge(self, link_id: str) -> None:
        """Remove whatever is left under a deleted link: password windows, and a share's members and log."""
        keys = list(
            self._query(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=to_item({":pk": self.link_pk(link_id)}),
                ProjectionExpression="pk, sk",
            )
        )
        for start in range(0, len(keys), _BATCH_WRITE_ITEMS):
            requests = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + _BATCH_WRITE_ITEMS]]
            for _ in range(_BATCH_ROUNDS):
                try:
                    response = self._db.batch_write_item(RequestItems={self._table: requests})
                except Exception as error:
                    if error_code(error) in THROTTLING_CODES:
                        raise ServiceThrottled("DynamoDB throttled batch_write_item") from error
                    raise
                requests = (response.get("UnprocessedItems") or {}).get(self._table) or []
                if not requests:
                    break
            if requests:
                raise ServiceThrottled(f"DynamoDB left {self.kind} items unprocessed")
