#!/usr/bin/env python3
"""The shm 64 B round trip from Python, measured as `ipckit bench` measures it in C++.

Two processes (this one and an echo peer it starts as a fresh interpreter), two one-way
shm: channels (ping and pong), one message of SIZE bytes out and back per sample, timed with
CLOCK_MONOTONIC; after a warm-up every round trip is kept, and p50/p99/p99.9 are read from
the sorted samples (nearest rank). Compare with `ipckit bench --transport shm --size 64`.

    PYTHONPATH=build/python /usr/bin/python3 bench/python_roundtrip.py [--count N] [--size B]
        [--wait block,adaptive,spin] [--api recv,recv_into,read]
"""

import argparse
import os
import subprocess
import sys
import time

import ipckit

PEER = r"""
import sys, ipckit
ping, pong, api = sys.argv[1], sys.argv[2], sys.argv[3]
rx = ipckit.Receiver.open(ping, timeout=10)
tx = ipckit.Sender.open(pong, timeout=10)
buffer = bytearray(rx.max_message_size)
view = memoryview(buffer)
try:
    if api == "recv_into":
        while True:
            n = rx.recv_into(buffer)
            tx.send(view[:n])
    elif api == "read":
        while True:
            with rx.read() as message:
                with tx.loan(len(message)) as out:
                    out[:] = message
    else:
        for message in rx:
            tx.send(message)
except ipckit.Closed:
    pass
"""


def nearest_rank(sorted_samples, p):
    index = max(0, min(len(sorted_samples) - 1, int(-(-p * len(sorted_samples) // 100)) - 1))
    return sorted_samples[index]


def run(wait, api, size, count, warmup):
    base = f"/ipckit-pybench-{os.getpid()}-{wait}-{api}"
    ping = f"shm:{base}-ping?wait={wait}"
    pong = f"shm:{base}-pong?wait={wait}"
    tx = ipckit.Sender.create(ping)
    rx = ipckit.Receiver.create(pong)
    peer = subprocess.Popen([sys.executable, "-c", PEER, ping, pong, api])
    try:
        message = bytes(size)
        buffer = bytearray(rx.max_message_size)
        clock = time.perf_counter_ns
        samples = []
        for i in range(warmup + count):
            start = clock()
            if api == "recv_into":
                tx.send(message)
                rx.recv_into(buffer)
            elif api == "read":
                with tx.loan(size) as out:
                    out[:] = message
                with rx.read():
                    pass
            else:
                tx.send(message)
                rx.recv()
            if i >= warmup:
                samples.append(clock() - start)
    finally:
        tx.close()  # the peer's recv sees Closed and it exits
        peer.wait(timeout=30)
        rx.close()
    samples.sort()
    return [nearest_rank(samples, p) / 1000 for p in (50, 99, 99.9)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="round trips measured per row")
    parser.add_argument("--warmup", type=int, default=5_000, help="round trips before measuring")
    parser.add_argument("--size", type=int, default=64, help="message size in bytes")
    parser.add_argument("--wait", default="block,adaptive", help="ring wait modes (block, adaptive, spin)")
    parser.add_argument("--api", default="recv,recv_into,read", help="Python calls: recv, recv_into, read")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]} ({sys.executable}), shm {args.size} B round trip, "
          f"{args.count} samples after {args.warmup} warm-up")
    print(f"{'row':<26} {'p50 us':>8} {'p99 us':>8} {'p99.9 us':>9}")
    for wait in args.wait.split(","):
        for api in args.api.split(","):
            p50, p99, p999 = run(wait, api, args.size, args.count, args.warmup)
            print(f"{'py-shm-' + wait + ' ' + api:<26} {p50:8.2f} {p99:8.2f} {p999:9.2f}", flush=True)


if __name__ == "__main__":
    main()
