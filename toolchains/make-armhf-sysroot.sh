#!/usr/bin/env bash
# Kept for callers of the old name: the armhf case of make-sysroot.sh (which also does arm64).
set -euo pipefail
exec "$(dirname "$0")/make-sysroot.sh" armhf "${1:?usage: make-armhf-sysroot.sh DEST [--shlibs]}" "${@:2}"
