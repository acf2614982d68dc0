"""Patches to moto as a whole: the server's settings, and lookups it repeats on every request.

moto repeats work for nothing: a directory scan per request, an SDK data loader per service model, a
method listing per JSON request, URL builders compiled for hundreds of rules never built, the alias
search per serialized member. These patches remember the answers; they change what moto costs, never
what it answers. Each service's own patches are in filepipe.local.services.<service>.patches; every
one is installed through filepipe.local.moto_patches, before the server takes requests.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from filepipe.local.moto_patches import Patch, Uninstall, install, moto_patch, replace
from filepipe.local.services.iam import patches as iam_patches
from filepipe.local.services.s3 import patches as s3_patches
from filepipe.local.services.stepfunctions import patches as stepfunctions_patches

# A package whose __init__ runs when an attribute of it is first used, rather than when it is imported.
_DEFERRED_MARK = "filepipe_deferred_init"


def configure_moto(port: int, managed_policy_arns: Iterable[str]) -> None:
    """moto settings for a server on ``port``; must run before moto handles its first request."""
    install(s3_patches.keep_objects_in_memory)
    install(server_settings, port)
    install(defer_batch_package)
    install(moto_config)
    install(iam_patches.load_only_managed_policies, managed_policy_arns)


def _set_environment(values: dict[str, str], *, keep_set: bool = False) -> Uninstall:
    """Set environment variables (with ``keep_set``, only those unset); returns what puts them back."""
    originals = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        if not (keep_set and originals[name] is not None):
            os.environ[name] = value

    def restore() -> None:
        for name, original in originals.items():
            if original is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = original

    return restore


@moto_patch("moto.settings.DISABLE_GLOBAL_CORS", "moto.moto_server.werkzeug_app.DISABLE_GLOBAL_CORS")
def server_settings(port: int) -> Uninstall:
    """moto's server on ``port``, answering CORS as S3 does: each bucket's own rules.

    Global CORS would answer every origin with "*". moto.settings reads the variable when first
    imported, which may have happened already; its server module copies the setting when imported.
    """
    restore_environment = _set_environment({"MOTO_PORT": str(port), "MOTO_DISABLE_GLOBAL_CORS": "true"})
    import moto.settings

    undo = [restore_environment, replace(moto.settings, DISABLE_GLOBAL_CORS=True)]
    werkzeug_app = sys.modules.get("moto.moto_server.werkzeug_app")
    if werkzeug_app is not None:
        undo.append(replace(werkzeug_app, DISABLE_GLOBAL_CORS=True))

    def uninstall() -> None:
        for step in reversed(undo):
            step()

    return uninstall


def _defer_package_init(name: str) -> Uninstall:
    """Register package ``name`` without running its ``__init__`` until an attribute of it is used.

    Submodules still import normally. Returns what unregisters it again while its ``__init__`` has not
    run and no submodule of it was imported; after that it is the package itself, and stays.
    """
    import importlib.util

    if name in sys.modules:
        return lambda: None
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return lambda: None
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def load_on_use(attribute: str) -> Any:
        del module.__dict__["__getattr__"]
        del module.__dict__[_DEFERRED_MARK]
        loader.exec_module(module)
        return getattr(module, attribute)

    module.__getattr__ = load_on_use  # type: ignore[method-assign]
    setattr(module, _DEFERRED_MARK, True)
    sys.modules[name] = module

    def forget() -> None:
        untouched = _DEFERRED_MARK in module.__dict__
        submodules = [loaded for loaded in sys.modules if loaded.startswith(f"{name}.")]
        if untouched and not submodules and sys.modules.get(name) is module:
            del sys.modules[name]

    return forget


@moto_patch("moto.batch", "moto.batch.utils.JobStatus")
def defer_batch_package() -> Uninstall:
    """moto's Step Functions interpreter imports ``moto.batch.utils`` for one enum, ``JobStatus``.

    ``moto.batch`` itself imports all of moto's EC2 (seconds of start-up, ~130 MB); its ``__init__`` runs
    only if something uses it.
    """
    return _defer_package_init("moto.batch")


@moto_patch("moto.core.config.default_user_config")
def moto_config() -> Uninstall:
    """moto's configuration for the runtime, set as ``mock_aws(config=...)`` sets it.

    Executions run their states; Lambda runs in the runtime's workers (not Docker); IAM knows AWS's
    managed policies (those the template uses: see ``load_only_managed_policies``).
    """
    from moto.core.config import default_user_config

    settings: dict[str, Any] = {
        "stepfunctions": {"execute_state_machine": True},
        "lambda": {"use_docker": False},
        "iam": {"load_aws_managed_policies": True},
    }
    config: dict[str, Any] = default_user_config  # type: ignore[assignment]
    originals = {name: config.get(name) for name in settings}
    config.update(settings)

    def uninstall() -> None:
        for name, original in originals.items():
            if original is None:
                config.pop(name, None)
            else:
                config[name] = original

    return uninstall


# ------------------------------------------------------------------ request caches
_loader: Any = None


def sdk_data_loader() -> Any:
    """One SDK data loader for moto and the runtime's own clients: each service model is parsed once."""
    global _loader
    if _loader is None:
        import botocore.loaders

        _loader = botocore.loaders.create_loader()
    return _loader


