"""The handler registry: a handler for each resource type template.yaml uses, in its service's package."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import filepipe.local.services
from filepipe.local.provision.registry import HANDLERS
from filepipe.local.services.s3 import resources as s3
from filepipe.local.stack.context import ServiceHandlers
from filepipe.template import Template

SERVICES_FOLDER = Path(filepipe.local.services.__file__).parent


def test_every_resource_type_of_the_transformed_template_has_a_handler(template: Template) -> None:
    used = {resource["Type"] for resource in template.resources.values()}
    assert sorted(used - HANDLERS.keys()) == []


@pytest.mark.parametrize("resource_type", sorted(HANDLERS))
def test_each_handler_lives_in_its_services_resources_module(resource_type: str) -> None:
    module = inspect.getmodule(HANDLERS[resource_type])
    assert module is not None
    assert module.__file__ is not None
    path = Path(module.__file__)
    assert path.name == "resources.py"
    assert path.parent.parent == SERVICES_FOLDER
    assert module.__name__ == f"filepipe.local.services.{path.parent.name}.resources"


def test_a_resource_type_registered_twice_is_refused() -> None:
    handlers = ServiceHandlers()
    handlers.register("AWS::S3::Bucket")(s3.create_bucket)
    with pytest.raises(ValueError, match="AWS::S3::Bucket has two handlers: create_bucket, create_bucket"):
        handlers.register("AWS::S3::Bucket")(s3.create_bucket)
