#!/usr/bin/env bash
# A gateway in a box: boots Debian 12 armhf under qemu-system-arm (-M virt, TCG, systemd as PID 1),
# installs gateway-agent's armhf .deb, points it at the hub emulator on this machine's 127.0.0.1 and
# checks, from the host, the install, READY as its own user, alerts, a twin patch, a real reboot
# through gateway-agent-reboot.path with no alert lost, a stale reboot request ignored, and the
# unit's exposure score. Prints one PASS/FAIL line per check and "N passed, M failed".
#
# Usage: tests/system/boot/run.sh [--deb FILE] [--build DIR] [--timeout SECONDS] [--agent-bin FILE]
#   --deb        the armhf package (default: the newest build/deb/gateway-agent_*_armhf.deb)
#   --agent-bin  without a .deb only: a bare armhf binary, installed with the units in systemd/
#   --build      work and cache dir (default build/system-boot; the image is cached in cache/)
#   --timeout    one global bound on the whole run, image build included (default 7200)
# Needs: debootstrap qemu-system-arm e2fsprogs cpio (image), the native build's hub emulator
# plugin ($GA_HUB_EMULATOR_PLUGIN or build/native/...). Changes nothing on this machine outside
# the build dir: no binfmt, no mounts; the VM's network is qemu user mode (restrict=on) whose one
# way out is guestfwd to the emulator's 127.0.0.1 port.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
"$repo/tools/install-deps.sh" system >/dev/null
build=$repo/build/system-boot
deb=
agent_bin=
total=7200
while (($#)); do
  case $1 in
    --deb) deb=$2; shift 2 ;;
    --agent-bin) agent_bin=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --timeout) total=$2; shift 2 ;;
    *) echo "usage: $0 [--deb FILE] [--build DIR] [--timeout SECONDS] [--agent-bin FILE]" >&2; exit 2 ;;
  esac
done
if [[ -z ${GA_BOOT_INNER:-} ]]; then
  # One global bound: on expiry the run gets SIGTERM (its trap stops the VM and the emulator and
  # prints the closing line), and SIGKILL 20 s later if it is still there.
  exec timeout -k 20 "$total" env GA_BOOT_INNER=1 GA_BOOT_DEADLINE=$(($(date +%s) + total)) \
    "$0" --build "$build" --timeout "$total" ${deb:+--deb "$deb"} ${agent_bin:+--agent-bin "$agent_bin"}
fi
deadline=$GA_BOOT_DEADLINE
py=/usr/bin/python3
emu=$repo/tools/hub-emulator
export GA_HUB_EMULATOR_PLUGIN=${GA_HUB_EMULATOR_PLUGIN:-$repo/build/native/tools/hub-emulator/hub_emulator_plugin.so}
started=$(date +%s)
ident=leaf1 # a device identity of the emulator's default conf; its alerts go to $upstream

checks=(image boot install ready alerts twin reboot comeback reboottime noloss security stale unconfigured)
declare -A title=(
  [image]="guest image: Debian 12 armhf rootfs (debootstrap), Debian kernel, initrd"
  [boot]="guest boots under qemu-system-arm -M virt with systemd as PID 1"
  [install]="the armhf package installs in the guest"
  [ready]="gateway-agent.service READY, running as user gateway-agent, connected to the hub"
  [alerts]="alerts flow from the guest's UDP sensor to the hub"
  [twin]="desired TemperatureThreshold patch applied and acknowledged"
  [reboot]="rebootDevice: the guest really reboots through gateway-agent-reboot.path"
  [comeback]="gateway-agent comes back by itself after the reboot"
  [reboottime]="rebootTime reported, with a new boot id"
  [noloss]="every alert accepted before the reboot arrives"
  [security]="systemd-analyze security gateway-agent.service gives the exposure score"
  [stale]="a stale reboot request in the state dir does not reboot the guest again"
  [unconfigured]="with no identity in the conf the start is skipped (ExecCondition), not failed"
)
declare -A result=()
pass() { result[$1]=PASS; echo "PASS: $1: ${title[$1]}${2:+ ($2)}"; }
fail() { result[$1]=FAIL; echo "FAIL: $1: ${title[$1]}${2:+ ($2)}"; }
log() { echo "# $(date -u +%T) +$(($(date +%s) - started))s $*"; }

