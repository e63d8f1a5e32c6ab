#!/usr/bin/env bash
# Fill a cross sysroot from Debian's own .deb files of one architecture (apt-get download +
# dpkg -x), so the host needs no multiarch install in lock-step with its own packages.
#   make-sysroot.sh ARCH DEST            headers + libraries to build and test against
#   make-sysroot.sh ARCH DEST --shlibs   also DEST/.pkg/<package>/: the runtime library packages
#                                        unpacked with their DEBIAN/ (symbols, shlibs), so
#                                        dpkg-shlibdeps -S can compute Depends for ARCH
# ARCH is a Debian architecture: armhf or arm64. Idempotent: a stamp per part records its package
# list; a second run with the same list does nothing (the build part is never touched by
# --shlibs, so a build using DEST is not disturbed).
set -euo pipefail
arch=${1:?usage: make-sysroot.sh armhf|arm64 DEST [--shlibs]}
dest=${2:?usage: make-sysroot.sh armhf|arm64 DEST [--shlibs]}
shlibs=${3:-}
case $arch in
armhf | arm64) ;;
*)
  echo "make-sysroot: unsupported architecture '$arch' (armhf or arm64)" >&2
  exit 2
  ;;
esac
build_pkgs=(libmbedtls-dev libmbedtls14 libmbedcrypto7 libmbedx509-1 libcjson-dev libcjson1
  libgtest-dev)
# What the agent links at run time, libc and the C++ runtime included.
runtime_pkgs=(libmbedtls14 libmbedcrypto7 libmbedx509-1 libcjson1 libc6 libstdc++6 libgcc-s1)

want_of() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }
is_current() { [[ -f $1 && $(cat "$1") == "$2" ]]; }

ensure_index() {
  if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    dpkg --add-architecture "$arch"
  fi
  have_index() { apt-cache show "libmbedtls14:$arch" >/dev/null 2>&1; }
  if ! have_index; then
    # A transient error fetching one architecture's index is tolerated; a missing index is not.
    apt-get update || true
    have_index || {
      echo "make-sysroot: no $arch package index (apt-get update failed)" >&2
      exit 1
    }
  fi
}

# download DIR PKG...: the .debs of PKG for $arch into DIR (apt drops privileges to _apt).
download() {
  local dir=$1
  shift
  chmod 755 "$tmp" "$dir"
  (cd "$dir" && apt-get download "${@/%/:$arch}")
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

build_want=$(want_of "${build_pkgs[@]}")
# The armhf stamp predates the arch argument: the same list gives the same stamp as before.
if ! is_current "$dest/.complete" "$build_want"; then
  ensure_index
  mkdir "$tmp/build"
  download "$tmp/build" "${build_pkgs[@]}"
  rm -rf "$dest"
  mkdir -p "$dest"
  for d in "$tmp"/build/*.deb; do dpkg -x "$d" "$dest"; done
  # Debian's .so links for some -dev packages are absolute; make them relative to the sysroot.
  find "$dest" -type l -lname '/*' | while read -r l; do
    ln -sfn "$dest$(readlink "$l")" "$l"
  done
  echo "$build_want" >"$dest/.complete"
  echo "make-sysroot: ${#build_pkgs[@]} $arch packages unpacked into $dest"
fi

if [[ $shlibs == --shlibs ]]; then
  pkg_want=$(want_of "${runtime_pkgs[@]}")
  if ! is_current "$dest/.pkg/.complete" "$pkg_want"; then
    ensure_index
    mkdir "$tmp/pkg"
    download "$tmp/pkg" "${runtime_pkgs[@]}"
    rm -rf "$dest/.pkg"
    mkdir -p "$dest/.pkg"
    for d in "$tmp"/pkg/*.deb; do
      name=$(dpkg-deb -f "$d" Package)
      dpkg-deb -R "$d" "$dest/.pkg/$name"
    done
    echo "$pkg_want" >"$dest/.pkg/.complete"
    echo "make-sysroot: ${#runtime_pkgs[@]} $arch runtime packages with their DEBIAN/ in $dest/.pkg"
  fi
elif [[ -n $shlibs ]]; then
  echo "make-sysroot: unknown option '$shlibs'" >&2
  exit 2
fi
