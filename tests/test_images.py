"""The container images and the compose file, built and run for real with podman-compose:
`podman-compose build` builds both images from the compose file's `build:` sections, `up -d`
starts the CPU stack (docker-compose.yml + docker-compose.cpu.yml); TorchServe's container passes
the compose file's own healthcheck with token auth on and answers REST, gRPC and explanations;
the UI's container signs a user in and classifies a review in headless Chromium; `down -v` leaves
no container, pod or volume behind.

`make test-images` prepares what this needs (podman, a Debian-made stand-in for the Python base
image, the wheelhouse) and runs it; the build uses only the wheelhouse, no index. What only these
machines need (host networking, free ports, the stand-in base, podman 4.3's limits) is in the
test-only override tests/compose.podman.yml, not in the user's files.
Figures (sizes, build and start times, memory) go to tests/output/images.json.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import requests

from review_sentiment.client.grpc_client import GrpcClient
from review_sentiment.client.rest import TorchServeClient
from review_sentiment.endpoints import Endpoints
from review_sentiment.paths import REPO
from review_sentiment.waiting import wait_until
from tests.browser import LABEL, Page, classify, expect, label_of, sign_in

pytestmark = pytest.mark.images

PODMAN = REPO / "deploy" / "podman" / "podman.sh"
BASE = "localhost/python-standin:3.11-bookworm"
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.cpu.yml", "tests/compose.podman.yml")
# The images the compose file names, by service (podman stores them under localhost/).
IMAGES = {"torchserve": "localhost/review-sentiment/torchserve:cpu", "ui": "localhost/review-sentiment/ui:latest"}
PROJECT_LABEL = "io.podman.compose.project"
USER, PASSWORD = "operator", f"throwaway-{uuid.uuid4().hex}"
FIGURES = Path(__file__).parent / "output" / "images.json"
START_TIMEOUT_S = 300


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([str(PODMAN), *args], capture_output=True, text=True, timeout=timeout, check=check)


@dataclass(frozen=True)
class Project:
    """One compose project: podman-compose on the three files, with the test's ports and users."""

    name: str
    environment: dict[str, str]

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        files = [option for path in COMPOSE_FILES for option in ("-f", path)]
        command = [sys.executable, "-m", "podman_compose", "--podman-path", str(PODMAN), *files, "-p", self.name]
        # chroot isolation for the build's RUN steps: runc's own needs what these machines lack.
        env = {**os.environ, **self.environment, "BUILDAH_ISOLATION": "chroot"}
        result = subprocess.run([*command, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0 or not check, f"podman-compose {' '.join(args)} failed:\n{tail(result)}"
        return result

    def container(self, service: str) -> str:
        found = podman("ps", "-a", "--filter", f"label={PROJECT_LABEL}={self.name}",
                       "--filter", f"label=io.podman.compose.service={service}", "--format", "{{.Names}}")  # fmt: skip
        return found.stdout.split()[0]

    def healthy(self, service: str) -> bool:
        """The compose file's healthcheck, run now: podman's own timer needs systemd."""
        return podman("healthcheck", "run", self.container(service), check=False, timeout=60).returncode == 0

    def logs(self, service: str) -> str:
        """For failure messages: the service's container output, or what podman-compose made of it."""
        try:
            return tail(podman("logs", self.container(service), check=False))
        except IndexError:
            return f"no container for {service}:\n{tail(self.compose('ps', check=False))}"

    def leftovers(self) -> dict[str, list[str]]:
        label = f"label={PROJECT_LABEL}={self.name}"
        return {
            "containers": podman("ps", "-a", "--filter", label, "--format", "{{.Names}}").stdout.split(),
            "volumes": podman("volume", "ls", "--filter", label, "--format", "{{.Name}}").stdout.split(),
            "pods": podman("pod", "ps", "--filter", f"name={self.name}", "--format", "{{.Name}}").stdout.split(),
        }


def tail(result: subprocess.CompletedProcess) -> str:
    return result.stdout[-3000:] + result.stderr[-3000:]


def image_size_mb(image: str) -> float:
    return round(int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout) / 2**20, 1)


def container_rss_mb(name: str) -> float:
    """Resident memory of the container's processes (its PID 1 and all below it)."""
    pid = int(podman("inspect", "--format", "{{.State.Pid}}", name).stdout)
    root = psutil.Process(pid)
    return round(sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20, 1)


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).ok
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def figures() -> Iterator[dict]:
    found: dict = {}
    yield found
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(found, indent=2))


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    """A unique project name, free loopback ports and a throwaway users file (the `ui_users` secret)."""
    if not PODMAN.exists() or subprocess.run(["which", "podman"], capture_output=True).returncode:
        pytest.fail("podman is missing: `make test-images` installs it (Debian packages podman, runc, mmdebstrap)")
    if importlib.util.find_spec("podman_compose") is None:
        pytest.fail("podman-compose is missing from the venv: `make install` installs it (requirements.txt)")
    users = tmp_path_factory.mktemp("secrets") / "ui_users"
    users.write_text(f"{USER}:{PASSWORD}\n")
    users.chmod(0o644)  # read by uid 10001 through the secret's bind mount; the folder stays private
    ports = {f"TEST_{name.upper()}_PORT": str(port) for name, port in Endpoints.free().ports().items()}
    ports["TEST_UI_PORT"] = str(Endpoints.free().inference_port)
    return Project(f"rs-test-{uuid.uuid4().hex[:8]}", {**ports, "SENTIMENT_UI_USERS_FILE": str(users)})


