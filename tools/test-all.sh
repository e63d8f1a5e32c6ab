#!/usr/bin/env bash
# The README's test command: installs what is missing, builds native, asan and armhf, and runs the
# whole suite natively, under ASan+UBSan, and on ARM32 under qemu-arm, then the format and lint
# gates (clang-format, clang-tidy + cppcheck). Exits non-zero on any failure.
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
exit $status
