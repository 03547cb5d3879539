#!/usr/bin/env bash
# Rust through the C API: builds examples/rust/roundtrip.rs (plain `extern "C"`, no crates)
# with every rustc found (the one first on PATH, e.g. rustup's, and Debian's /usr/bin/rustc)
# against this build's library installed into a scratch prefix, and runs it against the built
# `ipckit` tool over shm:, both ways.
# Usage: rust_test.sh BIN_DIR SOURCE_DIR   (as tests/CMakeLists.txt passes them)
set -euo pipefail
bin_dir=$1
source_dir=$(cd "$2" && pwd)
compilers=()
declare -A seen
for rustc in $(type -ap rustc) /usr/bin/rustc; do
  [ -x "$rustc" ] || continue
  # One entry per distinct compiler: PATH may list /usr/bin/rustc itself. (Not resolved for
  # running: rustup's rustc is a link to rustup, which acts by the name it was called by.)
  [ -n "${seen[$(readlink -f "$rustc")]-}" ] && continue
  seen[$(readlink -f "$rustc")]=1
  # A rustup proxy with no toolchain installed is no compiler.
  "$rustc" --version >/dev/null 2>&1 && compilers+=("$rustc")
done
if [ ${#compilers[@]} -eq 0 ]; then
  echo "[  SKIPPED ] rust_test: no rustc (apt-get install rustc)"
  exit 77
fi

test=rust_test
# shellcheck source=tests/capi/scratch_prefix.sh
source "$source_dir/tests/capi/scratch_prefix.sh"
# pkg-config's -L and -l, as rustc spells them.
link=()
for flag in $(PKG_CONFIG_LIBDIR="$prefix/lib/pkgconfig" pkg-config --libs ipckit-c); do
  case "$flag" in
    -L*) link+=(-L "native=${flag#-L}") ;;
    -l*) link+=(-l "${flag#-l}") ;;
  esac
done
export LD_LIBRARY_PATH="$prefix/lib"
for rustc in "${compilers[@]}"; do
  echo "rust_test: $("$rustc" --version) ($rustc)"
  "$rustc" --edition 2021 -O -o "$scratch/roundtrip" "$source_dir/examples/rust/roundtrip.rs" "${link[@]}"
  "$scratch/roundtrip" "$bin_dir/ipckit"
done
