"""`review-sentiment <verb>`: the project's one entry point (also `python -m review_sentiment`),
and its composition root.

Each verb runs one module's `main`, which keeps its own options and `--help`
(`review-sentiment train --help`); the Make targets call these verbs. Modules are imported
only for the verb that runs, so `predict` does not pay for importing the training code.

The packages are layered: review_sentiment < handler, ui, training < benchmarks, reliability,
and no module imports a package above its own (tests/test_layers.py). This module is the one
place in review_sentiment that names the upper packages, by import string, and hands the
bottom package what it needs from them (the UI's settings for the settings table). Only
review_sentiment is installed (pyproject.toml): the upper packages run from the repository
checkout, whose root `load` puts on sys.path (`python -m` from the root has it already).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from review_sentiment.core.offline import apply_offline
from review_sentiment.settings import REPO

if TYPE_CHECKING:
    from review_sentiment.settings_table import SettingsGroup


@dataclass(frozen=True)
class Verb:
    module: str
    help: str
    prefix: tuple[str, ...] = ()  # arguments put before the user's (a sub-command of that main)
    function: str = "main"  # what runs, called with the arguments


VERBS: dict[str, Verb] = {
    "archive": Verb("review_sentiment.serve.archive", "package a checkpoint into model_store/<model>.mar"),
    "archive-accurate": Verb(
        "review_sentiment.commands",
        "package sentiment-accurate (EmbeddingGemma, fetched once) into model_store/sentiment-accurate.mar",
        function="archive_accurate",
    ),
    "serve": Verb("review_sentiment.serve.server", "start TorchServe with the built archive", ("start",)),
    "stop": Verb("review_sentiment.commands", "stop the UI and TorchServe started by `make serve`", function="stop"),
    "ui": Verb("ui.app", "run the Gradio page in the foreground (for a running TorchServe)"),
    "predict": Verb("review_sentiment.cli", "classify a text, stdin (-) or a CSV/JSONL file", ("predict",)),
    "describe": Verb("review_sentiment.cli", "the model's versions, the default and their workers", ("describe",)),
    "rollout": Verb(
        "review_sentiment.serve.rollout", "register, canary-check and switch to a new version", ("rollout",)
    ),
    "rollback": Verb(
        "review_sentiment.serve.rollout", "make the previous model version the default again", ("rollback",)
    ),
    "scale": Verb("review_sentiment.cli", "set the number of workers (management API)", ("scale",)),
    "healthcheck": Verb("review_sentiment.serve.healthcheck", "exit 0 when the model has a READY worker"),
    "train": Verb("training.train", "fine-tune a checkpoint (the multi-domain mix by default)"),
    "teacher": Verb("training.teacher.run", "the teacher's chain: embed, head, label (each resumable)"),
    "evaluate": Verb("training.evaluate", "score a checkpoint on its held-out sets"),
    "release": Verb("training.release", "replace the released model only if a new one beats it"),
    "bench": Verb("benchmarks.benchmark", "the benchmark matrix (a Markdown table and JSON)"),
    "soak": Verb("reliability.soak", "hours of mixed load against a running server"),
    "settings": Verb(
        "review_sentiment.commands",
        "every setting: its environment variable, default and value (--defaults: the docs' table)",
        function="settings",
    ),
}
# The client verbs (predict, describe, scale) also take the client's options before the verb.
CLIENT_MODULE = "review_sentiment.cli"


def usage() -> str:
    width = max(map(len, VERBS))
    lines = [f"  {name:<{width}}  {verb.help}" for name, verb in VERBS.items()]
    return "usage: review-sentiment <verb> [options]   (<verb> --help for its options)\n\n" + "\n".join(lines)


def load(module: str) -> ModuleType:
    """Import `module`; one of an upper package (ui, training, ...) from this checkout."""
    if module.partition(".")[0] != "review_sentiment" and str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module(module)


def stop(argv: Sequence[str]) -> None:
    from review_sentiment.serve import background, server

    background.main(["stop", "ui"])
    server.main(["stop"])


def archive_accurate(argv: Sequence[str]) -> None:
    """The accurate model's .mar: the committed head and notice (models/sentiment-accurate) and
    EmbeddingGemma-300M from the data cache, fetched and checked on first use by the training
    code, which only this composition root may name."""
    from review_sentiment import paths
    from review_sentiment.serve import archive

    encoder = load("training.teacher.weights").ensure_encoder()
    archive.main(
        [
            "--checkpoint", str(paths.ACCURATE_MODEL),
            "--encoder", str(encoder),
            "--model-name", paths.ACCURATE_MODEL_NAME,
            "--model-config", str(paths.ACCURATE_MODEL_CONFIG),
            *argv,
        ]
    )  # fmt: skip


def setting_groups() -> list[SettingsGroup]:
    """Every settings class: this package's own, then the UI's, which only the composition root
    may name (the settings table lives in the bottom package)."""
    from review_sentiment.settings_table import SettingsGroup, own_groups

    ui = load("ui.settings")
    return [*own_groups(), SettingsGroup("ui", ui.UiSettings, ui.UI_ENV_PREFIX)]


def settings(argv: Sequence[str]) -> None:
    """Every setting with the value in effect; `--defaults`: the table of docs/configuration.md."""
    from review_sentiment.settings_table import settings_markdown

    print(settings_markdown(setting_groups(), current="--defaults" not in argv), end="")


def _runner(verb: Verb) -> Callable[[list[str]], object]:
    return getattr(load(verb.module), verb.function)


def main(argv: list[str] | None = None) -> int:
    apply_offline()  # the process starts here: nothing it runs calls the internet
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0].startswith("-"):  # the client's own options (--run-dir, --model) come before its verb
        return load(CLIENT_MODULE).main(argv)
    verb = VERBS.get(argv[0])
    if verb is None:
        print(f"unknown verb {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    result = _runner(verb)([*verb.prefix, *argv[1:]])
    return result if isinstance(result, int) else 0
