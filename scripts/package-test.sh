#!/usr/bin/env bash
# The Debian packages, built and used as a user would, without touching the machine's /usr:
#   1. configures build-deb/ (shared library, prefix /usr, no tests), builds the library, the
#      tool and the Python module, and runs `cpack -G DEB`: libipckit, libipckit-dev, ipckit,
#      python3-ipckit (the long part: a second build of the library and the tool);
#   2. unpacks the four with `dpkg -x` into a temporary root;
#   3. builds consumers against that root only: C++ with find_package(ipckit), C++ with
#      pkg-config ipckit, C with pkg-config ipckit-c and with the bare header and -lipckit;
#   4. runs them with the packaged tool (the C one talks to it over shm: and topic:), the
#      packaged Python module against it, and reads the man page and the bash completion.
# Usage: scripts/package-test.sh [BUILD_DIR]   (default build-deb; CI stage `packages`)
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir=$(pwd)
build=${1:-build-deb}

fail() {
  echo "package-test: $*" >&2
  exit 1
}

mkdir -p "$build"
log="$build/package-test.log"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# Packages are for /usr; the Python package goes where Debian's python3 looks for them.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_SHARED_LIBS=ON \
  -DCMAKE_INSTALL_PREFIX=/usr -DIPCKIT_BUILD_TESTS=OFF -DIPCKIT_WERROR=ON \
  -DIPCKIT_PYTHON_INSTALL_SUBDIR=lib/python3/dist-packages -DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON \
  "${launcher[@]}" >"$log" 2>&1 || { cat "$log" >&2; fail "configure failed"; }
# Only what the packages hold (the examples and micro-benchmarks are not packaged).
targets=(ipckit ipckit_tool)
grep -q '^IPCKIT_PYTHON:BOOL=ON' "$build/CMakeCache.txt" && targets+=(ipckit_python)
cmake --build "$build" --target "${targets[@]}" >>"$log" 2>&1 || { tail -50 "$log" >&2; fail "build failed"; }
rm -f "$build"/*.deb
(cd "$build" && cpack -G DEB) >>"$log" 2>&1 || { tail -50 "$log" >&2; fail "cpack failed"; }

root=$(mktemp -d /tmp/ipckit-package-root-XXXXXX)
scratch=$(mktemp -d /tmp/ipckit-package-test-XXXXXX)
trap 'rm -rf "$root" "$scratch"' EXIT
for package in libipckit libipckit-dev ipckit python3-ipckit; do
  deb=$(ls "$build"/"${package}"_*.deb 2>/dev/null || true)
  [ -n "$deb" ] || fail "cpack made no $package package (made: $(cd "$build" && ls ./*.deb | tr '\n' ' '))"
  echo "package-test: $(basename "$deb"): Depends: $(dpkg-deb -f "$deb" Depends)"
  dpkg -x "$deb" "$root"
done
usr="$root/usr"
libdir="$usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)"
[ -e "$libdir/libipckit.so.0" ] || fail "no libipckit.so.0 in $libdir"
export LD_LIBRARY_PATH="$libdir"
tool="$usr/bin/ipckit"

# The man page and the completion are readable (rendered where man is installed).
page="$usr/share/man/man1/ipckit.1.gz"
zcat "$page" | grep -q '^\.TH IPCKIT 1' || fail "$page is no ipckit(1) man page"
if command -v man >/dev/null; then
  man -l "$page" 2>/dev/null | grep -q 'ipckit recv' || fail "the man page does not render"
fi
bash -c "source '$usr/share/bash-completion/completions/ipckit' && complete -p ipckit" >/dev/null ||
  fail "the bash completion does not load"
"$tool" --version

# C++ with find_package, against the root only.
cp -r tests/tool/consumer "$scratch/cpp"
cmake -S "$scratch/cpp" -B "$scratch/cpp/build" -G Ninja -DCMAKE_PREFIX_PATH="$usr" \
  -DCMAKE_FIND_USE_CMAKE_SYSTEM_PATH=OFF -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >/dev/null
grep -q "^ipckit_DIR:PATH=$usr/" "$scratch/cpp/build/CMakeCache.txt" ||
  fail "find_package found ipckit outside the root: $(grep '^ipckit_DIR' "$scratch/cpp/build/CMakeCache.txt")"
cmake --build "$scratch/cpp/build" >/dev/null
[ "$("$scratch/cpp/build/consumer")" = hello ] || fail "the find_package consumer failed"
echo "package-test: find_package(ipckit) consumer: ok"

export PKG_CONFIG_LIBDIR="$libdir/pkgconfig"
# shellcheck disable=SC2046 # the flags are meant to split
c++ -o "$scratch/pc-cpp" tests/tool/consumer/main.cpp $(pkg-config --cflags --libs ipckit)
[ "$("$scratch/pc-cpp")" = hello ] || fail "the pkg-config ipckit consumer failed"
echo "package-test: pkg-config ipckit consumer: ok"

# C: pkg-config ipckit-c, then the header and the library named by hand.
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -pedantic -o "$scratch/roundtrip" tests/capi/roundtrip.c $(pkg-config --cflags --libs ipckit-c)
cc -std=c11 -Wall -Wextra -Werror -pedantic -I"$usr/include" -o "$scratch/bad_input" tests/capi/bad_input.c -L"$libdir" -lipckit
"$scratch/bad_input" >/dev/null
"$scratch/roundtrip" "$tool"
echo "package-test: C consumers (pkg-config ipckit-c; the header and -lipckit) with the packaged tool: ok"

# The packaged Python module, for Debian's python3, against the packaged tool.
if [ -d "$usr/lib/python3/dist-packages/ipckit" ]; then
  PYTHONPATH="$usr/lib/python3/dist-packages" /usr/bin/python3 tests/python/tool_roundtrip.py "$tool"
fi
echo "package-test: all packages work from $root"