@pytest.fixture(scope="module")
def images(project: Project, figures: dict) -> dict[str, str]:
    """Both images built by `podman-compose build` on the stand-in base, from the wheelhouse only."""
    if podman("image", "exists", BASE, check=False).returncode:
        pytest.fail(f"no base image {BASE}: `make test-images` makes it (deploy/podman/standin-base.sh)")
    if not list((REPO / "wheelhouse").glob("torch-*.whl")):
        pytest.fail("the wheelhouse is empty: `make wheelhouse` fills it")
    figures["build_s"] = {}
    for service, image in IMAGES.items():  # one at a time: each build's time is its own
        start = time.monotonic()
        project.compose("build", service, timeout=3600)
        figures["build_s"][service] = round(time.monotonic() - start, 1)
        figures.setdefault("size_mb", {})[service] = image_size_mb(image)
    return IMAGES


@pytest.fixture(scope="module")
def stack(project: Project, images: dict[str, str], figures: dict) -> Iterator[dict]:
    """The CPU stack, up: TorchServe healthy by its compose healthcheck, the UI's page answering.
    `down -v` afterwards, whatever happened."""
    try:
        start = time.monotonic()
        project.compose("up", "-d")
        url = f"http://127.0.0.1:{project.environment['TEST_UI_PORT']}/"
        assert wait_until(lambda: answers(url), 120, interval_s=1), project.logs("ui")
        figures["start_to_first_answer_s"] = {"ui_page": round(time.monotonic() - start, 1)}
        healthy = wait_until(lambda: project.healthy("torchserve"), START_TIMEOUT_S, interval_s=2)
        assert healthy, f"TorchServe's container never became healthy:\n{project.logs('torchserve')}"
        run_dir = Path(podman("volume", "inspect", f"{project.name}_run", "--format", "{{.Mountpoint}}").stdout.strip())
        client = TorchServeClient.for_run_dir(run_dir)
        client.predict("Works as described.")
        figures["start_to_first_answer_s"]["torchserve"] = round(time.monotonic() - start, 1)
        yield {"run_dir": run_dir, "client": client, "ui_url": url}
    finally:
        project.compose("down", "-v", timeout=300, check=False)


def test_torchserve_answers_rest_grpc_and_explanations_with_auth_on(stack):
    client: TorchServeClient = stack["client"]
    keys = json.loads((stack["run_dir"] / "key_file.json").read_text())
    assert keys["inference"]["key"], "token auth is on: the container wrote its keys"
    unauthorized = requests.post(f"{client.endpoints.inference_url}/predictions/sentiment", data=b"Great", timeout=30)
    assert unauthorized.status_code in (400, 401) and "token" in unauthorized.text.lower()
    answer = client.predict("Broke after two days and the seller never answered.")
    assert answer["label"] == "negative" and 0.5 < answer["score"] <= 1
    with GrpcClient.for_run_dir(stack["run_dir"]) as grpc_client:
        assert grpc_client.predict("Absolutely love it, the colour is perfect.")["label"] == "positive"
    explanation = client.explain("The pump broke after a week.")
    assert explanation["label"] == "negative" and explanation["attributions"]


def test_ui_container_signs_in_and_classifies_in_chromium(project: Project, stack, page: Page):
    assert wait_until(lambda: project.healthy("ui"), 60, interval_s=2), project.logs("ui")
    sign_in(page, stack["ui_url"], USER, PASSWORD)
    expect(page.locator("#server-state")).to_contain_text("2 of 2 workers ready")
    classify(page, "Total waste of money, it stopped working in a week.")
    expect(label_of(page)).to_have_text(LABEL)
    expect(label_of(page)).to_contain_text("negative")


def test_stopping_the_stack_leaves_nothing_behind(project: Project, stack, figures: dict):
    """Runs last in this module: `down -v` (also the fixture's teardown) removes the containers,
    the pod and the `run` volume with its keys."""
    figures["rss_mb"] = {service: container_rss_mb(project.container(service)) for service in IMAGES}
    assert project.leftovers()["volumes"] == [f"{project.name}_run"]
    start = time.monotonic()
    project.compose("down", "-v")
    figures["down_s"] = round(time.monotonic() - start, 1)
    assert project.leftovers() == {"containers": [], "volumes": [], "pods": []}
