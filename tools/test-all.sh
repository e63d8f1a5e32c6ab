#!/usr/bin/env bash
# The README's test command: installs what is missing, builds native, asan and armhf, and runs the
# whole suite natively, under ASan+UBSan, and on ARM32 under qemu-arm, then the format and lint
# gates (clang-format, clang-tidy + cppcheck), the unit and end-to-end tests on ARM64 under
# qemu-aarch64, the container images (tools/build-oci.sh, tests/oci) and the .deb packages
# (tools/build-deb.sh, tests/package/test-debs.sh).
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
tools/install-deps.sh test

status=0
run_preset() {
  local p=$1
  echo "=============== $p: configure + build ==============="
  cmake --preset "$p" >/dev/null
  cmake --build --preset "$p" -j "$jobs"
  echo "=============== $p: ctest ==============="
  ctest --preset "$p" -j "$jobs" || status=1
}
run_preset native
run_preset asan
run_preset armhf
tools/format-check.sh || status=1
tools/lint.sh build/native || status=1
echo "=============== file on the armhf agent ==============="
file build/armhf/src/gateway-agent 2>/dev/null || true
# ARM64: the unit tests and the end-to-end suite under qemu-aarch64 (the whole suite would not
# fit the CI budget under emulation).
echo "=============== arm64: configure + build ==============="
cmake --preset arm64 >/dev/null
cmake --build --preset arm64 -j "$jobs"
echo "=============== arm64: ctest (unit + integration.test_agent_e2e) ==============="
ctest --preset arm64 -j "$jobs" -R '^(unit\.|integration\.test_agent_e2e$)' || status=1
echo "=============== container images: build-oci all + tests/oci ==============="
OCI_BUILD_DIR_amd64=build/native OCI_BUILD_DIR_armhf=build/armhf OCI_BUILD_DIR_arm64=build/arm64 \
  tools/build-oci.sh all || status=1
bash tests/oci/test-images.sh || status=1
echo "=============== packages: build-deb all + tests/package ==============="
tools/build-deb.sh all || status=1
tests/package/test-debs.sh build/deb build/pkg-test || status=1
exit $status
