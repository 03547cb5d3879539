#!/usr/bin/env bash
# Every #include in src/ points down DESIGN's layer list (scripts/layers.sh), and the check itself
# fails on an include that climbs: a copy of the tree with one planted must be refused.
# Usage: layers_test.sh BIN_DIR SOURCE_DIR (as ctest runs every tests/*/*_test.sh).
set -euo pipefail
source_dir=$2
bash "$source_dir/scripts/layers.sh"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/ipckit-layers-XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/scripts"
cp "$source_dir/scripts/layers.sh" "$scratch/scripts/"
cp -r "$source_dir/src" "$source_dir/include" "$scratch/"
echo '#include "channels/address.hpp"' >>"$scratch/src/core/fd.cpp"
if out=$(bash "$scratch/scripts/layers.sh"); then
  echo "layers_test: scripts/layers.sh passed a core file that includes the channels layer" >&2
  exit 1
fi
grep -qF 'climbs: src/core/fd.cpp includes channels/address.hpp (channels)' <<<"$out" || {
  echo "layers_test: the planted include was not named:" >&2
  echo "$out" >&2
  exit 1
}
echo "layers_test: every include points down; a planted climbing include is refused"
