"""The packages' layers, and a process environment that only entry points change.

review_sentiment < handler, ui, training, deploy < benchmarks, reliability: a module imports
only its own package and the layers below (lazy imports inside functions count too), and no
import circle exists between modules. The one place that names an upper package from
review_sentiment is its composition root, review_sentiment/commands.py, by import string."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from review_sentiment import commands, paths
from review_sentiment.core.offline import OFFLINE_ENV
from review_sentiment.serve import archive

REPO = paths.REPO
LAYER = {
    "review_sentiment": 0,
    "handler": 1,
    "ui": 1,
    "training": 1,
    "deploy": 1,
    "benchmarks": 2,
    "reliability": 2,
}
GENERATED = "grpc_stubs"


def modules() -> dict[str, Path]:
    """Every project module by dotted name (a package by its own name), tests excluded."""
    found = {}
    for top in LAYER:
        for path in (REPO / top).rglob("*.py"):
            if GENERATED in path.parts:
                continue
            parts = path.relative_to(REPO).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path) -> set[str]:
    """The absolute module names a file imports anywhere in it (`from a import b` gives a and a.b)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_module_imports_a_package_above_its_own():
    upward = []
    for name, path in modules().items():
        own = name.split(".")[0]
        for imported in imports(path):
            top = imported.split(".")[0]
            if top in LAYER and top != own and LAYER[top] >= LAYER[own]:
                upward.append(f"{path.relative_to(REPO)} imports {imported}")
    assert not upward, "layers: review_sentiment < handler/ui/training/deploy < benchmarks/reliability\n" + "\n".join(
        upward
    )


def test_only_the_composition_root_imports_by_string():
    """An import by string would hide an upward import from the test above."""
    dynamic = []
    for name, path in modules().items():
        if not name.startswith("review_sentiment") or name == commands.__name__:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if called in ("import_module", "__import__"):
                    dynamic.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not dynamic, f"only review_sentiment/commands.py loads modules by name: {dynamic}"


def circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph` (name -> names it imports), or None."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        for child in sorted(graph[name]):
            if child in path:
                return [*path[path.index(child) :], child]
            if child not in done and (found := visit(child, [*path, child])):
                return found
        done.add(name)
        return None

    return next((found for name in sorted(graph) if name not in done and (found := visit(name, [name]))), None)


def test_no_import_circle():
    """Between the top-level packages, and between the modules of review_sentiment (imports
    inside functions count: a lazy import hides a circle, it does not remove it)."""
    known = modules()
    packages: dict[str, set[str]] = {top: set() for top in LAYER}
    own: dict[str, set[str]] = {}
    for name, path in known.items():
        top = name.split(".")[0]
        imported = imports(path)
        packages[top] |= {i.split(".")[0] for i in imported if i.split(".")[0] in LAYER} - {top}
        if top == "review_sentiment":
            own[name] = {i for i in imported if i in known and i != name}
    for graph in (packages, own):
        found = circle(graph)
        assert found is None, "import circle: " + " -> ".join(found or [])


def test_only_review_sentiment_is_installed():
    """Generic names (ui, training, deploy, ...) would clash with other installed packages."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["review_sentiment", "review_sentiment.*"]
    installed = metadata.distribution(project["project"]["name"]).read_text("top_level.txt")
    assert installed is not None and installed.split() == ["review_sentiment"], "run `make install` again"


def test_the_upper_verbs_run_from_the_checkout_wherever_the_command_starts(tmp_path):
    """The console script, started outside the repository: the composition root finds ui/."""
    script = Path(sys.executable).with_name("review-sentiment")
    done = subprocess.run([script, "settings", "--defaults"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| `SENTIMENT_UI_PORT` | `7860` |" in done.stdout


# ---- the environment: changed by entry points only, read when used ----


def without_offline() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in OFFLINE_ENV}


def test_importing_the_packages_leaves_the_environment_alone():
    script = (
        "import os\n"
        "before = dict(os.environ)\n"
        "import review_sentiment, review_sentiment.commands, review_sentiment.paths, review_sentiment.settings\n"
        "import review_sentiment.client.rest, review_sentiment.serve.server, review_sentiment.serve.archive\n"
        "import handler.sentiment_handler, ui, training, benchmarks, reliability\n"
        "changed = {k for k in before.keys() | os.environ.keys() if before.get(k) != os.environ.get(k)}\n"
        "assert not changed, changed\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=without_offline(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_entry_point_sets_the_offline_variables(monkeypatch, capsys):
    for name in OFFLINE_ENV:
        monkeypatch.delenv(name, raising=False)
    assert commands.main(["--help"]) == 0
    assert {name: os.environ[name] for name in OFFLINE_ENV} == OFFLINE_ENV
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # a value the caller set is kept
    commands.main(["--help"])
    assert os.environ["HF_HUB_OFFLINE"] == "0"


def test_the_handler_sets_the_offline_variables_when_its_worker_starts(model_dir, monkeypatch):
    from handler.sentiment_handler import SentimentHandler
    from tests.helpers import handler_context

    for name in OFFLINE_ENV:
        monkeypatch.delenv(name, raising=False)
    SentimentHandler().initialize(handler_context(model_dir, {"max_length": 32, "torch_threads": 1}))
    assert {name: os.environ[name] for name in OFFLINE_ENV} == OFFLINE_ENV


def test_a_setting_changed_after_import_is_seen(tmp_path, monkeypatch):
    from review_sentiment.client.keys import KeyFile
    from review_sentiment.client.rest import TorchServeClient
    from review_sentiment.endpoints import Endpoints
    from review_sentiment.serve.launcher import TorchServeProcess

    monkeypatch.setenv("SENTIMENT_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("SENTIMENT_MODEL_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("SENTIMENT_MODEL_NAME", "renamed")
    assert paths.run_dir() == tmp_path / "run" and paths.model_store() == tmp_path / "store"
    process = TorchServeProcess()
    assert (process.run_dir, process.model_store) == ((tmp_path / "run").resolve(), (tmp_path / "store").resolve())
    assert KeyFile.of(None).path == tmp_path / "run" / "key_file.json"
    assert TorchServeClient(Endpoints()).model == "renamed"
    with pytest.raises(AttributeError, match="run_dir()"):
        paths.RUN_DIR  # noqa: B018 (the former constant says what replaced it)


def test_the_archive_ships_what_the_handler_imports_and_no_more(tmp_path):
    """The handler's imports, followed through the project's modules, are exactly the package
    files the .mar carries besides the core (which ships whole)."""
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    for name in ("config.json", "model.safetensors"):
        (checkpoint / name).write_text("{}")
    archive._stage(checkpoint, tmp_path / "stage")
    package = tmp_path / "stage"
    shipped = {str(p.relative_to(package)) for p in package.rglob("*.py") if "__pycache__" not in p.parts}
    known = modules()
    needed, todo = set(), [paths.HANDLER_FILE]
    while todo:
        for name in imports(todo.pop()):
            if name in known and name.startswith("review_sentiment") and name not in needed:
                needed.add(name)
                todo.append(known[name])
    needed_files = {str(known[name].relative_to(REPO)) for name in needed} | {"review_sentiment/__init__.py"}
    assert needed_files <= shipped, f"the .mar lacks {needed_files - shipped}"
    beyond_core = {f for f in shipped if not f.startswith("review_sentiment/core/")}
    assert beyond_core == {f for f in needed_files if not f.startswith("review_sentiment/core/")}
    assert "review_sentiment/settings.py" not in shipped


def test_a_models_licence_notice_travels_with_its_weights_into_the_archive(tmp_path):
    """A distilled model carries its teacher's notice (GEMMA_NOTICE.md): the .mar ships it."""
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    for name in ("config.json", "model.safetensors"):
        (checkpoint / name).write_text("{}")
    (checkpoint / "GEMMA_NOTICE.md").write_text("# Gemma notice\n")
    archive._stage(checkpoint, tmp_path / "stage")
    assert (tmp_path / "stage" / "checkpoint" / "GEMMA_NOTICE.md").read_text() == "# Gemma notice\n"
