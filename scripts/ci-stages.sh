#!/usr/bin/env bash
# The sanitizer and fuzzing stages of CI, run by .ci/run after the README's test command.
#
#   bash scripts/ci-stages.sh                 # skipped, packages, pip, asan, tsan, fuzz (each fuzz target 20 s)
#   bash scripts/ci-stages.sh asan tsan       # only the stages named
#   IPCKIT_FUZZ_SECONDS=60 bash scripts/ci-stages.sh fuzz
#
# skipped: lists every test of the last run in build/ (the README's test command) that was
#   skipped, with the reason it printed; it never fails (a skip is not a pass, nor a failure).
# packages (long: a second, shared build of the library and the tool): cpack -G DEB, the four
#   packages unpacked with dpkg -x into a temporary root, consumers built against it
#   (scripts/package-test.sh, build-deb/).
# pip (long: pip builds the library for the module): `pip install ./python` offline into a fresh
#   venv of the python3 on PATH, then a round trip with the tool (scripts/pip-test.sh).
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

# Every skipped test in ctest's log of a build directory, one line each: NAME: REASON. A skipped
# test printed "[  SKIPPED ]" and did not fail (the log calls a skip by exit status 77
# "passed"). A gtest skip prints its reason between "…: Skipped" and "[  SKIPPED ] NAME"; a
# script prints "[  SKIPPED ] REASON".
list_skipped() {
  local log="$1/Testing/Temporary/LastTest.log"
  if [ ! -f "$log" ]; then
    echo "ci-stages: no test log at $log (run the README's test command first)" >&2
    return 1
  fi
  awk '
    /^[0-9]+\/[0-9]+ Test: / { name = $0; sub(/^[0-9]+\/[0-9]+ Test: /, "", name); sub(/  #.*/, "", name);
                                reason = ""; in_reason = 0; skipped = 0; in_output = 0; next }
    /^Output:$/ { in_output = 1; next }
    /^<end of output>$/ { in_output = 0; next }
    in_output && /^\[  SKIPPED \] / {
      # A script says its reason on this line; gtest repeats the test name here.
      if (reason == "" && !in_reason) { reason = $0; sub(/^\[  SKIPPED \] /, "", reason) }
      in_reason = 0; skipped = 1; next
    }
    in_output && in_reason { reason = reason (reason == "" ? "" : " ") $0; next }
    in_output && /: Skipped$/ { in_reason = 1; next }
    in_output { next }
    /^Test Failed/ { name = ""; next }
    /^Test Passed|Skip regular expression found/ && skipped && name != "" {
      print "  " name ": " (reason == "" ? "(no reason given)" : reason)
      count++
      name = ""
    }
    END { printf "ci-stages: %d test(s) skipped\n", count }
  ' "$log"
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
    asan) command=(cmake --workflow --preset asan) ;;
    tsan) command=(cmake --workflow --preset tsan) ;;
    fuzz) command=(bash scripts/fuzz.sh "$fuzz_seconds") ;;
    *)
      echo "ci-stages: unknown stage \"$stage\" (known: skipped, packages, pip, asan, tsan, fuzz)" >&2
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
