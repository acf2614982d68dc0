"""DynamoDB's patches to moto: each item operation atomic, as DynamoDB makes it, under concurrent requests."""

from __future__ import annotations

import functools
import threading
from typing import Any

from filepipe.local.moto_patches import Uninstall, moto_patch, replace

# The backend's entry points that read or write items. DynamoDB applies each one atomically (a
# conditional update sees the item as no other request leaves it half-way); moto reads, checks and writes
# in Python with no lock, so two requests served by two threads of the local endpoint can both pass a
# condition only one of them should, or lose one's write. One lock for them all: a transaction or a batch
# calls the single-item methods again, hence re-entrant.
_ITEM_OPERATIONS = (
    "put_item",
    "update_item",
    "delete_item",
    "get_item",
    "query",
    "scan",
    "transact_write_items",
    "transact_get_items",
    "batch_write_item",
    "batch_get_item",
)


@moto_patch(*(f"moto.dynamodb.models.DynamoDBBackend.{name}" for name in _ITEM_OPERATIONS))
def atomic_item_operations() -> Uninstall:
    """Serialize the backend's item operations, so each is atomic as on DynamoDB."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()

    def serialized(operation: Any) -> Any:
        @functools.wraps(operation)
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            with lock:
                return operation(self, *args, **kwargs)

        return call

    return replace(
        DynamoDBBackend, **{name: serialized(getattr(DynamoDBBackend, name)) for name in _ITEM_OPERATIONS}
    )
