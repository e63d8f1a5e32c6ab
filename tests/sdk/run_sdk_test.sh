#!/usr/bin/env bash
# ctest sdk.node: installs the pinned Azure IoT Node SDK into the build tree (npm ci), starts a
# hub emulator in its own dir, runs sdk_test.js against it, stops it.
# Usage: run_sdk_test.sh <work dir>   (env GA_HUB_EMULATOR_PLUGIN = the plugin to load)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$1
mkdir -p "$work/sdk-node"
cp "$here/package.json" "$here/package-lock.json" "$work/sdk-node/"
if [[ ! -d $work/sdk-node/node_modules/azure-iot-device-mqtt ]] ||
   ! cmp -s "$here/package-lock.json" "$work/sdk-node/node_modules/.package-lock.json.src"; then
  echo "sdk.node: npm ci (azure-iot-device, azure-iot-device-mqtt)"
  if ! (cd "$work/sdk-node" && timeout 600 npm ci --no-audit --no-fund --loglevel=error); then
    echo "sdk.node: FAILED: npm ci could not install the Azure IoT SDK (registry unreachable?)" >&2
    exit 1
  fi
  cp "$here/package-lock.json" "$work/sdk-node/node_modules/.package-lock.json.src"
fi
emu="$work/emulator"
python3 "$repo/tools/hub-emulator/hubemu" stop --dir "$emu" >/dev/null 2>&1 || true
rm -rf "$emu"
python3 "$repo/tools/hub-emulator/hubemu" start --dir "$emu"
trap 'python3 "$repo/tools/hub-emulator/hubemu" stop --dir "$emu" >/dev/null 2>&1 || true' EXIT
NODE_PATH="$work/sdk-node/node_modules" timeout 240 node "$here/sdk_test.js" "$emu"
