"""Reading a user's CSV of reviews: one reader for the CLI, the UI's upload and training.

UTF-8 with or without a byte-order mark (Excel writes one; read as plain UTF-8 it would rename
the first column to "\\ufefftext"). Anything else fails with a `TableError` whose message says,
in words, what is wrong and where; it never quotes the file's text (it holds reviews).
"""

from __future__ import annotations

import csv
from pathlib import Path

CSV_ENCODING = "utf-8-sig"


class TableError(ValueError):
    """A file that cannot be read as a table of reviews."""


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
