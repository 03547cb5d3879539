"""Errors and outcomes: bad addresses give the same one-line errors as the C++ tool, as
ipckit.Error (an OSError with errno); timeouts are None / False values."""

import errno

import pytest

import ipckit
from conftest import tool, unique_name

BAD_ADDRESSES = [
    "bogus:x",
    "shm:",
    "shm:/x?capacity=3",
    "shm:/x?wait=sometimes",
    "sysvmq:not-a-key",
    "posixmq:no-slash",
    "tcp://127.0.0.1:notaport",
    "unix:",
    "fifo:",
]


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_a_bad_address_gives_the_tools_one_line_error(address):
    with pytest.raises(ipckit.Error) as e:
        ipckit.Receiver.create(address)
    assert isinstance(e.value, OSError)
    assert e.value.errno is not None and e.value.errno > 0
    message = str(e.value)
    assert "\n" not in message
    # The C++ tool says the same, after its "ipckit: " prefix.
    r = tool("recv", address, "--create", "--timeout", "1")
    assert r.returncode != 0
    assert r.stderr.strip() == f"ipckit: {message}"


def test_opening_what_does_not_exist_is_enoent_with_the_same_message():
    address = f"shm:/{unique_name()}"
    with pytest.raises(ipckit.Error) as e:
        ipckit.Sender.open(address)
    assert e.value.errno == errno.ENOENT
    r = tool("send", address, "--open", "x")
    assert r.stderr.strip() == f"ipckit: {e.value}"


def test_creating_twice_is_eexist():
    address = f"posixmq:/{unique_name()}"
    with ipckit.Receiver.create(address):
        with pytest.raises(ipckit.Error) as e:
            ipckit.Receiver.create(address)
        assert e.value.errno == errno.EEXIST


def test_timeouts_are_values():
    address = f"shm:/{unique_name()}?capacity=4096"
    with ipckit.Receiver.create(address) as rx, ipckit.Sender.open(address) as tx:
        assert rx.recv(timeout=0.02) is None
        assert rx.recv_into(bytearray(8), timeout=0) is None
        # Fill the ring: try_send says False once it is full, send(timeout) too.
        sent = 0
        while tx.try_send(bytes(100)):
            sent += 1
            assert sent < 10_000
        assert sent > 0
        assert tx.send(bytes(100), timeout=0.02) is False
        assert rx.recv(timeout=10) == bytes(100)
        assert tx.send(bytes(100), timeout=10) is True


def test_bad_arguments():
    address = f"shm:/{unique_name()}"
    with ipckit.Receiver.create(address) as rx, ipckit.Sender.open(address) as tx:
        with pytest.raises(ValueError, match="timeout"):
            rx.recv(timeout=-1)
        with pytest.raises(ipckit.Error) as e:
            tx.send(bytes(tx.max_message_size + 1))
        assert e.value.errno == errno.EMSGSIZE and "exceeds" in str(e.value)
        with pytest.raises(BufferError, match="not writable"):
            rx.recv_into(b"read-only bytes")
        assert repr(rx) == f'<ipckit.Receiver address "{address}">'
    assert repr(rx).endswith(" closed>")


def test_a_send_to_a_closed_receiver_raises_closed():
    address = f"shm:/{unique_name()}"
    rx = ipckit.Receiver.create(address)
    tx = ipckit.Sender.open(address)
    rx.close()
    with pytest.raises(ipckit.Closed, match="the receiver closed") as e:
        tx.send(b"nobody listens", timeout=10)
    assert isinstance(e.value, ipckit.Error) and e.value.errno is None
    tx.close()
