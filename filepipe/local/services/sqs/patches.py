"""SQS's side of moto the runtime changes: queues with an event source mapping no longer invoke it."""

from __future__ import annotations

from collections.abc import Iterable


def detach_queue_invocations(account: str, region: str, queue_arns: Iterable[str]) -> None:
    """Stop moto invoking mapped functions when messages arrive; the runtime's pollers do it instead.

    moto invokes the function itself (through Docker) from each queue's ``lambda_event_source_mappings``,
    which this empties, for the queues of ``moto.sqs.models.sqs_backends`` given.
    """
    from moto.sqs.models import sqs_backends

    wanted = set(queue_arns)
    for queue in sqs_backends[account][region].queues.values():
        if queue.queue_arn in wanted:
            queue.lambda_event_source_mappings.clear()
