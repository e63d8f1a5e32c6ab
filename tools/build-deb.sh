#!/usr/bin/env bash
# Debian packages of gateway-agent from the one CMake build: amd64 natively, armhf and arm64 with
# the toolchains/ files and sysroots of Debian's own .debs.
#   tools/build-deb.sh [amd64|armhf|arm64|all]     (default: all)
# Builds what is missing (incrementally) and writes build/deb/gateway-agent_<version>_<arch>.deb.
# Plain dpkg-deb from a staged tree: no debian/ source package, no debhelper; the maintainer
# scripts in packaging/debian/ are what dh_installsystemd/dh_installsysusers would generate plus
# the conf checks, and dpkg-shlibdeps computes Depends as in any Debian build.
# Environment: GA_PKG_BUILD_PREFIX (build dirs, default build/pkg-), GA_DEB_OUT (default
# build/deb), GA_DEB_REVISION (Debian revision, default 1), DEB_MAINTAINER.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
prefix=${GA_PKG_BUILD_PREFIX:-build/pkg-}
out=${GA_DEB_OUT:-build/deb}
jobs=${GA_JOBS:-$(nproc)}
maintainer=${DEB_MAINTAINER:-gateway-agent contributors <gateway-agent@example.org>}
upstream=$(sed -n 's/^project(gateway-agent VERSION \([0-9][0-9.]*\).*/\1/p' CMakeLists.txt)
[[ -n $upstream ]] || { echo "build-deb: no project(VERSION) in CMakeLists.txt" >&2; exit 1; }
version=$upstream-${GA_DEB_REVISION:-1}
# One timestamp for file dates, the changelog and the man pages: the last commit (reproducible).
: "${SOURCE_DATE_EPOCH:=$(git log -1 --format=%ct 2>/dev/null || stat -c %Y CMakeLists.txt)}"
export SOURCE_DATE_EPOCH

targets=${1:-all}
case $targets in
all) targets="amd64 armhf arm64" ;;
amd64 | armhf | arm64) ;;
*)
  echo "usage: tools/build-deb.sh [amd64|armhf|arm64|all]" >&2
  exit 2
  ;;
esac

triple_of() {
  case $1 in
  amd64) echo x86_64-linux-gnu ;;
  armhf) echo arm-linux-gnueabihf ;;
  arm64) echo aarch64-linux-gnu ;;
  esac
}

# build ARCH: configure once (Debian's hardening flags for ARCH) and build the agent only.
build() {
  local arch=$1 bdir=$src/$prefix$1
  if [[ ! -f $bdir/CMakeCache.txt ]]; then
    local toolchain=() flags
    [[ $arch == amd64 ]] || toolchain=(-DCMAKE_TOOLCHAIN_FILE="$src/toolchains/$arch.cmake")
    export DEB_BUILD_MAINT_OPTIONS=hardening=+all DEB_HOST_ARCH=$arch
    flags="$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CXXFLAGS)"
    CFLAGS=$flags CXXFLAGS=$flags LDFLAGS=$(dpkg-buildflags --get LDFLAGS) \
      cmake -S "$src" -B "$bdir" "${toolchain[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DGA_TESTS=OFF -DGA_BENCH=OFF >/dev/null
    unset DEB_BUILD_MAINT_OPTIONS DEB_HOST_ARCH
  fi
  cmake --build "$bdir" --target gateway-agent -j "$jobs" >/dev/null
}

changelog() {
  printf 'gateway-agent (%s) unstable; urgency=medium\n\n' "$version"
  printf '  * Upstream version %s, packaged from the CMake build (tools/build-deb.sh).\n\n' \
    "$upstream"
  printf ' -- %s  %s\n' "$maintainer" "$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
}

