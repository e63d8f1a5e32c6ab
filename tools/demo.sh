#!/usr/bin/env bash
# The README's demo: builds what is missing, starts the hub emulator (mosquitto + hub rules, TLS,
# SAS), a simulated temperature sensor module routed to the agent's input1, and the agent; shows
# alerts, an operator's threshold patch and a rebootDevice call; stops everything; prints a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
py=/usr/bin/python3
tools/install-deps.sh demo >/dev/null
if [[ ! -x build/native/src/gateway-agent || ! -f build/native/tools/hub-emulator/hub_emulator_plugin.so ]]; then
  echo "== building gateway-agent and the hub emulator (first run only)"
  cmake --preset native -DGA_TESTS=OFF -DGA_BENCH=OFF >/dev/null
  cmake --build build/native -j "$(nproc)" --target gateway-agent hub_emulator_plugin >/dev/null
fi
demo=build/demo
umask 077 # the conf below holds the device key
rm -rf "$demo" && mkdir -p "$demo/state"
root_flag=()
[[ $(id -u) == 0 ]] && root_flag=(--allow-root) # the agent refuses root without it
hubctl() { "$py" tools/hub-emulator/hubctl --dir "$demo/hub" "$@"; }
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$py" tools/hub-emulator/hubemu stop --dir "$demo/hub" >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "== starting the IoT Hub emulator (mosquitto over TLS on 127.0.0.1, SAS auth, edgeHub routes)"
"$py" tools/hub-emulator/hubemu start --dir "$demo/hub" --plugin build/native/tools/hub-emulator/hub_emulator_plugin.so
port=$(cat "$demo/hub/port")
cat >"$demo/gateway-agent.conf" <<CONF
[hub]
connection_string = $("$py" tools/hub-emulator/hubemu connstr --dir "$demo/hub" edgedev/filter --gateway localhost)
port = $port
ca_file = $repo/$demo/hub/ca.pem
[reboot]
mode = simulate
simulate_delay = 2
[state]
dir = $repo/$demo/state
[log]
stats_interval = 10
CONF
chmod 600 "$demo/gateway-agent.conf"
echo "== agent conf: $(build/native/src/gateway-agent --check-config --config "$demo/gateway-agent.conf")"
# Process substitutions end with the process they read from, so nothing is left behind.
build/native/src/gateway-agent --config "$demo/gateway-agent.conf" "${root_flag[@]}" \
  > >(tee "$demo/agent.log" | sed -u 's/^<[0-9]>/  agent | /') 2>&1 &
pids+=($!)
# The agent reports agentStats once it is online; without that the rest would show nothing.
online=""
for _ in $(seq 1 30); do
  [[ $(hubctl twin show edgedev/filter | "$py" tools/demo_view.py field agentStats) != null ]] && { online=1; break; }
  sleep 1
done
if [[ -z $online ]]; then
  echo "demo: FAILED: the agent did not connect to the hub emulator within 30 s; its log:" >&2
  tail -n 20 "$demo/agent.log" >&2
  exit 1
fi
echo "== starting the simulated temperature sensor module (1 reading/s, routed to filter/input1)"
"$py" tools/hub-emulator/tempsensor --dir "$demo/hub" --interval 1 --count 45 >"$demo/sensor.log" 2>&1 &
pids+=($!)
hubctl follow --timeout 90 2>/dev/null > >("$py" tools/demo_view.py alerts) &
pids+=($!)

sleep 20
echo "== operator: twin patch desired TemperatureThreshold = 30"
hubctl twin set-desired edgedev/filter '{"TemperatureThreshold": 30}' >/dev/null
sleep 3
echo "== twin reported TemperatureThreshold (the agent's ack): $(hubctl twin show edgedev/filter | "$py" tools/demo_view.py field TemperatureThreshold)"
sleep 10
echo "== operator: direct method rebootDevice"
echo "   answer: $(hubctl method edgedev/filter rebootDevice '{}' --timeout 15)"
for _ in $(seq 1 30); do
  rt=$(hubctl twin show edgedev/filter | "$py" tools/demo_view.py field rebootTime)
  [[ $rt == null ]] && rt=""
  [[ -n $rt ]] && break
  sleep 1
done
echo "== twin reported rebootTime: ${rt:-<not reported>}"
sleep 10
kill "${pids[@]}" 2>/dev/null || true
sleep 1
echo
echo "== summary"
hubctl twin show edgedev/filter | "$py" tools/demo_view.py summary
upstream=$(hubctl messages | grep -c '"MessageType":"Alert"' || true)
echo "  alerts recorded upstream by the hub: $upstream"
if [[ $upstream == 0 ]]; then
  echo "demo: FAILED: no alert reached the hub" >&2
  exit 1
fi
if [[ -z $rt ]]; then
  echo "demo: FAILED: rebootTime was never reported after rebootDevice" >&2
  exit 1
fi
