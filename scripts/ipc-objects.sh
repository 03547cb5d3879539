#!/usr/bin/env bash
# Prints one line per kernel IPC object on this machine (System V queues, segments and
# semaphore sets by id, POSIX shared memory and queues by name), sorted, so that two
# snapshots taken around a test run can be compared: what a run adds, it leaked.
#
# POSIX queues are listed through an mqueue filesystem: /dev/mqueue where it is mounted;
# otherwise, as root, one mounted for a moment in a private mount namespace (nothing on the
# machine changes); otherwise they cannot be seen, and the script says so on stderr.
set -uo pipefail

mqueue_mounted() {
  [ "$(stat -f -c %T /dev/mqueue 2>/dev/null)" = mqueue ]
}

list_mqueues() {
  if mqueue_mounted; then
    find /dev/mqueue -mindepth 1 -maxdepth 1 -printf '/dev/mqueue/%f\n'
  elif [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
    # A fresh mount point in a private namespace: the queues are the IPC namespace's, the
    # mount is this command's alone and goes with it.
    unshare --mount --propagation private sh -c '
      d=$(mktemp -d) && mount -t mqueue none "$d" &&
      find "$d" -mindepth 1 -maxdepth 1 -printf "/dev/mqueue/%f\n"; umount "$d"; rmdir "$d"'
  else
    echo "ipc-objects: /dev/mqueue is not mounted and this is not root: POSIX queues are not listed" >&2
  fi
}

{
  for kind in msg shm sem; do
    [ -r /proc/sysvipc/$kind ] && awk -v k="$kind" 'NR > 1 { print "sysv-" k " key=" $1 " id=" $2 }' /proc/sysvipc/$kind
  done
  [ -d /dev/shm ] && find /dev/shm -mindepth 1 -maxdepth 1 -printf '/dev/shm/%f\n'
  list_mqueues
  find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'ipckit-test-*' -printf '%p\n' 2>/dev/null
} | sort