@moto_patch("moto.core.utils.create_loader")
def share_sdk_data_loader() -> Uninstall:
    """moto makes a new SDK data loader, rescanning the SDK's data directories, for every model it loads."""
    import moto.core.utils

    loader = sdk_data_loader()
    return replace(moto.core.utils, create_loader=lambda: loader)


@moto_patch("werkzeug.routing.rules.Rule._compile_builder")
def compile_url_builders_on_use() -> Uninstall:
    """Compile a werkzeug rule's URL builders when a URL is first built, not with the rule.

    moto's server makes one Flask app per service with hundreds of URL rules, and werkzeug compiles two
    builder functions per rule up front (about half a second of start-up). Only matching is used here.
    """
    from werkzeug.routing.rules import Rule

    compile_builder = Rule._compile_builder

    def lazy(self: Rule, append_unknown: bool = True) -> Callable[..., Any]:
        compiled: list[Callable[..., Any]] = []

        def build(rule: Rule, *args: Any, **kwargs: Any) -> Any:
            if not compiled:
                compiled.append(compile_builder(rule, append_unknown))
            return compiled[0](rule, *args, **kwargs)

        return build

    return replace(Rule, _compile_builder=lazy)


@moto_patch("moto.backends.list_of_moto_modules")
def remember_moto_modules() -> Uninstall:
    """The server lists moto's package directories on disk to find the backend of each request."""
    import moto.backends

    modules = tuple(moto.backends.list_of_moto_modules())
    return replace(moto.backends, list_of_moto_modules=lambda: modules)


@moto_patch("moto.core.responses.method_names_from_class", "moto.core.utils.method_names_from_class")
def remember_response_methods() -> Uninstall:
    """Every JSON-protocol request lists its response class's methods with ``inspect``.

    A class's methods do not change while the server runs; a patch that adds one clears the cache.
    """
    import functools

    import moto.core.responses
    import moto.core.utils

    return replace(
        moto.core.responses, method_names_from_class=functools.cache(moto.core.utils.method_names_from_class)
    )


_ALIAS_CACHE_ENTRIES = 4096


