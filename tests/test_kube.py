"""The Kubernetes manifests run as pods: `podman kube play` on the rendered CPU overlay
(`kubectl kustomize deploy/k8s/overlays/cpu`), with the images `make test-images` builds.

What runs here, as the manifests define it: both Deployments' pods (TorchServe after its init
container has packed the .mar from the ConfigMap's model-config, and the UI), the generated
ConfigMap mounted at /app/config, and the UI users Secret made the way deploy/k8s/base/ui.yaml
tells operators to (`kubectl create secret generic sentiment-ui-users --from-file=users=...`),
which podman keeps as a secret and mounts as the Secret volume. The probes run as the kubelet
would run them (exec in the container, HTTP GET on the port); REST, gRPC, /explanations and the
UI (sign-in in Chromium) answer through the pods' ports; `podman kube down` leaves nothing.

What needs a real cluster: the Services and their DNS names, the NetworkPolicy, the
HorizontalPodAutoscaler and rolling updates (docs/deployment.md). Test-only changes, as
tests/compose.podman.yml makes them for compose: the host's network with free ports (podman's
bridge network needs privileges these machines lack, so no container ports are published),
images never pulled (they are local), restartPolicy OnFailure (podman 4.3 restarts a finished
init container under Always), and the UI pointed at TorchServe's inference ports on loopback
with no management port, as the Service offers it.
"""

from __future__ import annotations

import base64
import copy
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from review_sentiment.client.grpc_client import GrpcClient
from review_sentiment.client.rest import TorchServeClient
from review_sentiment.endpoints import Endpoints
from review_sentiment.paths import REPO
from review_sentiment.waiting import wait_until
from tests.browser import LABEL, Page, classify, expect, label_of, sign_in
from tests.containers import PASSWORD, USER, answers, container_rss_mb, podman, tail

pytestmark = pytest.mark.images

OVERLAY = REPO / "deploy" / "k8s" / "overlays" / "cpu"
SECRET = "sentiment-ui-users"  # the Secret deploy/k8s/base/ui.yaml mounts
READY_TIMEOUT_S = 420  # the init container packs the .mar, then the model loads, on 2 busy cores
# What podman does not run (a cluster's), said rather than silently dropped.
CLUSTER_ONLY = {"Namespace", "Service", "NetworkPolicy", "HorizontalPodAutoscaler"}


def kubectl(*args: str, timeout: float = 120) -> str:
    result = subprocess.run(["kubectl", *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result.stdout


def rendered() -> list[dict]:
    if subprocess.run(["which", "kubectl"], capture_output=True).returncode:
        pytest.fail("kubectl (with its built-in kustomize) renders the manifests: install it")
    return [doc for doc in yaml.safe_load_all(kubectl("kustomize", str(OVERLAY))) if doc]


def by_kind(docs: list[dict], kind: str, name: str) -> dict:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name))


def set_env(container: dict, **values: str) -> None:
    env = [e for e in container.get("env", []) if e["name"] not in values]
    container["env"] = env + [{"name": k, "value": v} for k, v in values.items()]


@dataclass(frozen=True)
class Ports:
    torchserve: Endpoints  # where TorchServe's pod listens, on the host's loopback
    ui: int
    closed: int  # a port nothing listens on: the management API the Service does not offer


def for_podman(docs: list[dict], ports: Ports) -> list[dict]:
    """The test-only changes of the module's docstring; everything else as rendered."""
    out = []
    for doc in copy.deepcopy(docs):
        if doc["kind"] in CLUSTER_ONLY:
            continue
        if doc["kind"] == "Deployment":
            pod = doc["spec"]["template"]["spec"]
            pod["hostNetwork"] = True
            # podman 4.3 restarts a finished init container under "Always", and never starts the rest.
            pod["restartPolicy"] = "OnFailure"
            for container in pod.get("initContainers", []) + pod["containers"]:
                container["imagePullPolicy"] = "Never"
                container.pop("ports", None)  # podman publishes them, which the host's network refuses
            (container,) = pod["containers"]
            if doc["metadata"]["name"] == "sentiment-torchserve":
                listen = {
                    f"SENTIMENT_{name.upper()}_PORT": str(port) for name, port in ports.torchserve.ports().items()
                }
                set_env(container, SENTIMENT_BIND="127.0.0.1", **listen)
            else:
                set_env(
                    container,
                    SENTIMENT_HOST="127.0.0.1",
                    SENTIMENT_UI_HOST="127.0.0.1",
                    SENTIMENT_UI_PORT=str(ports.ui),
                    SENTIMENT_INFERENCE_PORT=str(ports.torchserve.inference_port),
                    SENTIMENT_GRPC_INFERENCE_PORT=str(ports.torchserve.grpc_inference_port),
                    SENTIMENT_MANAGEMENT_PORT=str(ports.closed),
                )
        out.append(doc)
    return out


