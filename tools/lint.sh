#!/usr/bin/env bash
# Static analysis gate on our own C++ (src/, port/, tools/hub-emulator/src/, bench/*.cpp): clang-tidy
# with the repo's .clang-tidy (every enabled check is an error), then cppcheck. Unit tests, fuzzers,
# third-party and generated code are not linted. Uses the compile commands of a configured build
# (default build/native, which CMAKE_EXPORT_COMPILE_COMMANDS writes), so run it after configuring.
# Usage: tools/lint.sh [BUILD_DIR]. Exits non-zero on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${1:-build/native}
db=$build/compile_commands.json
if [[ ! -f $db ]]; then
  echo "lint: $db missing; configure first (cmake --preset native)" >&2
  exit 2
fi
for tool in clang-tidy cppcheck; do
  command -v "$tool" >/dev/null || { echo "lint: $tool not installed (tools/install-deps.sh test)" >&2; exit 2; }
done

# Our translation units, as the build compiles them. bench/ subdirectories (bench/soak) are not ours
# to gate here; only the top-level Google Benchmark files are.
mapfile -t files < <(sed -n 's|^ *"file": *"\(.*\)",\{0,1\}$|\1|p' "$db" |
  sed "s|^$root/||" | grep -E '^(src/.*|port/.*|tools/hub-emulator/src/.*|bench/[^/]*)\.cpp$' | sort -u)
if ((${#files[@]} == 0)); then
  echo "lint: no files of ours in $db" >&2
  exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# clang-tidy, one file per process. Each file's output goes to its own log so parallel runs do not
# interleave; a header's findings repeat for every file including it and are printed once.
export build tmp
tidy_status=0
# shellcheck disable=SC2016 # the sh -c script expands its own variables
printf '%s\n' "${files[@]}" | xargs -P "$(nproc)" -I{} sh -c '
  log="$tmp/$(echo "$1" | tr / _).log"
  clang-tidy -p "$build" --quiet --warnings-as-errors="*" \
    --extra-arg=-Wno-unknown-warning-option "$1" >"$log" 2>&1 || echo "$1" >>"$tmp/failed"
' sh {} || tidy_status=1
[[ -s $tmp/failed ]] && tidy_status=1
cat "$tmp"/*.log | grep -vE '^[0-9]+ (warning|error)s? generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter|^Use -system-headers' |
  awk '/^[^ ].*:[0-9]+:[0-9]+: (warning|error): / { keep = !seen[$0]++ } keep' >"$tmp/tidy.txt" || true
tidy_findings=$(grep -cE '^[^ ].*:[0-9]+:[0-9]+: (warning|error): ' "$tmp/tidy.txt" || true)
if ((tidy_status)); then
  cat "$tmp/tidy.txt"
  # A file that failed without any diagnostic (a crash, a missing header) still fails the gate.
  ((tidy_findings)) || echo "clang-tidy failed on: $(tr '\n' ' ' <"$tmp/failed")"
fi

# cppcheck over the same files, each with its own flags from the compile commands. Only
# missingIncludeSystem is suppressed: system headers are deliberately not given to cppcheck (its
# std/posix/gnu library configs describe them), so "not found" for them is expected, not a finding.
# cppcheck names files relative to the working directory or absolute depending on where the
# compile commands are, so each file is given in both forms.
filters=()
for f in "${files[@]}"; do filters+=(--file-filter="$f" --file-filter="$root/$f"); done
cpp_status=0
cppcheck --project="$db" "${filters[@]}" --std=c++20 --library=posix --library=gnu \
  --enable=warning,performance,portability --inline-suppr --suppress=missingIncludeSystem \
  --error-exitcode=1 -j "$(nproc)" --quiet \
  --template='{file}:{line}:{column}: {severity}: {message} [{id}]' >"$tmp/cppcheck.txt" 2>&1 ||
  cpp_status=1
cpp_findings=$(grep -cE '^[^ ].*:[0-9]+:[0-9]+: ' "$tmp/cppcheck.txt" || true)
((cpp_status)) && cat "$tmp/cppcheck.txt"

tidy_word="clang-tidy clean"
((tidy_status)) && tidy_word="clang-tidy $tidy_findings finding(s)"
((tidy_status && !tidy_findings)) && tidy_word="clang-tidy failed"
cpp_word="cppcheck clean"
((cpp_status)) && cpp_word="cppcheck $cpp_findings finding(s)"
((cpp_status && !cpp_findings)) && cpp_word="cppcheck failed"
echo "lint: ${#files[@]} files, $tidy_word, $cpp_word"
((tidy_status || cpp_status)) && exit 1
exit 0
