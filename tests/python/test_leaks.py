"""Reference counting: 100,000 messages through every path of the module leave the
process's resident set where it was (measured from /proc/self/status)."""

import sys

import ipckit
from conftest import rss_kib, unique_name

MESSAGES = 100_000
# Far below what one leaked object per message would cost (100,000 x >= 32 B = 3 MiB+),
# well above allocator noise.
ALLOWED_GROWTH_KIB = 2048


def exercise(rx, tx, n):
    buffer = bytearray(256)
    payload = bytes(64)
    for i in range(n):
        path = i % 5
        if path == 0:
            tx.send(payload)
            assert len(rx.recv()) == 64
        elif path == 1:
            tx.try_send(memoryview(payload))
            assert rx.recv_into(buffer) == 64
        elif path == 2:
            with tx.loan(64) as buf:
                buf[:4] = b"loan"
            with rx.read() as view:
                assert view[:4] == b"loan"
        elif path == 3:
            assert rx.try_recv() is None
            try:
                with rx.read(timeout=0):
                    pass
            except ipckit.Timeout:
                pass
        else:
            try:
                ipckit.Sender.open("shm:")  # an error: its exception must be freed too
            except ipckit.Error:
                pass


def test_no_leak_over_100000_messages():
    address = f"shm:/{unique_name()}"
    with ipckit.Receiver.create(address) as rx, ipckit.Sender.open(address) as tx:
        exercise(rx, tx, 10_000)  # warm up: caches, the allocator's arenas
        before_refs = sys.getrefcount(rx), sys.getrefcount(tx)
        before = rss_kib()
        exercise(rx, tx, MESSAGES)
        after = rss_kib()
        assert (sys.getrefcount(rx), sys.getrefcount(tx)) == before_refs
    assert after - before < ALLOWED_GROWTH_KIB, f"RSS grew {after - before} KiB over {MESSAGES} messages"
