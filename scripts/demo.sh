#!/usr/bin/env bash
# The main job: the lecture's programs, each with its output, ipckit moving messages from the
# shell, and the benchmark of every mechanism side by side (`ipckit bench --quick`).
# Expects a build made by `cmake --preset default && cmake --build --preset default`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/build/bin"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

section() { printf '\n== %s\n' "$*"; }
run() {
  echo "\$ $*"
  "$@"
}

cd "$bin"
section "Unnamed pipes (pipe1: one process; pipe2: fork; pipe3 + pipe4: fork + exec)"
run ./pipe1
run ./pipe2
run ./pipe3

section "Named pipe: producer and consumer, unrelated processes"
./fifo_consumer "$scratch/records.fifo" --expect 100000 &
consumer=$!
run ./fifo_producer "$scratch/records.fifo" --count 100000 --wait 10
wait "$consumer"

section "System V message queue: three message types, selective receive"
key="0x1f$(printf '%06x' $$)"
run ./msgq_producer --key "$key" --count 5
run ./msgq_consumer --key "$key" --first 2

section "POSIX message queue with priorities"
name="/ipckit-demo-$$"
run ./posixmq_producer --name "$name" --count 3
run ./posixmq_consumer --name "$name"

section "Shared memory without synchronisation (the race the lecture warns of), then with it"
run ./shm_race --count 200000
run ./shm_sync --count 200000

section "From the shell: ipckit recv in one process, ipckit send in another"
./ipckit recv "unix:@ipckit-demo-$$" --count 2 --timeout 10 &
receiver=$!
run ./ipckit send "unix:@ipckit-demo-$$" --timeout 10 "Hello" "from ipckit send"
wait "$receiver"

section "The benchmark: every mechanism side by side on this machine"
run ./ipckit bench --quick
