"""The registry of patches to moto: what they rely on exists in this moto, and removing them restores moto."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from moto.core.config import default_user_config

from filepipe.local import moto_core_patches, moto_patches
from filepipe.local.moto_patches import MotoPatches, Patch, moto_patch, replace
from filepipe.local.services.awslambda.invoke import InvokeResult
from filepipe.local.services.awslambda.patches import lambda_concurrency_quota
from filepipe.local.services.s3.patches import leave_bucket_policies_to_iam
from filepipe.template import ROOT


class NoRunner:
    """A Lambda runner that knows no function: the interpreter's tasks would all take the SDK."""

    def knows(self, name_or_arn: str) -> bool:
        return False

    def invoke(self, name_or_arn: str, payload: bytes, client_context: str | None = None) -> InvokeResult:
        raise AssertionError("no function is known")


def _arguments(tmp_path: Path) -> dict[str, tuple[Any, ...]]:
    """What `filepipe local` installs each patch that takes arguments with (by the patch's function name)."""

    def discard(*_: Any) -> None:
        return None

    return {
        "server_settings": (45_999,),
        "load_only_managed_policies": (["arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"],),
        "deliver_rule_targets": (discard,),
        "emit_execution_status_events": (discard,),
        "lambda_concurrency_quota": (10,),
        "ses_sandbox": (False,),
        "cache_definitions": (tmp_path,),
        "share_interpreter_clients": ("http://127.0.0.1:45999", NoRunner(), None),
    }


@pytest.fixture
def nothing_installed() -> Iterator[None]:
    """The process's registry empty before and after: tests that install patches remove them."""
    assert moto_patches.installed() == ()
    yield
    moto_patches.uninstall_all()


def test_every_moto_internal_a_patch_relies_on_exists_in_the_installed_moto() -> None:
    internals = moto_patches.moto_internals()

    assert len(internals) > 50
    missing = [
        f"{internal} (for {', '.join(patches)})"
        for internal, patches in internals.items()
        if not moto_patches.exists(internal)
    ]
    assert missing == []


def test_every_patches_module_is_declared() -> None:
    modules = {patch.name.rsplit(".", 1)[0] for patch in moto_patches.declared_patches()}
    declaring = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in [
            ROOT / "filepipe" / "local" / "moto_core_patches.py",
            *(ROOT / "filepipe" / "local" / "services").glob("*/patches.py"),
        ]
        if "@moto_patch(" in path.read_text()
    }

    assert modules == declaring
    assert {"filepipe.local.moto_core_patches", "filepipe.local.services.s3.patches"} <= modules


def test_a_missing_internal_is_named() -> None:
    with pytest.raises(LookupError, match=r"moto\.s3\.models\.FakeKey\.renamed_value"):
        moto_patches.resolve("moto.s3.models.FakeKey.renamed_value")
    assert not moto_patches.exists("moto.no_such_service.models")
    assert moto_patches.exists("moto.batch")  # a package, found without running its __init__


_ABSENT = object()


def _owners(internals: Iterable[str]) -> list[tuple[object, dict[str, object]]]:
    """Each class or module an internal belongs to, with a copy of its own namespace as it is now."""
    owners: dict[int, tuple[object, dict[str, object]]] = {}
    for internal in internals:
        parent = internal.rsplit(".", 1)[0]
        if parent == "moto":  # the internal is one of moto's packages: nothing of moto itself changes
            continue
        owner = moto_patches.resolve(parent)
        owners[id(owner)] = (owner, dict(vars(owner)))
    return list(owners.values())


def _changed(owners: list[tuple[object, dict[str, object]]]) -> list[str]:
    """The attributes of the owners that are not the very objects they were."""
    return [
        f"{getattr(owner, '__qualname__', getattr(owner, '__name__', owner))}.{name}"
        for owner, before in owners
        for name in sorted(set(before) | set(vars(owner)))
        if vars(owner).get(name, _ABSENT) is not before.get(name, _ABSENT)
    ]


