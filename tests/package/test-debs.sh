#!/usr/bin/env bash
# Tests of the .deb files from tools/build-deb.sh:
#   tests/package/test-debs.sh [DEB_DIR] [WORK_DIR]   (defaults build/deb, build/pkg-test)
# For every gateway-agent_*.deb: lintian (errors fail; warnings are printed), the control data
# (version, arch, Depends, conffiles, maintainer scripts) and the file list (paths, owners, modes,
# stripped binary of the right arch, man pages naming every conf key). Then the amd64 .deb goes
# into a throwaway root under WORK_DIR with dpkg --root (maintainer scripts run chrooted there,
# no systemd): install, an edited conffile kept over two upgrades, remove, purge. Nothing is
# installed on this machine. Prints PASS/FAIL lines and exits non-zero on any FAIL.
# The checks pass values to single-quoted `bash -c` programs as arguments, on purpose:
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "$0")/../.."
debdir=$(realpath -m "${1:-build/deb}")
work=$(realpath -m "${2:-build/pkg-test}")
fails=0
passes=0

pass() {
  echo "PASS: $*"
  passes=$((passes + 1))
}
fail() {
  echo "FAIL: $*"
  fails=$((fails + 1))
}
# check DESCRIPTION COMMAND...: PASS when COMMAND succeeds.
check() {
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

upstream=$(sed -n 's/^project(gateway-agent VERSION \([0-9][0-9.]*\).*/\1/p' CMakeLists.txt)
shopt -s nullglob
debs=("$debdir"/gateway-agent_"$upstream"-*_*.deb)
if ((${#debs[@]} == 0)); then
  echo "FAIL: no gateway-agent_$upstream-*_*.deb in $debdir (run tools/build-deb.sh)"
  exit 1
fi

# ---------------------------------------------------------------- static checks of each .deb
declare -A elf_arch=([amd64]="x86-64" [armhf]="ARM, EABI5" [arm64]="ARM aarch64")
for deb in "${debs[@]}"; do
  name=$(basename "$deb")
  arch=${name##*_}
  arch=${arch%.deb}
  echo "=============== $name ($(stat -c %s "$deb") bytes) ==============="
  lint=$(lintian --allow-root -EvIL +pedantic "$deb" 2>&1 | grep -v '^N:' || true)
  [[ -z $lint ]] || printf '%s\n' "$lint" | sed 's/^/  lintian: /'
  check "$arch: lintian reports no errors" bash -c '! grep -q "^E:" <<<"$1"' _ "$lint"

  field() { dpkg-deb -f "$deb" "$1"; }
  check "$arch: Package gateway-agent" test "$(field Package)" = gateway-agent
  check "$arch: Architecture $arch" test "$(field Architecture)" = "$arch"
  check "$arch: Version from project(VERSION) $upstream" \
    bash -c '[[ $1 == "$2"-* && $3 == *"_$1_"* ]]' _ "$(field Version)" "$upstream" "$name"
  depends=$(field Depends)
  for dep in libc6 libstdc++6 libmbedtls14 libmbedcrypto7 libmbedx509-1 libcjson1 systemd; do
    check "$arch: Depends names $dep" \
      bash -c '[[ ", $1," == *", $2 ("* || ", $1," == *", $2,"* ]]' _ "$depends" "$dep"
  done
  check "$arch: Depends has versions from dpkg-shlibdeps (libc6 (>= ...))" \
    grep -Eq 'libc6 \(>= [0-9.]+\)' <<<"$depends"
  check "$arch: Recommends ca-certificates (the system bundle when [hub] ca_file is empty)" \
    test "$(field Recommends)" = ca-certificates
  check "$arch: Depends does not need adduser" bash -c '! grep -q adduser <<<"$1"' _ "$depends"
  ctl=$work/ctl-$arch
  rm -rf "$ctl"
  mkdir -p "$ctl"
  dpkg-deb -e "$deb" "$ctl"
  check "$arch: conffiles is exactly the conf" \
    test "$(cat "$ctl/conffiles")" = /etc/gateway-agent/gateway-agent.conf
  for s in postinst prerm postrm; do
    check "$arch: $s is POSIX sh with set -e" \
      bash -c 'head -1 "$1" | grep -qx "#!/bin/sh" && grep -qx "set -e" "$1" && sh -n "$1"' _ "$ctl/$s"
  done
  check "$arch: md5sums covers the binary" grep -q ' usr/bin/gateway-agent$' "$ctl/md5sums"

  # "MODE OWNER PATH" for every entry, e.g. "-rwxr-xr-x root/root ./usr/bin/gateway-agent".
  list=$(dpkg-deb -c "$deb" | awk '{ print $1, $2, $NF }')
  has() { grep -qxF -- "$1" <<<"$list"; }
  check "$arch: every entry owned by root/root" \
    bash -c '! awk "\$2 != \"root/root\"" <<<"$1" | grep -q .' _ "$list"
  check "$arch: /usr/bin/gateway-agent 0755" has "-rwxr-xr-x root/root ./usr/bin/gateway-agent"
  check "$arch: conf shipped 0644 (postinst makes it 0640 root:gateway-agent)" \
    has "-rw-r--r-- root/root ./etc/gateway-agent/gateway-agent.conf"
  for u in systemd/*.service systemd/*.path; do
    check "$arch: unit $(basename "$u") in /lib/systemd/system" \
      has "-rw-r--r-- root/root ./lib/systemd/system/$(basename "$u")"
  done
  if [[ -f systemd/gateway-agent-reboot-if-fresh ]]; then
    check "$arch: reboot helper in /usr/libexec/gateway-agent, 0755" \
      has "-rwxr-xr-x root/root ./usr/libexec/gateway-agent/gateway-agent-reboot-if-fresh"
  fi
  for f in usr/lib/sysusers.d/gateway-agent.conf usr/share/man/man8/gateway-agent.8.gz \
    usr/share/man/man5/gateway-agent.conf.5.gz usr/share/doc/gateway-agent/copyright \
    usr/share/doc/gateway-agent/changelog.Debian.gz usr/share/doc/gateway-agent/README.md; do
    check "$arch: /$f 0644" has "-rw-r--r-- root/root ./$f"
  done

  x=$work/x-$arch
  rm -rf "$x"
  dpkg-deb -x "$deb" "$x"
  info=$(file -b "$x/usr/bin/gateway-agent")
  check "$arch: binary is ${elf_arch[$arch]} and stripped" \
    bash -c '[[ $1 == *"$2"* && $1 == *", stripped"* ]]' _ "$info" "${elf_arch[$arch]}"
  check "$arch: sysusers entry for gateway-agent, home /var/lib/gateway-agent, nologin" \
    grep -Eq '^u gateway-agent - .* /var/lib/gateway-agent /usr/sbin/nologin$' \
    "$x/usr/lib/sysusers.d/gateway-agent.conf"
  check "$arch: copyright is DEP-5, MIT, gateway-agent contributors" bash -c \
    'grep -q "^Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/" "$1" &&
     grep -q "^License: MIT" "$1" && grep -q "gateway-agent contributors" "$1"' _ \
    "$x/usr/share/doc/gateway-agent/copyright"
  check "$arch: changelog.Debian names this version" \
    bash -c 'zcat "$1" | head -1 | grep -qF "gateway-agent ($2)"' _ \
    "$x/usr/share/doc/gateway-agent/changelog.Debian.gz" "$(field Version)"
  check "$arch: conf is config/gateway-agent.conf" cmp -s config/gateway-agent.conf \
    "$x/etc/gateway-agent/gateway-agent.conf"
done

# The man pages come from --help's key table: every key the native agent lists is in conf(5).
amd64_x=$work/x-amd64
if [[ -d $amd64_x ]]; then
  helptext=$("$amd64_x/usr/bin/gateway-agent" --help)
  keys=$(sed -n 's/^  \([a-z_]*\) = .*/\1/p' <<<"$helptext")
  page=$(zcat "$amd64_x/usr/share/man/man5/gateway-agent.conf.5.gz")
  missing=""
  for k in $keys; do
    grep -qF "\\fB${k}\\fR = " <<<"$page" || missing+=" $k"
  done
  check "man: gateway-agent.conf(5) has all $(wc -w <<<"$keys") keys of --help" \
    test -z "$missing" -a -n "$keys"
  [[ -z $missing ]] || echo "  missing:$missing"
  page8=$(zcat "$amd64_x/usr/share/man/man8/gateway-agent.8.gz")
  # Every option and command --help lists before "Exit codes:" has its entry in gateway-agent(8).
  entries=$(sed -n '/^Exit codes:/q; s/^  \([a-z-][^ ]*\) .*/\1/p' <<<"$helptext")
  for e in $entries; do
    check "man: gateway-agent(8) documents $e" grep -qF "\\fB${e//-/\\-}\\fR" <<<"$page8"
  done
  check "man: --help lists --config and --check-config" \
    bash -c '[[ $1 == *--config*--check-config* ]]' _ "$(tr '\n' ' ' <<<"$entries")"
  for p in "$amd64_x"/usr/share/man/man*/*.gz; do
    warn=$(zcat "$p" | LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z - \
      2>&1 >/dev/null || true)
    check "man: $(basename "$p") renders without groff warnings" test -z "$warn"
  done
fi

# ---------------------------------------------------------------- install into a throwaway root
deb=$(printf '%s\n' "${debs[@]}" | grep '_amd64\.deb$' | head -1 || true)
if [[ -z $deb || $(dpkg --print-architecture) != amd64 ]]; then
  echo "install tests skipped: no amd64 .deb or not an amd64 host"
elif [[ $(id -u) != 0 ]]; then
  fail "install tests need root (dpkg --root runs the maintainer scripts in a chroot)"
else
  root=$work/root
  rm -rf "$root"
  mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,usr/lib64,etc,tmp,var/lib/dpkg/{info,updates,triggers},run}
  # A merged-/usr root like bookworm's.
  for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
  touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
  # The scripts redirect to /dev/null: the real node, or a plain file where mknod is not allowed.
  mkdir -p "$root/dev"
  mknod -m 666 "$root/dev/null" c 1 3 2>/dev/null || install -m 666 /dev/null "$root/dev/null"
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\n' >"$root/etc/group"
  printf 'root:*::0:99999:7:::\n' >"$root/etc/shadow"
  printf 'root:*::\n' >"$root/etc/gshadow"
  printf 'passwd: files\ngroup: files\nshadow: files\n' >"$root/etc/nsswitch.conf"
  # What the maintainer scripts call, copied from this machine with the libraries they load:
  # a shell, coreutils and sed (Essential in Debian), dpkg-statoverride, systemd-sysusers,
  # deb-systemd-helper (perl), and the agent's libraries so postinst can run --check-config.
  # No systemctl, no running systemd.
  copy_in() { # the files' contents (links followed) at the same paths in the root
    local f
    for f in "$@"; do
      mkdir -p "$root$(dirname "$f")"
      rm -f "$root$f"
      cp -L "$f" "$root$f"
    done
  }
  elfs=(/usr/bin/dash /usr/bin/sh /usr/bin/rm /usr/bin/chown /usr/bin/chmod /usr/bin/mkdir
    /usr/bin/cat /usr/bin/sed /usr/bin/tail /usr/bin/getent /usr/bin/dpkg-statoverride
    /usr/bin/systemd-sysusers /usr/bin/perl)
  copy_in "${elfs[@]}" /usr/bin/deb-systemd-helper /usr/bin/deb-systemd-invoke
  libs=$( (for e in "${elfs[@]}" "$amd64_x/usr/bin/gateway-agent"; do ldd "$e"; done) |
    awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\/.*ld-linux/ { print $1 }' | sort -u)
  # shellcheck disable=SC2086
  copy_in $libs /usr/lib/x86_64-linux-gnu/libnss_files.so.2
  # shellcheck disable=SC2046
  # perl-base's modules (deb-systemd-helper needs a few core ones; all of them keeps this simple).
  copy_in $(dpkg -L perl-base | grep -E '^/usr/(share|lib/x86_64-linux-gnu)/perl' | while read -r f; do
    [[ -f $f ]] && echo "$f"; done)

  host_user_before=$(getent passwd gateway-agent || true)
  # --force-depends: libc6, systemd ... are not in this root's dpkg database (their files are
  # copied in); --force-confold keeps the admin's conffile without asking.
  dpkgr() { dpkg --root="$root" --force-depends --force-confold "$@" 2>&1; }
  r=$root
  etc_conf=/etc/gateway-agent/gateway-agent.conf
  conf=$r$etc_conf
  owner() { stat -c '%a %U:%G' "$1"; }
  # Names as the root's own /etc/passwd and /etc/group map them (stat uses this machine's).
  root_owner() {
    local uid gid
    uid=$(stat -c %u "$1")
    gid=$(stat -c %g "$1")
    echo "$(stat -c %a "$1") $(awk -F: -v u="$uid" '$3 == u { print $1 }' "$r/etc/passwd"):$(
      awk -F: -v g="$gid" '$3 == g { print $1 }' "$r/etc/group")"
  }

  # dpkg's output, without the expected complaints about the forced dependencies.
  # dpkg_step WHAT ARGS...: dpkg --root ARGS, PASS/FAIL on its exit status, its output in $out.
  dpkg_step() {
    local what=$1
    shift
    if out=$(dpkgr "$@"); then pass "$what: exits 0"; else fail "$what: exits 0"; fi
    indent "$out"
  }
  indent() {
    printf '%s\n' "$1" | grep -Ev 'dependency problems|depends on|is not installed|^$' |
      sed 's/^/  dpkg: /' || true
  }
  echo "=============== install $(basename "$deb") into $root ==============="
  start=$(date +%s)
  dpkg_step "install: dpkg --root -i" -i "$deb"
  check "install: package is 'install ok installed'" test "$(dpkg-query --admindir="$r/var/lib/dpkg" \
    -W -f='${Status}' gateway-agent 2>/dev/null)" = "install ok installed"
  check "install: conffile registered" bash -c 'dpkg-query --admindir="$1" -W -f="\${Conffiles}" \
    gateway-agent | grep -q "^ /etc/gateway-agent/gateway-agent.conf [0-9a-f]\{32\}$"' _ "$r/var/lib/dpkg"
  check "install: postinst created the system user (sysusers): home /var/lib/gateway-agent, nologin" \
    grep -Eq '^gateway-agent:x:[0-9]+:[0-9]+:[^:]*:/var/lib/gateway-agent:/usr/sbin/nologin$' "$r/etc/passwd"
  check "install: system uid (< 1000)" \
    bash -c 'u=$(awk -F: "\$1 == \"gateway-agent\" { print \$3 }" "$1"); ((u > 0 && u < 1000))' \
    _ "$r/etc/passwd"
  check "install: group gateway-agent exists" grep -q '^gateway-agent:x:[0-9]*:' "$r/etc/group"
  check "install: conf is 0640 root:gateway-agent" test "$(root_owner "$conf")" = "640 root:gateway-agent"
  check "install: /usr/bin/gateway-agent 0755 root" \
    test "$(root_owner "$r/usr/bin/gateway-agent")" = "755 root:root"
  check "install: units in /lib/systemd/system (merged /usr)" \
    test -f "$r/usr/lib/systemd/system/gateway-agent.service" \
    -a -f "$r/usr/lib/systemd/system/gateway-agent-reboot.path"
  for u in gateway-agent.service gateway-agent-reboot.path; do
    check "install: $u enabled without systemd (multi-user.target.wants link)" \
      test -L "$r/etc/systemd/system/multi-user.target.wants/$u"
  done
  check "install: state dir /var/lib/gateway-agent 0750 gateway-agent:gateway-agent" \
    test "$(root_owner "$r/var/lib/gateway-agent")" = "750 gateway-agent:gateway-agent"
  check "install: placeholder conf -> postinst says why it did not start, what to edit, how to start" \
    grep -Eq "^gateway-agent: not started \(.+\); edit $etc_conf, .*then run: systemctl start gateway-agent$" \
    <<<"$out"
  check "install: the 'not started' message is one line" \
    test "$(grep -c 'gateway-agent: not started' <<<"$out")" = 1
  check "install: nothing installed on this machine (no host user, no host binary)" \
    bash -c '[[ "$(getent passwd gateway-agent || true)" == "$1" && ! -e /usr/bin/gateway-agent ]]' \
    _ "$host_user_before"

  # The admin configures it: a device identity (a made-up key, never used to connect).
  key=$(printf 'not-a-real-key-for-tests' | base64)
  cs="HostName=hub.example.net;DeviceId=gw1;ModuleId=filter;SharedAccessKey=$key"
  sed -i "s|^#connection_string = HostName=.*|connection_string = $cs|" "$conf"
  check "edit: conf now holds a connection string" grep -qxF "connection_string = $cs" "$conf"
  check "edit: the packaged agent accepts the edited conf (chroot --check-config)" \
    bash -c 'chroot "$1" /usr/bin/gateway-agent --check-config --config "$2" >/dev/null' \
    _ "$r" "$etc_conf"
  edited=$(sha256sum <"$conf")

  # Upgrade 1: the same build as a newer revision; the packaged conf is unchanged.
  repack() { # repack NEWVERSION OUT [extra conf line]
    local d=$work/repack
    rm -rf "$d"
    dpkg-deb -R "$deb" "$d"
    sed -i "s/^Version: .*/Version: $1/" "$d/DEBIAN/control"
    [[ -z ${3:-} ]] || echo "$3" >>"$d/etc/gateway-agent/gateway-agent.conf"
    (cd "$d" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' |
      LC_ALL=C sort -z | xargs -0 md5sum) >"$d/DEBIAN/md5sums"
    dpkg-deb --root-owner-group --build "$d" "$2" >/dev/null
  }
  v2=$upstream-900
  repack "$v2" "$work/up2.deb"
  dpkg_step "upgrade to $v2" -i "$work/up2.deb"
  check "upgrade to $v2: version installed" \
    test "$(dpkg-query --admindir="$r/var/lib/dpkg" -W -f='${Version}' gateway-agent)" = "$v2"
  check "upgrade to $v2: edited conffile kept" test "$(sha256sum <"$conf")" = "$edited"
  check "upgrade to $v2: conf still 0640 root:gateway-agent" \
    test "$(root_owner "$conf")" = "640 root:gateway-agent"
  check "upgrade to $v2: conf passes the check, so no 'not started' line" \
    bash -c '! grep -q "not started" <<<"$1"' _ "$out"
  # Upgrade 2: the packaged conf changed too; dpkg keeps the admin's file (confold), new one aside.
  v3=$upstream-901
  repack "$v3" "$work/up3.deb" "# a new comment in the packaged conf"
  dpkg_step "upgrade to $v3 (packaged conf changed)" -i "$work/up3.deb"
  check "upgrade to $v3: edited conffile kept" test "$(sha256sum <"$conf")" = "$edited"
  check "upgrade to $v3: the packaged conf is beside it as .dpkg-dist" \
    grep -qx "# a new comment in the packaged conf" "$conf.dpkg-dist"
  check "upgrade to $v3: user not duplicated" test "$(grep -c '^gateway-agent:' "$r/etc/passwd")" = 1

  # State the service would have written, then remove and purge.
  mkdir -p "$r/var/lib/gateway-agent" "$r/var/lib/gateway-agent-reboot"
  echo 1 >"$r/var/lib/gateway-agent/alerts.seg"
  echo 1 >"$r/var/lib/gateway-agent-reboot/history"
  echo secret >"$r/etc/gateway-agent/connection-string"
  dpkg_step remove -r gateway-agent
  check "remove: binary gone" test ! -e "$r/usr/bin/gateway-agent"
  check "remove: conffile and state kept" test -f "$conf" -a -f "$r/var/lib/gateway-agent/alerts.seg"
  check "remove: service masked so a removed agent is not started" \
    test "$(readlink "$r/etc/systemd/system/gateway-agent.service" 2>/dev/null)" = /dev/null
  dpkg_step purge -P gateway-agent
  check "purge: /var/lib/gateway-agent and /var/lib/gateway-agent-reboot removed" \
    test ! -e "$r/var/lib/gateway-agent" -a ! -e "$r/var/lib/gateway-agent-reboot"
  check "purge: /etc/gateway-agent removed (conf, connection-string, .dpkg-dist)" \
    test ! -e "$r/etc/gateway-agent"
  check "purge: enable links and mask removed" bash -c \
    '! find "$1/etc/systemd/system" -name "gateway-agent*" 2>/dev/null | grep -q .' _ "$r"
  check "purge: package unknown to dpkg" bash -c \
    '! dpkg-query --admindir="$1" -W gateway-agent >/dev/null 2>&1 ||
     [[ $(dpkg-query --admindir="$1" -W -f="\${Status}" gateway-agent) == "unknown ok not-installed" ]]' \
    _ "$r/var/lib/dpkg"
  check "purge: nothing of the package left in the root" bash -c \
    '! find "$1" -path "$1/var/lib/dpkg" -prune -o -name "*gateway-agent*" -print | grep -q .' _ "$r"
  echo "install tests took $(($(date +%s) - start)) s"
fi

echo "=============== test-debs: $passes passed, $fails failed ==============="
((fails == 0))
