#!/usr/bin/env bash
# The sanitizer and fuzzing stages of CI, run by .ci/run after the README's test command.
#
#   bash scripts/ci-stages.sh                 # asan, tsan, fuzz (each fuzz target 20 s)
#   bash scripts/ci-stages.sh asan tsan       # only the stages named
#   IPCKIT_FUZZ_SECONDS=60 bash scripts/ci-stages.sh fuzz
#
# asan: the whole test suite built with -fsanitize=address,undefined (preset `asan`, build-asan/).
# tsan: the tests labelled `concurrency` built with -fsanitize=thread (preset `tsan`, build-tsan/).
# fuzz: each libFuzzer target for a bounded time (scripts/fuzz.sh, build-fuzz/).
# Any sanitizer report fails its stage: the presets compile with -fno-sanitize-recover=all, and
# the runtime options below make every report abort the process, which fails the test. Prints
# one line per stage with its result and duration; exits non-zero if any stage failed, after
# running the others (CI shows every failure at once).
set -uo pipefail
cd "$(dirname "$0")/.."

# Every report is fatal and comes with a stack. detect_leaks: a leak fails the test too.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
# The fuzz stage reads ASAN_OPTIONS too; libFuzzer sets what it needs on top.

fuzz_seconds="${IPCKIT_FUZZ_SECONDS:-20}"
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(asan tsan fuzz)

failed=0
summary=()
for stage in "${stages[@]}"; do
  case "$stage" in
    asan) command=(cmake --workflow --preset asan) ;;
    tsan) command=(cmake --workflow --preset tsan) ;;
    fuzz) command=(bash scripts/fuzz.sh "$fuzz_seconds") ;;
    *)
      echo "ci-stages: unknown stage \"$stage\" (known: asan, tsan, fuzz)" >&2
      exit 2
      ;;
  esac
  echo "ci-stages: stage=$stage: ${command[*]}"
  start=$(date +%s)
  "${command[@]}"
  status=$?
  seconds=$(($(date +%s) - start))
  if [ $status -eq 0 ]; then
    result=ok
  else
    result="FAILED (exit $status)"
    failed=1
  fi
  line="ci-stages: stage=$stage result=$result seconds=$seconds"
  echo "$line"
  summary+=("$line")
done

echo "ci-stages: summary"
printf '%s\n' "${summary[@]}"
exit $failed
