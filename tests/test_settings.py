"""One settings layer: each setting a dataclass field with an environment twin, read by one loader;
the settings table of docs/configuration.md is generated from the classes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from review_sentiment import commands
from review_sentiment.core.env import read_settings
from review_sentiment.paths import REPO
from review_sentiment.settings import ServiceSettings
from review_sentiment.settings_table import settings_markdown


@dataclass(frozen=True)
class Example:
    count: int = 3
    ratio: float = 0.5
    name: str = "a"
    on: bool = True
    where: Path = Path("/tmp")


def test_environment_beats_config_beats_defaults():
    assert read_settings(Example, "X_", {}) == Example()
    got = read_settings(Example, "X_", {"X_COUNT": "7", "X_ON": "off", "X_WHERE": "/srv"}, {"count": 5, "ratio": 2})
    assert got == Example(count=7, ratio=2.0, on=False, where=Path("/srv"))
    assert read_settings(Example, "X_", {"X_COUNT": ""}).count == 3  # empty: unset


@pytest.mark.parametrize(("name", "raw"), [("X_COUNT", "three"), ("X_ON", "maybe"), ("X_RATIO", "1,5")])
def test_an_unreadable_value_names_its_variable(name, raw):
    with pytest.raises(ValueError, match=name):
        read_settings(Example, "X_", {name: raw})


def test_service_settings_from_the_environment():
    settings = ServiceSettings.from_env({"SENTIMENT_AUTH": "off", "SENTIMENT_RUN_DIR": "/srv/run"})
    assert settings.auth is False and settings.run_dir == Path("/srv/run") and settings.bind == "127.0.0.1"


def test_every_setting_is_documented_and_the_docs_table_is_current():
    table = settings_markdown(commands.setting_groups())
    assert "| `SENTIMENT_MAX_LENGTH` | `256` |" in table and "| `SENTIMENT_UI_PORT` | `7860` |" in table
    assert not re.search(r"\| `[^`]+` \| `[^`]*` \|  \|", table), "a setting without a comment"
    page = (REPO / "docs" / "configuration.md").read_text()
    section = re.search(r"<!-- settings:begin -->\n(.*?)<!-- settings:end -->", page, re.S)
    assert section, "docs/configuration.md has no generated settings section"
    assert section.group(1) == table, (
        "docs/configuration.md's settings table is stale: review-sentiment settings --defaults"
    )


def test_the_clients_request_size_limit_is_the_servers():
    """The REST client refuses a body over max_request_size before sending it (the frontend may
    reset the connection instead of answering 413): the two numbers must be the same."""
    from review_sentiment.client.rest import MAX_REQUEST_SIZE

    properties = (REPO / "config" / "config.properties").read_text()
    assert int(re.search(r"^max_request_size=(\d+)$", properties, re.M).group(1)) == MAX_REQUEST_SIZE