def podman_secret(users: Path) -> dict:
    """The Secret deploy/k8s/base/ui.yaml tells operators to create, made by that very command,
    as podman 4.3 reads it: it writes a Secret's `data` into the volume without base64-decoding
    it (and encodes `stringData`), so the values go in decoded."""
    secret = yaml.safe_load(kubectl("create", "secret", "generic", SECRET, f"--from-file=users={users}",
                                    "--dry-run=client", "-o", "yaml"))  # fmt: skip
    secret["data"] = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    return secret


@dataclass
class Pods:
    yaml_file: Path
    ports: Ports
    docs: list[dict]
    started: float
    ready_after_s: float = 0.0
    probe_said: tuple[str, ...] = ()

    def container(self, deployment: str, name: str) -> str:
        """The running container of one of the Deployment's containers (podman names it
        <pod>-<container>; the pod is named after the Deployment)."""
        found = podman("ps", "--filter", f"name={deployment}", "--format", "{{.Names}}").stdout.split()
        return next(c for c in found if c.endswith(f"-{name}"))

    def exec(self, deployment: str, name: str, *command: str) -> subprocess.CompletedProcess:
        return podman("exec", self.container(deployment, name), *command, check=False, timeout=60)

    def probe(self, deployment: str, kind: str) -> subprocess.CompletedProcess:
        """An exec probe of the rendered manifest, run in its container as the kubelet runs it."""
        spec = by_kind(self.docs, "Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]
        return self.exec(deployment, spec["name"], *spec[kind]["exec"]["command"])

    def logs(self) -> str:
        return tail(podman("pod", "logs", "--tail", "60", "sentiment-torchserve-pod-0", check=False))


def leftovers() -> dict[str, list[str]]:
    def names(*args: str) -> list[str]:
        return sorted(n for n in podman(*args).stdout.split() if n.startswith("sentiment-"))

    return {
        "pods": names("pod", "ps", "--format", "{{.Name}}"),
        "containers": names("ps", "-a", "--format", "{{.Names}}"),
        "volumes": names("volume", "ls", "--format", "{{.Name}}"),
        "secrets": names("secret", "ls", "--format", "{{.Name}}"),
    }


NOTHING = {"pods": [], "containers": [], "volumes": [], "secrets": []}


def remove_volumes_of(docs: list[dict]) -> list[str]:
    """The named volumes podman 4.3's kube play makes of the ConfigMap and the Secret and its
    kube down keeps (podman 4.4's `kube down --force` removes them): removed, and named."""
    names = [d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"] + [SECRET]
    return [name for name in names if podman("volume", "rm", name, check=False).returncode == 0]


@pytest.fixture(scope="module")
def kube_figures(image_figures: dict) -> dict:
    return image_figures.setdefault("kube_play", {})


@pytest.fixture(scope="module")
def pods(images, tmp_path_factory, kube_figures: dict) -> Iterator[Pods]:
    """The CPU overlay played, TorchServe's pod READY by its own readiness probe; down afterwards."""
    folder = tmp_path_factory.mktemp("kube")
    assert leftovers() == NOTHING, "a previous run left pods behind"
    (folder / "ui_users").write_text(f"{USER}:{PASSWORD}\n")
    (folder / "secret.yaml").write_text(yaml.safe_dump(podman_secret(folder / "ui_users")))
    podman("secret", "create", SECRET, str(folder / "secret.yaml"))
    ports = Ports(Endpoints.free(), Endpoints.free().inference_port, Endpoints.free().management_port)
    docs = rendered()
    played = folder / "cpu-overlay.podman.yaml"
    played.write_text(yaml.safe_dump_all(for_podman(docs, ports)))
    pods = Pods(played, ports, docs, time.monotonic())
    try:
        result = podman("kube", "play", str(played), timeout=600, check=False)
        assert result.returncode == 0, tail(result)
        said: list[str] = []

        def ready() -> bool:
            try:
                probe = pods.probe("sentiment-torchserve", "readinessProbe")
            except StopIteration:  # the init container still runs: no torchserve container yet
                return False
            said.append(probe.stdout.strip() or probe.stderr.strip())
            return probe.returncode == 0

        assert wait_until(ready, READY_TIMEOUT_S, interval_s=2), f"never READY: {said[-3:]}\n{pods.logs()}"
        pods.ready_after_s, pods.probe_said = time.monotonic() - pods.started, tuple(said)
        kube_figures["play_to_ready_s"] = round(pods.ready_after_s, 1)
        yield pods
    finally:
        podman("kube", "down", str(played), timeout=300, check=False)
        podman("secret", "rm", SECRET, check=False)
        remove_volumes_of(docs)


def test_probes_gate_and_pass(pods: Pods):
    """Readiness passed once a worker was READY. With no READY worker (scaled to 0 here, as when
    every worker is loading or restarting) it fails while liveness still passes: Kubernetes takes
    the pod out of the Service without restarting it, which is what gates a rolling update's new
    pods too. The UI answers its HTTP probe."""
    assert pods.probe_said[-1].startswith("healthy"), pods.probe_said
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert pods.probe("sentiment-torchserve", kind).returncode == 0, kind
    config = yaml.safe_load(by_kind(pods.docs, "ConfigMap", "sentiment-config")["data"]["model-config.yaml"])
    scale = ("python", "-m", "review_sentiment", "scale")
    # TorchServe 0.12 may answer a synchronous scale to 0 with a 500 once the workers are gone.
    pods.exec("sentiment-torchserve", "torchserve", *scale, "0")
    try:
        said: list[str] = []

        def unready() -> bool:
            readiness = pods.probe("sentiment-torchserve", "readinessProbe")
            said.append(readiness.stdout.strip())
            return readiness.returncode == 1 and "0 READY worker" in readiness.stdout

        assert wait_until(unready, 60), said[-3:]
        assert pods.probe("sentiment-torchserve", "livenessProbe").returncode == 0
    finally:
        pods.exec("sentiment-torchserve", "torchserve", *scale, str(config["minWorkers"]))
    ready = wait_until(lambda: pods.probe("sentiment-torchserve", "readinessProbe").returncode == 0, 180)
    assert ready, pods.logs()
    ui = f"http://127.0.0.1:{pods.ports.ui}/"
    assert wait_until(lambda: answers(ui), 120, interval_s=1), tail(podman("pod", "logs", "sentiment-ui-pod-0"))


def test_the_pods_get_the_manifests_config_and_secret(pods: Pods):
    config = by_kind(pods.docs, "ConfigMap", "sentiment-config")["data"]
    for key, value in config.items():
        mounted = pods.exec("sentiment-torchserve", "torchserve", "cat", f"/app/config/{key}")
        assert mounted.stdout == value, key
    users = pods.exec("sentiment-ui", "ui", "cat", "/run/secrets/ui/users")
    assert users.stdout == f"{USER}:{PASSWORD}\n"
    # The init container packed the ConfigMap's model-config into the .mar the server loaded.
    described = TorchServeClient(pods.ports.torchserve, pods.yaml_file.parent / "no-key-file.json").describe()[0]
    assert described["batchSize"] == yaml.safe_load(config["model-config.yaml"])["batchSize"]


def test_rest_grpc_and_explanations_through_the_pods_port(pods: Pods, kube_figures: dict):
    release = (REPO / "models" / "review-sentiment" / "RELEASE").read_text().strip()
    no_keys = pods.yaml_file.parent / "no-key-file.json"  # token auth is off in the pods
    client = TorchServeClient(pods.ports.torchserve, no_keys)
    answer = client.predict("Broke after two days and the seller never answered.")
    assert answer["label"] == "negative" and (answer["model"], answer["model_version"]) == ("sentiment", release)
    with GrpcClient(pods.ports.torchserve, no_keys) as grpc_client:
        assert grpc_client.predict("Absolutely love it, the colour is perfect.")["label"] == "positive"
    explanation = client.explain("The pump broke after a week.")
    assert explanation["label"] == "negative" and explanation["attributions"]
    kube_figures["rss_mb"] = {
        name: container_rss_mb(pods.container(f"sentiment-{name}", name)) for name in ("torchserve", "ui")
    }


def test_ui_pod_signs_in_and_classifies_in_chromium(pods: Pods, page: Page):
    url = f"http://127.0.0.1:{pods.ports.ui}/"
    assert wait_until(lambda: answers(url), 120, interval_s=1)
    sign_in(page, url, USER, PASSWORD)
    # No management API through the Service: the state comes from /ping.
    expect(page.locator("#server-state")).to_contain_text("says Healthy")
    classify(page, "Total waste of money, it stopped working in a week.")
    expect(label_of(page)).to_have_text(LABEL)
    expect(label_of(page)).to_contain_text("negative")
    expect(page.locator("#timing")).to_contain_text("by model sentiment version")


def test_kube_down_leaves_nothing_behind(pods: Pods, kube_figures: dict):
    """Runs last: `podman kube down` removes the pods and their containers; what podman 4.3
    keeps (the volumes of the ConfigMap and the Secret) and the test's secret go next (the
    fixture's teardown repeats all of it, harmlessly)."""
    start = time.monotonic()
    result = podman("kube", "down", str(pods.yaml_file), timeout=300, check=False)
    assert result.returncode == 0, tail(result)
    kube_figures["down_s"] = round(time.monotonic() - start, 1)
    after_down = leftovers()
    assert after_down["pods"] == [] and after_down["containers"] == []
    assert sorted(remove_volumes_of(pods.docs)) == after_down["volumes"]
    podman("secret", "rm", SECRET)
    assert leftovers() == NOTHING
