"""The container images, built from the Dockerfile and run for real with podman (deploy/podman/):
TorchServe's CPU image passes its READY health check with token auth on and answers REST, gRPC
and explanations on its ports; the UI image reaches it through the shared run folder and
classifies a review in headless Chromium; removing the containers leaves nothing behind.

`make test-images` prepares what this needs (podman, a Debian-made stand-in for the Python base
image, the wheelhouse) and runs it; the build uses only the wheelhouse, no index. Host networking
(`--network host`) is test-only: podman's bridge needs privileges these machines do not grant.
Figures (sizes, build and start times, memory) go to tests/output/images.json.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path

import psutil
import pytest
import requests

from review_sentiment.client.grpc_client import GrpcClient
from review_sentiment.client.rest import TorchServeClient
from review_sentiment.endpoints import Endpoints
from review_sentiment.paths import REPO
from review_sentiment.waiting import wait_until
from tests.browser import LABEL, Page, classify, expect, label_of, open_page

pytestmark = pytest.mark.images

PODMAN = REPO / "deploy" / "podman" / "podman.sh"
BASE = "localhost/python-standin:3.11-bookworm"
IMAGES = {"torchserve": "localhost/review-sentiment/torchserve:cpu", "ui": "localhost/review-sentiment/ui:latest"}
TEST_LABEL = "review-sentiment.test"
FIGURES = Path(__file__).parent / "output" / "images.json"
START_TIMEOUT_S = 300


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([str(PODMAN), *args], capture_output=True, text=True, timeout=timeout, check=check)


def image_size_mb(image: str) -> float:
    return round(int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout) / 2**20, 1)


def container_rss_mb(name: str) -> float:
    """Resident memory of the container's processes (its PID 1 and all below it)."""
    pid = int(podman("inspect", "--format", "{{.State.Pid}}", name).stdout)
    root = psutil.Process(pid)
    return round(sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20, 1)


@pytest.fixture(scope="module")
def figures() -> Iterator[dict]:
    found: dict = {}
    yield found
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(found, indent=2))


@pytest.fixture(scope="module")
def images(figures: dict) -> dict[str, str]:
    """Both images built from the Dockerfile on the stand-in base, from the wheelhouse only."""
    if not PODMAN.exists() or subprocess.run(["which", "podman"], capture_output=True).returncode:
        pytest.fail("podman is missing: `make test-images` installs it (Debian packages podman, runc, mmdebstrap)")
    if podman("image", "exists", BASE, check=False).returncode:
        pytest.fail(f"no base image {BASE}: `make test-images` makes it (deploy/podman/standin-base.sh)")
    if not list((REPO / "wheelhouse").glob("torch-*.whl")):
        pytest.fail("the wheelhouse is empty: `make wheelhouse` fills it")
    figures["build_s"] = {}
    for target, tag in IMAGES.items():
        start = time.monotonic()
        build = podman(
            "build", "--isolation", "chroot", "--target", target, "-t", tag,
            "--build-arg", f"PYTHON_IMAGE={BASE}", str(REPO), timeout=3600, check=False,
        )  # fmt: skip
        assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
        figures["build_s"][target] = round(time.monotonic() - start, 1)
        figures.setdefault("size_mb", {})[target] = image_size_mb(tag)
    return IMAGES


def run_container(image: str, name: str, env: dict[str, str], volume: str) -> None:
    options = ["--network", "host", "--read-only", "--tmpfs", "/tmp", "--label", TEST_LABEL, "-v", volume]
    environment = [f"--env={key}={value}" for key, value in env.items()]
    podman("run", "-d", "--name", name, *options, *environment, image)


@pytest.fixture(scope="module")
def stack(images: dict[str, str], figures: dict, tmp_path_factory) -> Iterator[dict]:
    """TorchServe's container, then the UI's, sharing one run folder (the compose file's volume)."""
    run_dir = tmp_path_factory.mktemp("run-volume")
    run_dir.chmod(0o777)  # the containers run as uid 10001
    endpoints = replace(Endpoints.free(), host="127.0.0.1")
    names = {"torchserve": f"rs-test-torchserve-{uuid.uuid4().hex[:8]}", "ui": f"rs-test-ui-{uuid.uuid4().hex[:8]}"}
    ports = {f"SENTIMENT_{k.upper()}": str(v) for k, v in asdict(endpoints).items() if k.endswith("_port")}
    try:
        start = time.monotonic()
        # Loopback only: with host networking the container's 0.0.0.0 would be every interface.
        run_container(images["torchserve"], names["torchserve"], {"SENTIMENT_BIND": "127.0.0.1", **ports},
                      f"{run_dir}:/run/sentiment")  # fmt: skip
        healthy = wait_until(
            lambda: podman("exec", names["torchserve"], "python", "-m", "review_sentiment.serve.healthcheck",
                           check=False, timeout=60).returncode == 0,
            START_TIMEOUT_S, interval_s=2,
        )  # fmt: skip
        logs = podman("logs", names["torchserve"], check=False)
        assert healthy, f"TorchServe's container never became healthy:\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}"
        client = TorchServeClient.for_run_dir(run_dir)
        client.predict("Works as described.")
        figures["start_to_first_answer_s"] = {"torchserve": round(time.monotonic() - start, 1)}

        ui_port = Endpoints.free().inference_port
        start = time.monotonic()
        run_container(images["ui"], names["ui"], {"SENTIMENT_UI_HOST": "127.0.0.1", "SENTIMENT_UI_PORT": str(ui_port)},
                      f"{run_dir}:/run/sentiment:ro")  # fmt: skip
        url = f"http://127.0.0.1:{ui_port}/"
        assert wait_until(lambda: _answers(url), 120, interval_s=1), podman("logs", names["ui"], check=False).stderr
        figures["start_to_first_answer_s"]["ui_page"] = round(time.monotonic() - start, 1)
        yield {"run_dir": run_dir, "client": client, "ui_url": url, "names": names, "endpoints": endpoints}
        figures["rss_mb"] = {target: container_rss_mb(name) for target, name in names.items()}
    finally:
        podman("rm", "-f", "-t", "30", *names.values(), check=False, timeout=120)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).ok
    except requests.RequestException:
        return False


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


def test_ui_container_classifies_a_review_in_chromium(stack, page: Page):
    open_page(page, stack["ui_url"])
    expect(page.locator("#server-state")).to_contain_text("1 of 1 workers ready")
    classify(page, "Total waste of money, it stopped working in a week.")
    expect(label_of(page)).to_have_text(LABEL)
    expect(label_of(page)).to_contain_text("negative")


def test_removing_the_stack_leaves_nothing_behind(stack):
    """Runs last in this module: the fixture's teardown removes the containers; here the same
    command is checked by hand on a throwaway container of the UI image."""
    name = f"rs-test-throwaway-{uuid.uuid4().hex[:8]}"
    volumes_before = podman("volume", "ls", "--format", "{{.Name}}").stdout.split()
    run_container(IMAGES["ui"], name, {"SENTIMENT_UI_PORT": str(Endpoints.free().inference_port)},
                  f"{stack['run_dir']}:/run/sentiment:ro")  # fmt: skip
    podman("rm", "-f", "-t", "10", name)
    left = podman("ps", "-a", "--filter", f"name={name}", "--format", "{{.Names}}").stdout.split()
    volumes = podman("volume", "ls", "--format", "{{.Name}}").stdout.split()
    assert left == [] and volumes == volumes_before
