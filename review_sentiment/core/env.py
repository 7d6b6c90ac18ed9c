"""The one typed settings loader: a frozen dataclass whose every field has an environment twin.

A field `max_length` of a class read with prefix "SENTIMENT_" is set by SENTIMENT_MAX_LENGTH;
the dataclass's default is its documented default (see `python -m review_sentiment settings`).
An unset or empty variable keeps the value before it; a value that cannot be read as the
field's type is an error that names the variable, never a silent default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# The project's settings variables: SENTIMENT_<FIELD> (the UI's: SENTIMENT_UI_<FIELD>).
ENV_PREFIX = "SENTIMENT_"
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def env_name(prefix: str, field_name: str) -> str:
    return f"{prefix}{field_name.upper()}"


def read_settings(
    cls: type[T], prefix: str, environ: Mapping[str, str] = os.environ, config: Mapping[str, object] | None = None
) -> T:
    """`cls()`'s defaults <- `config` (e.g. a YAML section, by field name) <- `environ`."""
    values: dict[str, object] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        name = env_name(prefix, f.name)
        raw = environ.get(name) or (config or {}).get(f.name)
        if raw is not None and raw != "":
            values[f.name] = coerce(raw, str(f.type), name)
    return replace(cls(), **values)  # type: ignore[type-var]


def coerce(raw: object, type_name: str, name: str) -> object:
    """`raw` (a string from the environment, or a YAML value) as `type_name`."""
    try:
        if type_name == "bool":
            if isinstance(raw, bool):
                return raw
            value = str(raw).strip().lower()
            if value not in TRUE + FALSE:
                raise ValueError(f"expected one of {TRUE + FALSE}")
            return value in TRUE
        return {"int": int, "float": float, "str": str, "Path": Path}[type_name](raw)
    except (TypeError, ValueError) as err:
        raise ValueError(f"setting {name}: cannot read {raw!r} as {type_name}") from err
