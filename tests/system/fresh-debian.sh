#!/usr/bin/env bash
# Runs the README's two commands (the demo, then the test command) inside a fresh Debian 12 root
# made with debootstrap: Debian's standard /etc/hosts (localhost -> 127.0.0.1 and ::1), no
# compiler, no node, nothing from this machine but a clone of the repo's committed HEAD. The root
# lives in its own mount namespace (unshare), so /proc, /dev and /sys mounts vanish with it.
# Not part of .ci/run: it takes as long as CI itself.
# Usage: tests/system/fresh-debian.sh [WORKDIR]   (default build/fresh-debian; removed first)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$repo/build/fresh-debian}
mirror=${MIRROR:-http://deb.debian.org/debian}
limit=${LIMIT_S:-7200}
root=$work/root
start=$(date +%s)

"$repo/tools/install-deps.sh" system >/dev/null
rm -rf "$work"
mkdir -p "$work"
echo "== debootstrap bookworm (minbase + ca-certificates, git) into $root"
debootstrap --variant=minbase --include=ca-certificates,git bookworm "$root" "$mirror" \
  >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log"; exit 1; }
# Debian's standard files, not this machine's.
cat >"$root/etc/hosts" <<'HOSTS'
127.0.0.1	localhost
127.0.1.1	gateway-fresh

# The following lines are desirable for IPv6 capable hosts
::1     localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
HOSTS
cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
cp /etc/resolv.conf "$root/etc/resolv.conf"
# This machine reaches the npm registry through an egress proxy with its own CA: the fresh root
# gets that CA (and only it) so npm can verify the registry, as a real network would not need.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null
  proxy_ca=1
fi
git clone -q "$repo" "$root/root/gateway-agent"
if [[ -d $repo/../shared ]]; then cp -r "$repo/../shared" "$root/root/shared"; fi
for tool in gcc g++ cmake node npm; do
  if chroot "$root" sh -c "command -v $tool" >/dev/null 2>&1; then
    echo "fresh-debian: $tool is already in the fresh root" >&2
    exit 1
  fi
done

cat >"$root/root/run-both.sh" <<'RUN'
#!/bin/bash
set -uo pipefail
cd /root/gateway-agent
export HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Debian's node trusts its own CA list; the egress proxy's CA (see fresh-debian.sh) is in the
# system bundle only.
[[ -f /usr/local/share/ca-certificates/.proxy ]] && export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
t0=$(date +%s)
echo "== README command 1: bash tools/demo.sh"
bash tools/demo.sh; demo=$?
t1=$(date +%s)
echo "== README command 2: bash tools/test-all.sh"
CI=true bash tools/test-all.sh </dev/null; tests=$?
t2=$(date +%s)
echo "fresh-debian: demo exit $demo in $((t1 - t0)) s; test command exit $tests in $((t2 - t1)) s"
exit $((demo != 0 || tests != 0))
RUN
chmod +x "$root/root/run-both.sh"
[[ -n ${proxy_ca:-} ]] && touch "$root/usr/local/share/ca-certificates/.proxy"

echo "== running both README commands in the fresh root (log: $work/run.log)"
set +e
# shellcheck disable=SC2016 # the inner script gets its arguments, not our expansion
timeout --kill-after=60 "$limit" unshare --mount --propagation private --fork -- bash -c '
  set -e
  root=$1
  mount --bind "$root" "$root" # a mount point, as / is on a real machine (unshare needs one)
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount --rbind /sys "$root/sys"
  mount -t tmpfs tmpfs "$root/dev/shm"
  mount -t tmpfs tmpfs "$root/tmp"
  exec chroot "$root" /root/run-both.sh
' _ "$root" >"$work/run.log" 2>&1
rc=$?
set -e
tail -n 40 "$work/run.log"
echo "fresh-debian: exit $rc, wall $(( $(date +%s) - start )) s (debootstrap included)"
exit $rc
