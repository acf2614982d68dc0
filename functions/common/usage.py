"""DynamoDB adapter for each owner's storage usage, upload holds and hourly upload counts."""

from __future__ import annotations

from typing import Any

from common.aws import THROTTLING_CODES, error_code
from common.errors import ServiceThrottled
from common.quota import Hold, Usage
from common.records import file_sk, from_item, owner_pk, to_item

USAGE_SK = "USAGE"
HOLD_PREFIX = "HOLD#"
UPLOADS_PREFIX = "UPLOADS#"
# A counter of a finished hour is kept a day longer than its hour, then DynamoDB's TTL removes it.
COUNTER_KEPT_SECONDS = 24 * 60 * 60
# The file record's mark of the bytes it counts as stored; its presence is what makes counting idempotent.
STORED_MARK = "storedBytes"
_CONDITION_FAILED = "ConditionalCheckFailed"
_RETRYABLE_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
# Expired holds released per look; an owner rarely has more uploads in flight than the hourly limit.
MAX_EXPIRED_PER_PASS = 100


def hold_sk(file_id: str) -> str:
    return f"{HOLD_PREFIX}{file_id}"


def uploads_sk(window_start: int) -> str:
    return f"{UPLOADS_PREFIX}{window_start}"


class UsageLedger:
    """Every byte an owner stores or is about to store, counted once, in the owner's partition.

    Items (``pk = OWNER#sub``):

    - ``sk = USAGE``: ``storedBytes`` (files READY), ``reservedBytes`` (uploads in flight) and ``usedBytes``,
      their sum, kept because a condition can compare one attribute but cannot add two. Only ever changed
      with ``ADD``, so concurrent writers never overwrite each other's counts.
    - ``sk = HOLD#fileId``: the bytes held for one upload in flight (``bytes``) and the epoch second after
      which the hold may be given back (``holdUntil``). Not the table's TTL attribute: a TTL delete would drop
      the hold without giving its bytes back.
    - the file record's ``storedBytes``: present exactly while the file counts as stored.
    - ``sk = UPLOADS#windowStart``: upload URLs issued in one fixed hour, removed by TTL after it.

    Each change of a file's state is one transaction of the item that records the state (the hold, or the
    file record's mark) with a condition on it, and the ``ADD`` to ``USAGE``: both happen or neither. A
    duplicate event, a replay or a retry after a crash finds the state already changed, its condition fails,
    and nothing is counted twice:

    - hold (URL issued; validate finding no hold): put the hold if absent, add to reserved and used if used
      leaves room for the file (``usedBytes <= quota - size``): concurrent holds cannot overshoot together.
    - store (READY): delete the hold, mark the record, move the bytes from reserved to stored. A hold
      already given back (expired during a long run) is fine: the record is marked and the bytes added.
    - release (REJECTED, QUARANTINED, FAILED, aborted, expired): delete the hold, subtract its bytes. An
      unused URL's hold is given back lazily, by ``release_expired`` when a hold would be refused or the
      usage is read, on the condition that it is still expired (a run's validate step extends it).
    - unstore (deleted; quarantined by a rescan): remove the record's mark, subtract what it names.
    """

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._db = dynamodb
        self._table = table_name

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._db, operation)(**kwargs)
        except Exception as error:
            if error_code(error) in THROTTLING_CODES:
                raise ServiceThrottled(f"DynamoDB throttled {operation}") from error
            raise

    def _key(self, owner_id: str, sk: str) -> dict[str, Any]:
        return to_item({"pk": owner_pk(owner_id), "sk": sk})

    def _get(self, owner_id: str, sk: str) -> dict[str, Any] | None:
        response = self._call(
            "get_item", TableName=self._table, Key=self._key(owner_id, sk), ConsistentRead=True
        )
        item = response.get("Item")
        return from_item(item) if item else None

    def _transact(self, items: list[dict[str, Any]]) -> list[str] | None:
        """Write ``items`` at once; None when written, else the cancellation reason code of each item."""
        for item in items:
            next(iter(item.values()))["TableName"] = self._table
        try:
            self._call("transact_write_items", TransactItems=items)
        except Exception as error:
            if error_code(error) != "TransactionCanceledException":
                raise
            response = getattr(error, "response", {})
            reasons = [
                str(reason.get("Code") or "None") for reason in response.get("CancellationReasons", [])
            ]
            if _RETRYABLE_REASONS.intersection(reasons) or _CONDITION_FAILED not in reasons:
                # Another transaction on the same items, or throttling: the caller's retry decides again.
                raise ServiceThrottled(f"DynamoDB cancelled a usage transaction: {reasons}") from error
            return reasons
        return None

    def _usage_change(
        self, owner_id: str, condition: str | None = None, values: dict[str, Any] | None = None, **deltas: int
    ) -> dict[str, Any]:
        """The transaction item that ADDs ``deltas`` to the owner's USAGE item, if ``condition`` holds."""
        names = {f"#d{i}": name for i, name in enumerate(deltas)}
        placeholders = {f":d{i}": value for i, value in enumerate(deltas.values())}
        update: dict[str, Any] = {
            "Key": self._key(owner_id, USAGE_SK),
            "UpdateExpression": "ADD " + ", ".join(f"#d{i} :d{i}" for i in range(len(deltas))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": to_item({**placeholders, **(values or {})}),
        }
        if condition:
            update["ConditionExpression"] = condition
        return {"Update": update}

    def usage(self, owner_id: str) -> Usage:
        item = self._get(owner_id, USAGE_SK) or {}
        return Usage(int(item.get("storedBytes", 0)), int(item.get("reservedBytes", 0)))

    def hold(
        self, owner_id: str, file_id: str, size: int, quota_bytes: int, hold_until: int, *, of_record: bool
    ) -> Hold:
        """Hold ``size`` bytes for the file if the owner's quota leaves room; ``of_record``: the file's
        record exists already (the workflow), and a file that counts as stored needs no hold."""
        room = quota_bytes - size
        if room < 0:
            return Hold.OVER_QUOTA
        usage = self._usage_change(
            owner_id,
            "attribute_not_exists(usedBytes) OR usedBytes <= :room",
            {":room": room},
            usedBytes=size,
            reservedBytes=size,
        )
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "Item": to_item(
                        {
                            "pk": owner_pk(owner_id),
                            "sk": hold_sk(file_id),
                            "fileId": file_id,
                            "bytes": size,
                            "holdUntil": hold_until,
                        }
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            usage,
        ]
        if of_record:
            items.append(
                {
                    "ConditionCheck": {
                        "Key": self._key(owner_id, file_sk(file_id)),
                        "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(#stored)",
                        "ExpressionAttributeNames": {"#stored": STORED_MARK},
                    }
                }
            )
        reasons = self._transact(items)
        if reasons is None or reasons[0] == _CONDITION_FAILED:
            return Hold.HELD
        if of_record and reasons[2] == _CONDITION_FAILED:
            return Hold.NOT_NEEDED
        return Hold.OVER_QUOTA

    def extend(self, owner_id: str, file_id: str, hold_until: int) -> bool:
        """Keep an existing hold until ``hold_until`` (never shorter); False when the file holds nothing."""
        try:
            self._call(
                "update_item",
                TableName=self._table,
                Key=self._key(owner_id, hold_sk(file_id)),
                UpdateExpression="SET holdUntil = :until",
                ConditionExpression="attribute_exists(pk) AND holdUntil <= :until",
                ExpressionAttributeValues=to_item({":until": hold_until}),
            )
        except Exception as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            return self._get(owner_id, hold_sk(file_id)) is not None
        return True

    def release(self, owner_id: str, file_id: str, *, expired_at: int | None = None) -> int:
        """Give back the file's hold (only one expired by ``expired_at`` when given); the bytes given back."""
        hold = self._get(owner_id, hold_sk(file_id))
        if hold is None:
            return 0
        held = int(hold["bytes"])
        condition = "#bytes = :held"
        values: dict[str, Any] = {":held": held}
        if expired_at is not None:
            condition += " AND holdUntil < :now"
            values[":now"] = expired_at
        usage = self._usage_change(owner_id, usedBytes=-held, reservedBytes=-held)
        reasons = self._transact(
            [
                {
                    "Delete": {
                        "Key": self._key(owner_id, hold_sk(file_id)),
                        "ConditionExpression": condition,
                        "ExpressionAttributeNames": {"#bytes": "bytes"},
                        "ExpressionAttributeValues": to_item(values),
                    }
                },
                usage,
            ]
        )
        return 0 if reasons else held

    def release_expired(self, owner_id: str, now: int) -> int:
        """Give back the owner's holds that expired before ``now``; the bytes given back."""
        response = self._call(
            "query",
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            FilterExpression="holdUntil < :now",
            ExpressionAttributeValues=to_item(
                {":pk": owner_pk(owner_id), ":prefix": HOLD_PREFIX, ":now": now}
            ),
            ConsistentRead=True,
        )
        expired = [from_item(item) for item in response.get("Items", [])][:MAX_EXPIRED_PER_PASS]
        return sum(self.release(owner_id, str(hold["fileId"]), expired_at=now) for hold in expired)

    def store(self, owner_id: str, file_id: str, size: int) -> bool:
        """Count the file's ``size`` bytes as stored, from its hold if it still has one; False when it
        already counts (a replay) or its record is gone."""
        for _ in range(3):  # a hold given back between the read and the write: once more without it
            hold = self._get(owner_id, hold_sk(file_id))
            mark = {
                "Update": {
                    "Key": self._key(owner_id, file_sk(file_id)),
                    "UpdateExpression": "SET #stored = :size",
                    "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(#stored)",
                    "ExpressionAttributeNames": {"#stored": STORED_MARK},
                    "ExpressionAttributeValues": to_item({":size": size}),
                }
            }
            if hold is None:
                usage = self._usage_change(owner_id, usedBytes=size, storedBytes=size)
                items = [mark]
            else:
                held = int(hold["bytes"])
                usage = self._usage_change(
                    owner_id, usedBytes=size - held, reservedBytes=-held, storedBytes=size
                )
                items = [
                    {
                        "Delete": {
                            "Key": self._key(owner_id, hold_sk(file_id)),
                            "ConditionExpression": "#bytes = :held",
                            "ExpressionAttributeNames": {"#bytes": "bytes"},
                            "ExpressionAttributeValues": to_item({":held": held}),
                        }
                    },
                    mark,
                ]
            items.append(usage)
            reasons = self._transact(items)
            if reasons is None:
                return True
            if reasons[-2] == _CONDITION_FAILED:  # the record's mark: counted already, or deleted
                return False
        raise ServiceThrottled(f"the hold of file {file_id} kept changing while it was being stored")

    def unstore(self, owner_id: str, file_id: str) -> int:
        """Stop counting the file as stored; the bytes it counted (0 when it did not)."""
        record = self._get(owner_id, file_sk(file_id))
        if record is None or record.get(STORED_MARK) is None:
            return 0
        stored = int(record[STORED_MARK])
        usage = self._usage_change(owner_id, usedBytes=-stored, storedBytes=-stored)
        reasons = self._transact(
            [
                {
                    "Update": {
                        "Key": self._key(owner_id, file_sk(file_id)),
                        "UpdateExpression": "REMOVE #stored",
                        "ConditionExpression": "#stored = :stored",
                        "ExpressionAttributeNames": {"#stored": STORED_MARK},
                        "ExpressionAttributeValues": to_item({":stored": stored}),
                    }
                },
                usage,
            ]
        )
        return 0 if reasons else stored

    def count_upload(self, owner_id: str, window_start: int, window_end: int, limit: int) -> bool:
        """Count one upload in the hour starting at ``window_start``; False when ``limit`` are counted."""
        try:
            self._call(
                "update_item",
                TableName=self._table,
                Key=self._key(owner_id, uploads_sk(window_start)),
                UpdateExpression="ADD uploads :one SET expiresAtEpoch = :expires",
                ConditionExpression="attribute_not_exists(uploads) OR uploads < :limit",
                ExpressionAttributeValues=to_item(
                    {":one": 1, ":limit": limit, ":expires": window_end + COUNTER_KEPT_SECONDS}
                ),
            )
        except Exception as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def uploads_counted(self, owner_id: str, window_start: int) -> int:
        item = self._get(owner_id, uploads_sk(window_start)) or {}
        return int(item.get("uploads", 0))
