#!/bin/sh
# Builds and runs the JSON scanner bench (scanner vs cJSON on the same corpus, one process) and
# prints the speed ratio and heap allocations per message. Extra arguments go to the benchmark,
# e.g. --benchmark_min_time=2. BUILD_DIR overrides the native preset's build/native.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build/native}
if [ ! -f "$build/CMakeCache.txt" ]; then
    if [ "$build" = "$root/build/native" ]; then
        (cd "$root" && cmake --preset native)
    else
        cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGA_BENCH=ON
    fi
fi
cmake --build "$build" --target bench_json_scan -j"${JOBS:-2}"
exec "$build/bench/bench_json_scan" "$@"
