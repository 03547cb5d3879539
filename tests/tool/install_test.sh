#!/usr/bin/env bash
# The build is part of the product: installs ipckit into a scratch prefix, then builds two tiny
# consumer programs against the installed tree only — one with CMake's find_package(ipckit)
# and ipckit::ipckit, one with pkg-config — and runs them (a message through a real pipe).
# Then the same for a shared-library build of ipckit (BUILD_SHARED_LIBS=ON), whose consumers
# must load libipckit.so from the prefix.
#
# "The installed tree only" is checked, not assumed: the consumers search no default paths
# (no system or user package registry, no system prefixes, PKG_CONFIG_LIBDIR is the prefix's
# alone), no installed text file names the source or the build tree, and neither do the
# consumers' compile and link commands. Nor does an install write outside its prefix: every file
# in its install_manifest.txt lies under it, the Python package's too.
# Usage: install_test.sh BIN_DIR SOURCE_DIR   (as tests/CMakeLists.txt passes them)
set -euo pipefail
bin_dir=$1
source_dir=$(cd "$2" && pwd)
build_dir=$(cd "$(dirname "$bin_dir")" && pwd)
if grep -q '^IPCKIT_SANITIZE:STRING=.\+' "$build_dir/CMakeCache.txt"; then
  echo "[  SKIPPED ] install_test: a sanitizer build (its library needs the sanitizer runtime to link)"
  exit 77
fi

scratch=$(mktemp -d /tmp/ipckit-test-install-XXXXXX)
trap 'rm -rf "$scratch"' EXIT

fail() {
  echo "install_test: $*" >&2
  exit 1
}

# No installed text file may point back into the trees it was built from (binaries keep
# their debug information's paths, which is not a dependency).
check_no_tree_paths() {
  local prefix=$1 tree
  for tree in "$source_dir" "$build_dir" "$2"; do
    if grep -rIlF "$tree" "$prefix" >"$scratch/hits"; then
      fail "installed files name $tree: $(tr '\n' ' ' <"$scratch/hits")"
    fi
  done
}

# The consumer (tests/tool/consumer/) is copied out, so its build names no source tree.
cp -r "$source_dir/tests/tool/consumer" "$scratch/consumer"

# consume LABEL PREFIX LIBRARY_BUILD_DIR: both consumers against PREFIX, with nothing else
# to search.
consume() {
  local label=$1 prefix=$2 library_build=$3 out
  check_no_tree_paths "$prefix" "$library_build"
  local build="$scratch/consumer/build-$label"
  # With the default search paths off, CMake finds no tools either: they are named.
  cmake -S "$scratch/consumer" -B "$build" -G Ninja -DCMAKE_MAKE_PROGRAM="$(command -v ninja)" \
    -DCMAKE_CXX_COMPILER="$(command -v c++)" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_FIND_USE_CMAKE_SYSTEM_PATH=OFF -DCMAKE_FIND_USE_SYSTEM_ENVIRONMENT_PATH=OFF \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF \
    -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
  grep -q "^ipckit_DIR:PATH=$prefix/" "$build/CMakeCache.txt" ||
    fail "$label: find_package found ipckit outside $prefix: $(grep '^ipckit_DIR' "$build/CMakeCache.txt")"
  cmake --build "$build" --verbose >"$scratch/build.log" 2>&1 || { cat "$scratch/build.log" >&2; fail "$label: consumer build failed"; }
  for tree in "$source_dir" "$build_dir" "$library_build"; do
    if grep -qF "$tree" "$scratch/build.log" "$build/compile_commands.json"; then
      fail "$label: the consumer's compile or link command names $tree"
    fi
  done
  out=$("$build/consumer")
  [ "$out" = "hello" ] || fail "$label: find_package consumer printed '$out'"
  echo "install_test: $label: find_package(ipckit) + ipckit::ipckit: ok"

  # PKG_CONFIG_LIBDIR replaces pkg-config's default search path; PKG_CONFIG_PATH would add to it.
  local flags
  flags=$(PKG_CONFIG_LIBDIR="$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig" \
    pkg-config --cflags --libs ipckit)
  for tree in "$source_dir" "$build_dir" "$library_build"; do
    case "$flags" in *"$tree"*) fail "$label: pkg-config flags name $tree: $flags" ;; esac
  done
  # shellcheck disable=SC2086 # the flags are meant to split
  c++ -std=c++20 -o "$scratch/consumer/pc-$label" "$scratch/consumer/main.cpp" $flags
  out=$(LD_LIBRARY_PATH="$prefix/lib:$prefix/lib/x86_64-linux-gnu" "$scratch/consumer/pc-$label")
  [ "$out" = "hello" ] || fail "$label: pkg-config consumer printed '$out'"
  echo "install_test: $label: pkg-config --cflags --libs ipckit: ok"
}

