#!/usr/bin/env python3
"""consumer.py: the lecture's consumer, in Python, over any ipckit address.

Creates the channel, then receives numbered, checksummed records until the producer closes,
and reports how many arrived, how many were torn (bad checksum) and how many out of order.

    $ PYTHONPATH=build/python python3 examples/python/consumer.py fifo:/tmp/demo.fifo &
    $ PYTHONPATH=build/python python3 examples/python/producer.py fifo:/tmp/demo.fifo --count 10000
    producer: sent 10000 records
    consumer: received 10000 records, 0 torn, 0 out of order

Any address works (shm:/demo, posixmq:/demo, unix:@demo, tcp://127.0.0.1:5555, ...), and
either side may be the C++ tool: `ipckit recv ADDRESS` prints what producer.py sends.
"""

import argparse
import struct
import sys
import zlib

import ipckit

HEADER = struct.Struct("<II")  # sequence number, CRC-32 of the payload


def main():
    parser = argparse.ArgumentParser(description="Receive the producer's records")
    parser.add_argument("address", help="where to receive, e.g. fifo:/tmp/demo.fifo or shm:/demo")
    parser.add_argument("--timeout", type=float, default=10.0, help="give up after SECONDS without a record")
    args = parser.parse_args()

    received = torn = out_of_order = 0
    expected = 0
    try:
        with ipckit.Receiver.create(args.address) as rx:
            print("consumer: ready", flush=True)
            while True:
                try:
                    record = rx.recv(timeout=args.timeout)
                except ipckit.Closed:
                    break  # the producer is done (or died): everything it sent has arrived
                if record is None:
                    print(f"consumer: no record within {args.timeout:g} s", file=sys.stderr)
                    return 1
                sequence, crc = HEADER.unpack_from(record)
                if zlib.crc32(record[HEADER.size :]) != crc:
                    torn += 1
                if sequence != expected:
                    out_of_order += 1
                expected = sequence + 1
                received += 1
    except ipckit.Error as e:
        print(f"consumer: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"consumer: interrupted after {received} records", file=sys.stderr)
        return 130
    print(f"consumer: received {received} records, {torn} torn, {out_of_order} out of order")
    return 0 if torn == 0 and out_of_order == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
