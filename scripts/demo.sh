#!/usr/bin/env bash
# The main job: the lecture's programs, each with its output, ipckit moving messages from the
# shell, a topic with two subscribers, a ring's receiver killed and taken over, the Python
# module, and the benchmark of every mechanism side by side at 64 B and 1 MiB
# (`ipckit bench --quick --size 64,1MiB`: about two minutes; the full sweep is `--quick` alone, about six).
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

section "Publish/subscribe in shared memory: two subscribers, each gets every message"
topic="topic:/ipckit-demo-topic-$$"
./ipckit recv "$topic" --count 5 --timeout 10 >"$scratch/sub1.txt" &
sub1=$!
./ipckit recv "$topic" --count 5 --timeout 10 >"$scratch/sub2.txt" &
sub2=$!
sleep 0.5  # both subscribers join before the first message (a topic keeps no past by default)
run sh -c "seq 1 5 | ./ipckit send '$topic' --timeout 10"
wait "$sub1" "$sub2"
echo "subscriber 1: $(tr '\n' ' ' <"$scratch/sub1.txt")"
echo "subscriber 2: $(tr '\n' ' ' <"$scratch/sub2.txt")"

section "Crash recovery: the receiver of a ring is killed with SIGKILL; a new one takes over"
ring="shm:/ipckit-demo-ring-$$"
./ipckit recv "$ring" --timeout 10 >/dev/null &
victim=$!
sleep 0.5
run ./ipckit send "$ring" --timeout 10 "before the kill"
kill -9 "$victim"
wait "$victim" 2>/dev/null || true
echo "(receiver $victim killed with SIGKILL; no ipckit rm)"
./ipckit recv "$ring" --count 1 --timeout 10 &
receiver=$!
sleep 0.5
run ./ipckit send "$ring" --timeout 10 "after the takeover"
wait "$receiver"

if [ -f "$root/build/python/ipckit/__init__.py" ]; then
  section "Python: the lecture's producer and consumer, over a shared-memory ring"
  export PYTHONPATH="$root/build/python"
  # The module is built for Debian's interpreter (docs/python.md), whatever python3 is first on PATH.
  py=/usr/bin/python3
  [ -x "$py" ] || py=python3
  "$py" "$root/examples/python/consumer.py" "shm:/ipckit-demo-py-$$" &
  consumer=$!
  run "$py" "$root/examples/python/producer.py" "shm:/ipckit-demo-py-$$" --count 1000
  wait "$consumer"
else
  section "Python: absent (the module is built when pybind11 is found; see docs/python.md)"
fi

section "The benchmark: every mechanism side by side on this machine"
run ./ipckit bench --quick --size 64,1MiB
