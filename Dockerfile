# syntax=docker/dockerfile:1
# Two images from one file, both running as an unprivileged user, without compilers or pip caches:
#   torchserve  TorchServe 0.12 + JRE 17 + the .mar built here (CPU torch by default; GPU with the
#               build args TORCH_INDEX_URL=https://pypi.org/simple and MODEL_CONFIG=config/model-config.gpu.yaml)
#   ui          the Gradio page only (no torch, no Java)
# docker-compose.yml builds both (`make images`); the Kubernetes manifests in deploy/k8s run them.
# Layers go from the least to the most often changed: system packages, Python packages (from
# requirements.txt only), then the code and the model.

# Debian 12 pins the release that still ships openjdk-17.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS python-base
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# ---- build stages: one virtualenv per image; versions come from requirements.txt (as constraints) ----
FROM python-base AS serve-deps
# PyPI's Linux torch is the multi-GB CUDA build: the CPU image takes PyTorch's CPU wheel instead.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
COPY requirements.txt /tmp/requirements.txt
# Air-gapped: with wheels in ./wheelhouse (`make wheelhouse` on a connected machine) pip reads
# only those and no index; with the folder empty (as in git) it uses the indexes.
RUN --mount=type=cache,target=/root/.cache/pip --mount=type=bind,source=wheelhouse,target=/wheelhouse \
    python -m venv /opt/venv \
    && if ls /wheelhouse/*.whl >/dev/null 2>&1; then export PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheelhouse; fi \
    && /opt/venv/bin/pip install --index-url "$TORCH_INDEX_URL" -c /tmp/requirements.txt torch \
    && /opt/venv/bin/pip install -c /tmp/requirements.txt \
        transformers safetensors torchserve torch-model-archiver psutil pyyaml requests numpy onnxruntime onnx

FROM python-base AS ui-deps
COPY requirements.txt /tmp/requirements.txt
RUN --mount=type=cache,target=/root/.cache/pip --mount=type=bind,source=wheelhouse,target=/wheelhouse \
    python -m venv /opt/venv \
    && if ls /wheelhouse/*.whl >/dev/null 2>&1; then export PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheelhouse; fi \
    && /opt/venv/bin/pip install -c /tmp/requirements.txt gradio requests

# ---- what both images share: the user, the paths, offline settings ----
FROM python-base AS runtime-base
# One fixed uid/gid in both images: the UI reads the key file TorchServe writes (mode 600).
RUN groupadd --system --gid 10001 sentiment \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp sentiment \
    && install -d -o 10001 -g 10001 /run/sentiment
WORKDIR /app
# HOME=/tmp: the root filesystem may be read-only (Kubernetes, compose's read_only); /tmp is not.
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    SENTIMENT_RUN_DIR=/run/sentiment

FROM runtime-base AS ui
COPY --from=ui-deps /opt/venv /opt/venv
# The whole package (a few hundred KB): the UI imports only its clients, and a test checks that they
# import without the packages this image leaves out (torch, transformers, TorchServe, gRPC).
COPY review_sentiment/ review_sentiment/
COPY ui/ ui/
USER 10001:10001
ENV SENTIMENT_UI_HOST=0.0.0.0 SENTIMENT_UI_PORT=7860
EXPOSE 7860
CMD ["python", "-m", "ui.app"]

FROM runtime-base AS torchserve
# tini as PID 1 reaps TorchServe's worker processes and forwards SIGTERM to the launcher, which
# stops TorchServe cleanly. The man1 folder is missing on slim images and openjdk's postinst needs it.
# hadolint ignore=DL3008
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless tini \
    && rm -rf /var/lib/apt/lists/*
COPY --from=serve-deps /opt/venv /opt/venv
COPY review_sentiment/ review_sentiment/
COPY handler/ handler/
COPY config/ config/
COPY models/review-sentiment/config.json models/review-sentiment/model.safetensors \
     models/review-sentiment/tokenizer.json models/review-sentiment/tokenizer_config.json \
     models/review-sentiment/RELEASE models/review-sentiment/
# The archive is built here, so the image serves as it is; Kubernetes rebuilds it at pod start from
# the model-config of its ConfigMap (an init container running the same command).
ARG MODEL_CONFIG=config/model-config.yaml
RUN python -m review_sentiment.serve.archive --model-config "$MODEL_CONFIG"
USER 10001:10001
# Inside a container TorchServe listens on every interface; which ports reach the host or the
# cluster is decided by docker-compose.yml and the Kubernetes Service and NetworkPolicy.
# NVIDIA_DRIVER_CAPABILITIES: `utility` brings nvidia-smi, which TorchServe runs to count GPUs.
ENV SENTIMENT_BIND=0.0.0.0 NVIDIA_DRIVER_CAPABILITIES=compute,utility
EXPOSE 8080 8081 8082 7070 7071
ENTRYPOINT ["tini", "--"]
CMD ["python", "-m", "review_sentiment.serve.server", "start", "--wait"]
