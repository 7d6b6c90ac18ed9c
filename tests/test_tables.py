"""One reader and writer of review files for the CLI, the UI and training: a byte-order mark
works everywhere, every unreadable file fails with a message in words (no traceback, no review
text), and a results CSV has the input's columns then the prediction's."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from review_sentiment import cli
from review_sentiment.tables import TableError, Verdict, guess_text_column, read_csv, read_table, write_csv
from training import data as datasets

BOM = "\ufeff"


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    path = write(tmp_path / "excel.csv", BOM + "text,label\nLovely,positive\nAwful,negative\n")
    columns, rows = read_csv(path)
    assert columns == ["text", "label"] and rows[0]["text"] == "Lovely"


def test_byte_order_mark_in_csv_and_jsonl(tmp_path):
    csv_file = write(tmp_path / "excel.csv", BOM + "text,id\nLovely,1\n")
    assert read_table(csv_file) == (["text", "id"], [{"text": "Lovely", "id": "1"}])
    jsonl = write(tmp_path / "excel.jsonl", BOM + '{"text": "Lovely"}\n\n{"id": 2, "text": "Fine"}\n')
    assert read_table(jsonl) == (["text", "id"], [{"text": "Lovely"}, {"id": 2, "text": "Fine"}])


def test_byte_order_mark_in_training(tmp_path):
    path = write(tmp_path / "sephora.csv", BOM + "review_text,is_recommended\nLove it,1\nHate it,0\n")
    data = datasets.load_csv(path)
    assert data.texts == ["Love it", "Hate it"] and data.labels == [1, 0]


def test_training_reads_jsonl_too(tmp_path):
    path = write(tmp_path / "reviews.jsonl", '{"review": "Love it", "label": 1}\n{"review": "Hate it", "label": 0}\n')
    data = datasets.load_csv(path)
    assert data.texts == ["Love it", "Hate it"] and data.labels == [1, 0]


def test_text_column_guesses():
    assert guess_text_column(["id", "review_text", "rating"]) == "review_text"
    assert guess_text_column(["review", "text"]) == "text"
    assert guess_text_column(["id", "notes"]) is None


def test_results_csv_keeps_every_input_column_then_the_prediction():
    out = io.StringIO()
    inputs = [{"id": "1", "label": "gold"}, {"id": "2", "extra": "x"}]
    write_csv(out, inputs, [Verdict("positive", 0.91234, 0.91234), Verdict(error="HTTP 400: empty")])
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == ["id", "input_label", "extra", "label", "score", "p_positive", "error"]
    assert rows[0] == {
        "id": "1",
        "input_label": "gold",
        "extra": "",
        "label": "positive",
        "score": "0.9123",
        "p_positive": "0.9123",
        "error": "",
    }
    assert rows[1]["label"] == rows[1]["score"] == "" and rows[1]["error"] == "HTTP 400: empty"


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
