# Sourced by capi_test.sh and rust_test.sh: skips a sanitizer build, then installs this build's
# library and headers (components lib and dev) into a scratch prefix removed on exit.
# In: $test (the test's name), $bin_dir. Out: $build_dir, $scratch, $prefix.
build_dir=$(cd "$(dirname "$bin_dir")" && pwd)
if grep -q '^IPCKIT_SANITIZE:STRING=.\+' "$build_dir/CMakeCache.txt"; then
  echo "[  SKIPPED ] $test: a sanitizer build (its library needs the sanitizer runtime to link)"
  exit 77
fi
scratch=$(mktemp -d "/tmp/ipckit-test-$test-XXXXXX")
trap 'rm -rf "$scratch"' EXIT
prefix="$scratch/prefix"
for component in lib dev; do
  cmake --install "$build_dir" --prefix "$prefix" --component "$component" >/dev/null
done
