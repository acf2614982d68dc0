"""The `filepipe` command line: its subcommands, parameter overrides, and `outbox` without a runtime."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from filepipe.cli import _parameter, build_parser, format_message, main


def test_the_command_has_the_local_runtime_and_operator_subcommands() -> None:
    parser = build_parser()
    args = parser.parse_args(["local", "--port", "9000", "--parameter", "LogLevel=DEBUG", "--no-clamd"])
    assert (args.port, args.parameter, args.no_clamd) == (9000, [("LogLevel", "DEBUG")], True)
    assert args.api_port is None  # the API and AWS ports follow the web port
    for command in ("outbox", "executions", "execution", "replay"):
        assert command in parser.format_help()


def test_a_running_clamd_is_named_or_clamd_left_out_not_both(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    args = parser.parse_args(["local", "--clamd-address", "tcp://127.0.0.1:3310"])
    assert (args.clamd_address, args.no_clamd) == ("tcp://127.0.0.1:3310", False)
    assert parser.parse_args(["local"]).clamd_address is None
    with pytest.raises(SystemExit):
        parser.parse_args(["local", "--no-clamd", "--clamd-address", "tcp://127.0.0.1:3310"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_parameters_are_name_equals_value() -> None:
    assert _parameter("AllowedTypes=image/png,image/jpeg") == ("AllowedTypes", "image/png,image/jpeg")
    assert _parameter("Empty=") == ("Empty", "")
    with pytest.raises(argparse.ArgumentTypeError):
        _parameter("no-equals-sign")


def test_outbox_without_a_running_stack_says_how_to_start_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["outbox", "--state-dir", str(tmp_path)]) == 1
    assert "make local" in capsys.readouterr().err


def test_messages_print_like_an_email() -> None:
    text = format_message({"from": "a@example.com", "to": ["b@example.com"], "subject": "Hi", "body": "Body"})
    assert text == "From:    a@example.com\nTo:      b@example.com\nSubject: Hi\n\nBody"
