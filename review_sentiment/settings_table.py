"""Every setting in one table, generated from the settings classes themselves: the environment
variable, the default and the comment above each field. The settings table of
docs/configuration.md is this output (a test keeps them equal); `review-sentiment settings` adds
the values in effect."""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from dataclasses import fields
from pathlib import Path

from review_sentiment.core.env import ENV_PREFIX, env_name, read_settings
from review_sentiment.markdown import markdown_table


def _groups() -> list[tuple[str, type, str]]:
    from review_sentiment.core.settings import InferenceSettings
    from review_sentiment.endpoints import Endpoints
    from review_sentiment.settings import ServiceSettings
    from ui.settings import UI_ENV_PREFIX, UiSettings

    return [
        ("service", ServiceSettings, ENV_PREFIX),
        ("endpoints", Endpoints, ENV_PREFIX),
        ("inference (also model-config.yaml `handler:`)", InferenceSettings, ENV_PREFIX),
        ("ui", UiSettings, UI_ENV_PREFIX),
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


def settings_markdown(current: bool = False) -> str:
    """One Markdown table per group; `current`: with the value in effect in this environment."""
    out = []
    for title, cls, prefix in _groups():
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
        out.append(f"**{title}**\n\n{markdown_table(headers, rows)}")
    return "\n\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(settings_markdown())
