#!/usr/bin/env bash
# Installs the Debian packages gateway-agent needs. Usage: install-deps.sh [demo|test|bench|system]
# Idempotent and quick when everything is there already.
set -euo pipefail
what=${1:-test}
pkgs=(cmake make g++ pkg-config ca-certificates openssl libssl-dev file
      libmbedtls-dev libcjson-dev
      mosquitto mosquitto-dev mosquitto-clients
      python3 python3-paho-mqtt)
if [[ $what == test || $what == bench ]]; then
  pkgs+=(googletest libgtest-dev libbenchmark-dev clang clang-format clang-tidy cppcheck
         libclang-rt-dev g++-arm-linux-gnueabihf qemu-user-static nodejs npm python3-pytest procps
         faketime
         # ARM64 cross build (tests under qemu-aarch64) and the .deb packages
         g++-aarch64-linux-gnu binutils-aarch64-linux-gnu lintian dpkg-dev man-db systemd
         # container images (OCI layout, no daemon) and a runtime to run the amd64 one
         umoci skopeo jq runc gettext-base)
fi
if [[ $what == bench ]]; then
  pkgs+=(gnuplot-nox) # the soak bench's plot
fi
if [[ $what == system ]]; then
  pkgs+=(debootstrap qemu-system-arm e2fsprogs cpio) # tests/system (armhf VM, fresh roots)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# node may come from elsewhere than Debian (this machine image ships it); accept any node >= 18.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/nodejs/}"); missing=("${missing[@]/npm/}")
  read -r -a missing <<<"${missing[*]}"
fi
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # A transient index error for one architecture (armhf, used only for the sysroot) is tolerated.
  apt-get update || echo "install-deps: apt-get update reported an error; continuing" >&2
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
