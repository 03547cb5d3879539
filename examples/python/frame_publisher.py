#!/usr/bin/env python3
"""frame_publisher.py: NumPy frames from one publisher to two subscribers, zero copy.

Starts SUBSCRIBERS copies of frame_subscriber.py; each creates its own shared-memory ring
(shm:/NAME-i). The publisher then renders every frame straight into each ring's record with
`with tx.loan(n) as buf:` and `numpy.frombuffer(buf)` (the frame is computed in place, not
copied in), and each subscriber looks at it in place with `with rx.read() as view:`.
A channel has one receiver, so two subscribers are two rings here; a `topic:` address will
make it one loan for all of them.

    $ PYTHONPATH=build/python python3 examples/python/frame_publisher.py --frames 100
    frame_subscriber 0: 100 frames of 480x640 uint8, 0 wrong, mean brightness 124.6
    frame_subscriber 1: 100 frames of 480x640 uint8, 0 wrong, mean brightness 124.6
    frame_publisher: 100 frames to 2 subscribers
"""

import argparse
import os
import subprocess
import sys
import time

import numpy

import ipckit

HEIGHT, WIDTH = 480, 640
HEADER = 8  # the frame number, uint64, before the pixels


def open_when_there(address, wait=10.0):
    deadline = time.monotonic() + wait
    while True:
        try:
            return ipckit.Sender.open(address)
        except ipckit.Error as e:
            if e.errno != 2 or time.monotonic() > deadline:
                raise
        time.sleep(0.01)


def main():
    parser = argparse.ArgumentParser(description="Publish NumPy frames to subscribers")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--subscribers", type=int, default=2)
    parser.add_argument("--name", default=f"/ipckit-frames-{os.getpid()}")
    args = parser.parse_args()

    here = os.path.dirname(os.path.abspath(__file__))
    addresses = [f"shm:{args.name}-{i}?capacity=16MiB" for i in range(args.subscribers)]
    subscribers = [
        subprocess.Popen([sys.executable, os.path.join(here, "frame_subscriber.py"), address, str(i)],
                         stdout=subprocess.PIPE, text=True)  # reports printed in order below
        for i, address in enumerate(addresses)
    ]
    try:
        senders = [open_when_there(address) for address in addresses]
        for frame_number in range(args.frames):
            for tx in senders:
                with tx.loan(HEADER + HEIGHT * WIDTH) as buf:
                    numpy.frombuffer(buf[:HEADER], dtype=numpy.uint64)[0] = frame_number
                    pixels = numpy.frombuffer(buf[HEADER:], dtype=numpy.uint8).reshape(HEIGHT, WIDTH)
                    pixels[:] = (numpy.arange(WIDTH, dtype=numpy.uint32) + frame_number) % 256
                    del pixels  # the view must not outlive the block
        for tx in senders:
            tx.close()  # each subscriber sees Closed after the last frame
        failed = 0
        for s in subscribers:
            print(s.communicate(timeout=60)[0], end="")
            failed += s.returncode != 0
    finally:
        for s in subscribers:
            if s.poll() is None:
                s.kill()
                s.wait()
    print(f"frame_publisher: {args.frames} frames to {args.subscribers} subscribers")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
