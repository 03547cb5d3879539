"""Shared helpers for the Python module's tests: one fresh address per transport (as
tests/support/transports.cpp makes them), a private ipckit registry, and child processes."""

import atexit
import itertools
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap

import pytest

import ipckit

# Records of the channels these tests create stay out of the user's registry (children too).
# Made once by the test process; the children it starts (which import this file too) inherit it.
if "IPCKIT_PYTEST_REGISTRY" not in os.environ:
    _REGISTRY = tempfile.mkdtemp(prefix="ipckit-pytest-registry-")
    os.environ["IPCKIT_REGISTRY_DIR"] = os.environ["IPCKIT_PYTEST_REGISTRY"] = _REGISTRY
    atexit.register(shutil.rmtree, _REGISTRY, ignore_errors=True)

BIN_DIR = os.environ.get("IPCKIT_BIN_DIR", os.path.join(os.getcwd(), "bin"))
IPCKIT_TOOL = os.path.join(BIN_DIR, "ipckit")

_counter = itertools.count()


def unique_name(prefix="ipckit-pytest"):
    return f"{prefix}-{os.getpid()}-{next(_counter)}-{random.getrandbits(32):08x}"


def sysv_key():
    # The range ipckit's tests keep to (0x1c......); creation is exclusive, so a clash fails loudly.
    return f"0x1c{random.getrandbits(24):06x}"


def free_tcp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# name -> (makes an address in a directory, connectionless)
TRANSPORTS = {
    "fifo": (lambda d: f"fifo:{d}/channel.fifo", False),
    "sysvmq": (lambda d: f"sysvmq:{sysv_key()}", False),
    "posixmq": (lambda d: f"posixmq:/{unique_name()}", False),
    "shm": (lambda d: f"shm:/{unique_name()}", False),
    "shm_memfd": (lambda d: f"shm:@{unique_name()}", False),
    "topic": (lambda d: f"topic:/{unique_name()}", False),
    "sysvshm": (lambda d: f"sysvshm:{sysv_key()}", False),
    "unix_path": (lambda d: f"unix:{d}/channel.sock", False),
    "unix_abstract": (lambda d: f"unix:@{unique_name()}", False),
    "unix_seqpacket": (lambda d: f"unix+seqpacket:@{unique_name()}", False),
    "unix_dgram": (lambda d: f"unix+dgram:{d}/channel.dgram", True),
    "tcp": (lambda d: f"tcp://127.0.0.1:{free_tcp_port()}", False),
}
RINGS = ["shm", "shm_memfd", "sysvshm"]


class Transport:
    def __init__(self, name, directory):
        self.name = name
        make, self.connectionless = TRANSPORTS[name]
        self.address = make(directory)


@pytest.fixture(params=sorted(TRANSPORTS))
def transport(request, tmp_path):
    return Transport(request.param, tmp_path)


@pytest.fixture(params=RINGS)
def ring(request, tmp_path):
    return Transport(request.param, tmp_path)


def python_child(code, *args, **popen):
    """Starts `code` in a fresh interpreter (the one running the tests) with ipckit importable."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args], **popen
    )


# The x86-64 system calls a waiting receive, poll or read sleeps in (the transports wait in a
# futex or futex_waitv, poll, a socket or queue receive, or short sleeps between tries).
WAIT_SYSCALLS = {
    0: "read", 7: "poll", 23: "select", 35: "nanosleep", 45: "recvfrom", 47: "recvmsg",
    70: "msgrcv", 202: "futex", 230: "clock_nanosleep", 232: "epoll_wait",
    243: "mq_timedreceive", 270: "pselect6", 271: "ppoll", 281: "epoll_pwait", 441: "epoll_pwait2",
    449: "futex_waitv",
}
FUTEX, FUTEX_WAITV = 202, 449


def _futex_words(pid, number, args):
    """The words a futex call waits on: futex's first argument; futex_waitv's first argument
    points at `count` struct futex_waitv {u64 val; u64 uaddr; u32 flags; u32 reserved}."""
    if number == FUTEX:
        return [int(args[0], 16)]
    vector, count = int(args[0], 16), min(int(args[1], 16), 128)
    with open(f"/proc/{pid}/mem", "rb") as mem:
        mem.seek(vector)
        raw = mem.read(24 * count)
    return [struct.unpack_from("=QQII", raw, 24 * i)[1] for i in range(count)]


def _in_shared_mapping(pid, address):
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            span, perms = line.split()[:2]
            start, end = (int(x, 16) for x in span.split("-"))
            if start <= address < end:
                return perms[3] == "s"
    return False


def blocked_in_wait(pid, tid=None):
    """The system call thread `tid` of process `pid` (its main thread by default) sleeps in, if
    it is one a wait sleeps in; else None. Read from /proc/PID/task/TID/syscall: the number of
    the call the thread is blocked in and its arguments ("running" when it is in none). A futex
    counts only on a word in shared memory (a ring's), not a private one: a thread waiting for
    the GIL sleeps in a futex too."""
    try:
        with open(f"/proc/{pid}/task/{tid or pid}/syscall") as f:
            fields = f.read().split()
        number = int(fields[0])
        if number in (FUTEX, FUTEX_WAITV) and not any(
            _in_shared_mapping(pid, word) for word in _futex_words(pid, number, fields[1:])
        ):
            return None
    except (OSError, IndexError, ValueError, struct.error):
        return None
    return WAIT_SYSCALLS.get(number)


def wait_until_blocked(pid, tid=None, timeout=30.0):
    """Returns once thread `tid` of `pid` is asleep in a wait's system call (its name), so an
    event sent now lands while the wait is in progress; fails the test after `timeout`."""
    import time

    deadline = time.monotonic() + timeout
    while (call := blocked_in_wait(pid, tid)) is None:
        assert time.monotonic() < deadline, f"thread {tid or pid} of {pid} never blocked in a wait"
        time.sleep(0.001)
    return call


def tool(*args, **run):
    """Runs the C++ tool `ipckit ARGS...`."""
    return subprocess.run([IPCKIT_TOOL, *args], capture_output=True, text=True, timeout=60, **run)


def open_sender(address, timeout=10.0):
    """Opens a Sender, waiting for a creator that may not have created the object yet."""
    import time

    deadline = time.monotonic() + timeout
    # A FIFO's writer opens it at the first send: wait here until the reader has made it.
    if address.startswith("fifo:"):
        while not os.path.exists(address[5:]) and time.monotonic() < deadline:
            time.sleep(0.01)
    while True:
        try:
            return ipckit.Sender.open(address, timeout=timeout)
        except ipckit.Error as e:
            if e.errno not in (2, 111) or time.monotonic() > deadline:  # ENOENT, ECONNREFUSED
                raise
        time.sleep(0.01)