@moto_patch(
    "moto.core.serialize.ResponseSerializer.get_value",
    "moto.core.serialize.ResponseSerializer._serialize_type_structure",
    "moto.core.serialize.ResponseSerializer._serialize_structure_member",
    "moto.core.serialize.ResponseSerializer._serialize",
    "moto.core.serialize.ResponseSerializer._default_serialize",
    "moto.core.serialize.ResponseSerializer.MAP_TYPE",
    "moto.core.serialize.AttributePicker",
    "moto.core.serialize.XFormedAttributePicker",
    "moto.core.serialize.AttributePickerContext",
    "moto.core.serialize.DEFAULT_ALIAS_PROVIDERS",
    "moto.core.serialize.MISSING",
    "moto.core.serialize.get_value",
)
def cache_serializer_aliases() -> Uninstall:
    """Remember which attribute names moto's response serializer tries for a plain dict's member.

    For every member of every structure it serializes (each DynamoDB attribute value has ten), moto
    builds a context and six alias providers, transforms the member's name again and tries each
    alias. For a dict without response transformers the names depend only on the member's name and
    its shape (and the shape's parent), so they are worked out once; looking them up is what moto does.
    """
    import moto.core.serialize as serialize

    member_value = serialize.ResponseSerializer.__dict__["get_value"]
    pickers = (serialize.AttributePicker, serialize.XFormedAttributePicker)
    missing = serialize.MISSING
    cache: dict[tuple[Any, ...], tuple[str, ...]] = {}

    def fast(serializer: Any, value: Any) -> bool:
        """Whether moto would pick this value's members by the cacheable names."""
        picker = serializer._value_picker
        return (
            type(value) is dict
            and type(picker) in pickers
            and not picker.response_transformers
            and picker.alias_providers is serialize.DEFAULT_ALIAS_PROVIDERS
        )

    def pick(serializer: Any, value: dict[str, Any], key: str, shape: Any) -> Any:
        picker = serializer._value_picker
        cache_key = (type(picker), key, shape, getattr(shape, "parent", None))
        names = cache.get(cache_key)
        if names is None:
            context = serialize.AttributePickerContext(obj=value, key=key, shape=shape)
            names = tuple(picker.get_possible_keys(context))
            if len(cache) >= _ALIAS_CACHE_ENTRIES:
                cache.clear()
            cache[cache_key] = names
        for name in names:
            # moto's get_value: a dotted name is a path, any other name a key of the dict.
            found = serialize.get_value(value, name, missing) if "." in name else value.get(name, missing)
            if found is not missing:
                return found
        return None

    def get_value(self: Any, value: Any, key: str, shape: Any) -> Any:
        if not fast(self, value):
            return member_value(self, value, key, shape)
        return pick(self, value, key, shape)

    serialize_structure = serialize.ResponseSerializer.__dict__["_serialize_type_structure"]
    serialize_member = serialize.ResponseSerializer.__dict__["_serialize_structure_member"]

    def serialize_type_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        # moto's loop over the members, minus two calls per member (most members of most values,
        # such as nine of a DynamoDB attribute value's ten, are absent).
        if type(self)._serialize_structure_member is not serialize_member or not fast(self, value):
            serialize_structure(self, serialized, value, shape, key)
            return
        wrapper: Any = self.MAP_TYPE() if key else serialized
        for member_key, member_shape in shape.members.items():
            member_shape.parent = shape
            found = pick(self, value, member_key, member_shape)
            if found is not None:
                self._serialize(wrapper, found, member_shape, member_key)
        if key:
            self._default_serialize(serialized, wrapper, shape, key)

    # Tests compare the bytes served with and without the cache: they put these back for a while.
    get_value.original = member_value  # type: ignore[attr-defined]
    serialize_type_structure.original = serialize_structure  # type: ignore[attr-defined]
    return replace(
        serialize.ResponseSerializer,
        get_value=get_value,
        _serialize_type_structure=serialize_type_structure,
    )


# The lookups moto repeats on every request and every state, remembered: the server installs them in this
# order before it takes requests. The interpreter's JSONPath parsers, the ETags of copies and the bytes of
# every object read are the Step Functions and S3 patches of the kind.
REQUEST_CACHES: tuple[Patch[[]], ...] = (
    share_sdk_data_loader,
    compile_url_builders_on_use,
    remember_moto_modules,
    stepfunctions_patches.cache_json_paths,
    remember_response_methods,
    s3_patches.reuse_copied_etags,
    s3_patches.share_object_bytes,
    cache_serializer_aliases,
)
