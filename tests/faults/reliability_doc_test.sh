#!/usr/bin/env bash
# docs/reliability.md's counts are the tree's: the transports the full-channel fault test runs
# on (as its program lists them) and the fuzz seeds the regression test replays (the files in
# fuzz/corpus/<target>/ for each target but shrink, whose programs are counted apart).
# Usage: reliability_doc_test.sh BIN_DIR SOURCE_DIR   (as tests/CMakeLists.txt passes them)
set -euo pipefail
bin_dir=$1
source_dir=$2
doc="$source_dir/docs/reliability.md"
failed=0

listed=$("$bin_dir/faults_resources_test" --gtest_list_tests --gtest_filter='Transports/FaultsFullChannelTest.*')
transports=$(grep -c '^  ' <<<"$listed")
if ! grep -q "Passes on all $transports transports" "$doc"; then
  echo "reliability_doc_test: FaultsFullChannelTest runs on $transports transports; $doc says: $(grep -o 'Passes on all [0-9]* transports' "$doc")" >&2
  failed=1
fi

seeds=$(find "$source_dir/fuzz/corpus" -mindepth 2 -maxdepth 2 -type f -not -path '*/corpus/shrink/*' | wc -l)
shrink=$(find "$source_dir/fuzz/corpus/shrink" -maxdepth 1 -type f | wc -l)
if ! grep -q "($seeds seeds" "$doc"; then
  echo "reliability_doc_test: fuzz/corpus holds $seeds seeds; $doc says: $(grep -o '([0-9]* seeds' "$doc")" >&2
  failed=1
fi
if ! grep -q "($shrink hand-made programs)" "$doc"; then
  echo "reliability_doc_test: fuzz/corpus/shrink holds $shrink programs; $doc says otherwise" >&2
  failed=1
fi
[ $failed -eq 0 ] && echo "reliability_doc_test: $transports transports, $seeds seeds, $shrink shrink programs: as the doc says"
exit $failed
