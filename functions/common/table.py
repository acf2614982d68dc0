"""The single table as its adapters call it: throttling is a domain error, a failed condition is None."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from common.aws import THROTTLING_CODES, error_code
from common.errors import ServiceThrottled


class Table:
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

    def _conditional(self, operation: str, **kwargs: Any) -> Any | None:
        """The call's response, or None when its condition failed."""
        try:
            return self._call(operation, **kwargs)
        except Exception as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return None
            raise

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every item the query matches, page after page, as DynamoDB returns them."""
        while True:
            response = self._call("query", **kwargs)
            yield from response.get("Items", [])
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last
