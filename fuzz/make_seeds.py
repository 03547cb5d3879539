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
    "shm_latency": "shm:/r?senders=2&stats=latency",
    "shm_socket_file": "shm:@/run/ipckit/ring.sock?capacity=64KiB",
    "sysvshm": "sysvshm:4660?capacity=1G",
    "unix_path": "unix:/run/app.sock",
    "unix_abstract": "unix:@svc?framing=length",
    "unix_seqpacket": "unix+seqpacket:@svc",
    "unix_dgram": "unix+dgram:/tmp/d.sock",
    "tcp": "tcp://localhost:5555",
    "tcp_v6": "tcp://[::1]:5555?framing=line",
    "tcp_v4": "tcp://127.0.0.1:65535",
    "file": "file:/tmp/cam.ipk?pace=recorded&max=1MiB",
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
    "bad_pace": "file:/tmp/x?pace=slow",
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
    """A formatted ring (layout version 3, kind 1) holding `records`, as the bytes of its region."""
    header = bytearray(2048)
    # magic, version, kind, header_size, line_size, record_alignment, flags, capacity
    struct.pack_into("<QIIIIIIQ", header, 0, 0x31474E49524B5049, 3, 1, 2048, 128, 8, 0, capacity)
    data = bytearray(capacity)
    at = 0
    for body in records:
        struct.pack_into("<II", data, at, len(body), data_stamp(at))  # commit word: length, stamp
        data[at + 8 : at + 8 + len(body)] = body
        at += (8 + len(body) + 7) & ~7
    struct.pack_into("<II", data, at, 0xFFFFFFFF, ~data_stamp(at) & 0xFFFFFFFF)  # the end mark
    struct.pack_into("<Q", header, 384, at + head_extra)  # producer cursor
    return bytes(header + data)


LATENCY = 1 << 5  # byte 0, ring and lanes targets: stats=latency (records carry their commit time)

