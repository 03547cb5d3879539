#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets into fuzz/corpus/<target>/.

The seeds are checked in; this script says how each was made, so they can be made again after
a change of input format (see the comments at the top of fuzz/*_target.cpp). Run it from
anywhere: python3 fuzz/make_seeds.py
"""
import pathlib
import struct

root = pathlib.Path(__file__).resolve().parent / "corpus"

ADDRESSES = {
    # valid, one or more per scheme
    "fd": "fd:3",
    "fifo": "fifo:/tmp/telemetry?mode=0640&framing=line",
    "fifo_keep": "fifo:/tmp/x?keep=1&max=64KiB",
    "sysvmq_hex": "sysvmq:0x1234?type=2",
    "sysvmq_ftok": "sysvmq:/etc/hosts#7",
    "sysvmq_char": "sysvmq:/etc/hosts#a",
    "sysvmq_dec": "sysvmq:-1",
    "posixmq": "posixmq:/jobs?capacity=10",
    "shm": "shm:/video?capacity=8MiB&wait=spin",
    "shm_block": "shm:/r?wait=block&max=1K",
    "sysvshm": "sysvshm:4660?capacity=1G",
    "unix_path": "unix:/run/app.sock",
    "unix_abstract": "unix:@svc?framing=length",
    "unix_seqpacket": "unix+seqpacket:@svc",
    "unix_dgram": "unix+dgram:/tmp/d.sock",
    "tcp": "tcp://localhost:5555",
    "tcp_v6": "tcp://[::1]:5555?framing=line",
    "tcp_v4": "tcp://127.0.0.1:65535",
    "size_kib": "64KiB",
    "size_plain": "18446744073709551615",
    # malformed
    "bad_no_scheme": "telemetry",
    "bad_scheme": "udp://h:1",
    "bad_colon_first": ":x",
    "bad_fd": "fd:-1",
    "bad_fd_text": "fd:3x",
    "bad_posix": "posixmq:/a/b",
    "bad_posix_empty": "shm:/",
    "bad_sysv": "sysvmq:/etc/hosts#256",
    "bad_sysv_hash": "sysvmq:#7",
    "bad_tcp_port": "tcp://host:0",
    "bad_tcp_noport": "tcp://host",
    "bad_tcp_v6": "tcp://[::1:5555",
    "bad_tcp_v6_bare": "tcp://::1:5555",
    "bad_unix_long": "unix:/" + "a" * 120,
    "bad_option": "fifo:/x?mode=0999",
    "bad_option_empty": "fifo:/x?mode=0600&&keep=1",
    "bad_option_noeq": "fifo:/x?keep",
    "bad_option_unknown": "fifo:/x?colour=red",
    "bad_framing_mq": "posixmq:/q?framing=line",
    "bad_size_overflow": "shm:/r?capacity=99999999999999999999GiB",
    "bad_size_zero": "shm:/r?capacity=0",
    "bad_type": "sysvmq:1?type=0",
    "bad_wait": "shm:/r?wait=sometimes",
}


def frame(body: bytes, magic: int = 0x314B5049) -> bytes:
    return struct.pack("<II", magic, len(body)) + body


def frame_seed(line: bool, socket: bool, style: int, limit: int, fixed: int, stream: bytes) -> bytes:
    return bytes([int(line) | int(socket) << 1 | style << 2, limit, fixed]) + stream


FRAMES = {
    "length_three": frame_seed(False, False, 0, 64, 16, frame(b"one") + frame(b"") + frame(b"three" * 3)),
    "length_socket_fixed": frame_seed(False, True, 1, 64, 4, frame(b"hello") + frame(b"hi")),
    "length_alternate": frame_seed(False, False, 2, 200, 8, b"".join(frame(bytes([i]) * i) for i in range(12))),
    "length_at_limit": frame_seed(False, False, 0, 16, 0, frame(b"x" * 16) + frame(b"y" * 17)),
    "length_bad_magic": frame_seed(False, False, 0, 64, 0, frame(b"ok") + b"GET / HTTP/1.0\r\n\r\n"),
    "length_torn_header": frame_seed(False, False, 0, 64, 0, frame(b"ok") + b"IPK1\x02"),
    "length_torn_body": frame_seed(False, True, 0, 64, 0, frame(b"ok") + struct.pack("<II", 0x314B5049, 40) + b"short"),
    "length_huge": frame_seed(False, False, 0, 255, 0, struct.pack("<II", 0x314B5049, 0xFFFFFFFF)),
    "length_big_limit": frame_seed(False, False, 3, 255, 200, frame(b"z" * 3000) + frame(b"q" * 100)),
    "line_three": frame_seed(True, False, 0, 64, 16, b"one\n\nthree\n"),
    "line_no_newline": frame_seed(True, True, 1, 64, 2, b"first\nlast"),
    "line_too_long": frame_seed(True, False, 0, 4, 0, b"abcd\nabcde\n"),
    "line_limit_zero": frame_seed(True, False, 2, 0, 0, b"\n\n\nx"),
}

# Ring programs (see fuzz/ring_target.cpp): op bytes and little-endian arguments.
CONSUMER, PRODUCER, RECV, RECV_FIXED, READ, SEND, LOAN, CLOSE_C, CLOSE_P = 2, 3, 4, 5, 6, 7, 8, 9, 10


def send(size: int) -> bytes:
    return bytes([SEND]) + struct.pack("<H", size)


def loan(size: int, commit: int) -> bytes:
    return bytes([LOAN]) + struct.pack("<HH", size, commit)


def field(selector: int, value: int) -> bytes:
    return bytes([1, selector]) + struct.pack("<Q", value)


def record(offset: int, size: int, tag: int) -> bytes:
    return bytes([11]) + struct.pack("<HIB", offset, size, tag)


def data_stamp(position: int) -> int:
    return ((position >> 3) << 1) & 0xFFFFFFFF


def ring_image(capacity: int, records: list[bytes], head_extra: int = 0) -> bytes:
    """A formatted ring (layout version 2, kind 1) holding `records`, as the bytes of its region."""
    header = bytearray(1024)
    # magic, version, kind, header_size, line_size, record_alignment, reserved, capacity
    struct.pack_into("<QIIIIIIQ", header, 0, 0x31474E49524B5049, 2, 1, 1024, 128, 8, 0, capacity)
    data = bytearray(capacity)
    at = 0
    for body in records:
        struct.pack_into("<II", data, at, len(body), data_stamp(at))  # commit word: length, stamp
        data[at + 8 : at + 8 + len(body)] = body
        at += (8 + len(body) + 7) & ~7
    struct.pack_into("<II", data, at, 0xFFFFFFFF, ~data_stamp(at) & 0xFFFFFFFF)  # the end mark
    struct.pack_into("<Q", header, 384, at + head_extra)  # producer cursor
    return bytes(header + data)


RINGS = {
    # a ring with a few records, sent and received whole, in place and into a small buffer
    "records": bytes([1]) + bytes([PRODUCER, CONSUMER]) + send(5) + send(0) + loan(20, 12) + bytes([RECV, READ, RECV_FIXED, 4, RECV_FIXED, 64]),
    # wrap-around: fill, drain, refill so records pad at the end
    "wrap": bytes([0]) + bytes([PRODUCER, CONSUMER]) + (send(20) + bytes([RECV])) * 6 + send(24) + send(24) + bytes([RECV, RECV]),
    "close_producer": bytes([2]) + bytes([PRODUCER, CONSUMER]) + send(7) + send(9) + bytes([CLOSE_P, RECV, RECV, RECV]),
    "close_consumer": bytes([2]) + bytes([CONSUMER, PRODUCER, CLOSE_C]) + send(3) + bytes([CONSUMER]),
    "too_large": bytes([0]) + bytes([PRODUCER, CONSUMER]) + send(25) + loan(40, 0),
    # corruption of each kind
    "bad_magic": bytes([1]) + field(0, 0x4141414141414141) + bytes([CONSUMER, PRODUCER]),
    "bad_capacity": bytes([1]) + field(3, 1 << 20) + bytes([CONSUMER]),
    "head_past_tail": bytes([1]) + bytes([PRODUCER, CONSUMER]) + send(5) + field(10, 4096) + bytes([RECV]),
    "head_unaligned": bytes([1]) + bytes([CONSUMER]) + field(10, 12) + bytes([RECV]),
    "tail_ahead": bytes([1]) + bytes([PRODUCER, CONSUMER]) + send(5) + field(11, 64) + send(5) + bytes([RECV]),
    "record_size_huge": bytes([1]) + bytes([PRODUCER, CONSUMER]) + send(5) + record(0, 0xFFFFFFF0, 0) + bytes([RECV, READ]),
    "record_padding_wrong": bytes([1]) + bytes([PRODUCER, CONSUMER]) + send(5) + record(0, 8, 1) + bytes([RECV]),
    "record_bad_tag": bytes([1]) + bytes([PRODUCER, CONSUMER]) + send(5) + record(0, 5, 2) + bytes([READ]),
    "state_unknown": bytes([1]) + field(8, (7 << 32) | 1234) + bytes([CONSUMER]),
    # the consumer end held by pid 1 (alive: refused), the producer's by a pid that is not running
    "pid_foreign": bytes([1]) + field(8, 1 | (2 << 32) | (1 << 40)) + field(7, 0x7FFFFFF0 | (2 << 32)) + bytes([CONSUMER, PRODUCER, RECV]),
    # reclaiming closed ends: a new consumer resumes where the old one stopped, a new producer continues
    "reattach": bytes([2]) + bytes([PRODUCER, CONSUMER]) + send(7) + send(9) + bytes([RECV, CLOSE_C, CONSUMER, RECV, CLOSE_P, PRODUCER]) + send(3) + bytes([RECV]),
    "commit_word_garbage": bytes([1]) + bytes([PRODUCER, CONSUMER]) + send(5) + record(0, 5, 2) + bytes([RECV]),
    "commit_word_old_lap": bytes([1]) + bytes([PRODUCER, CONSUMER]) + send(5) + bytes([RECV]) + record(2, 5, 4) + bytes([RECV]),
    "version_one": bytes([1]) + field(1, 1) + bytes([CONSUMER, PRODUCER]),
    # the whole region from the input: a ring with three records, and one whose cursor overshoots
    "image": bytes([1, 12]) + ring_image(128, [b"alpha", b"", b"gamma-gamma"]) + bytes([CONSUMER, READ, RECV]),
    "image_overshoot": bytes([1, 12]) + ring_image(128, [b"alpha"], head_extra=8) + bytes([CONSUMER, RECV]),
}


def write(target: str, seeds: dict) -> None:
    folder = root / target
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in seeds.items():
        (folder / name).write_bytes(value.encode() if isinstance(value, str) else value)


write("address", ADDRESSES)
write("frame", FRAMES)
write("ring", RINGS)
print(f"make_seeds: {len(ADDRESSES)} address, {len(FRAMES)} frame, {len(RINGS)} ring seeds in {root}")