run=$build/run
qpid=
finish() {
  local rc=$? np=0 nf=0 c
  trap - EXIT INT TERM
  [[ -n $qpid ]] && kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null
  if [[ -d $run/fwd-pids ]]; then
    for c in "$run"/fwd-pids/*; do [[ -f $c ]] && kill "$(basename "$c")" 2>/dev/null; done
  fi
  [[ -d $run/hub ]] && "$py" "$emu/hubemu" stop --dir "$run/hub" >/dev/null 2>&1
  for c in "${checks[@]}"; do
    [[ -n ${result[$c]:-} ]] || { result[$c]=FAIL; echo "FAIL: $c: ${title[$c]} (not run)"; }
    if [[ ${result[$c]} == PASS ]]; then np=$((np + 1)); else nf=$((nf + 1)); fi
  done
  log "wall time $(($(date +%s) - started)) s; console log: $run/console.log (exit $rc)"
  echo "$np passed, $nf failed"
  ((nf == 0))
}
trap finish EXIT
trap 'log "stopped by a signal (global timeout?)"; exit 124' INT TERM

left() { echo $((deadline - $(date +%s))); }
# Bounded wait: wait_for SECONDS CMD... polls CMD every 2 s until it succeeds.
wait_for() {
  local until=$(($(date +%s) + $1)); shift
  while (($(date +%s) < until)); do "$@" >/dev/null 2>&1 && return 0; sleep 2; done
  return 1
}
hubctl() { "$py" "$emu/hubctl" --dir "$run/hub" "$@"; }
# guest SECONDS COMMAND: runs COMMAND in the guest's root console shell.
guest() { "$py" "$here/guestsh.py" "$run/console.sock" "$1" "$2"; }
# Boots and logins so far, counted on the console (the initrd's line is printed at any loglevel).
boots() { grep -c "initrd: root " "$run/console.log" 2>/dev/null || true; }
logins() { grep -c "login: root (automatic login)" "$run/console.log" 2>/dev/null || true; }
boots_above() { (($(boots) > $1)); }
logins_reach() { (($(logins) >= $1)); }
jq_py() { local code=$1; shift; "$py" -c "import json,sys; d=json.load(sys.stdin); $code" "$@"; }

# --- the image (cached) --------------------------------------------------------------------------
log "image (cache: $build/cache)"
if ! img=$("$here/build-image.sh" "$build/cache"); then
  fail image "build-image.sh failed"
  exit 1
fi
pass image "$(basename "$img")"

# --- the package, the emulator and the seed disk ---------------------------------------------------
if [[ -z $deb && -z $agent_bin ]]; then
  # shellcheck disable=SC2012 # the newest by time; Debian file names have no odd characters
  deb=$(ls -t "$repo"/build/deb/gateway-agent_*_armhf.deb 2>/dev/null | head -1 || true)
fi
rm -rf "$run"
mkdir -p "$run/seed" "$run/fwd-pids"
if [[ -n $deb ]]; then
  [[ -f $deb ]] || { fail install "no such .deb: $deb"; exit 1; }
  cp "$deb" "$run/seed/"
  log "package: $deb"
else
  [[ -n $agent_bin && -f $agent_bin ]] || { fail install "no armhf .deb (build/deb/) and no --agent-bin"; exit 1; }
  mkdir -p "$run/seed/bin" "$run/seed/units"
  cp "$agent_bin" "$run/seed/bin/gateway-agent"
  cp "$repo"/systemd/* "$run/seed/units/"
  log "no .deb: bare binary $agent_bin with the units in systemd/ (development mode)"
fi
"$py" "$emu/hubemu" start --dir "$run/hub" >"$run/hubemu-start.log" 2>&1 ||
  { cat "$run/hubemu-start.log"; fail install "hub emulator did not start"; exit 1; }
hub_port=$(cat "$run/hub/port")
log "hub emulator on 127.0.0.1:$hub_port"
cat >"$run/seed/gateway-agent.conf" <<EOF
# Written by tests/system/boot/run.sh: the hub is "localhost" in the guest (the emulator's
# certificate names localhost); ga-hub-proxy.socket relays it to the host.
[hub]
connection_string = $("$py" "$emu/hubemu" connstr --dir "$run/hub" "$ident" --gateway localhost)
port = 8883
ca_file = /etc/gateway-agent/hub-ca.pem

[source]
type = udp
bind = 127.0.0.1:5683

[reboot]
mode = request-file

[log]
stats_interval = 60
EOF
cp "$run/hub/ca.pem" "$run/seed/hub-ca.pem"
cp "$here"/guest/* "$run/seed/"
mke2fs -q -t ext4 -L GASEED -d "$run/seed" "$run/seed.img" 64M >/dev/null

# --- boot -----------------------------------------------------------------------------------------
log "booting the guest (console: $run/console.log)"
fwd="/usr/bin/python3 $here/fwd.py $hub_port $run/hub-cut $deadline $run/fwd-pids"
qemu-system-arm -M virt -cpu cortex-a15 -smp 1 -m 512 -display none -monitor none \
  -chardev "socket,id=con0,path=$run/console.sock,server=on,wait=off,logfile=$run/console.log" \
  -serial chardev:con0 \
  -kernel "$img/vmlinuz" -initrd "$img/initrd.img" -append "console=ttyAMA0 rw loglevel=4 systemd.show_status=false" \
  -drive "if=none,file=$img/disk.img,format=raw,id=hd0,snapshot=on" -device virtio-blk-device,drive=hd0 \
  -drive "if=none,file=$run/seed.img,format=raw,id=hd1,readonly=on" -device virtio-blk-device,drive=hd1 \
  -netdev "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:8883-cmd:$fwd" \
  -device virtio-net-device,netdev=n0 </dev/null >"$run/qemu.log" 2>&1 &
qpid=$!
if ! wait_for 900 logins_reach 1; then
  fail boot "no console login within 900 s"; exit 1
fi
log "guest up (boot 1)"
pid1=$(guest 120 "cat /proc/1/comm" | tr -d '\r\n' || true)
boot1=$(guest 60 "cat /proc/sys/kernel/random/boot_id" | tr -d '\r\n' || true)
if [[ $pid1 == systemd && -n $boot1 ]]; then pass boot "PID 1 $pid1, boot id $boot1"; else fail boot "PID 1 '$pid1'"; exit 1; fi

# --- install --------------------------------------------------------------------------------------
seed_state() { guest 30 "systemctl is-active ga-seed.service" | tr -d '\r'; }
# Stops waiting when the setup failed, not only when it succeeded.
seed_settled() { [[ $(seed_state) == active || $(seed_state) == failed ]]; }
if wait_for 600 seed_settled && [[ $(seed_state) == active ]]; then
  inst=$(guest 60 "dpkg-query -W -f='\${Status} \${Version} \${Architecture}' gateway-agent 2>/dev/null || echo bare" | tr -d '\r\n' || true)
  if [[ -n $deb && $inst == "install ok installed "*armhf ]] || [[ -z $deb && $inst == bare ]]; then
    pass install "$inst"
  else
    fail install "$inst"
  fi
else
  fail install "ga-seed did not finish: $(guest 60 'journalctl -b -u ga-seed -o cat | tail -5' | tr '\r\n' '  ')"
fi

# --- READY as its own user, connected ----------------------------------------------------------------
agent_user() {
  # shellcheck disable=SC2016 # expanded in the guest
  guest 60 'pid=$(systemctl show -p MainPID --value gateway-agent); s=$(systemctl show -p ActiveState -p SubState --value gateway-agent | tr "\n" /); echo "$s $(stat -c %U /proc/$pid 2>/dev/null)"' | tr -d '\r\n'
}
connected() {
  hubctl connections | jq_py 'sys.exit(0 if any(i["id"] == sys.argv[1] and i["connected"] for i in d["identities"]) else 1)' "$ident"
}
is_ready() { [[ $(agent_user) == "active/running/ gateway-agent" ]]; }
# READY, or a state it will not leave by itself (exit 78 is not restarted): stop waiting then.
ready_or_stuck() { local s; s=$(agent_user); [[ $s == "active/running/ gateway-agent" || $s == failed/* ]]; }
if wait_for 300 ready_or_stuck && is_ready && wait_for 180 connected; then
  pass ready "$(agent_user); hub sees $ident connected"
else
  fail ready "state '$(agent_user)'; hub connections: $(hubctl connections | tr -d '\n' | cut -c1-200)"
fi

# --- alerts ---------------------------------------------------------------------------------------
seqs() {  # the seq numbers of the alerts the hub has, in arrival order
  hubctl messages | "$py" -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("properties", {}).get("MessageType") == "Alert":
        print(json.loads(m["body"])["seq"])'
}
have_alerts() { (($(seqs | wc -l) >= $1)); }
if wait_for 180 have_alerts 5; then pass alerts "$(seqs | wc -l) alerts so far"; else fail alerts "$(seqs | wc -l) alerts"; fi

# --- twin patch -----------------------------------------------------------------------------------
hubctl twin set-desired "$ident" '{"TemperatureThreshold":28}' >/dev/null || true
acked() {
  # shellcheck disable=SC2016 # a Python string
  hubctl twin show "$ident" | jq_py '
r = d["reported"].get("TemperatureThreshold", {})
sys.exit(0 if r.get("value") == 28 and r.get("ac") == 200 and r.get("av") == d["desired"]["$version"] else 1)'
}
if wait_for 120 acked; then
  pass twin "reported $(hubctl twin show "$ident" | jq_py 'print(json.dumps(d["reported"]["TemperatureThreshold"]))')"
else
  fail twin "reported: $(hubctl twin show "$ident" | jq_py 'print(json.dumps(d["reported"]))' | cut -c1-300)"
fi

# --- the reboot -----------------------------------------------------------------------------------
nboots=$(boots)
answer=$(hubctl method "$ident" rebootDevice --timeout 60 || true)
# The hub link is cut now, so alerts accepted from here to the shutdown wait in the agent's journal
# on disk and cross the reboot there; it is restored once the guest is back.
touch "$run/hub-cut"
delivered_before=$(seqs | wc -l || true)
log "rebootDevice answered: $answer; link cut with $delivered_before alerts delivered"
rebooted=no
if [[ $answer == *'"status": 200'* || $answer == *'"status":200'* ]] &&
   wait_for 600 boots_above "$nboots" && wait_for 900 logins_reach 2; then
  rebooted=yes
fi
rm -f "$run/hub-cut"
log "guest rebooted: $rebooted"
if [[ $rebooted == yes ]]; then
  boot2=$(guest 120 "cat /proc/sys/kernel/random/boot_id" | tr -d '\r\n' || true)
  # The previous boot's journal: the agent's request, the oneshot's own line, the reboot target.
  prev=$(guest 120 "journalctl -b -1 -o cat -u gateway-agent.service | grep -m1 'reboot: request written'; journalctl -b -1 -o cat -u gateway-agent-reboot.service | grep -m1 -E '^gateway-agent-reboot: |Starting gateway-agent-reboot'" || true)
  target=$(guest 60 "journalctl -b -1 -o cat | grep -c 'Reached target.*Reboot' || true" | tr -d '\r\n' || true)
  while read -r line; do echo "#   boot -1: $line"; done <<<"$prev"
  if [[ -n $boot2 && $boot2 != "$boot1" ]] && grep -q "gateway-agent-reboot" <<<"$prev" &&
     grep -q "request written" <<<"$prev" && ((target >= 1)); then
    pass reboot "boot id $boot1 -> $boot2; previous boot's journal: request written, reboot unit ran, reboot.target reached"
  else
    fail reboot "boot id '$boot1' -> '$boot2', reboot.target lines: $target"
  fi
else
  fail reboot "method answer '$answer'; console boots $(boots)"
fi

if [[ $rebooted == yes ]]; then
  if wait_for 300 is_ready && wait_for 180 connected; then
    pass comeback "$(agent_user), reconnected, no command sent to the guest"
  else
    fail comeback "state '$(agent_user)'"
  fi
  rt_ok() { hubctl twin show "$ident" | jq_py 'sys.exit(0 if d["reported"].get("rebootTime") else 1)'; }
  if wait_for 180 rt_ok; then
    pass reboottime "rebootTime $(hubctl twin show "$ident" | jq_py 'print(d["reported"]["rebootTime"])'), boot id $boot1 -> $boot2"
  else
    fail reboottime "no rebootTime in the reported properties"
  fi
  # Readings the sensor sent in boot 1: from its first seq to the one before boot 2's first.
  first2=$(guest 60 "journalctl -b 0 -u ga-sender -o cat | sed -n 's/.*boot starts at seq //p' | head -1" | tr -d '\r\n' || true)
  if [[ $first2 =~ ^[0-9]+$ ]]; then
    all_in() { "$py" -c 'import sys; got=set(map(int, sys.stdin.read().split())); sys.exit(0 if set(range(int(sys.argv[1]))) <= got else 1)' "$first2" < <(seqs); }
    if wait_for 240 all_in; then
      carried=$(seqs | tail -n +"$((delivered_before + 1))" | awk -v n="$first2" '$1 < n' | sort -un | wc -l || true)
      if ((carried > 0)); then
        pass noloss "all $first2 readings of boot 1 arrived as alerts; $carried of them waited in the agent's journal across the reboot"
      else
        fail noloss "all $first2 arrived, but none was pending at the reboot: the journal was not exercised"
      fi
    else
      fail noloss "missing of 0..$((first2 - 1)): $("$py" -c 'import sys; got=set(map(int, sys.stdin.read().split())); print(sorted(set(range(int(sys.argv[1]))) - got)[:20])' "$first2" < <(seqs))"
    fi
  else
    fail noloss "no 'boot starts at seq' line from ga-sender in boot 2"
  fi
fi

# --- exposure score -------------------------------------------------------------------------------
sec=$(guest 240 "systemd-analyze security --no-pager gateway-agent.service 2>&1 | tail -n 1" | tr -d '\r\n' || true)
score=$(grep -oE 'exposure level for gateway-agent.service: [0-9.]+ [A-Z]+' <<<"$sec" || true)
if [[ -n $score ]]; then pass security "$score"; else fail security "'$sec'"; fi

# --- a stale request does not reboot again ------------------------------------------------------------
if [[ $rebooted == yes ]]; then
  nboots=$(boots)
  # As the agent would have written it in boot 1, left there (e.g. a power cut before the oneshot).
  guest 60 "printf 'boot_id=%s\ntime=%s\nrequested=stale\n' '$boot1' \$((\$(date +%s) - 600)) >/var/lib/gateway-agent/reboot-request.tmp && chown gateway-agent: /var/lib/gateway-agent/reboot-request.tmp && mv /var/lib/gateway-agent/reboot-request.tmp /var/lib/gateway-agent/reboot-request" >/dev/null
  sleep 90
  boot3=$(guest 300 "cat /proc/sys/kernel/random/boot_id" | tr -d '\r\n' || true)
  if (($(boots) == nboots)) && [[ $boot3 == "$boot2" ]]; then
    pass stale "no reboot in 90 s; request file now: $(guest 60 'ls /var/lib/gateway-agent/reboot-request 2>&1 | tail -1' | tr -d '\r\n')"
  else
    fail stale "the guest rebooted again (console boots $nboots -> $(boots), boot id $boot2 -> $boot3)"
  fi
else
  fail stale "no first reboot to build on"
fi

# --- a conf that names no identity: the start is skipped, the unit not failed ------------------------
if [[ -n $deb ]]; then
  # shellcheck disable=SC2016 # expanded in the guest
  state=$(guest 180 'sed -i "s/^connection_string = /#connection_string = /" /etc/gateway-agent/gateway-agent.conf && systemctl restart gateway-agent; sleep 5; echo "$(systemctl show -p ActiveState --value gateway-agent)/$(systemctl show -p Result --value gateway-agent)/$(systemctl is-failed gateway-agent)"; journalctl -b -u gateway-agent -o cat | grep -m1 "names no identity yet" | cut -c1-80' | tr '\r\n' '  ' || true)
  if [[ $state == "inactive/exec-condition/inactive "*"names no identity yet"* ]]; then
    pass unconfigured "$state"
  else
    fail unconfigured "'$state'"
  fi
else
  fail unconfigured "needs the .deb's unit"
fi
