"""The one entry point: `review-sentiment <verb>` runs each verb's own main with its options."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys

import pytest

from review_sentiment import commands
from review_sentiment.paths import REPO


def test_help_lists_every_verb(capsys):
    assert commands.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {verb} " in out for verb in commands.VERBS)
    assert commands.main(["no-such-verb"]) == 2


@pytest.mark.parametrize("verb", sorted(commands.VERBS))
def test_every_verb_has_a_main(verb):
    spec = commands.VERBS[verb]
    runner = commands._runner(spec)
    assert callable(runner) and runner is getattr(importlib.import_module(spec.module), spec.function)
    assert spec.function == "main" or spec.module == commands.__name__


def test_a_verb_keeps_its_own_options_and_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        commands.main(["evaluate", "--help"])
    assert exit_.value.code == 0 and "--compare" in capsys.readouterr().out


def test_options_before_a_verb_are_the_clients(capsys):
    """`--run-dir D predict ...` is the client's form; its options mean nothing to other verbs."""
    with pytest.raises(SystemExit) as exit_:
        commands.main(["--run-dir", "x", "train"])
    assert exit_.value.code == 2 and "invalid choice: 'train'" in capsys.readouterr().err


def test_console_script_and_module_are_the_same_command():
    """`make install` installs the project (editable), so `review-sentiment` is on the venv's PATH."""
    script = shutil.which("review-sentiment", path=str(REPO / ".venv" / "bin"))
    assert script, "run `make install`: it installs the review-sentiment command"
    for command in ([script, "--help"], [sys.executable, "-m", "review_sentiment", "--help"]):
        out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO).stdout
        assert "usage: review-sentiment <verb>" in out and "  release " in out
