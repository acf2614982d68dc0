"""Which clamd the runtime scans with: its own, one running elsewhere, or none (scans then fail closed)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from filepipe.clamd import NOT_INSTALLED, LocalClamd
from filepipe.local.server import LocalOptions, LocalRuntime


def test_without_clamd_installed_start_up_says_scans_fail_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LocalClamd, "is_available", classmethod(lambda cls: False))
    runtime = LocalRuntime(LocalOptions(state_dir=tmp_path), out=io.StringIO())
    assert runtime._start_clamd(1024) is None
    assert runtime.clamd_note == NOT_INSTALLED
    assert "fail closed" in NOT_INSTALLED


def test_clamd_can_be_left_out_on_purpose(tmp_path: Path) -> None:
    runtime = LocalRuntime(LocalOptions(state_dir=tmp_path, clamd=False), out=io.StringIO())
    assert runtime._start_clamd(1024) is None
    assert "scans fail closed" in runtime.clamd_note


def test_a_clamd_running_elsewhere_is_used_instead_of_starting_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LocalClamd, "start", lambda self: pytest.fail("no clamd may be started"))
    runtime = LocalRuntime(
        LocalOptions(state_dir=tmp_path, clamd_address="tcp://127.0.0.1:3310"), out=io.StringIO()
    )
    assert runtime._start_clamd(1024) == "tcp://127.0.0.1:3310"
    assert runtime.clamd_note.startswith("tcp://127.0.0.1:3310 ")
    assert list(tmp_path.iterdir()) == []  # no work directory of its own
