#!/usr/bin/env bash
# Rings across PID namespaces, as between a host and a container that shares /dev/shm (or the
# System V namespace) but not the host's PIDs: `unshare --pid --fork --mount-proc` makes the
# namespaced end pid 1 of its own namespace. For shm:, sysvshm:, shm:@ (abstract), lanes and
# topic:
#   - delivery both ways (host -> namespaced, namespaced -> host);
#   - a second attach is refused while the namespaced holder lives, and says why (rings, lanes);
#   - after kill -9 of the namespaced holder, a host process takes its end over;
#   - `ipckit ls` names a namespaced creator "in another PID namespace";
# and shm:@/PATH (a socket file) between two processes that share only a directory: delivery,
# takeover after a kill -9, and no file left behind.
# Needs root (unshare); otherwise it says so and skips (exit 77).
# Usage: faults_containers_test.sh BIN_DIR SOURCE_DIR   (as tests/CMakeLists.txt passes them)
set -uo pipefail
bin_dir=$1
ipckit="$bin_dir/ipckit"
if [[ $(id -u) -ne 0 ]] || ! unshare --pid --fork --mount-proc true 2>/dev/null; then
  echo "[  SKIPPED ] faults_containers_test: unshare --pid needs root"
  exit 77
fi
[[ -x $ipckit ]] || { echo "faults_containers_test: no $ipckit" >&2; exit 1; }

scratch=$(mktemp -d /tmp/ipckit-test-containers-XXXXXX)
export IPCKIT_REGISTRY_DIR=$scratch/registry
mkdir -m 700 "$IPCKIT_REGISTRY_DIR"
failures=0
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  for a in "${addresses[@]}"; do "$ipckit" rm "${a%%\?*}" >/dev/null 2>&1; done
  rm -rf "$scratch"
}
addresses=()
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
# Runs ipckit in a PID namespace of its own (pid 1 there: unshare forks it). --kill-child: a
# kill -9 of unshare kills it too, so killing "$!" kills the namespaced holder itself.
# Always run in a subshell, "(in_ns …)" or "in_ns … &": it execs unshare, so "$!" is unshare.
in_ns() { exec unshare --pid --fork --kill-child=SIGKILL --mount-proc "$ipckit" "$@"; }
# Waits (bounded) until FILE has N lines.
wait_lines() {
  local file=$1 n=$2
  for _ in $(seq 1 300); do
    [[ -f $file && $(wc -l <"$file") -ge $n ]] && return 0
    sleep 0.05
  done
  return 1
}
# Waits (bounded) until the process has ended; kills it and says so otherwise.
ends_within() {
  local pid=$1 seconds=$2
  for _ in $(seq 1 $((seconds * 20))); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.05
  done
  kill -9 "$pid" 2>/dev/null
  return 1
}

# Waits (bounded) until no process runs `ipckit ARGS…` any more: a namespaced process killed
# through unshare --kill-child dies a moment after unshare itself.
no_process() {
  for _ in $(seq 1 100); do
    pgrep -f -x -- "$ipckit $*" >/dev/null || return 0
    sleep 0.05
  done
  return 1
}

suffix=$$-$RANDOM
key=$(printf '0x1c%06x' $((RANDOM * 32 + $$ % 32)))
cases=(
  "shm:/ipckit-ns-ring-$suffix|ring"
  "sysvshm:$key|ring"
  "shm:@ipckit-ns-memfd-$suffix|ring"
  "shm:/ipckit-ns-lanes-$suffix?senders=2|lanes"
  "topic:/ipckit-ns-topic-$suffix|topic"
)