def test_installing_then_removing_every_patch_restores_what_moto_had(
    nothing_installed: None, tmp_path: Path
) -> None:
    patches = moto_patches.declared_patches()
    owners = _owners(moto_patches.moto_internals(patches))
    environment = dict(os.environ)
    config = dict(default_user_config)
    batch_imported = "moto.batch" in sys.modules
    arguments = _arguments(tmp_path)
    try:
        for patch in patches:
            moto_patches.install(patch, *arguments.get(patch.name.rsplit(".", 1)[1], ()))
        assert set(moto_patches.installed()) == {patch.name for patch in patches}
        assert {"FakeKey.value", "SESBackend.send_email", "Rule._compile_builder"} <= set(_changed(owners))
    finally:
        moto_patches.uninstall_all()

    assert moto_patches.installed() == ()
    assert _changed(owners) == []
    assert dict(os.environ) == environment
    assert dict(default_user_config) == config
    assert ("moto.batch" in sys.modules) == batch_imported


def test_installing_a_patch_twice_changes_nothing(nothing_installed: None) -> None:
    from moto.s3.models import FakeBucket

    original = vars(FakeBucket)["get_permission"]
    uninstall = moto_patches.install(leave_bucket_policies_to_iam)
    patched = vars(FakeBucket)["get_permission"]
    again = moto_patches.install(leave_bucket_policies_to_iam)

    assert patched is not original
    assert vars(FakeBucket)["get_permission"] is patched
    assert moto_patches.installed() == (leave_bucket_policies_to_iam.name,)
    again()  # removes nothing: this call installed nothing
    assert vars(FakeBucket)["get_permission"] is patched
    uninstall()
    assert vars(FakeBucket)["get_permission"] is original
    assert moto_patches.installed() == ()


def test_a_patch_installed_with_other_arguments_is_refused(nothing_installed: None) -> None:
    moto_patches.install(lambda_concurrency_quota, 10)
    moto_patches.install(lambda_concurrency_quota, 10)

    with pytest.raises(ValueError, match="installed already, with other arguments"):
        moto_patches.install(lambda_concurrency_quota, 1000)


def test_patches_are_removed_newest_first_and_each_restores_what_it_found() -> None:
    class Target:
        def method(self) -> str:
            return "moto"

    original = vars(Target)["method"]

    def wrapping(label: str) -> Patch[[]]:
        def apply() -> Callable[[], None]:
            inner = Target.method

            def method(self: Target) -> str:
                return f"{label}({inner(self)})"

            return replace(Target, method=method)

        apply.__name__ = label
        return moto_patch(f"{__name__}.Target.method")(apply)

    registry = MotoPatches()
    registry.install_all([wrapping("first"), wrapping("second")])
    assert Target().method() == "second(first(moto))"
    assert registry.installed == (f"{__name__}.first", f"{__name__}.second")

    registry.uninstall_all()
    assert vars(Target)["method"] is original
    assert registry.installed == ()


def test_a_replaced_attribute_the_owner_did_not_have_is_deleted_again() -> None:
    class Base:
        inherited = "base"

    class Owner(Base):
        pass

    module = SimpleNamespace(setting=1)
    restore_owner = replace(Owner, inherited="patched", added="new")
    restore_module = replace(module, setting=2)
    assert (Owner.inherited, module.setting) == ("patched", 2)

    restore_owner()
    restore_module()
    assert "inherited" not in vars(Owner)
    assert "added" not in vars(Owner)
    assert (Owner.inherited, module.setting) == ("base", 1)


def test_the_runtime_configuration_is_patches_too(nothing_installed: None) -> None:
    moto_core_patches.configure_moto(45_998, ["arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"])

    assert os.environ["MOTO_PORT"] == "45998"
    assert [name.rsplit(".", 1)[1] for name in moto_patches.installed()] == [
        "keep_objects_in_memory",
        "server_settings",
        "defer_batch_package",
        "moto_config",
        "load_only_managed_policies",
    ]
