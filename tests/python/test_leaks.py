"""Reference counting and memory: 100,000 messages through every path of the module (each
round moves one by send/recv, try_send/recv_into or loan/read, then makes an empty receive and
a failed open) leave the process's allocations where they were: its Python objects
(sys.getallocatedblocks) and its C and C++ heap (glibc's mallinfo2: bytes in use)."""

import ctypes
import sys

import ipckit
from conftest import unique_name

MESSAGES = 100_000
# A leak of 32 B per message is 3,200,000 B of heap; one Python object per message, 100,000
# blocks. The limits sit far below that and above what a warmed-up interpreter's caches move.
ALLOWED_HEAP_GROWTH = 256 * 1024
ALLOWED_BLOCK_GROWTH = 1000

_libc = ctypes.CDLL(None)


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


_libc.mallinfo2.restype = _Mallinfo2
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.free.argtypes = [ctypes.c_void_p]


def heap_in_use():
    """Bytes malloc has handed out and not had back, in every arena and mmap'd chunk."""
    info = _libc.mallinfo2()
    return info.uordblks + info.hblkhd


def exercise(rx, tx, messages):
    buffer = bytearray(256)
    payload = bytes(64)
    for i in range(messages):
        path = i % 3
        if path == 0:
            tx.send(payload)
            assert len(rx.recv()) == 64
        elif path == 1:
            tx.try_send(memoryview(payload))
            assert rx.recv_into(buffer) == 64
        else:
            with tx.loan(64) as buf:
                buf[:4] = b"loan"
            with rx.read() as view:
                assert view[:4] == b"loan"
        if i % 5 == 0:
            assert rx.try_recv() is None
            try:
                with rx.read(timeout=0):
                    pass
            except ipckit.Timeout:
                pass
            try:
                ipckit.Sender.open("shm:")  # an error: its exception must be freed too
            except ipckit.Error:
                pass


def growth(run):
    """What `run()` left allocated: (heap bytes, Python blocks)."""
    heap, blocks = heap_in_use(), sys.getallocatedblocks()
    run()
    return heap_in_use() - heap, sys.getallocatedblocks() - blocks


def test_no_leak_over_100000_messages():
    address = f"shm:/{unique_name()}"
    with ipckit.Receiver.create(address) as rx, ipckit.Sender.open(address) as tx:
        exercise(rx, tx, 10_000)  # warm up: caches, the allocator's arenas
        before_refs = sys.getrefcount(rx), sys.getrefcount(tx)
        heap, blocks = growth(lambda: exercise(rx, tx, MESSAGES))
        assert (sys.getrefcount(rx), sys.getrefcount(tx)) == before_refs
    assert heap < ALLOWED_HEAP_GROWTH, f"the heap grew {heap} B over {MESSAGES} messages"
    assert blocks < ALLOWED_BLOCK_GROWTH, f"{blocks} Python objects more after {MESSAGES} messages"


def test_the_limits_see_a_leak_of_32_bytes_or_one_object_per_message():
    # The pointers' array is made first, so only the leaked blocks are measured.
    kept = (ctypes.c_void_p * MESSAGES)()

    def leak():
        for i in range(MESSAGES):
            kept[i] = _libc.malloc(32)

    heap, _ = growth(leak)
    for pointer in kept:
        _libc.free(pointer)
    assert heap >= ALLOWED_HEAP_GROWTH, f"a 32 B leak per message grew the heap only {heap} B"
    objects = []
    _, blocks = growth(lambda: objects.extend(object() for _ in range(MESSAGES)))
    assert blocks >= ALLOWED_BLOCK_GROWTH, f"a leaked object per message added only {blocks} blocks"
