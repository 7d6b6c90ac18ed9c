#!/usr/bin/env bash
# Run ON THE GPU MACHINE by each staging call: the part carried by this call lands in
# .whl/parts/ and stays there (ignored paths are kept between calls on a warm machine).
# Lists what has arrived so far; benchmarks/gpu/run.sh checks the whole against SHA256SUMS.
set -euo pipefail
cd "$(dirname "$0")/../.."
ls -l .whl/parts/
echo "staged: $(ls .whl/parts/wheels.tar.part-* | wc -l) part(s)"
