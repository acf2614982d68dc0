"""DynamoDB adapter for file records; every workflow write is conditional on the object version."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from common.aws import error_code
from common.errors import AlreadyProcessed, FileDeleted, StaleWrite
from common.model import Channel, FileRef, Status
from common.table import Table

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
_FINAL = [s.value for s in Status if s.is_final]
# Per channel, the record attribute holding "{object version}:{status}" of the message last sent.
_NOTIFIED = {Channel.EMAIL: "notifiedEmail", Channel.EVENT: "notifiedEvent"}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def owner_pk(owner_id: str) -> str:
    return f"OWNER#{owner_id}"


def file_sk(file_id: str) -> str:
    return f"FILE#{file_id}"


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: _serializer.serialize(_as_stored(value)) for name, value in values.items() if value is not None
    }


def _as_stored(value: Any) -> Any:
    """DynamoDB numbers are decimals: a float (an exposure of 0.008 s) is stored as the decimal it shows."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"DynamoDB stores no {value} number")
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {key: _as_stored(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_stored(item) for item in value]
    return value


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    values = {name: _deserializer.deserialize(value) for name, value in item.items()}
    return {name: _plain(value) for name, value in values.items()}


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; callers want ints where they are whole, floats elsewhere."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class FileRecords(Table):
    """File records in the single table: ``pk = OWNER#sub``, ``sk = FILE#fileId``."""

    @staticmethod
    def _is_condition_failure(error: Exception) -> bool:
        return error_code(error) == "ConditionalCheckFailedException"

    def key(self, owner_id: str, file_id: str) -> dict[str, Any]:
        return to_item({"pk": owner_pk(owner_id), "sk": file_sk(file_id)})

    def get(self, owner_id: str, file_id: str) -> dict[str, Any] | None:
        response = self._call("get_item", Key=self.key(owner_id, file_id), ConsistentRead=True)
        item = response.get("Item")
        return from_item(item) if item else None

    def create(self, record: Mapping[str, Any]) -> None:
        """Write a new record (status UPLOADING); the file id is fresh, so it must not exist."""
        values = {"pk": owner_pk(record["ownerId"]), "sk": file_sk(record["fileId"]), **record}
        self._call("put_item", Item=to_item(values), ConditionExpression="attribute_not_exists(pk)")

    def list_for_owner(
        self, owner_id: str, limit: int, start_after: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first (file ids are ULIDs); returns the page and the last file id when more remain."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": to_item({":pk": owner_pk(owner_id), ":prefix": "FILE#"}),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if start_after:
            kwargs["ExclusiveStartKey"] = self.key(owner_id, start_after)
        response = self._call("query", **kwargs)
        items = [from_item(item) for item in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        next_id = from_item(last)["sk"].removeprefix("FILE#") if last else None
        return items, next_id

    def delete(self, owner_id: str, file_id: str) -> None:
        self._call("delete_item", Key=self.key(owner_id, file_id))

    def mark_processing(self, ref: FileRef, execution_name: str) -> None:
        """Claim the record for this object version; a final record is left alone."""
        try:
            self._call(
                "update_item",
                Key=self.key(ref.owner_id, ref.file_id),
                UpdateExpression=(
                    "SET #status = :processing, sourceVersion = :version, executionName = :execution, "
                    "updatedAt = :now REMOVE #error"
                ),
                ConditionExpression=(
                    "attribute_exists(pk) AND NOT #status IN (:ready, :rejected, :quarantined) "
                    "AND (attribute_not_exists(sourceVersion) OR sourceVersion = :version)"
                ),
                ExpressionAttributeNames={"#status": "status", "#error": "error"},
                ExpressionAttributeValues=to_item(
                    {
                        ":processing": Status.PROCESSING.value,
                        ":version": ref.version,
                        ":execution": execution_name,
                        ":now": now_iso(),
                        ":ready": Status.READY.value,
                        ":rejected": Status.REJECTED.value,
                        ":quarantined": Status.QUARANTINED.value,
                    }
                ),
            )
        except Exception as error:
            if not self._is_condition_failure(error):
                raise
            current = self.get(ref.owner_id, ref.file_id)
            if current is None:
                raise FileDeleted(f"file {ref.file_id} was deleted before processing started") from error
            if current.get("sourceVersion") not in (None, ref.version):
                raise StaleWrite(f"file {ref.file_id} has a newer object version") from error
            raise AlreadyProcessed(f"file {ref.file_id} is already {current['status']}") from error

    def record_outcome(self, ref: FileRef, status: Status, fields: Mapping[str, Any]) -> None:
        """Write the outcome; only for this object version, and never over another final status."""
        values = {**fields, "status": status.value, "sourceVersion": ref.version, "updatedAt": now_iso()}
        names = {f"#f{i}": name for i, name in enumerate(values)}
        placeholders = {f":f{i}": value for i, value in enumerate(values.values())}
        assignments = ", ".join(f"#f{i} = :f{i}" for i in range(len(values)))
        if "error" not in values:  # a successful outcome clears the error of an earlier failed run
            names["#f_error"] = "error"
            assignments += " REMOVE #f_error"
        update = f"SET {assignments}"
        others = [s for s in _FINAL if s != status.value]
        condition_values = {f":other{i}": s for i, s in enumerate(others)}
        try:
            self._call(
                "update_item",
                Key=self.key(ref.owner_id, ref.file_id),
                UpdateExpression=update,
                ConditionExpression=(
                    "attribute_exists(pk) AND "
                    "(attribute_not_exists(sourceVersion) OR sourceVersion = :version) AND "
                    f"NOT #f_status IN ({', '.join(condition_values)})"
                ),
                ExpressionAttributeNames={**names, "#f_status": "status"},
                ExpressionAttributeValues=to_item(
                    {**placeholders, **condition_values, ":version": ref.version}
                ),
            )
        except Exception as error:
            if not self._is_condition_failure(error):
                raise
            if self.get(ref.owner_id, ref.file_id) is None:
                raise FileDeleted(f"file {ref.file_id} was deleted while it was processed") from error
            raise StaleWrite(f"file {ref.file_id}: a newer version or another outcome is recorded") from error

    def scan_ready(
        self, updated_from: str, updated_to: str, limit: int, start_key: Mapping[str, Any] | None
    ) -> tuple[list[dict[str, Any]], int, dict[str, Any] | None]:
        """One page of READY records last updated in [from, to): the records, how many items were read,
        and the key to continue from (None at the end of the table).

        ``limit`` bounds the items read, not the records returned, so a page's cost is known in advance.
        """
        kwargs: dict[str, Any] = {
            "Limit": limit,
            "FilterExpression": (
                "begins_with(sk, :file) AND #status = :ready AND updatedAt >= :from AND updatedAt < :to"
            ),
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": to_item(
                {":file": "FILE#", ":ready": Status.READY.value, ":from": updated_from, ":to": updated_to}
            ),
        }
        if start_key:
            kwargs["ExclusiveStartKey"] = dict(start_key)
        response = self._call("scan", **kwargs)
        items = [from_item(item) for item in response.get("Items", [])]
        return items, int(response.get("ScannedCount", 0)), response.get("LastEvaluatedKey")

    def quarantine_ready(self, ref: FileRef, fields: Mapping[str, Any]) -> bool:
        """READY -> QUARANTINED for a stored file found infected later; only while it is still READY from
        this object version. False when it is not (deleted, replaced, or quarantined already)."""
        values = {**fields, "status": Status.QUARANTINED.value, "updatedAt": now_iso()}
        names = {f"#f{i}": name for i, name in enumerate(values)}
        placeholders = {f":f{i}": value for i, value in enumerate(values.values())}
        assignments = ", ".join(f"#f{i} = :f{i}" for i in range(len(values)))
        try:
            self._call(
                "update_item",
                Key=self.key(ref.owner_id, ref.file_id),
                UpdateExpression=f"SET {assignments} REMOVE cleanKey, thumbnails",
                ConditionExpression="#f_status = :ready AND sourceVersion = :version",
                ExpressionAttributeNames={**names, "#f_status": "status"},
                ExpressionAttributeValues=to_item(
                    {**placeholders, ":ready": Status.READY.value, ":version": ref.version}
                ),
            )
        except Exception as error:
            if self._is_condition_failure(error):
                return False
            raise
        return True

    def claim_notification(self, ref: FileRef, status: Status, channel: Channel) -> bool:
        """True once per (object version, status, channel): duplicates and replays send no second message.

        For a channel that must not repeat (email): claim, then send; a send that may have happened keeps
        its claim, so a crash between the two loses one email rather than sending two.
        """
        try:
            self._call(
                "update_item",
                Key=self.key(ref.owner_id, ref.file_id),
                UpdateExpression="SET #notified = :marker",
                ConditionExpression=(
                    "attribute_exists(pk) AND (attribute_not_exists(#notified) OR #notified <> :marker)"
                ),
                ExpressionAttributeNames={"#notified": _NOTIFIED[channel]},
                ExpressionAttributeValues=to_item({":marker": self._notification_marker(ref, status)}),
            )
        except Exception as error:
            if self._is_condition_failure(error):
                return False
            raise
        return True

    def release_notification(self, ref: FileRef, status: Status, channel: Channel) -> None:
        """Undo a claim whose message was certainly not sent, so a retry sends it."""
        try:
            self._call(
                "update_item",
                Key=self.key(ref.owner_id, ref.file_id),
                UpdateExpression="REMOVE #notified",
                ConditionExpression="#notified = :marker",
                ExpressionAttributeNames={"#notified": _NOTIFIED[channel]},
                ExpressionAttributeValues=to_item({":marker": self._notification_marker(ref, status)}),
            )
        except Exception as error:
            if not self._is_condition_failure(error):
                raise

    def mark_notified(self, ref: FileRef, status: Status, channel: Channel) -> None:
        """Remember a sent message, for a channel that may repeat but must not lose one (send, then mark)."""
        try:
            self._call(
                "update_item",
                Key=self.key(ref.owner_id, ref.file_id),
                UpdateExpression="SET #notified = :marker",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#notified": _NOTIFIED[channel]},
                ExpressionAttributeValues=to_item({":marker": self._notification_marker(ref, status)}),
            )
        except Exception as error:
            if not self._is_condition_failure(error):
                raise  # a record deleted meanwhile has nobody left to tell

    @classmethod
    def was_notified(cls, record: Mapping[str, Any], ref: FileRef, channel: Channel) -> bool:
        """Whether ``record`` (as read) remembers ``channel`` sent for this version and its current status."""
        marker = cls._notification_marker(ref, Status(record["status"]))
        return record.get(_NOTIFIED[channel]) == marker

    @staticmethod
    def _notification_marker(ref: FileRef, status: Status) -> str:
        return f"{ref.version}:{status.value}"
