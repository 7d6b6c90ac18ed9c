#!/usr/bin/env bash
# Run ON THE GPU MACHINE, as the last device call after benchmarks/gpu/stage.sh staged every part
# of `fetch_wheels.sh --peers` (TorchServe's wheels and the peers'): the same `--peers` run as
# `make bench-peers`, with config/model-config.gpu.yaml (fp16 on cuda:0, batchSize 64): TorchServe,
# Triton (PyTriton), LitServe, BentoML and Ray Serve, each with its workers on the one GPU, REST
# through the Python load driver over 8 client processes (no wrk there), no gRPC (no grpcio-tools
# for TorchServe's stubs). One round and short cells to fit the device budget. Figures to $OUT.
set -euo pipefail
cd "$(dirname "$0")/../.."
START=$(date +%s)
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
(cd .whl/parts && cat wheels.tar.part-* | sha256sum | sed 's/-$/wheels.tar/' | diff - SHA256SUMS) \
  || { echo "wheel parts missing or damaged: $(ls .whl/parts)"; exit 1; }
rm -rf /tmp/wheels && mkdir -p /tmp/wheels
cat .whl/parts/wheels.tar.part-* | tar -xf - -C /tmp/wheels

# Two venvs over the image's Python (its CUDA torch and transformers through a .pth): the
# harness's with TorchServe, and .venv-peers (where the harness looks for the peers) with the rest.
BASE_SITE=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
layer() {
  rm -rf "$1" && python3 -m venv --without-pip "$1"
  local site
  site=$("$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "import site; site.addsitedir('$BASE_SITE')" > "$site/_image_site.pth"
  "$1/bin/python" -m pip install -q --no-index --no-deps --no-compile --ignore-installed "${@:2}"
}
layer /tmp/bench-venv /tmp/wheels/ts/*.whl
layer .venv-peers /tmp/wheels/peers/*.whl
.venv-peers/bin/python -c 'import torch, litserve, bentoml, ray, pytriton; print("peers venv: cuda", torch.cuda.is_available())'
echo "set-up took $(( $(date +%s) - START )) s"

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
left=$(( 570 - ($(date +%s) - START) ))
timeout "$left" /tmp/bench-venv/bin/python -m benchmarks.benchmark --peers --checkpoint models/review-sentiment \
  --model-config config/model-config.gpu.yaml --device cuda:0 --processes 8 --grpc-clients 0 \
  --rounds 1 --warmup 1 --duration 5 --output /tmp/gpu-peers 2>&1 | tee "$OUT/gpu-peers.log"
cp /tmp/gpu-peers/peers.md /tmp/gpu-peers/peers.json /tmp/gpu-peers/peers.png "$OUT/"
echo "GPU peers run done in $(( $(date +%s) - START )) s; results in $OUT"