for entry in "${cases[@]}"; do
  address=${entry%%|*}
  kind=${entry##*|}
  addresses+=("$address")
  out=$scratch/out

  # 1. host sender -> namespaced receiver
  rm -f "$out"
  in_ns recv "$address" --count 3 --timeout 20 >"$out" 2>"$scratch/err" &
  receiver=$!
  pids+=("$receiver")
  sleep 0.3
  "$ipckit" send "$address" one two three --timeout 10 2>>"$scratch/err" || fail "$address: host send to a namespaced receiver failed: $(cat "$scratch/err")"
  ends_within "$receiver" 20 || fail "$address: the namespaced receiver did not end"
  [[ "$(cat "$out" 2>/dev/null)" == $'one\ntwo\nthree' ]] || fail "$address: host -> namespace delivered '$(cat "$out" 2>/dev/null)'"

  # 2. namespaced sender -> host receiver
  rm -f "$out"
  "$ipckit" recv "$address" --count 3 --timeout 20 >"$out" 2>"$scratch/err" &
  receiver=$!
  pids+=("$receiver")
  sleep 0.3
  (in_ns send "$address" four five six --timeout 10 2>>"$scratch/err") || fail "$address: namespaced send to a host receiver failed: $(cat "$scratch/err")"
  ends_within "$receiver" 20 || fail "$address: the host receiver did not end"
  [[ "$(cat "$out" 2>/dev/null)" == $'four\nfive\nsix' ]] || fail "$address: namespace -> host delivered '$(cat "$out" 2>/dev/null)'"

  # 3. a namespaced receiver holds the end: a second one is refused while it lives; after its
  #    kill -9 a host receiver takes the end over and gets what a host sender sends.
  rm -f "$out"
  in_ns recv "$address" --timeout 30 >"$out" 2>/dev/null &
  holder=$!
  pids+=("$holder")
  sleep 0.3
  # The sender stays (its input stays open), so the holder does not end with a `closed`.
  (echo held; sleep 30) | "$ipckit" send "$address" --timeout 10 2>/dev/null &
  sender=$!
  wait_lines "$out" 1 || fail "$address: the namespaced holder got nothing"
  if [[ $kind != topic ]]; then
    second=$("$ipckit" recv "$address" --timeout 2 2>&1)
    [[ $second == *"held by a process in another PID namespace (alive)"* ]] ||
      fail "$address: a second receiver beside a live namespaced one: '$second'"
  fi
  if [[ $kind == ring ]]; then
    listing=$("$ipckit" ls 2>/dev/null | grep -F -- "${address%%\?*}")
    # shm:/ (the registry's record): "in another PID namespace"; sysvshm: the kernel gives the
    # creator's pid as seen from here (a live host pid); shm:@ has no file to list.
    if [[ $address == shm:/* ]]; then
      [[ $listing == *"in another PID namespace"* ]] || fail "$address: ipckit ls shows '$listing'"
    elif [[ $address == sysvshm:* ]]; then
      [[ $listing =~ \ [0-9]+\ +yes\  ]] || fail "$address: ipckit ls shows '$listing'"
    fi
  fi
  kill -9 "$holder"
  wait "$holder" 2>/dev/null
  no_process recv "$address" --timeout 30 || fail "$address: the namespaced holder outlived its kill"
  # The sender leaves (cleanly); the end of the dead receiver is then taken over by a host one,
  # which a sender after it reaches.
  kill "$sender" 2>/dev/null
  wait "$sender" 2>/dev/null
  "$ipckit" recv "$address" --count 1 --timeout 20 >"$out" 2>/dev/null &
  taker=$!
  pids+=("$taker")
  sleep 0.3
  "$ipckit" send "$address" after-kill --timeout 10 2>/dev/null
  ends_within "$taker" 20 || fail "$address: the host receiver after the kill did not end"
  if [[ $address == shm:@* ]]; then
    # The namespaced holder created and served the memfd: with it gone the host pair made a
    # new one (nothing of the dead is reachable); it must still carry the message.
    grep -qx after-kill "$out" || fail "$address: after the kill: '$(cat "$out")'"
  else
    grep -qx after-kill "$out" || fail "$address: the host receiver after the kill got '$(cat "$out")'"
  fi
done

# topic: one host and one namespaced subscriber both get all 1000 lines, none missed.
address="topic:/ipckit-ns-topic2-$suffix"
addresses+=("$address")
in_ns recv "$address" --count 1000 --timeout 30 >"$scratch/ns.txt" 2>/dev/null &
ns_sub=$!
pids+=("$ns_sub")
sleep 0.3
"$ipckit" recv "$address" --count 1000 --timeout 30 >"$scratch/host.txt" 2>/dev/null &
host_sub=$!
pids+=("$host_sub")
sleep 0.3
seq 1 1000 | "$ipckit" send "$address" --timeout 20 || fail "$address: publishing 1000 lines failed"
ends_within "$ns_sub" 30 || fail "$address: the namespaced subscriber did not end"
ends_within "$host_sub" 30 || fail "$address: the host subscriber did not end"
[[ $(wc -l <"$scratch/ns.txt") -eq 1000 ]] || fail "$address: the namespaced subscriber got $(wc -l <"$scratch/ns.txt") of 1000"
[[ $(wc -l <"$scratch/host.txt") -eq 1000 ]] || fail "$address: the host subscriber got $(wc -l <"$scratch/host.txt") of 1000"

# shm:@/PATH: a memfd ring handed over a socket file, between processes that share nothing but
# one directory (each in its own PID, IPC, network and mount namespaces).
full_ns() { exec unshare --pid --ipc --net --mount --fork --kill-child=SIGKILL --mount-proc "$ipckit" "$@"; }
sock=$scratch/ring.sock
address="shm:@$sock"
full_ns recv "$address" --count 3 --timeout 20 >"$scratch/sf.txt" 2>"$scratch/err" &
receiver=$!
pids+=("$receiver")
sleep 0.5
(full_ns send "$address" a b c --timeout 10 2>>"$scratch/err") || fail "$address: send between separated namespaces failed: $(cat "$scratch/err")"
ends_within "$receiver" 20 || fail "$address: the receiver did not end"
[[ "$(cat "$scratch/sf.txt" 2>/dev/null)" == $'a\nb\nc' ]] || fail "$address: delivered '$(cat "$scratch/sf.txt")'"
[[ ! -e $sock ]] || fail "$address: the socket file stayed after a clean exit"
# Takeover: the sender serves; its first receiver is killed -9, and a receiver in a third set of
# namespaces takes the dead one's end over (refused were it taken for alive) and gets the rest.
(echo one; sleep 2; echo two) | full_ns send "$address" --create --timeout 20 2>"$scratch/err" &
sender=$!
pids+=("$sender")
full_ns recv "$address" --open --timeout 20 >"$scratch/sf1.txt" 2>/dev/null &
victim=$!
pids+=("$victim")
wait_lines "$scratch/sf1.txt" 1 || fail "$address: the first receiver got nothing"
kill -9 "$victim"
wait "$victim" 2>/dev/null
no_process recv "$address" --open --timeout 20 || fail "$address: the first receiver outlived its kill"
full_ns recv "$address" --open --count 1 --timeout 20 >"$scratch/sf2.txt" 2>"$scratch/err2" &
taker=$!
pids+=("$taker")
ends_within "$taker" 20 || fail "$address: the receiver that took over did not end"
[[ "$(cat "$scratch/sf2.txt")" == two ]] || fail "$address: after the takeover: '$(cat "$scratch/sf2.txt")' $(cat "$scratch/err2")"
ends_within "$sender" 20 || fail "$address: the serving sender did not end"
wait "$sender" || fail "$address: the serving sender failed: $(cat "$scratch/err")"
[[ ! -e $sock ]] || fail "$address: the socket file stayed after the last holder left"

if ((failures > 0)); then
  echo "faults_containers_test: $failures failure(s)"
  exit 1
fi
echo "faults: containers cases=${#cases[@]} ok"
