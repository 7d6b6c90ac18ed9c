#!/usr/bin/env bash
# A stand-in for python:3.11-slim-bookworm where Docker Hub is out of reach: Debian 12's own
# Python 3.11 (venv, pip via ensurepip) from Debian's archive, imported as a local image.
#   deploy/podman/standin-base.sh [image name]   (default localhost/python-standin:3.11-bookworm)
set -euo pipefail
image="${1:-localhost/python-standin:3.11-bookworm}"
here="$(cd "$(dirname "$0")" && pwd)"
if "$here/podman.sh" image exists "$image"; then echo "$image exists"; exit 0; fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# python-is-python3: the images call `python`, as on the official image.
mmdebstrap --variant=minbase --include=python3.11,python3.11-venv,python-is-python3,ca-certificates \
    bookworm "$work/rootfs.tar" http://deb.debian.org/debian
"$here/podman.sh" import --change 'CMD ["python3"]' "$work/rootfs.tar" "$image"
