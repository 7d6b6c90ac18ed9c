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
The images are built once a session (tests/containers.py, shared with tests/test_kube.py).
Figures (sizes, build and start times, memory) go to tests/output/images.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from review_sentiment.client.grpc_client import GrpcClient
from review_sentiment.client.rest import TorchServeClient
from review_sentiment.waiting import wait_until
from tests.browser import LABEL, Page, classify, expect, label_of, sign_in
from tests.containers import IMAGES, PASSWORD, USER, Project, answers, container_rss_mb, new_project, podman

pytestmark = pytest.mark.images

START_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def figures(image_figures: dict) -> dict:
    return image_figures


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    return new_project(tmp_path_factory.mktemp("secrets"))


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