# Depends of the staged binary: dpkg-shlibdeps with the host's dpkg database for amd64, and for
# a cross arch the runtime library packages of the sysroot, unpacked with their DEBIAN/symbols.
depends_of() {
  local arch=$1 stage=$2 work=$3 searchdirs=()
  mkdir -p "$work/debian"
  printf 'Source: gateway-agent\n\nPackage: gateway-agent\nArchitecture: any\n' >"$work/debian/control"
  if [[ $arch != amd64 ]]; then
    local sysroot=$src/build/sysroot-$arch
    "$src/toolchains/make-sysroot.sh" "$arch" "$sysroot" --shlibs >&2
    for d in "$sysroot"/.pkg/*/; do searchdirs+=("-S${d%/}"); done
  fi
  (cd "$work" && DEB_HOST_ARCH=$arch dpkg-shlibdeps -O "${searchdirs[@]}" \
    -e"$stage/usr/bin/gateway-agent") | sed -n 's/^shlibs:Depends=//p'
}

package() {
  local arch=$1 bdir=$src/$prefix$1
  local stage=$bdir/deb-root work=$bdir/deb-work triple
  triple=$(triple_of "$arch")
  rm -rf "$stage" "$work"
  mkdir -p "$stage/DEBIAN" "$work"

  DESTDIR=$stage cmake --install "$bdir" --prefix /usr >/dev/null
  # Like dh_strip: the debug info and the compiler's notes go; the cross strip for cross arches.
  "$triple-strip" --remove-section=.comment --remove-section=.note "$stage/usr/bin/gateway-agent"
  chmod 0755 "$stage/usr/bin/gateway-agent"

  # Shipped 0644: it holds only placeholders; postinst makes it 0640 root:gateway-agent once the
  # group exists, and dpkg keeps an edited copy (with its mode) on upgrades.
  install -D -m 0644 config/gateway-agent.conf "$stage/etc/gateway-agent/gateway-agent.conf"
  # bookworm's systemd and lintian: units in /lib/systemd/system (the /usr move came later).
  local u
  for u in systemd/*.service systemd/*.path; do
    install -D -m 0644 "$u" "$stage/lib/systemd/system/$(basename "$u")"
  done
  if [[ -f systemd/gateway-agent-reboot-if-fresh ]]; then
    install -D -m 0755 systemd/gateway-agent-reboot-if-fresh \
      "$stage/usr/libexec/gateway-agent/gateway-agent-reboot-if-fresh"
  fi
  install -D -m 0644 packaging/debian/lintian-overrides \
    "$stage/usr/share/lintian/overrides/gateway-agent"
  install -D -m 0644 packaging/debian/sysusers.conf "$stage/usr/lib/sysusers.d/gateway-agent.conf"

  local doc=$stage/usr/share/doc/gateway-agent man=$stage/usr/share/man
  install -D -m 0644 packaging/debian/copyright "$doc/copyright"
  install -m 0644 README.md "$doc/README.md"
  changelog | gzip -9n >"$doc/changelog.Debian.gz"
  # Man pages from the native agent's --help, which prints the conf parser's key table.
  mkdir -p "$man/man5" "$man/man8" "$work/man"
  "$src/${prefix}amd64/src/gateway-agent" --help |
    packaging/help-to-man.py "$upstream" "$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)" "$work/man"
  gzip -9n <"$work/man/gateway-agent.8" >"$man/man8/gateway-agent.8.gz"
  gzip -9n <"$work/man/gateway-agent.conf.5" >"$man/man5/gateway-agent.conf.5.gz"
  find "$stage/usr/share" -type f -exec chmod 0644 {} +

  local depends
  depends=$(depends_of "$arch" "$stage" "$work")
  [[ -n $depends ]] || { echo "build-deb: dpkg-shlibdeps found no Depends for $arch" >&2; exit 1; }
  depends="$depends, systemd"
  # Installed-Size as dpkg-gencontrol counts it: KiB per file rounded up, plus one per directory.
  local size
  size=$(find "$stage" -path "$stage/DEBIAN" -prune -o \( -type f -printf '%s\n' \) -o \
    \( -type d -printf '1024\n' \) -o \( -type l -printf '1024\n' \) |
    awk '{ s += int(($1 + 1023) / 1024) } END { print s }')
  sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@MAINTAINER@|$maintainer|" \
    -e "s|@INSTALLED_SIZE@|$size|" -e "s|@DEPENDS@|$depends|" \
    packaging/debian/control.in >"$stage/DEBIAN/control"
  install -m 0644 packaging/debian/conffiles "$stage/DEBIAN/conffiles"
  install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm \
    "$stage/DEBIAN/"
  (cd "$stage" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' |
    LC_ALL=C sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
  chmod 0644 "$stage/DEBIAN/md5sums"
  find "$stage" -type d -exec chmod 0755 {} +
  find "$stage" -newermt "@$SOURCE_DATE_EPOCH" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

  mkdir -p "$out"
  local deb=$out/gateway-agent_${version}_$arch.deb
  dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
  echo "build-deb: $deb ($(stat -c %s "$deb") bytes) Depends: $depends"
}

# The native agent is needed for the man pages of every arch.
build amd64
for arch in $targets; do
  [[ $arch == amd64 ]] || build "$arch"
  package "$arch"
done
