"""Review files, read and written in one place: the CLI, the UI's upload and download, and training.

Read: a CSV with a header row, or JSONL (one JSON object a line), UTF-8 with or without a
byte-order mark (Excel writes one; read as plain UTF-8 it would rename the first column to
"\\ufefftext"). Anything else fails with a `TableError` whose message says, in words, what is
wrong and where; it never quotes the file's text (it holds reviews).

Written: every input column, then the prediction's columns (`PREDICTION_COLUMNS`), as CSV; or
each input object with its prediction added, as JSONL.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

CSV_ENCODING = "utf-8-sig"
JSONL_SUFFIXES = (".jsonl", ".ndjson")
# Tried in order for the column holding the review: the project's own, Sephora's, common names.
TEXT_COLUMN_GUESSES = ("text", "review_text", "review", "Review", "content", "body", "comment")
# Appended to the input's columns in a results CSV.
PREDICTION_COLUMNS = ("label", "score", "p_positive", "error")


class TableError(ValueError):
    """A file that cannot be read as a table of reviews."""


def is_jsonl(path: str | Path) -> bool:
    return Path(path).suffix.lower() in JSONL_SUFFIXES


def read_table(path: str | Path) -> tuple[list[str], list[dict]]:
    """(columns, rows) of a JSONL file (by its suffix) or else a CSV."""
    return read_jsonl(path) if is_jsonl(path) else read_csv(path)


def read_csv(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of a CSV with a header row. A row with fewer fields than the header gets
    "" for the missing ones (spreadsheets drop trailing empty cells); a row with more is an error,
    since its text would land under the wrong column or nowhere."""
    name = Path(path).name
    line = 0
    try:
        with open(path, newline="", encoding=CSV_ENCODING) as fh:
            # strict: an unclosed quote is an error, not the rest of the file swallowed into one field.
            reader = csv.DictReader(fh, restval="", strict=True)
            rows = []
            for row in reader:
                line = reader.line_num
                if None in row:
                    raise TableError(f"{name}, line {line}: more fields than the header has columns")
                rows.append(row)
            columns = list(reader.fieldnames or [])
    except UnicodeDecodeError as error:
        raise TableError(f"{name} is not UTF-8 text (undecodable byte at offset {error.start})") from None
    except csv.Error as error:
        raise TableError(f"{name}, after line {line}: not a readable CSV ({error})") from None
    except FileNotFoundError:
        raise TableError(f"{name} no longer exists (uploads are deleted after a while): upload it again") from None
    if not columns:
        raise TableError(f"{name} is empty: a CSV needs a header row naming its columns")
    return columns, rows


def read_jsonl(path: str | Path) -> tuple[list[str], list[dict]]:
    """(keys, objects) of a JSONL file, blank lines skipped; the keys of all objects, in first-seen
    order. Values stay as JSON gave them: a caller needing text checks for a string."""
    name = Path(path).name
    rows, number = [], 0
    try:
        with open(path, encoding=CSV_ENCODING) as fh:
            for number, line in enumerate(fh, start=1):
                if line.strip():
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise TableError(f"{name}, line {number}: not a JSON object")
                    rows.append(row)
    except UnicodeDecodeError as error:
        raise TableError(f"{name} is not UTF-8 text (undecodable byte at offset {error.start})") from None
    except json.JSONDecodeError as error:
        raise TableError(f"{name}, line {number}: not valid JSON ({error.msg})") from None
    return list(dict.fromkeys(key for row in rows for key in row)), rows


def guess_text_column(columns: Sequence[str]) -> str | None:
    """The first of `TEXT_COLUMN_GUESSES` that `columns` has, else None."""
    return next((c for c in TEXT_COLUMN_GUESSES if c in columns), None)


@dataclass(frozen=True)
class Verdict:
    """A review's prediction as a results file holds it: a refused review has no label, its error in words."""

    label: str = ""
    score: float | None = None
    p_positive: float | None = None
    error: str = ""

    def cells(self) -> dict[str, str]:
        """The `PREDICTION_COLUMNS`, as text: probabilities to 4 decimals, "" where there is none."""
        score, p_positive = ("" if p is None else f"{p:.4f}" for p in (self.score, self.p_positive))
        return {"label": self.label, "score": score, "p_positive": p_positive, "error": self.error}


def write_csv(out: TextIO, inputs: Sequence[Mapping[str, object]], verdicts: Sequence[Verdict]) -> None:
    """Each input row's columns, then its verdict's. Every column any row has, in first-seen order
    (DictWriter refuses a key missing from the header); an input column named like a prediction
    column (a labelled file's "label") is kept as "input_<name>" instead of being overwritten."""
    columns = list(dict.fromkeys(key for row in inputs for key in row if isinstance(key, str)))
    renamed = {c: f"input_{c}" if c in PREDICTION_COLUMNS else c for c in columns}
    writer = csv.DictWriter(out, fieldnames=[*renamed.values(), *PREDICTION_COLUMNS], restval="")
    writer.writeheader()
    for row, verdict in zip(inputs, verdicts, strict=True):
        writer.writerow({**{renamed[k]: v for k, v in row.items() if k in renamed}, **verdict.cells()})


def write_jsonl(out: TextIO, inputs: Sequence[Mapping[str, object]], results: Sequence[dict]) -> None:
    """Each input object with the server's whole result under "prediction", one a line."""
    for row, result in zip(inputs, results, strict=True):
        out.write(json.dumps({**row, "prediction": result}) + "\n")
