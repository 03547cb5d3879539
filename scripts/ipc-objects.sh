#!/usr/bin/env bash
# Prints one line per kernel IPC object on this machine (System V queues, segments and
# semaphore sets by id, POSIX shared memory and queues by name), sorted, so that two
# snapshots taken around a test run can be compared: what a run adds, it leaked.
set -uo pipefail
{
  for kind in msg shm sem; do
    [ -r /proc/sysvipc/$kind ] && awk -v k="$kind" 'NR > 1 { print "sysv-" k " key=" $1 " id=" $2 }' /proc/sysvipc/$kind
  done
  for dir in /dev/shm /dev/mqueue; do
    [ -d "$dir" ] && find "$dir" -mindepth 1 -maxdepth 1 -printf "$dir/%f\n"
  done
  find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'ipckit-test-*' -printf '%p\n' 2>/dev/null
} | sort
