"""Every setting in one table, generated from the settings classes themselves: the environment
variable, the default and the comment above each field. The settings table of
docs/configuration.md is this output for `commands.setting_groups()` (a test keeps them equal;
`review-sentiment settings --defaults` prints it); `review-sentiment settings` adds the values in
effect. This module knows only this package's settings classes: the UI's are added by the
composition root (`review_sentiment/commands.py`), never imported from here."""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from review_sentiment.core.env import ENV_PREFIX, env_name, read_settings
from review_sentiment.markdown import markdown_table


@dataclass(frozen=True)
class SettingsGroup:
    title: str
    settings: type  # a frozen dataclass read by core/env.py's read_settings
    prefix: str  # of its environment variables


def own_groups() -> list[SettingsGroup]:
    """This package's settings classes."""
    from review_sentiment.core.settings import InferenceSettings
    from review_sentiment.endpoints import Endpoints
    from review_sentiment.settings import ServiceSettings

    return [
        SettingsGroup("service", ServiceSettings, ENV_PREFIX),
        SettingsGroup("endpoints", Endpoints, ENV_PREFIX),
        SettingsGroup("inference (also model-config.yaml `handler:`)", InferenceSettings, ENV_PREFIX),
    ]


def field_comments(cls: type) -> dict[str, str]:
    """The comment lines right above each field of `cls`, joined into one sentence."""
    source = textwrap.dedent(inspect.getsource(cls))
    lines = source.splitlines()
    comments: dict[str, str] = {}
    for node in ast.parse(source).body[0].body:  # type: ignore[attr-defined]
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            above, row = [], node.lineno - 2
            while row >= 0 and lines[row].strip().startswith("#"):
                above.insert(0, lines[row].strip().lstrip("#").strip())
                row -= 1
            comments[node.target.id] = " ".join(above)
    return comments


def _shown(value: object) -> str:
    from review_sentiment.settings import REPO

    if isinstance(value, Path) and value.is_relative_to(REPO):
        return f"./{value.relative_to(REPO)}"
    return str(value).lower() if isinstance(value, bool) else str(value)


def settings_markdown(groups: Sequence[SettingsGroup], current: bool = False) -> str:
    """One Markdown table per group; `current`: with the value in effect in this environment."""
    out = []
    for group in groups:
        cls, prefix = group.settings, group.prefix
        notes = field_comments(cls)
        now = read_settings(cls, prefix) if current else None
        headers = ["variable", "default", *(["now"] if current else []), "what it sets"]
        rows = [
            [
                f"`{env_name(prefix, f.name)}`",
                f"`{_shown(f.default)}`",
                *([f"`{_shown(getattr(now, f.name))}`"] if current else []),
                notes[f.name],
            ]
            for f in fields(cls)
        ]
        out.append(f"**{group.title}**\n\n{markdown_table(headers, rows)}")
    return "\n\n".join(out) + "\n"
