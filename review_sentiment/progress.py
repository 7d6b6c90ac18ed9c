"""Progress lines for long runs (training evaluation, benchmarks): on stderr, so that stdout
keeps only the result (a Markdown table a caller may pipe on), and flushed at once."""

from __future__ import annotations

import sys


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
