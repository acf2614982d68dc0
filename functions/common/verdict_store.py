"""DynamoDB adapter of the verdict store: an item per object version in the files table, conditional writes.

``pk = SCAN#{bucket}/{key}``, ``sk = VERSION#{version}``: apart from the file records (``OWNER#``) and shares
(``SHARE#``). ``expiresAtEpoch`` is the table's TTL attribute, so the item goes some time after the upload
does. Every write is one UpdateItem whose condition decides races between the scan result and the waiting
run; a single item's updates are serialised, so whichever of the two writes second sees the other.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from common.aws import THROTTLING_CODES, error_code
from common.errors import ServiceThrottled
from common.records import from_item, now_iso, to_item
from common.verdicts import RESCANNABLE, ObjectVersion, ScanResult, StoreAnswer, VerdictState, Waiter

# Attribute names, each written through a placeholder so none can clash with DynamoDB's reserved words.
_NAMES = {
    "#status": "resultStatus",
    "#threats": "threats",
    "#event": "eventId",
    "#scanned": "scannedAt",
    "#recorded": "recordedAt",
    "#expires": "expiresAtEpoch",
    "#handed": "handedTo",
    "#token": "taskToken",
    "#execution": "tokenExecution",
    "#redrive": "tokenRedriveCount",
    "#waiting": "waitingSince",
}


def verdict_pk(obj: ObjectVersion) -> str:
    return f"SCAN#{obj.bucket}/{obj.key}"


def verdict_sk(obj: ObjectVersion) -> str:
    return f"VERSION#{obj.version}"


def _state(item: Mapping[str, Any]) -> VerdictState:
    result = None
    if item.get("resultStatus"):
        result = ScanResult(
            event_id=str(item.get("eventId", "")),
            status=str(item["resultStatus"]),
            threats=tuple(str(name) for name in item.get("threats") or ()),
            scanned_at=item.get("scannedAt"),
        )
    waiter = None
    if item.get("taskToken"):
        waiter = Waiter(
            token=str(item["taskToken"]),
            execution=str(item.get("tokenExecution", "")),
            redrive_count=int(item.get("tokenRedriveCount", 0)),
        )
    handed = item.get("handedTo")
    return VerdictState(result, waiter, str(handed) if handed else None)


class ScanVerdicts:
    """The verdict items, through an injected boto3 DynamoDB client."""

    def __init__(
        self,
        dynamodb: Any,
        table_name: str,
        retention_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = dynamodb
        self._table = table_name
        self._retention = retention_seconds
        self._clock = clock

    def _key(self, obj: ObjectVersion) -> dict[str, Any]:
        return to_item({"pk": verdict_pk(obj), "sk": verdict_sk(obj)})

    def _update(self, obj: ObjectVersion, **kwargs: Any) -> dict[str, Any] | None:
        """One conditional UpdateItem; the returned attributes, or None when its condition failed."""
        # DynamoDB refuses a placeholder the expressions do not use.
        expressions = f"{kwargs['UpdateExpression']} {kwargs.get('ConditionExpression', '')}"
        names = {placeholder: name for placeholder, name in _NAMES.items() if placeholder in expressions}
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key=self._key(obj),
                ExpressionAttributeNames=names,
                **kwargs,
            )
        except Exception as error:
            code = error_code(error)
            if code == "ConditionalCheckFailedException":
                return None
            if code in THROTTLING_CODES:
                raise ServiceThrottled("DynamoDB throttled a verdict write") from error
            raise
        return from_item(response.get("Attributes") or {})

    def _expires(self) -> int:
        return int(self._clock()) + self._retention

    def read(self, obj: ObjectVersion) -> VerdictState:
        try:
            response = self._db.get_item(TableName=self._table, Key=self._key(obj), ConsistentRead=True)
        except Exception as error:
            if error_code(error) in THROTTLING_CODES:
                raise ServiceThrottled("DynamoDB throttled a verdict read") from error
            raise
        item = response.get("Item")
        return _state(from_item(item)) if item else VerdictState()

    def store_result(self, obj: ObjectVersion, result: ScanResult) -> StoreAnswer:
        """Store ``result`` unless a result stands: a final one, or this very event (a repeated delivery).

        A rescannable result gives way to a later scan's (another event); storing forgets who had it.
        """
        rescannable = sorted(RESCANNABLE)
        values: dict[str, Any] = {
            ":status": result.status,
            ":threats": list(result.threats),
            ":event": result.event_id,
            ":scanned": result.scanned_at,
            ":recorded": now_iso(),
            ":expires": self._expires(),
            **{f":rescannable{i}": status for i, status in enumerate(rescannable)},
        }
        scanned = ", #scanned = :scanned" if result.scanned_at else ""
        previous = self._update(
            obj,
            UpdateExpression=(
                f"SET #status = :status, #threats = :threats, #event = :event{scanned}, "
                "#recorded = :recorded, #expires = :expires REMOVE #handed"
            ),
            ConditionExpression=(
                "attribute_not_exists(#status) OR "
                f"(#status IN ({', '.join(f':rescannable{i}' for i in range(len(rescannable)))}) "
                "AND #event <> :event)"
            ),
            ExpressionAttributeValues=to_item(values),
            ReturnValues="ALL_OLD",
        )
        if previous is None:
            return StoreAnswer(False, self.read(obj))
        return StoreAnswer(True, _state(previous))

    def wait(self, obj: ObjectVersion, waiter: Waiter) -> VerdictState | None:
        """Record ``waiter`` as the task awaiting this version; the item as it is then.

        None when a later attempt of the same execution (a higher redrive count) waits already: this one is
        stale. Another execution (a replay's new run) always takes over, runs of a file never overlap.
        """
        attributes = self._update(
            obj,
            UpdateExpression=(
                "SET #token = :token, #execution = :execution, #redrive = :redrive, #waiting = :now, "
                "#expires = :expires"
            ),
            ConditionExpression=(
                "attribute_not_exists(#token) OR #execution <> :execution OR #redrive <= :redrive"
            ),
            ExpressionAttributeValues=to_item(
                {
                    ":token": waiter.token,
                    ":execution": waiter.execution,
                    ":redrive": waiter.redrive_count,
                    ":now": now_iso(),
                    ":expires": self._expires(),
                }
            ),
            ReturnValues="ALL_NEW",
        )
        return None if attributes is None else _state(attributes)

    def hand(self, obj: ObjectVersion, token: str, event_id: str) -> bool:
        """Claim the stored result (still the one of ``event_id``) for the task ``token``.

        False when another task had it, or another result replaced it, meanwhile.
        """
        attributes = self._update(
            obj,
            UpdateExpression="SET #handed = :token",
            ConditionExpression="#event = :event AND (attribute_not_exists(#handed) OR #handed = :token)",
            ExpressionAttributeValues=to_item({":token": token, ":event": event_id}),
            ReturnValues="NONE",
        )
        return attributes is not None
