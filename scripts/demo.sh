#!/usr/bin/env bash
# The main job: runs the lecture's programs from build/bin/ with their output, then the
# benchmark. Expects a build made by `cmake --preset default && cmake --build --preset default`.
set -euo pipefail
bin="$(cd "$(dirname "$0")/.." && pwd)/build/bin"

run() {
  echo "\$ $*"
  "$@"
  echo
}

cd "$bin"
run ./pipe1
run ./pipe2
run ./pipe3
