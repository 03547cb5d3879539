#!/usr/bin/env python3
"""frame_subscriber.py ADDRESS INDEX: one subscriber of frame_publisher.py.

Creates the ring at ADDRESS, then looks at each frame in place (`with rx.read() as view:`,
numpy.frombuffer over the view: no copy), checks that every pixel is what the publisher drew
for that frame number, and reports when the publisher closes.
"""

import sys

import numpy

import ipckit

HEIGHT, WIDTH = 480, 640
HEADER = 8


def main():
    address, index = sys.argv[1], sys.argv[2]
    frames = wrong = 0
    brightness = 0.0
    expected_row = numpy.arange(WIDTH, dtype=numpy.uint32)
    with ipckit.Receiver.create(address) as rx:
        while True:
            try:
                with rx.read(timeout=30) as view:
                    number = int(numpy.frombuffer(view[:HEADER], dtype=numpy.uint64)[0])
                    pixels = numpy.frombuffer(view[HEADER:], dtype=numpy.uint8).reshape(HEIGHT, WIDTH)
                    if not numpy.array_equal(pixels[HEIGHT // 2], (expected_row + number) % 256) or number != frames:
                        wrong += 1
                    frames += 1
                    brightness += float(pixels.mean())
                    del pixels  # views into the ring end with the block
            except ipckit.Closed:
                break
    mean = brightness / frames if frames else 0.0
    print(f"frame_subscriber {index}: {frames} frames of {HEIGHT}x{WIDTH} uint8, {wrong} wrong, "
          f"mean brightness {mean:.1f}")
    return 0 if wrong == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
