"""markdown_table: the one way the reports write a table."""

from __future__ import annotations

from review_sentiment.markdown import markdown_table


def test_a_table_is_a_header_a_rule_and_one_line_per_row_without_padding():
    table = markdown_table(("set", "accuracy"), [("imdb", 0.9), ("", "-")])
    assert table == "| set | accuracy |\n|---|---|\n| imdb | 0.9 |\n|  | - |"
