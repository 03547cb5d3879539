#!/usr/bin/env bash
# The C API as a C user gets it: installs this build's library and headers into a scratch
# prefix (cmake --install, components lib and dev), compiles tests/capi/*.c there with
# `cc -std=c11 -Wall -Wextra -Werror -pedantic` and pkg-config's ipckit-c flags only, then runs
# roundtrip.c against the built `ipckit` tool (shm: and topic:, both ways) and bad_input.c.
# Usage: capi_test.sh BIN_DIR SOURCE_DIR   (as tests/CMakeLists.txt passes them)
set -euo pipefail
bin_dir=$1
source_dir=$(cd "$2" && pwd)
test=capi_test
# shellcheck source=tests/capi/scratch_prefix.sh
source "$source_dir/tests/capi/scratch_prefix.sh"

# Only the prefix's own .pc files: PKG_CONFIG_LIBDIR replaces the default search path.
flags=$(PKG_CONFIG_LIBDIR="$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig" \
  pkg-config --cflags --libs ipckit-c)
case "$flags" in *"$source_dir"* | *"$build_dir"*)
  echo "capi_test: pkg-config ipckit-c names the source or build tree: $flags" >&2
  exit 1
  ;;
esac
for program in roundtrip bad_input; do
  # shellcheck disable=SC2086 # the flags are meant to split
  cc -std=c11 -Wall -Wextra -Werror -pedantic -o "$scratch/$program" "$source_dir/tests/capi/$program.c" $flags
done
export LD_LIBRARY_PATH="$prefix/lib:$prefix/lib/x86_64-linux-gnu"
"$scratch/bad_input"
"$scratch/roundtrip" "$bin_dir/ipckit"
