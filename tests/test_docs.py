"""The documentation: a short README that links to pages that exist, a site that builds in
strict mode, and pages that say what the code does. Where a page states a fact the code or the
configuration also holds (statuses, workers, imports, run times, a measured gain), the test
reads both, so a change on one side without the other fails here."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from review_sentiment import paths
from review_sentiment.client.refusals import MAX_REQUEST_SIZE, kind_of_answer, kind_of_grpc
from review_sentiment.core.errors import ErrorKind
from review_sentiment.status_codes import GRPC_CODE, HTTP_STATUS

REPO = paths.REPO
DOCS = REPO / "docs"
README = REPO / "README.md"
README_MAX_LINES = 150


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def prose(path: Path) -> str:
    """A page without its fenced code blocks (commands, JSON and YAML are not statements)."""
    return re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)


def tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every Markdown table of `text`: (header cells, rows of cells)."""
    found, lines = [], text.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.startswith("|") and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[i + 1].strip()):
            if i > 0 and lines[i - 1].startswith("|"):
                continue
            rows = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append(cells(row))
            found.append((cells(line), rows))
    return found


def cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


# ---- the README and the site ----


def test_readme_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; detail belongs in docs/"


def test_readme_links_to_every_page_and_each_exists():
    linked = re.findall(r"\]\((docs/[^)#\s]+)", README.read_text())
    assert linked, "README.md links to no docs page"
    for link in linked:
        assert (REPO / link).is_file(), f"README.md links to {link}, which does not exist"
    pages = {p.relative_to(REPO).as_posix() for p in DOCS.glob("*.md")}
    assert pages <= set(linked), f"pages the README does not link to: {sorted(pages - set(linked))}"


def test_every_page_is_in_the_nav():
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    nav = {page for entry in config["nav"] for page in entry.values()}
    for page in nav:
        assert (DOCS / page).is_file(), f"mkdocs.yml's nav names {page}, which does not exist"
    assert nav == {p.name for p in DOCS.glob("*.md")}


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "--site-dir", str(site)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_the_site_builds_in_strict_mode(tmp_path):
    built = mkdocs_build(REPO / "mkdocs.yml", tmp_path / "site")
    assert built.returncode == 0, built.stderr[-3000:]
    # Links to repository files outside docs/ reach the file from the built page.
    page = (tmp_path / "site" / "model.html").read_text()
    card = re.search(r'href="([^"]*MODEL_CARD\.md)"', page).group(1)
    assert (tmp_path / "site" / card).resolve() == REPO / "models" / "review-sentiment" / "MODEL_CARD.md"


@pytest.mark.parametrize(
    ("link", "error"),
    [
        ("[a file](../present.txt)", None),
        ("[a page](other.md)", "not found among documentation files"),
        ("[an anchor](#nowhere)", "no such anchor"),
        ("[a file](../absent.txt)", "missing file absent.txt"),
    ],
)
def test_a_broken_link_fails_the_build(tmp_path, link, error):
    (tmp_path / "docs").mkdir()
    (tmp_path / "present.txt").write_text("here")
    (tmp_path / "docs" / "index.md").write_text(f"# Home\n\nSee {link}.\n")
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    config.update(nav=[{"Home": "index.md"}], hooks=[str(REPO / "mkdocs_hooks.py")])
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    built = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    if error is None:
        assert built.returncode == 0, built.stderr[-3000:]
        assert 'href="../present.txt"' in (tmp_path / "site" / "index.html").read_text()
    else:
        assert built.returncode != 0 and error in built.stderr, built.stderr[-3000:]


# ---- what the pages say against what the code does ----


def error_tables() -> list[tuple[Path, list[str], list[list[str]]]]:
    return [
        (path, header, rows)
        for path in markdown_files()
        for header, rows in tables(path.read_text())
        if header[0] in ("kind", "error") and any("status" in h for h in header)
    ]


def kinds_of(cell: str, path: Path) -> list[ErrorKind]:
    names = re.findall(r"`([A-Za-z][A-Za-z0-9]*)`", cell)
    unknown = [n for n in names if n not in {str(k) for k in ErrorKind}]
    assert not unknown, (
        f"{path.name}: {unknown} in an error table is not an error kind (core/errors.py): name the kind "
        "the clients report (client/refusals.py) and give TorchServe's words beside it"
    )
    return [ErrorKind(n) for n in names]