RINGS = {
    # stats=latency: copies and loans across the end of a 128-byte ring, and a message at the
    # (8 bytes smaller) limit and one over it
    "latency": bytes([1 | LATENCY]) + bytes([PRODUCER, CONSUMER]) + (send(20) + loan(12, 10) + bytes([RECV, READ])) * 4
    + send(40) + send(41) + bytes([RECV]),
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

# Topic programs (see fuzz/topic_target.cpp). Byte 0: capacity 64 << (b & 7), slots
# 1 + (b >> 3 & 3), drop (b >> 5 & 1), history (b >> 6) * 4.
T_SUB, T_PUB, T_RECV, T_READ, T_SEND, T_LOAN, T_CLOSE_S, T_CLOSE_P = 2, 3, 4, 5, 6, 7, 8, 9


def t_send(size: int) -> bytes:
    return bytes([T_SEND]) + struct.pack("<H", size)


def t_recv(sub: int) -> bytes:
    return bytes([T_RECV, sub])


BLOCK_1K_2 = 4 | 8           # 1 KiB, two slots, block
DROP_256_1 = 2 | 0x20        # 256 B, one slot, drop
HISTORY_1K_4 = 4 | 24 | 0x40  # 1 KiB, four slots, history 4

TOPICS = {
    # two subscribers each receive everything, around the end of the area
    "block_two": bytes([BLOCK_1K_2, T_SUB, T_SUB, T_PUB]) + (t_send(100) + t_recv(0) + t_recv(1)) * 12,
    # a slow subscriber under drop: lapped, counted, never torn
    "drop_lapped": bytes([DROP_256_1, T_SUB, T_PUB]) + t_send(40) * 20 + t_recv(0) * 4,
    # a late subscriber with history, then one more message
    "history": bytes([HISTORY_1K_4, T_PUB]) + t_send(10) * 6 + bytes([T_SUB]) + t_send(10) + t_recv(0) * 6,
    # zero copy: loan/commit (sometimes more than loaned), read in place, and read under drop
    "loan_read": bytes([BLOCK_1K_2, T_SUB, T_PUB, T_LOAN]) + struct.pack("<HH", 30, 20) + bytes([T_READ, 0]),
    "read_drop": bytes([DROP_256_1, T_SUB, T_PUB]) + t_send(8) + bytes([T_READ, 0]),
    # the publisher leaves and comes back (continuing the sequence); slots run out
    "republish": bytes([BLOCK_1K_2, T_SUB, T_PUB]) + t_send(5) + bytes([T_CLOSE_P, T_PUB]) + t_send(5) + t_recv(0) * 3,
    "slots_full": bytes([BLOCK_1K_2, T_SUB, T_SUB, T_SUB, T_CLOSE_S, 0, T_SUB]),
    # hostile writes: header fields, the publisher line, a slot, a record's commit word
    "bad_slots": bytes([BLOCK_1K_2]) + field(5, 5000) + bytes([T_SUB, T_PUB]),
    "bad_overflow": bytes([BLOCK_1K_2]) + field(7, 9) + bytes([T_SUB]),
    "committed_ahead": bytes([BLOCK_1K_2, T_PUB]) + field(10, 1 << 20) + bytes([T_SUB]),
    "seqlock_odd": bytes([BLOCK_1K_2, T_PUB]) + t_send(4) + field(9, 3) + bytes([T_SUB]) + t_send(4) + t_recv(0),
    "slot_state": bytes([BLOCK_1K_2]) + field(14, 9 << 32) + bytes([T_SUB, T_SUB]),
    "slot_cursor": bytes([BLOCK_1K_2, T_SUB, T_PUB]) + field(15, 1 << 40) + t_send(200) * 8,
    "record_huge": bytes([BLOCK_1K_2, T_SUB, T_PUB]) + t_send(5)
    + bytes([0]) + struct.pack("<HB", 1280 + 2 * 256, 8) + struct.pack("<Q", 0x7FFFFFFF) + t_recv(0),
}

# Lanes programs (see fuzz/lanes_target.cpp). Byte 0: lanes 1 + (b & 3), capacity per lane
# 64 << (b >> 2 & 7). Field selectors: header fields 0-8; lane fields 9-25, lane in bits 5-6.
L_RX, L_TX, L_SEND, L_LOAN, L_RECV, L_RECV_FIXED, L_READ, L_CLOSE_TX, L_CLOSE_RX, L_IMAGE, L_RECORD, L_ARM, L_QUERY = range(2, 15)
L_KEEP = 0x80  # a close that keeps the object (later calls on it: bad_file_descriptor)
L_READ_RELEASE, L_READ_KEEP, L_RELEASE = bytes([L_READ, 0]), bytes([L_READ, 1]), bytes([L_READ, 2])


def l_send(sender: int, size: int) -> bytes:
    return bytes([L_SEND, sender]) + struct.pack("<H", size)


def l_loan(sender: int, size: int, commit: int) -> bytes:
    return bytes([L_LOAN, sender]) + struct.pack("<HH", size, commit)


def l_field(selector: int, lane: int, value: int) -> bytes:
    return bytes([1, selector | lane << 5]) + struct.pack("<Q", value)


def l_record(lane: int, offset: int, size: int, tag: int) -> bytes:
    return bytes([L_RECORD, lane]) + struct.pack("<HIB", offset, size, tag)


def lanes_image(capacity: int, lanes: list[list[bytes]]) -> bytes:
    """A formatted lanes region (layout version 3, kind 2), each lane a kind-1 ring holding its records."""
    header = bytearray(1024)
    struct.pack_into("<QIIIIIIQQQ", header, 0, 0x31474E49524B5049, 3, 2, 1024, 128, 8, 0, capacity,
                     len(lanes), 2048 + capacity)
    return bytes(header) + b"".join(ring_image(capacity, records) for records in lanes)


THREE_1K = 2 | 4 << 2  # three lanes of 1 KiB
TWO_256 = 1 | 2 << 2   # two lanes of 256 B
ONE_64 = 0             # one lane of 64 B
TWO_128 = 1 | 1 << 2   # two lanes of 128 B
FOUR_8K = 3 | 7 << 2   # four lanes of 8 KiB

LANES = {
    # stats=latency on every lane: two senders, taken in turn, copies and in place
    "latency": bytes([TWO_256 | LATENCY, L_RX, L_TX, L_TX]) + b"".join(l_send(i % 2, 9 * i % 60) for i in range(10))
    + bytes([L_RECV, L_RECV]) + L_READ_RELEASE + bytes([L_RECV] * 8),
    # three senders, each sending in turn (sizes around the tag), the receiver taking in turn and draining
    "three_senders": bytes([THREE_1K, L_RX, L_TX, L_TX, L_TX])
    + b"".join(l_send(i % 3, (7 * i) % 40) for i in range(18))
    + bytes([L_RECV]) + L_READ_RELEASE + bytes([L_RECV_FIXED]) + struct.pack("<H", 64)
    + l_loan(1, 30, 20) + bytes([L_ARM, L_QUERY, 0, L_RECV, L_RECV]),
    # a sender closes mid-stream: its lane drains first, then the next sender takes the lane over
    "sender_closes": bytes([TWO_256, L_TX, L_TX, L_RX]) + l_send(0, 9) + l_send(1, 9) + l_send(0, 12)
    + bytes([L_RECV, L_CLOSE_TX, 0, L_RECV, L_TX]) + l_send(0, 5) + bytes([L_RECV, L_CLOSE_TX, 1 | L_KEEP]) + l_send(1, 3)
    + bytes([L_RECV, L_RECV, L_QUERY, 1, L_CLOSE_TX, 0, L_RECV]),
    # a record read in place and kept: read again, received, released alone, left to the next receiver
    "read_keep": bytes([TWO_256, L_TX, L_TX, L_RX]) + l_send(1, 6) + L_READ_KEEP + l_send(0, 7) + L_READ_KEEP + bytes([L_RECV])
    + L_RELEASE + l_send(1, 8) + L_READ_KEEP + L_RELEASE + l_send(0, 9) + L_READ_KEEP + bytes([L_CLOSE_RX, 0, L_RX, L_RECV, L_RECV]),
    # more senders than lanes (busy), and a second receiver (busy)
    "busy": bytes([TWO_256, L_TX, L_TX, L_TX, L_RX, L_RX, L_CLOSE_TX, 0, L_TX, L_TX]),
    # the receiver closes (senders then get closed), comes back and resumes where it stopped
    "receiver_closes": bytes([TWO_256, L_RX, L_TX]) + l_send(0, 6) + l_send(0, 7)
    + bytes([L_RECV, L_CLOSE_RX, L_KEEP]) + l_send(0, 8) + bytes([L_RECV, L_ARM, L_RX]) + l_send(0, 9) + bytes([L_RECV, L_RECV, L_CLOSE_RX, 0]),
    # one small lane filled until would_block, then around its end
    "full_lane": bytes([ONE_64, L_TX]) + l_send(0, 8) * 5 + bytes([L_RX, L_RECV, L_RECV]) + l_send(0, 16) * 3 + L_READ_RELEASE * 2,
    "large": bytes([FOUR_8K, L_RX, L_TX, L_TX]) + l_send(0, 4080) + l_send(1, 4081) + l_loan(1, 4000, 4000)
    + bytes([L_RECV_FIXED]) + struct.pack("<H", 100) + L_READ_RELEASE * 2,
    # hostile writes: the lanes header, a lane's ends and cursors, a record's commit word
    "bad_magic": bytes([TWO_256]) + l_field(0, 0, 0x4141414141414141) + bytes([L_RX, L_TX]),
    "bad_lane_count": bytes([TWO_256]) + l_field(5, 0, 65) + bytes([L_RX]) + l_field(5, 0, 3) + bytes([L_TX]),
    "bad_stride": bytes([TWO_256]) + l_field(6, 0, 2048 + 128) + l_field(4, 0, 128) + bytes([L_RX, L_TX]) + l_send(0, 5) + bytes([L_RECV]),
    "patched_kind": bytes([TWO_256, 0]) + struct.pack("<HB", 12, 4) + struct.pack("<I", 1) + bytes([L_TX, L_RX]),
    "lane_cursor": bytes([TWO_256, L_TX, L_TX, L_RX]) + l_send(1, 5) + l_field(18, 1, 4096) + bytes([L_RECV]) + l_field(17, 0, 1 << 40) + bytes([L_RECV, L_RECV]),
    "lane_owner": bytes([TWO_256]) + l_field(12, 0, 1 | (2 << 32) | (1 << 40)) + l_field(15, 1, 0x7FFFFFF0 | (2 << 32)) + bytes([L_TX, L_TX, L_RX]),
    "record_huge": bytes([TWO_256, L_TX, L_TX, L_RX]) + l_send(1, 5) + l_record(1, 0, 0xFFFFFFF0, 0) + L_READ_RELEASE + bytes([L_RECV]),
    "doorbell_name": bytes([TWO_256, L_RX, L_TX]) + l_field(24, 0, 1) + l_field(25, 0, 4000) + l_send(0, 3) + bytes([L_ARM, L_RECV]),
    # the whole region from the input: valid lanes with records, and garbage
    "image": bytes([TWO_128, L_IMAGE]) + lanes_image(128, [[b"alpha", b""], [b"beta-beta"]]) + bytes([L_RX]) + L_READ_RELEASE + bytes([L_RECV, L_TX]) + l_send(0, 4),
    "image_garbage": bytes([TWO_128, L_IMAGE]) + bytes((i * 167 + 13) & 0xFF for i in range(1024 + 2 * 2176)) + bytes([L_RX, L_TX, L_RECV]) + L_READ_RELEASE,
}

# Recorded logs (see fuzz/log_target.cpp): limit byte, skip byte, then the file.
LOG_HEADER = b"IPKLOG\r\n" + struct.pack("<II", 1, 0)


def log_record(body: bytes, ns: int = 0, length: int | None = None) -> bytes:
    return struct.pack("<IQ", len(body) if length is None else length, ns) + body


def log_seed(limit: int, skip: bool, log: bytes) -> bytes:
    return bytes([limit, int(skip)]) + log


LOGS = {
    "three": log_seed(64, False, LOG_HEADER + log_record(b"one", 1) + log_record(b"", 2) + log_record(b"three" * 3, 3)),
    "skipped": log_seed(255, True, LOG_HEADER + b"".join(log_record(bytes([i]) * i * 50, i) for i in range(10))),
    "empty_log": log_seed(64, False, LOG_HEADER),
    "at_limit": log_seed(16, False, LOG_HEADER + log_record(b"x" * 16) + log_record(b"y" * 17)),
    "truncated_header": log_seed(64, False, LOG_HEADER[:10]),
    "bad_magic": log_seed(64, False, b"IPKLOG\n\n" + LOG_HEADER[8:] + log_record(b"ok")),
    "bad_version": log_seed(64, False, LOG_HEADER[:8] + struct.pack("<II", 2, 0) + log_record(b"ok")),
    "torn_record_header": log_seed(64, False, LOG_HEADER + log_record(b"ok") + log_record(b"more")[:7]),
    "torn_record": log_seed(64, True, LOG_HEADER + log_record(b"ok") + log_record(b"short", length=40)),
    "huge": log_seed(255, False, LOG_HEADER + log_record(b"ok") + log_record(b"", length=0xFFFFFFFF)),
}


# Service programs (see fuzz/service_target.cpp). Byte 0: client slots 1 + (b & 1), calls in flight
# 1 + (b >> 1 & 1), largest message 16 << (b >> 2 & 3). Then one byte per operation and its arguments.
S_PATCH, S_SERVER, S_CLIENT, S_START, S_RECV, S_REPLY, S_LOAN_REPLY, S_WAIT, S_READ = range(9)
S_CLOSE_SERVER, S_CLOSE_CLIENT, S_IMAGE, S_LOAN = 9, 10, 11, 12


def s_start(client: int, seq: int, size: int) -> bytes:
    return bytes([S_START, client, seq, size])


def s_reply(index: int, op: int = S_REPLY, extra: int = 0, made_up_id: int = 0) -> bytes:
    return bytes([op, index, extra]) + struct.pack("<Q", made_up_id)


def s_patch(offset: int, data: bytes) -> bytes:
    return bytes([S_PATCH]) + struct.pack("<H", offset) + bytes([len(data)]) + data


ONE = 0            # one client, one call in flight, 16-byte messages
TWO_TWO = 1 | 2    # two clients, two calls in flight each, 16-byte messages
ONE_BIG = 3 << 2   # one client, one call, 128-byte messages
SERVICES = {
    "round_trip": bytes([ONE, S_SERVER, S_CLIENT, 0]) + s_start(0, 1, 5) + bytes([S_RECV]) + s_reply(0) +
                  bytes([S_WAIT, 0]),
    # two clients, two calls each, answered last first, taken by wait and by read
    "in_flight": bytes([TWO_TWO, S_SERVER, S_CLIENT, 0, S_CLIENT, 1]) + s_start(0, 1, 3) + s_start(0, 2, 9) +
                 s_start(1, 3, 16) + s_start(1, 4, 0) + bytes([S_RECV] * 4) + s_reply(3) + s_reply(2) +
                 s_reply(1, S_LOAN_REPLY, 5) + s_reply(0) + bytes([S_WAIT, 0, S_READ, 0, S_READ, 1, S_WAIT, 1]),
    # the server goes mid-call (closed), a new one takes over, the client calls again
    "new_server": bytes([ONE, S_SERVER, S_CLIENT, 0]) + s_start(0, 1, 4) + bytes([S_CLOSE_SERVER, S_WAIT, 0,
                  S_SERVER]) + s_start(0, 2, 4) + bytes([S_RECV]) + s_reply(0) + bytes([S_WAIT, 0]),
    # stale and unknown handles, one past the limit, a reply after the client left
    "refused": bytes([ONE, S_SERVER, S_CLIENT, 0]) + s_start(0, 1, 17) + s_start(0, 1, 16) + bytes([S_RECV]) +
               s_reply(7, made_up_id=12345) + s_reply(0) + s_reply(0) + bytes([S_WAIT, 0]) + s_start(0, 2, 1) +
               bytes([S_RECV, S_CLOSE_CLIENT, 0]) + s_reply(1),
    # zero copy both ways
    "zero_copy": bytes([ONE_BIG, S_SERVER, S_CLIENT, 0, S_LOAN, 0, 100, S_RECV]) + s_reply(0, S_LOAN_REPLY, 3) +
                 bytes([S_READ, 0]),
    # hostile writes: the slot count, the server's holder word, a request record's id
    "hostile": bytes([TWO_TWO, S_SERVER, S_CLIENT, 0]) + s_start(0, 1, 8) + s_patch(40, b"\xff" * 8) +
               bytes([S_CLIENT, 1, S_RECV]) + s_patch(136, b"\x00\x00\x00\x40") + bytes([S_WAIT, 0]) +
               s_patch(1024 + 2048 + 8, b"\x01" * 8) + bytes([S_CLOSE_SERVER, S_SERVER, S_RECV]),
    # the whole region from the input: garbage
    "image_garbage": bytes([ONE, S_IMAGE]) + bytes(range(256)) * 4 + bytes([S_SERVER, S_CLIENT, 0, S_RECV]),
}


def write(target: str, seeds: dict) -> None:
    folder = root / target
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in seeds.items():
        (folder / name).write_bytes(value.encode() if isinstance(value, str) else value)


write("address", ADDRESSES)
write("frame", FRAMES)
write("ring", RINGS)
write("topic", TOPICS)
write("lanes", LANES)
write("service", SERVICES)
write("log", LOGS)
print(f"make_seeds: {len(ADDRESSES)} address, {len(FRAMES)} frame, {len(RINGS)} ring, {len(TOPICS)} topic, "
      f"{len(LANES)} lanes, {len(SERVICES)} service, {len(LOGS)} log seeds in {root}")
