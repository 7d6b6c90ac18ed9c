"""One CSV reader for the CLI, the UI's upload and training: a byte-order mark works everywhere,
and every unreadable file fails with a message in words (no traceback, no review text)."""

from __future__ import annotations

from pathlib import Path

import pytest

from review_sentiment import cli
from review_sentiment.tables import TableError, read_csv
from training import data as datasets

BOM = "\ufeff"


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    path = write(tmp_path / "excel.csv", BOM + "text,label\nLovely,positive\nAwful,negative\n")
    columns, rows = read_csv(path)
    assert columns == ["text", "label"] and rows[0]["text"] == "Lovely"


def test_byte_order_mark_in_the_cli(tmp_path):
    csv_file = write(tmp_path / "excel.csv", BOM + "text,id\nLovely,1\n")
    assert cli.read_reviews(csv_file) == [{"text": "Lovely", "id": "1"}]
    jsonl = write(tmp_path / "excel.jsonl", BOM + '{"text": "Lovely"}\n')
    assert cli.read_reviews(jsonl) == [{"text": "Lovely"}]


def test_byte_order_mark_in_training(tmp_path):
    path = write(tmp_path / "sephora.csv", BOM + "review_text,is_recommended\nLove it,1\nHate it,0\n")
    data = datasets.load_csv(path)
    assert data.texts == ["Love it", "Hate it"] and data.labels == [1, 0]


def test_a_short_row_gets_empty_fields(tmp_path):
    columns, rows = read_csv(write(tmp_path / "short.csv", "id,text,note\n1,Lovely\n"))
    assert rows == [{"id": "1", "text": "Lovely", "note": ""}]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("text\nCaf\xe9 cr\xe8me\n".encode("latin-1"), r"not UTF-8 text \(undecodable byte at offset 8\)"),
        ("text\n" + "x" * 200_000 + "\n", r"not a readable CSV \(field larger than field limit \(131072\)\)"),
        ("id,text\n1,fine\n2,a, comma too many\n", r"line 3: more fields than the header has columns"),
        ('text\n"never closed\n', r"not a readable CSV \(unexpected end of data\)"),
        ("", r"is empty: a CSV needs a header row"),
    ],
    ids=["latin-1", "huge-field", "ragged", "open-quote", "empty"],
)
def test_unreadable_files_say_why(tmp_path, content, message):
    path = write(tmp_path / "reviews.csv", content)
    with pytest.raises(TableError, match=message):
        read_csv(path)


def test_the_cli_reports_an_unreadable_file_in_words(tmp_path):
    bad = write(tmp_path / "bad.csv", "id,text\n1,a,b\n")
    with pytest.raises(SystemExit) as exited:
        cli.main(["--run-dir", str(tmp_path), "predict", "--file", str(bad)])
    assert str(exited.value) == f"cannot read {bad}: bad.csv, line 2: more fields than the header has columns"
    broken = write(tmp_path / "bad.jsonl", '{"text": "fine"}\n{"text": \n')
    with pytest.raises(SystemExit, match=r"bad.jsonl, line 2: not valid JSON"):
        cli.main(["--run-dir", str(tmp_path), "predict", "--file", str(broken)])