def test_the_error_tables_are_the_codes_mapping():
    """Every error kind in one row of the error tables, with the HTTP status and gRPC code that
    status_codes.py maps it to; for TorchServe's own refusals, its words in the row, sent with
    that status and that code, are read by the clients as that row's kind (REST by
    kind_of_answer, gRPC by kind_of_grpc)."""
    documented: list[ErrorKind] = []
    for path, header, rows in error_tables():
        for row in rows:
            row_kinds = kinds_of(row[0], path)
            documented += row_kinds
            columns = dict(zip(header, row, strict=True))
            for kind in row_kinds:
                assert int(columns["HTTP status"]) == HTTP_STATUS[kind], (path.name, kind)
                assert columns["gRPC code"].strip("`") == GRPC_CODE[kind], (path.name, kind)
            if "TorchServe's words" in columns:
                said = columns["TorchServe's words"]
                exception = re.search(r"`(\w+Exception)`", said)
                quoted = re.search(r'"(.*)"', said)
                message = quoted.group(1) if quoted else ""
                status, code = HTTP_STATUS[row_kinds[0]], GRPC_CODE[row_kinds[0]]
                body = {"code": status, "type": exception.group(1), "message": message} if exception else message
                sent = MAX_REQUEST_SIZE + 1 if "over `max_request_size`" in columns["when"] else 10
                assert kind_of_answer(status, body) in row_kinds, (path.name, said)
                assert kind_of_grpc(code, message, sent) in row_kinds, (path.name, said)
    assert sorted(documented) == sorted(ErrorKind), (
        f"each error kind in exactly one row; missing {set(ErrorKind) - set(documented)}, "
        f"repeated {[k for k in set(documented) if documented.count(k) > 1]}"
    )


NUMBERS = {"single": 1, "one": 1, "two": 2, "three": 3, "four": 4}


def configured_workers() -> dict[str, int]:
    workers = {}
    for device, name in (("CPU", "model-config.yaml"), ("GPU", "model-config.gpu.yaml")):
        config = yaml.safe_load((paths.CONFIG_DIR / name).read_text())
        assert config["minWorkers"] == config["maxWorkers"], name
        workers[device] = int(config["maxWorkers"])
    return workers


def test_the_pages_state_the_configured_workers():
    workers = configured_workers()
    said = []
    for path in markdown_files():
        text = " ".join(prose(path).split())
        for number, device in re.findall(r"\b(\w+) workers? \(the (CPU|GPU) default", text):
            count = NUMBERS.get(number.lower()) or int(number)
            said.append((path.name, number, device))
            assert count == workers[device], (
                f"{path.name}: {number} worker(s) as the {device} default; the config: {workers}"
            )
        for number in re.findall(r"`minWorkers` = `maxWorkers` = (\d+)", text):
            said.append((path.name, number, "CPU"))
            assert int(number) == workers["CPU"], f"{path.name}: minWorkers = maxWorkers = {number}"
    assert said, "no page states the default workers"


def third_party_imports(package: Path) -> set[str]:
    """Top-level modules imported anywhere in `package` (functions included) outside the
    standard library and the project."""
    found = set()
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in ("review_sentiment", "__future__")}


def module_names(text: str) -> set[str]:
    """The importable, non-standard modules a piece of prose names."""
    words = set(re.findall(r"\b[a-z][a-z0-9_]*\b", text))
    return {w for w in words if w not in sys.stdlib_module_names and importlib.util.find_spec(w) is not None}


def test_the_pages_name_the_cores_imports():
    core = third_party_imports(REPO / "review_sentiment" / "core")
    assert {"torch", "transformers", "onnxruntime"} <= core
    claims = []
    for path in markdown_files():
        text = " ".join(prose(path).split())
        for claim in re.findall(r"(?:imports only|third-party imports:) ([^;)]*)", text):
            claims.append(claim)
            assert module_names(claim) == core, f"{path.name} says the core imports {claim!r}; it imports {core}"
    assert claims, "no page says what the core imports"


def bench_times(text: str, command: str) -> dict[str, int]:
    """{mode: minutes} from lines like `<command> --tune  # ... (~15 min)`; "" is the matrix."""
    pattern = re.escape(command) + r"(?: (?:BENCH_ARGS=)?(--[a-z]+))?\s+#[^\n]*?\(~(\d+) min"
    return {mode: int(minutes) for mode, minutes in re.findall(pattern, text)}


