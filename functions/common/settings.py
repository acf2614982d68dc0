"""Settings read once from environment variables and validated, so a bad deploy fails at cold start."""

from __future__ import annotations

import os
from functools import cache
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

SettingsT = TypeVar("SettingsT", bound=BaseModel)


class SettingsError(RuntimeError):
    """A required environment variable is missing or malformed."""


class EnvSettings(BaseModel):
    """Base for each function's settings; field aliases are the environment variable names."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")


@cache
def load_settings(model: type[SettingsT]) -> SettingsT:
    try:
        return model.model_validate(dict(os.environ))
    except ValidationError as error:
        raise SettingsError(f"{model.__name__}: {error}") from error
