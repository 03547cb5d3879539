#!/usr/bin/env bash
# The sanitizer and fuzzing stages of CI, run by .ci/run after the README's test command.
#
#   bash scripts/ci-stages.sh                 # skipped, packages, pip, asan, tsan, fuzz (each fuzz target 20 s)
#   bash scripts/ci-stages.sh asan tsan       # only the stages named
#   IPCKIT_FUZZ_SECONDS=60 bash scripts/ci-stages.sh fuzz
#
# skipped: lists every test of the last run in build/ (the README's test command) that was
#   skipped or not run, with the reason it printed; fails only if there is no record of the run
#   (a skip is not a pass, nor a failure).
# packages (long: a second, shared build of the library and the tool): cpack -G DEB, the four
#   packages unpacked with dpkg -x into a temporary root, consumers built against it
#   (scripts/package-test.sh, build-deb/).
# pip (long: pip builds the library for the module): `pip install ./python` offline into a fresh
#   venv of the python3 on PATH, then a round trip with the tool (scripts/pip-test.sh).
# asan: the whole test suite built with -fsanitize=address,undefined (preset `asan`, build-asan/),
#   then the list of its skips, as for build/.
# ubsan: as asan with -fsanitize=undefined alone (preset `ubsan`, build-ubsan/); not run by
#   default, asan covers it.
# tsan: the tests labelled `concurrency` built with -fsanitize=thread (preset `tsan`, build-tsan/),
#   then the list of its skips.
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
# die_after_fork=0: a process that holds a ring end has a keeper thread (src/rings/keeper.cpp),
# so the tests fork from a multi-threaded parent, and a child that claims an end starts its own.
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:die_after_fork=0"
# The fuzz stage reads ASAN_OPTIONS too; libFuzzer sets what it needs on top.

fuzz_seconds="${IPCKIT_FUZZ_SECONDS:-20}"

# Every test of a build's last run that was skipped or not run, one line each with the reason it
# printed (scripts/list-skipped.py reads the JUnit file the test presets write: ctest's text log
# calls an exit status 77 "passed").
list_skipped() {
  python3 scripts/list-skipped.py "$@"
}

# A sanitizer stage: its workflow, then the list of its skips, which must be there: the JUnit
# file written by this run, and in a build where a test is always skipped (`expected`: the
# Python module, which no sanitizer build can load) that test listed with its reason, so a
# lister that misses skips fails CI instead of printing an empty list.
sanitizer_stage() {
  local preset="$1" dir="$2" expected="$3" status listed
  local marker
  marker=$(mktemp)
  cmake --workflow --preset "$preset"
  status=$?
  if [ ! "$dir/Testing/Temporary/LastTest.junit.xml" -nt "$marker" ]; then
    echo "ci-stages: $preset: no test results written by this run in $dir: its skips cannot be listed" >&2
    rm -f "$marker"
    return 1
  fi
  rm -f "$marker"
  listed=$(list_skipped "$dir") || return 1
  echo "$listed"
  if [ -n "$expected" ] && ! grep -q "^  $dir: $expected: ." <<<"$listed"; then
    echo "ci-stages: $preset: the list of skips lacks $expected, which every sanitizer build skips" >&2
    return 1
  fi
  return $status
}
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(skipped packages pip asan tsan fuzz)

failed=0
summary=()
for stage in "${stages[@]}"; do
  case "$stage" in
    skipped) command=(list_skipped build) ;;
    packages) command=(bash scripts/package-test.sh) ;;
    pip) command=(bash scripts/pip-test.sh) ;;
    asan) command=(sanitizer_stage asan build-asan python_module) ;;
    ubsan) command=(sanitizer_stage ubsan build-ubsan python_module) ;;
    tsan) command=(sanitizer_stage tsan build-tsan "") ;;
    fuzz) command=(bash scripts/fuzz.sh "$fuzz_seconds") ;;
    *)
      echo "ci-stages: unknown stage \"$stage\" (known: skipped, packages, pip, asan, ubsan, tsan, fuzz)" >&2
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