def test_benchmark_run_times_are_the_harness_own():
    harness = bench_times((REPO / "benchmarks" / "benchmark.py").read_text(), "python -m benchmarks.benchmark")
    assert harness.keys() >= {"", "--tune", "--overhead"}
    stated = {}
    for path in [*markdown_files(), REPO / "Makefile"]:
        for mode, minutes in bench_times(path.read_text(), "make bench").items():
            assert minutes == harness[mode], (
                f"{path.name}: {mode or 'the matrix'} ~{minutes} min; benchmark.py: ~{harness[mode]}"
            )
            stated[mode] = minutes
        text = " ".join(path.read_text().split())
        for minutes in re.findall(r"matrix takes about (\d+) minutes", text):
            assert int(minutes) == harness[""], f"{path.name}: the matrix takes about {minutes} minutes"
    assert stated == harness, f"run times stated {stated}; the harness's {harness}"


def gains(rows: dict[str, list[str]], slow: str, fast: str, columns: tuple[int, ...]) -> list[float]:
    """Percent more requests/s of `fast` over `slow`, per column, per round ("a / b" cells)."""
    out = []
    for column in columns:
        for a, b in zip(rows[slow][column].split(" / "), rows[fast][column].split(" / "), strict=True):
            out.append(100 * (float(b.strip("* ")) / float(a.strip("* ")) - 1))
    return out


def test_the_workers_gain_is_the_measured_one():
    """'2 x 1 served N-M% more requests/s than 1 x 2' is the range of the interleaved rounds in
    the benchmark page's table, and the single pass's range is overhead.json's; nowhere else
    (README, other pages, model-config comments) states another range."""
    rounds = next(
        rows
        for path in markdown_files()
        for header, rows in tables(path.read_text())
        if header[0] == "setting" and "rounds 1 / 2" in rows[0][0]
    )
    by_setting = {row[0]: row for row in rounds}
    old = next(s for s in by_setting if s.startswith("1 worker × 2 threads"))
    new = next(s for s in by_setting if "2 workers × 1 thread" in s)
    measured = gains(by_setting, old, new, (2, 3))
    interleaved = (round(min(measured)), round(max(measured)))
    for path in [*markdown_files(), paths.CONFIG_DIR / "model-config.yaml", paths.CONFIG_DIR / "model-config.gpu.yaml"]:
        for low, high in re.findall(r"(\d+)-(\d+)% (?:more|fewer) requests/s", " ".join(path.read_text().split())):
            assert (int(low), int(high)) == interleaved, f"{path.name} states {low}-{high}%; measured {interleaved}"

    text = " ".join((DOCS / "benchmarks.md").read_text().split())
    stated = re.search(r"2 × 1 served (\d+)-(\d+)% more requests/s than 1 × 2", text)
    assert stated, "benchmarks.md no longer states the workers' gain"
    assert tuple(map(int, stated.groups())) == interleaved, f"the rounds measured {interleaved}"
    overhead = json.loads((REPO / "results/benchmarks/2026-12-01-overhead/overhead.json").read_text())
    variants = {v["variant"]: v for v in overhead["variants"]}
    single = [
        100 * (variants["defaults"][cell]["req_per_s"] / variants["1 worker x 2 threads"][cell]["req_per_s"] - 1)
        for cell in ("100_c16", "667_c16")
    ]
    single_pass = re.search(r"(\d+)-(\d+)% in the committed single pass", text)
    assert tuple(map(int, single_pass.groups())) == (round(min(single)), round(max(single)))


def test_the_pages_name_every_step_ci_runs():
    """The README and the Development page say what CI runs: each `make` step of .ci/run, no
    fewer (the README once left out test-peers and the manifests)."""
    steps = re.findall(r"^make (\S+)$", (REPO / ".ci" / "run").read_text(), re.M)
    assert len(steps) >= 4
    for page in ("README.md", "docs/development.md"):
        text = (REPO / page).read_text()
        said = re.search(r"CI \(`\.ci/run`\) runs (.*?)\.\n", text, re.S)
        assert said, f"{page} says nothing of what CI runs"
        missing = [s for s in steps if f"`make {s}`" not in said.group(1)]
        assert not missing, f"{page} leaves out {missing}"