# Every file an install wrote (cmake's install_manifest.txt in the build it installed from)
# lies under its prefix: nothing reaches the system, such as the Python package into the
# interpreter's own site-packages.
check_manifest() {
  local label=$1 prefix=$2 manifest="$3/install_manifest.txt" outside
  [ -s "$manifest" ] || fail "$label: no install manifest at $manifest"
  outside=$(grep -v "^$prefix/" "$manifest" || true)
  [ -z "$outside" ] || fail "$label: the install wrote outside $prefix: $(tr '\n' ' ' <<<"$outside")"
}

# 1. The static library of this build.
static_prefix="$scratch/static"
cmake --install "$build_dir" --prefix "$static_prefix" >/dev/null
check_manifest static "$static_prefix" "$build_dir"
# With the Python module built, its package is installed too: under the prefix.
if grep -q '^IPCKIT_PYTHON_INSTALL_SUBDIR:' "$build_dir/CMakeCache.txt"; then
  [ -n "$(find "$static_prefix" -path '*/ipckit/__init__.py')" ] ||
    fail "static: the Python package was not installed under $static_prefix"
  echo "install_test: static: the Python package installed under the prefix: ok"
fi
consume static "$static_prefix" "$build_dir"

# 2. A shared library, built from the same sources (the library alone).
shared_build="$scratch/shared-build"
launcher=$(sed -n 's/^CMAKE_CXX_COMPILER_LAUNCHER:[A-Z]*=//p' "$build_dir/CMakeCache.txt")
# No optimisation: the point is how the library is packaged, and it builds twice as fast.
cmake -S "$source_dir" -B "$shared_build" -G Ninja -DBUILD_SHARED_LIBS=ON -DCMAKE_BUILD_TYPE= \
  -DIPCKIT_BUILD_TESTS=OFF -DIPCKIT_BUILD_TOOLS=OFF -DIPCKIT_PYTHON=OFF ${launcher:+-DCMAKE_CXX_COMPILER_LAUNCHER="$launcher"} \
  >"$scratch/shared.log" 2>&1 || { cat "$scratch/shared.log" >&2; fail "shared: configure failed"; }
cmake --build "$shared_build" --target ipckit -j2 >>"$scratch/shared.log" 2>&1 ||
  { cat "$scratch/shared.log" >&2; fail "shared: build failed"; }
shared_prefix="$scratch/shared"
cmake --install "$shared_build" --prefix "$shared_prefix" >/dev/null
check_manifest shared "$shared_prefix" "$shared_build"
[ -n "$(find "$shared_prefix" -name 'libipckit.so*')" ] ||
  fail "shared: no libipckit.so installed under $shared_prefix"
consume shared "$shared_prefix" "$shared_build"
# ldd's output in a variable first: `ldd | grep -q` under pipefail fails whenever grep stops
# reading at its first match and ldd dies of SIGPIPE.
loaded=$(ldd "$scratch/consumer/build-shared/consumer")
grep -q "libipckit.so.* => $shared_prefix/" <<<"$loaded" ||
  fail "shared: the find_package consumer does not load libipckit.so from $shared_prefix: $(grep ipckit <<<"$loaded")"
