#!/usr/bin/env bash
# The build is part of the product: installs ipckit into a scratch prefix, then builds two tiny
# consumer programs against the installed tree only — one with CMake's find_package(ipckit)
# and ipckit::ipckit, one with pkg-config — and runs them (a message through a real pipe).
# Usage: install_test.sh BIN_DIR SOURCE_DIR   (as tests/CMakeLists.txt passes them)
set -euo pipefail
bin_dir=$1
build_dir=$(dirname "$bin_dir")
if grep -q '^IPCKIT_SANITIZE:STRING=.\+' "$build_dir/CMakeCache.txt"; then
  echo "[  SKIPPED ] install_test: a sanitizer build (its library needs the sanitizer runtime to link)"
  exit 77
fi

scratch=$(mktemp -d /tmp/ipckit-test-install-XXXXXX)
trap 'rm -rf "$scratch"' EXIT
prefix="$scratch/prefix"
cmake --install "$build_dir" --prefix "$prefix" >/dev/null

mkdir -p "$scratch/consumer"
cat >"$scratch/consumer/main.cpp" <<'CPP'
#include <ipckit/io.hpp>
#include <ipckit/pipe.hpp>

#include <array>
#include <cstdio>

int main() {
    auto pipe = ipckit::Pipe::create();
    if (!pipe.writer.write_all(ipckit::as_bytes("hello")).ok()) return 1;
    std::array<std::byte, 5> buffer{};
    if (!pipe.reader.read_exact(buffer).ok()) return 2;
    std::printf("%.5s\n", reinterpret_cast<const char*>(buffer.data()));
    return 0;
}
CPP
cat >"$scratch/consumer/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(consumer CXX)
find_package(ipckit REQUIRED)
add_executable(consumer main.cpp)
target_link_libraries(consumer PRIVATE ipckit::ipckit)
CMAKE

cmake -S "$scratch/consumer" -B "$scratch/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$scratch/consumer/build" >/dev/null
out=$("$scratch/consumer/build/consumer")
[ "$out" = "hello" ] || { echo "install_test: find_package consumer printed '$out'" >&2; exit 1; }
echo "install_test: find_package(ipckit) + ipckit::ipckit: ok"

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig"
# shellcheck disable=SC2046 # the flags are meant to split
c++ -o "$scratch/consumer/pc" "$scratch/consumer/main.cpp" $(pkg-config --cflags --libs ipckit)
out=$("$scratch/consumer/pc")
[ "$out" = "hello" ] || { echo "install_test: pkg-config consumer printed '$out'" >&2; exit 1; }
echo "install_test: pkg-config --cflags --libs ipckit: ok"
