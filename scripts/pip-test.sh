#!/usr/bin/env bash
# `python3 -m pip install ./python` as a user runs it, offline: into a fresh `python3 -m venv`
# of whichever python3 is first on PATH, with no package index reachable (PIP_NO_INDEX) and
# build isolation on (the in-tree backend needs nothing downloaded). Then, outside the source
# tree, imports the module and runs tests/python/tool_roundtrip.py against the built tool.
# The long part is the build of the library inside pip.
# Usage: scripts/pip-test.sh [IPCKIT_TOOL]   (default build/bin/ipckit; CI stage `pip`)
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir=$(pwd)
tool=$(realpath "${1:-build/bin/ipckit}")
[ -x "$tool" ] || { echo "pip-test: no tool at $tool (build first)" >&2; exit 1; }

scratch=$(mktemp -d /tmp/ipckit-pip-test-XXXXXX)
trap 'rm -rf "$scratch"' EXIT
python=$(command -v python3)
echo "pip-test: $python ($("$python" --version 2>&1))"
"$python" -m venv "$scratch/venv"
export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
"$scratch/venv/bin/python" -m pip install "$source_dir/python" >"$scratch/pip.log" 2>&1 ||
  { cat "$scratch/pip.log" >&2; echo "pip-test: pip install ./python failed" >&2; exit 1; }
grep -E '^Successfully installed' "$scratch/pip.log"
# From elsewhere, so that nothing of the source tree is imported by accident.
cd "$scratch"
"$scratch/venv/bin/python" -c 'import ipckit, sys; assert ipckit.__file__.startswith(sys.prefix), ipckit.__file__'
"$scratch/venv/bin/python" "$source_dir/tests/python/tool_roundtrip.py" "$tool"
