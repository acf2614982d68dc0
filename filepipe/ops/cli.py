"""The `executions`, `execution`, `replay`, `rescan` and `usage` subcommands, against the local runtime or a
deployed stack."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any, TextIO

from filepipe.ops import executions, render, rescan, usage
from filepipe.ops.target import (
    DEAD_LETTER_QUEUES,
    FILES_TABLE_NAME,
    GUARDDUTY,
    SCANNER,
    STATE_MACHINE_ARN,
    ClientFactory,
    Target,
    TargetError,
    add_target_arguments,
    resolve_target,
)

EXIT_ATTENTION = 1  # some message needs a human (unreplayable or an error), or the execution is unknown
EXIT_USAGE = 2


def register(
    subparsers: Any, client_factory: ClientFactory | None = None, clock: rescan.Clock | None = None
) -> None:
    """Add the operator subcommands; each sets ``run(args) -> int``. ``client_factory`` and ``clock`` are
    for tests.

    Importing this module stays cheap (no boto3) so it costs the other `filepipe` commands nothing.
    """
    listing = subparsers.add_parser(
        "executions",
        help="list ProcessUpload executions",
        description="List ProcessUpload executions, newest first.",
    )
    listing.add_argument("--status", choices=executions.STATUSES, help="only executions in this status")
    listing.add_argument(
        "--file", metavar="FILE_ID", help="only the runs of this file (first run and replays)"
    )
    listing.add_argument("--limit", type=_positive, default=50, help="at most N executions (default 50)")
    listing.add_argument("--json", action="store_true", help="JSON instead of a table")
    add_target_arguments(listing)
    listing.set_defaults(run=lambda args: _guarded(_list, args, client_factory))

    show = subparsers.add_parser(
        "execution",
        help="show one execution state by state",
        description="Show one execution: every state with its duration, retries, input, output and error.",
    )
    show.add_argument(
        "name", metavar="NAME", help="execution name (the file id, or {fileId}-replay-{n}) or ARN"
    )
    show.add_argument("--full", action="store_true", help="print inputs and outputs whole, indented")
    show.add_argument("--json", action="store_true", help="JSON instead of text")
    add_target_arguments(show)
    show.set_defaults(run=lambda args: _guarded(_show, args, client_factory))

    replay = subparsers.add_parser(
        "replay",
        help="replay failed uploads from the dead-letter queues",
        description=(
            "For each dead-letter message: delete it when the file is already final; otherwise redrive the "
            "failed execution where the service allows it, else start a new one ({fileId}-replay-{n}) with "
            "the original input, and delete the message once the run is accepted. Messages that cannot be "
            "replayed are reported and left in place. One JSON audit line per action goes to stderr (or "
            "--audit-log)."
        ),
    )
    replay.add_argument("--dry-run", action="store_true", help="report what would happen; change nothing")
    replay.add_argument("--limit", type=_positive, help="handle at most N messages")
    replay.add_argument("--file", metavar="FILE_ID", help="only messages about this file")
    replay.add_argument(
        "--queue",
        choices=[*DEAD_LETTER_QUEUES, "all"],
        default="all",
        help="failed: failed executions; start: uploads that never started; all (default): both",
    )
    replay.add_argument(
        "--audit-log", metavar="PATH", help="append the audit lines to PATH instead of stderr"
    )
    replay.add_argument(
        "--wait",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="then wait up to SECONDS for the replayed runs to end and report how they ended",
    )
    replay.add_argument(
        "--accept-timeout",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="how long a new or redriven run may take to be accepted before its message is kept (default 10)",
    )
    replay.add_argument(
        "--receive-wait",
        type=int,
        choices=range(0, 21),
        metavar="SECONDS",
        help="SQS long polling per receive (default 1 on AWS, 0 on the local runtime)",
    )
    add_target_arguments(replay)
    replay.set_defaults(run=lambda args: _guarded(_replay, args, client_factory))

    rescan_parser = rescan.add_parser(subparsers)
    rescan_clock = clock or rescan.Clock()

    def _rescan(args: argparse.Namespace) -> int:
        rescan.check_arguments(rescan_parser, args)
        return _guarded(lambda parsed, target: rescan.run(parsed, target, rescan_clock), args, client_factory)

    rescan_parser.set_defaults(run=_rescan)

    recount = usage.add_parser(subparsers)
    add_target_arguments(recount)
    recount.set_defaults(
        run=lambda args: _guarded(
            lambda parsed, target: _recount(parsed, target, rescan_clock), args, client_factory
        )
    )


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def _seconds(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 3600:
        raise argparse.ArgumentTypeError("must be between 0 and 3600 seconds")
    return number


def _guarded(command: Any, args: argparse.Namespace, client_factory: ClientFactory | None) -> int:
    try:
        target = resolve_target(args, client_factory)
        return int(command(args, target))
    except TargetError as error:
        print(f"filepipe: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _list(args: argparse.Namespace, target: Target) -> int:
    found = executions.list_executions(
        target.client("stepfunctions"),
        target.output(STATE_MACHINE_ARN),
        status=args.status,
        file_id=args.file,
        limit=args.limit,
    )
    if args.json:
        print(json.dumps([render.summary_json(e) for e in found], indent=2))
    else:
        print(render.executions_table(found))
    return 0


def _show(args: argparse.Namespace, target: Target) -> int:
    from common.aws import error_code

    try:
        detail = executions.describe(
            target.client("stepfunctions"), target.output(STATE_MACHINE_ARN), args.name
        )
    except Exception as error:
        if error_code(error) in ("ExecutionDoesNotExist", "InvalidArn"):
            print(f"filepipe: no execution {args.name} in {target.description}", file=sys.stderr)
            return EXIT_ATTENTION
        raise
    if args.json:
        print(json.dumps(render.execution_json(detail), indent=2))
    else:
        print(render.execution_report(detail, full=args.full))
    return 0


def _replay(args: argparse.Namespace, target: Target) -> int:
    from common.records import FileRecords
    from common.storage import ObjectStore
    from filepipe.ops.audit import AuditLog, operator_name
    from filepipe.ops.replay import Action, Replayer, ReplayOptions

    queues = tuple(DEAD_LETTER_QUEUES) if args.queue == "all" else (args.queue,)
    queue_urls = {queue: target.output(DEAD_LETTER_QUEUES[queue]) for queue in queues}
    options = ReplayOptions(
        dry_run=args.dry_run,
        limit=args.limit,
        file_id=args.file,
        queues=queues,
        accept_timeout=args.accept_timeout,
        wait=args.wait,
        receive_wait_seconds=args.receive_wait
        if args.receive_wait is not None
        else target.receive_wait_seconds,
    )
    with ExitStack() as stack:
        stream: TextIO = (
            stack.enter_context(open(args.audit_log, "a", encoding="utf-8")) if args.audit_log else sys.stderr
        )
        actor = {"user": operator_name(), "principal": target.identity(), "target": target.description}
        replayer = Replayer(
            stepfunctions=target.client("stepfunctions"),
            sqs=target.client("sqs"),
            records=FileRecords(target.client("dynamodb"), target.output(FILES_TABLE_NAME)),
            store=ObjectStore(target.client("s3")),
            state_machine_arn=target.output(STATE_MACHINE_ARN),
            queue_urls=queue_urls,
            audit=AuditLog(stream, actor),
            guardduty=target.client("guardduty") if target.outputs.get(SCANNER) == GUARDDUTY else None,
        )
        outcomes = replayer.run(options)
    print(render.replay_summary(outcomes, dry_run=args.dry_run))
    needs_attention = any(o.action in (Action.UNREPLAYABLE, Action.ERROR) for o in outcomes)
    return EXIT_ATTENTION if needs_attention else 0


def _recount(args: argparse.Namespace, target: Target, clock: rescan.Clock) -> int:
    from common.records import FileRecords
    from common.usage import UsageLedger

    dynamodb, table = target.client("dynamodb"), target.output(FILES_TABLE_NAME)
    found = usage.recount(
        FileRecords(dynamodb, table),
        UsageLedger(dynamodb, table),
        clock.now(),
        dry_run=args.dry_run,
        owner_id=args.owner,
    )
    print(usage.report(found, dry_run=args.dry_run))
    return 0


def build_parser(
    client_factory: ClientFactory | None = None, clock: rescan.Clock | None = None
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="filepipe", description="Inspect and replay ProcessUpload runs; rescan stored files."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register(subparsers, client_factory, clock)
    return parser


def main(
    argv: Sequence[str] | None = None,
    client_factory: ClientFactory | None = None,
    clock: rescan.Clock | None = None,
) -> int:
    """Run one operator command; ``client_factory`` hands in clients (tests use moto's), ``clock`` time."""
    args = build_parser(client_factory, clock).parse_args(argv)
    return int(args.run(args))
