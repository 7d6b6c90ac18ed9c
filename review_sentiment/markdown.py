"""Markdown tables for the reports (evaluation, data, benchmarks, soak): written one way, so
that the committed reports keep their exact bytes whichever script regenerates them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def markdown_table(headers: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """`| a | b |` lines under a `|---|---|` rule, without padding; each cell as str(cell)."""
    lines = [_row(headers), "|---" * len(headers) + "|"]
    lines += [_row(row) for row in rows]
    return "\n".join(lines)


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"
