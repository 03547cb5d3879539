#!/usr/bin/env bash
# Builds ipckit's libFuzzer targets with clang and runs each for a bounded time.
#
#   bash scripts/fuzz.sh [SECONDS [TARGET...]]     # default 30 s each; targets: address frame ring topic lanes service shrink log
#
# Each target starts from its checked-in seeds (fuzz/corpus/T/) and past crashes
# (fuzz/regressions/T/), copied to a scratch directory so the checked-in corpus is not modified.
# Prints one line per target:
#   fuzz: target=T runs=N crashes=0 seconds=S
# A crash (sanitizer report, uncaught exception, broken invariant, timeout, leak, out of memory)
# fails the script; the input that caused it is copied to fuzz/regressions/T/, where
# tests/faults/fuzz_regression_test.cpp replays it in every test run once it is committed.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(address frame ring topic lanes service shrink log)
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz: SECONDS must be a positive whole number, not \"$seconds\"" >&2
  exit 2
fi

build=build-fuzz
mkdir -p "$build"
CXX=clang++ cmake -S . -B "$build" -G Ninja -DIPCKIT_FUZZ=ON -DIPCKIT_BUILD_TESTS=OFF -DIPCKIT_BUILD_TOOLS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; echo "fuzz: configure failed" >&2; exit 1; }
programs=()
for target in "${targets[@]}"; do programs+=("${target}_fuzz"); done
cmake --build "$build" --target "${programs[@]}" || { echo "fuzz: build failed" >&2; exit 1; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/ipckit-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
# Reports abort, with symbolised stacks; leaks count as crashes too.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

failed=0
for target in "${targets[@]}"; do
  program="$build/bin/${target}_fuzz"
  corpus="$scratch/$target/corpus"
  artifacts="$scratch/$target/artifacts"
  log="$scratch/$target/log"
  mkdir -p "$corpus" "$artifacts"
  for seeds in "fuzz/corpus/$target" "fuzz/regressions/$target"; do
    [ -d "$seeds" ] && find "$seeds" -maxdepth 1 -type f -exec cp {} "$corpus/" \;
  done
  start=$(date +%s)
  # -timeout: one input taking 10 s is a hang (every read in a target ends by itself);
  # -rss_limit_mb: a hostile length must never turn into a large allocation.
  "$program" "$corpus" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1
  status=$?
  elapsed=$(($(date +%s) - start))
  runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
  [ -z "$runs" ] && runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
  crashes=$(find "$artifacts" -type f | wc -l)
  if [ $status -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes=1; fi  # died without writing an input
  echo "fuzz: target=$target runs=${runs:-0} crashes=$crashes seconds=$elapsed"
  if [ "$crashes" -ne 0 ]; then
    failed=1
    mkdir -p "fuzz/regressions/$target"
    for input in "$artifacts"/*; do
      [ -f "$input" ] || continue
      cp "$input" "fuzz/regressions/$target/"
      echo "fuzz: kept the input as fuzz/regressions/$target/$(basename "$input"); replay: $program $input" >&2
    done
    # The report: the sanitizer's or libFuzzer's own, with its stack.
    grep -n -A40 -m1 -E "^==[0-9]+==ERROR|runtime error|deadly signal|invariant broken|ERROR: libFuzzer" "$log" >&2 ||
      tail -60 "$log" >&2
  fi
done
exit $failed
