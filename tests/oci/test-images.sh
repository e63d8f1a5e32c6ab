#!/usr/bin/env bash
# Checks the container images in build/oci/gateway-agent (made by tools/build-oci.sh) and
# config/deployment*.json: PASS/FAIL/SKIP lines, "oci: N failed", non-zero exit on a failure.
# Needs umoci, skopeo, binutils (readelf); runs the amd64 image with runc when root and runc are
# there, and the ARM agents under qemu-user (no binfmt registration).
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in umoci skopeo readelf python3; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed"; exit 1; }
done
exec python3 tests/oci/check_images.py "$@"
