#!/usr/bin/env python3
"""producer.py: the lecture's producer, in Python, over any ipckit address.

Opens the channel consumer.py created (waiting up to --wait seconds for it) and sends COUNT
numbered records of 256 bytes, each with a CRC-32 of its payload; closing the Sender at the
end tells the consumer that nothing more will come. See consumer.py for a run.
"""

import argparse
import struct
import sys
import time
import zlib

import ipckit

HEADER = struct.Struct("<II")  # sequence number, CRC-32 of the payload
RECORD_SIZE = 256


def open_when_there(address, wait):
    """Opens the consumer's channel, waiting for the consumer to have created it."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return ipckit.Sender.open(address, timeout=wait)
        except ipckit.Error as e:
            # ENOENT (not created yet) or ECONNREFUSED (not listening yet): try again.
            if e.errno not in (2, 111) or time.monotonic() > deadline:
                raise
        time.sleep(0.01)


def main():
    parser = argparse.ArgumentParser(description="Send numbered, checksummed records")
    parser.add_argument("address", help="the consumer's address, e.g. fifo:/tmp/demo.fifo")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--wait", type=float, default=10.0, help="SECONDS to wait for the consumer")
    args = parser.parse_args()

    try:
        with open_when_there(args.address, args.wait) as tx:
            for sequence in range(args.count):
                payload = bytes((sequence + i) & 0xFF for i in range(RECORD_SIZE - HEADER.size))
                record = HEADER.pack(sequence, zlib.crc32(payload)) + payload
                if not tx.send(record, timeout=args.wait):
                    print(f"producer: no room within {args.wait:g} s", file=sys.stderr)
                    return 1
    except ipckit.Closed:
        print("producer: the consumer went away", file=sys.stderr)
        return 1
    except ipckit.Error as e:
        print(f"producer: {e}", file=sys.stderr)
        return 1
    print(f"producer: sent {args.count} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
