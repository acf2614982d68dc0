"""The `filepipe` command: `local` runs the whole stack on this machine, `outbox` shows the emails it sent,
`ses` takes the operator's SES steps."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from filepipe.ops import cli as ops_commands

# Each entry adds one subcommand to the parser; its parser's ``run`` default does the work.
Subcommand = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _parameter(text: str) -> tuple[str, str]:
    name, separator, value = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"expected Name=Value, got {text!r}")
    return name, value


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers themselves do: a port whose last connections linger in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


# ------------------------------------------------------------------ filepipe local
def _add_local(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from filepipe.local.server import LocalOptions

    defaults = LocalOptions()
    parser = subparsers.add_parser(
        "local",
        help="run template.yaml on this machine: AWS endpoint, functions, workflow, HTTP API and web UI",
        description="Deploy template.yaml into an in-process moto and run it: no Docker, no AWS account.",
    )
    parser.add_argument("--port", type=int, default=defaults.port, help="web UI port (default %(default)s)")
    parser.add_argument("--api-port", type=int, help="HTTP API port (default: --port + 1)")
    parser.add_argument("--aws-port", type=int, help="AWS endpoint port (default: --port + 2)")
    parser.add_argument("--host", default=defaults.host, help="address to listen on (default %(default)s)")
    parser.add_argument("--region", default=defaults.region)
    parser.add_argument("--stack-name", default=defaults.stack_name)
    parser.add_argument("--template", type=Path, default=defaults.template_path)
    parser.add_argument("--site-dir", type=Path, default=defaults.site_dir, help="the web UI's files")
    parser.add_argument(
        "--state-dir", type=Path, default=defaults.state_dir, help="runtime.json and clamd files"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=defaults.cache_dir, help="transformed template and parsed workflows"
    )
    parser.add_argument(
        "--parameter",
        type=_parameter,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="template parameter override (repeatable)",
    )
    parser.add_argument(
        "--verify-email",
        action="append",
        default=[],
        metavar="ADDRESS",
        help=(
            "verify this SES identity at start, as clicking SES's link does on AWS (repeatable): the "
            "SenderEmail parameter's address, and recipients as in the SES sandbox; nothing else is verified"
        ),
    )
    parser.add_argument(
        "--ses-production-access",
        action="store_true",
        help="leave the SES sandbox as an account with production access does: any recipient gets email",
    )
    parser.add_argument(
        "--lambda-concurrency-quota",
        type=int,
        default=defaults.lambda_concurrency_quota,
        metavar="N",
        help=(
            "the account's Lambda concurrent executions quota that reservations must leave room in "
            "(default %(default)s, a new account's; most accounts have 1000)"
        ),
    )
    clamd = parser.add_mutually_exclusive_group()
    clamd.add_argument("--no-clamd", action="store_true", help="do not start clamd (scans then fail closed)")
    clamd.add_argument(
        "--clamd-address",
        metavar="ADDRESS",
        help=(
            "use the clamd running at ADDRESS (tcp://host:port or unix:///path) instead of starting one: "
            "GuardDuty scans with it, and the ClamdAddress parameter defaults to it"
        ),
    )
    parser.add_argument(
        "--max-workers",
        type=int,
        default=defaults.max_workers_per_function,
        help="warm instances per function at most (default %(default)s)",
    )
    parser.set_defaults(run=_run_local)


def _run_local(args: argparse.Namespace) -> int:
    from filepipe.local.server import LocalOptions, LocalRuntime

    # moto logs each interpreter thread at INFO; only the runtime's own messages are worth showing.
    logging.basicConfig(level=logging.WARNING, format="filepipe | %(message)s", stream=sys.stderr)
    logging.getLogger("filepipe").setLevel(logging.INFO)
    options = LocalOptions(
        port=args.port,
        api_port=args.api_port,
        aws_port=args.aws_port,
        host=args.host,
        region=args.region,
        stack_name=args.stack_name,
        template_path=args.template.resolve(),
        site_dir=args.site_dir.resolve(),
        state_dir=args.state_dir.resolve(),
        cache_dir=args.cache_dir.resolve(),
        parameters=dict(args.parameter),
        verified_emails=tuple(args.verify_email),
        ses_production_access=args.ses_production_access,
        lambda_concurrency_quota=args.lambda_concurrency_quota,
        clamd=not args.no_clamd,
        clamd_address=args.clamd_address,
        max_workers_per_function=args.max_workers,
    )
    busy = [port for port in options.ports if not _port_free(options.host, port)]
    if busy:
        print(
            f"filepipe local: port(s) {', '.join(map(str, busy))} already in use; pick others with --port",
            file=sys.stderr,
        )
        return 1

    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    runtime = LocalRuntime(options)
    try:
        runtime.start()
    except Exception as error:
        logging.getLogger("filepipe.local").exception("start-up failed: %s", error)
        runtime.stop()
        return 1
    print(runtime.banner(), flush=True)
    while not stop.wait(0.5):
        pass
    print("filepipe local: stopping", flush=True)
    runtime.stop()
    print("filepipe local: stopped", flush=True)
    sys.stderr.flush()
    # Everything is stopped; skip the interpreter's slow teardown of moto's many modules and threads.
    os._exit(0)


# ------------------------------------------------------------------ filepipe outbox
def _add_outbox(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("outbox", help="print the emails the running local stack sent")
    parser.add_argument("--endpoint", help="AWS endpoint of `filepipe local` (default: the running one)")
    parser.add_argument("--state-dir", type=Path, help="state directory of `filepipe local`")
    parser.add_argument("--json", action="store_true", help="print the messages as JSON")
    parser.set_defaults(run=_run_outbox)


def local_endpoint(endpoint: str | None, state_dir: Path | None) -> str | None:
    """The AWS endpoint to talk to: the one given, or the one the running `filepipe local` recorded."""
    if endpoint:
        return endpoint.rstrip("/")
    from filepipe.runtime_state import read_state

    state = read_state(state_dir)
    return str(state["awsEndpoint"]) if state else None


def fetch_outbox(endpoint: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{endpoint}/_filepipe/outbox", timeout=10) as response:  # noqa: S310 - local URL
        messages: list[dict[str, Any]] = json.load(response)
    return messages


def format_message(message: dict[str, Any]) -> str:
    headers = (
        f"From:    {message.get('from', '')}\n"
        f"To:      {', '.join(message.get('to', []))}\n"
        f"Subject: {message.get('subject', '')}\n"
    )
    return f"{headers}\n{message.get('body', '')}"


def _run_outbox(args: argparse.Namespace) -> int:
    endpoint = local_endpoint(args.endpoint, args.state_dir)
    if endpoint is None:
        print(
            "filepipe outbox: `filepipe local` is not running (start it with `make local`)", file=sys.stderr
        )
        return 1
    try:
        messages = fetch_outbox(endpoint)
    except (urllib.error.URLError, OSError) as error:
        print(f"filepipe outbox: cannot reach {endpoint}: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(messages, indent=2))
    elif not messages:
        print("The outbox is empty.")
    else:
        separator = "\n" + "-" * 72 + "\n"
        print(separator.join(format_message(message) for message in messages))
    return 0


# ------------------------------------------------------------------ filepipe ses
def _add_ses(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("ses", help="the operator's SES steps: verify identities, check a deploy")
    steps = parser.add_subparsers(dest="ses_command", required=True)
    verify = steps.add_parser(
        "verify",
        help="verify SES identities on the running local stack (what SES's emailed link does on AWS)",
    )
    verify.add_argument("addresses", nargs="+", metavar="ADDRESS")
    verify.add_argument("--endpoint", help="AWS endpoint of `filepipe local` (default: the running one)")
    verify.add_argument("--state-dir", type=Path, help="state directory of `filepipe local`")
    verify.set_defaults(run=_run_ses_verify)
    status = steps.add_parser(
        "status",
        help="after a deploy: the stack's email sender, whether it is verified, and what the sandbox means",
    )
    status.add_argument("--stack", required=True, help="the deployed stack's name")
    status.add_argument("--region", help="its region (default: the AWS CLI's)")
    status.set_defaults(run=_run_ses_status)


def _run_ses_verify(args: argparse.Namespace) -> int:
    endpoint = local_endpoint(args.endpoint, args.state_dir)
    if endpoint is None:
        print(
            "filepipe ses verify: `filepipe local` is not running (start it with `make local`)",
            file=sys.stderr,
        )
        return 1
    import boto3

    from filepipe.runtime_state import ACCESS_KEY_ID, SECRET_ACCESS_KEY, read_state
    from filepipe.ses import verify

    state = read_state(args.state_dir) or {}
    ses = boto3.client(
        "ses",
        endpoint_url=endpoint,
        region_name=str(state.get("region") or "us-east-1"),
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )
    try:
        verify(ses, args.addresses)
    except Exception as error:
        print(f"filepipe ses verify: {endpoint}: {error}", file=sys.stderr)
        return 1
    print(f"verified on {endpoint}: {', '.join(args.addresses)}")
    return 0


def _run_ses_status(args: argparse.Namespace) -> int:
    import boto3

    from filepipe.ses import email_setup_notes

    session = boto3.session.Session(region_name=args.region)
    try:
        lines = email_setup_notes(session.client, args.stack, session.region_name or "us-east-1")
    except Exception as error:
        # Notes only: a deploy that worked is not failed for them.
        print(f"filepipe ses status: cannot read the email set-up of {args.stack}: {error}", file=sys.stderr)
        return 0
    print("\n".join(lines))
    return 0


SUBCOMMANDS: list[Subcommand] = [_add_local, _add_outbox, _add_ses, ops_commands.register]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="filepipe", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
