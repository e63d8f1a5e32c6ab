#!/usr/bin/env bash
# Fill an armhf sysroot from Debian's own armhf .deb files (apt-get download + dpkg -x).
# Idempotent: a stamp records the package list; a second run with the same list does nothing.
set -euo pipefail
dest=${1:?usage: make-armhf-sysroot.sh DEST}
pkgs=(libmbedtls-dev libmbedtls14 libmbedcrypto7 libmbedx509-1 libcjson-dev libcjson1 libgtest-dev)
stamp="$dest/.complete"
want=$(printf '%s\n' "${pkgs[@]}" | sha256sum | cut -c1-16)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  exit 0
fi

if ! dpkg --print-foreign-architectures | grep -qx armhf; then
  dpkg --add-architecture armhf
fi
have_index() { apt-cache show libmbedtls14:armhf >/dev/null 2>&1; }
if ! have_index; then
  # A transient error fetching one architecture's index is tolerated; a missing index is not.
  apt-get update || true
  have_index || { echo "make-armhf-sysroot: no armhf package index (apt-get update failed)" >&2; exit 1; }
fi

debs=$(mktemp -d)
chmod 755 "$debs"  # apt drops privileges to _apt for downloads
trap 'rm -rf "$debs"' EXIT
(cd "$debs" && apt-get download "${pkgs[@]/%/:armhf}")
rm -rf "$dest"
mkdir -p "$dest"
for d in "$debs"/*.deb; do dpkg -x "$d" "$dest"; done
# Debian's .so links for some -dev packages are absolute; make them relative to the sysroot.
find "$dest" -type l -lname '/*' | while read -r l; do
  ln -sfn "$dest$(readlink "$l")" "$l"
done
echo "$want" >"$stamp"
echo "make-armhf-sysroot: ${#pkgs[@]} packages unpacked into $dest"
