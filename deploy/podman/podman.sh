#!/usr/bin/env bash
# podman as this project runs it on its CI machines (root, no systemd, cgroups v1 or v2 without
# delegation): runc with cgroupfs, vfs storage, no default ulimits. On an ordinary machine plain
# `podman` or `docker` does the same job.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export CONTAINERS_CONF="$here/containers.conf"
exec podman --runtime runc --cgroup-manager cgroupfs --storage-driver vfs "$@"
