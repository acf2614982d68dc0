"""The registry of the local runtime's patches to moto: what each relies on, installing and removing them.

moto leaves gaps the runtime closes and repeats work it spares (see each service's ``patches`` module and
``filepipe.local.moto_core_patches``); every such change to moto's classes and modules is a ``Patch``,
declared with the moto internals it relies on (dotted names, such as ``moto.s3.models.FakeKey.value``) so
that a moto upgrade that renames one fails a test naming it rather than the runtime at some request.
Installing is once per process (moto's classes and modules are process-wide, so are their patches); each
installation returns the function that removes it, and ``uninstall_all`` removes every one, newest first.

Written here rather than taken from a library: ``unittest.mock.patch`` and pytest's ``monkeypatch`` undo
attribute changes at the end of a test or a ``with`` block, not at the end of a process's start-up; they
neither install a change once however often it is asked for, nor know what a change relies on.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, ParamSpec

P = ParamSpec("P")
Uninstall = Callable[[], None]

# The module of the runtime-wide patches; each AWS service's are in filepipe.local.services.<service>.patches.
CORE_PATCHES_MODULE = "filepipe.local.moto_core_patches"
SERVICES_PACKAGE = "filepipe.local.services"


@dataclass(frozen=True)
class Patch(Generic[P]):
    """One change to moto: the internals it relies on, and how to make it (returning how to undo it)."""

    name: str
    relies_on: tuple[str, ...]
    apply: Callable[P, Uninstall]


def moto_patch(*relies_on: str) -> Callable[[Callable[P, Uninstall]], Patch[P]]:
    """Declare the decorated function, which makes a change and returns its undoing, as a patch.

    ``relies_on`` names every moto internal (module, class, function or class attribute) the patch
    replaces or reads. The patch is named after the function's module and name.
    """

    def declare(apply: Callable[P, Uninstall]) -> Patch[P]:
        return Patch(f"{apply.__module__}.{apply.__name__}", relies_on, apply)

    return declare


_ABSENT = object()


def replace(owner: object, **replacements: Any) -> Uninstall:
    """Set attributes of a class or module; the returned function puts back exactly what was there.

    The original is taken from the owner's own namespace rather than through ``getattr``: a staticmethod
    or a property is restored as the descriptor it was, and an attribute the owner inherited (or never
    had) is deleted again rather than left behind as a copy.
    """
    namespace = vars(owner)
    originals = {name: namespace.get(name, _ABSENT) for name in replacements}
    for name, value in replacements.items():
        setattr(owner, name, value)

    def restore() -> None:
        for name, original in originals.items():
            if original is _ABSENT:
                delattr(owner, name)
            else:
                setattr(owner, name, original)

    return restore


@dataclass(frozen=True)
class _Installation:
    arguments: tuple[tuple[Any, ...], dict[str, Any]]
    undo: Uninstall


def _nothing_to_undo() -> None:
    return None


class MotoPatches:
    """The patches installed, in the order they were; installation happens at start-up, on one thread."""

    def __init__(self) -> None:
        self._installed: dict[str, _Installation] = {}

    def install(self, patch: Patch[P], /, *args: P.args, **kwargs: P.kwargs) -> Uninstall:
        """Install ``patch`` unless it is installed; returns the function that removes this installation.

        Installing an installed patch again changes nothing (its removal function does nothing either);
        asking for it with other arguments is a mistake the patch cannot honour, so it raises ValueError.
        """
        installed = self._installed.get(patch.name)
        if installed is not None:
            if installed.arguments != (args, kwargs):
                raise ValueError(f"{patch.name} is installed already, with other arguments")
            return _nothing_to_undo
        installation = _Installation((args, kwargs), patch.apply(*args, **kwargs))
        self._installed[patch.name] = installation

        def uninstall() -> None:
            if self._installed.get(patch.name) is installation:
                del self._installed[patch.name]
                installation.undo()

        return uninstall

    def install_all(self, patches: Iterable[Patch[[]]]) -> None:
        """Install patches that take no arguments, in the order given."""
        for patch in patches:
            self.install(patch)

    def uninstall_all(self) -> None:
        """Remove every installed patch, the last installed first: each restores what it found."""
        while self._installed:
            name = next(reversed(self._installed))
            self._installed.pop(name).undo()

    @property
    def installed(self) -> tuple[str, ...]:
        return tuple(self._installed)


_process = MotoPatches()


def install(patch: Patch[P], /, *args: P.args, **kwargs: P.kwargs) -> Uninstall:
    """Install ``patch`` in this process (see ``MotoPatches.install``)."""
    return _process.install(patch, *args, **kwargs)


def install_all(patches: Iterable[Patch[[]]]) -> None:
    """Install patches that take no arguments in this process, in the order given."""
    _process.install_all(patches)


def uninstall_all() -> None:
    """Remove every patch installed in this process, the last installed first."""
    _process.uninstall_all()


def installed() -> tuple[str, ...]:
    """The names of the patches installed in this process, in the order they were installed."""
    return _process.installed


def declared_patches() -> tuple[Patch[Any], ...]:
    """Every patch the runtime declares: those of the core module and of each service's ``patches``.

    The modules are found on disk and imported by name: they import this module, never the reverse.
    """
    services = [module.name for module in pkgutil.iter_modules([str(Path(__file__).with_name("services"))])]
    names = [CORE_PATCHES_MODULE]
    for service in sorted(services):
        if importlib.util.find_spec(f"{SERVICES_PACKAGE}.{service}.patches") is not None:
            names.append(f"{SERVICES_PACKAGE}.{service}.patches")
    patches: dict[str, Patch[Any]] = {}
    for name in names:
        for value in vars(importlib.import_module(name)).values():
            if isinstance(value, Patch):
                patches[value.name] = value
    return tuple(patches.values())


def moto_internals(patches: Iterable[Patch[Any]] | None = None) -> dict[str, tuple[str, ...]]:
    """Each moto internal the patches rely on (every declared patch by default), with the patches' names."""
    relying: dict[str, list[str]] = {}
    for patch in declared_patches() if patches is None else patches:
        for internal in patch.relies_on:
            relying.setdefault(internal, []).append(patch.name)
    return {internal: tuple(relying[internal]) for internal in sorted(relying)}


def resolve(internal: str) -> object:
    """The object a dotted name stands for: the longest importable module, then attributes of it.

    Raises LookupError naming ``internal`` when moto (or werkzeug) has no such thing.
    """
    parts = internal.split(".")
    for split in range(len(parts), 0, -1):
        module_name = ".".join(parts[:split])
        try:
            spec = importlib.util.find_spec(module_name)
        except ModuleNotFoundError:  # a parent is a module, not a package: the rest are attributes
            spec = None
        if spec is None:
            continue
        found: object = importlib.import_module(module_name)
        for attribute in parts[split:]:
            try:
                found = getattr(found, attribute)
            except AttributeError:
                raise LookupError(f"{internal}: {module_name} has no {'.'.join(parts[split:])}") from None
        return found
    raise LookupError(f"{internal}: no such module")


def exists(internal: str) -> bool:
    """Whether ``internal`` names something that exists; a module is found without being imported."""
    try:
        if importlib.util.find_spec(internal) is not None:
            return True
    except ModuleNotFoundError:
        pass
    try:
        resolve(internal)
    except LookupError:
        return False
    return True
