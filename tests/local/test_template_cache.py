"""The local runtime's cached transform: reused while nothing changed, redone after any edit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from filepipe import template as template_module
from filepipe.template import ROOT, load_template, load_template_cached


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "template.yaml", tmp_path / "template.yaml")
    shutil.copytree(ROOT / "statemachines", tmp_path / "statemachines")
    return tmp_path


def test_the_cache_gives_the_same_template_and_follows_edits(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = project / "cache" / "template.json"
    first = load_template_cached(cache, project / "template.yaml")
    assert cache.is_file()
    assert first.resources == load_template(project / "template.yaml").resources

    def no_transform(*args: object, **kwargs: object) -> None:
        raise AssertionError("transformed again although nothing changed")

    monkeypatch.setattr(template_module, "load_template", no_transform)
    again = load_template_cached(cache, project / "template.yaml")
    assert again.resources == first.resources
    assert again.code_paths == first.code_paths
    assert again.definitions == first.definitions
    monkeypatch.undo()

    definition = project / "statemachines" / "process_upload.asl.json"
    definition.write_text(definition.read_text().replace("Mark processing", "Mark as processing"))
    edited = load_template_cached(cache, project / "template.yaml")
    assert "Mark as processing" in edited.definitions["ProcessUploadStateMachine"]
