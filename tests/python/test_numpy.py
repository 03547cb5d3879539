"""NumPy over loans and reads: arrays made with numpy.frombuffer write into and read from the
ring record itself, with no copy."""

import numpy
import pytest

import ipckit


def test_an_array_written_into_a_loan_arrives_whole(ring):
    with ipckit.Receiver.create(ring.address) as rx, ipckit.Sender.open(ring.address) as tx:
        frame = numpy.arange(480 * 640, dtype=numpy.uint16).reshape(480, 640)
        with tx.loan(frame.nbytes) as buf:
            target = numpy.frombuffer(buf, dtype=numpy.uint16).reshape(frame.shape)
            assert target.flags.writeable
            target[:] = frame  # straight into the ring
            del target
        with rx.read(timeout=10) as view:
            got = numpy.frombuffer(view, dtype=numpy.uint16).reshape(frame.shape)
            assert not got.flags.writeable
            assert numpy.array_equal(got, frame)
            total = int(got.sum(dtype=numpy.uint64))
            del got
        assert total == int(frame.sum(dtype=numpy.uint64))


def test_frombuffer_shares_the_record_no_copy(ring):
    with ipckit.Receiver.create(ring.address) as rx, ipckit.Sender.open(ring.address) as tx:
        with tx.loan(16) as buf:
            a = numpy.frombuffer(buf, dtype=numpy.uint32)
            a[:] = [1, 2, 3, 4]
            # A write through the array is a write into the view: the same memory.
            assert bytes(buf[:4]) == numpy.uint32(1).tobytes()
            assert numpy.shares_memory(a, numpy.frombuffer(buf, dtype=numpy.uint8))
            del a
        with rx.read(timeout=10) as view:
            b = numpy.frombuffer(view, dtype=numpy.uint32)
            assert b.tolist() == [1, 2, 3, 4]
            del b


def test_an_array_kept_past_the_block_keeps_the_record_and_raises(ring):
    with ipckit.Receiver.create(ring.address) as rx, ipckit.Sender.open(ring.address) as tx:
        tx.send(numpy.arange(4, dtype=numpy.int64))  # any buffer sends: numpy arrays too
        tx.send(b"next")
        with pytest.raises(BufferError, match="numpy array"):
            with rx.read(timeout=10) as view:
                kept = numpy.frombuffer(view, dtype=numpy.int64)
        # The array still reads the record (not reused ring space) ...
        assert kept.tolist() == [0, 1, 2, 3]
        with pytest.raises(BufferError):
            rx.recv(timeout=0)
        # ... and once it is gone the channel moves on.
        del kept, view
        assert rx.recv(timeout=10) == b"next"


def test_recv_into_an_array(transport):
    from conftest import open_sender

    with ipckit.Receiver.create(transport.address) as rx, open_sender(transport.address) as tx:
        data = numpy.linspace(0, 1, 100)
        assert tx.send(data, timeout=10)
        out = numpy.empty(100)
        assert rx.recv_into(out, timeout=10) == data.nbytes
        assert numpy.array_equal(out, data)


def test_the_frame_publisher_example_reaches_two_subscribers():
    import os
    import subprocess
    import sys

    examples = os.path.join(os.environ.get("IPCKIT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..")),
                            "examples", "python")
    r = subprocess.run([sys.executable, os.path.join(examples, "frame_publisher.py"), "--frames", "30"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 3, r.stdout
    assert lines[0].startswith("frame_subscriber 0: 30 frames of 480x640 uint8, 0 wrong"), r.stdout
    assert lines[1].startswith("frame_subscriber 1: 30 frames of 480x640 uint8, 0 wrong"), r.stdout
    assert lines[2] == "frame_publisher: 30 frames to 2 subscribers", r.stdout


def test_ipckit_array_is_the_record_itself(ring):
    with ipckit.Receiver.create(ring.address) as rx, ipckit.Sender.open(ring.address) as tx:
        with tx.loan(12) as buf:
            a = ipckit.array(buf, dtype=numpy.uint32, shape=(3,))
            a[:] = [7, 8, 9]  # straight into the ring
            assert numpy.shares_memory(a, numpy.frombuffer(buf, dtype=numpy.uint8))
            del a
        with rx.read(timeout=10) as view:
            b = ipckit.array(view, dtype=numpy.uint32)
            assert b.tolist() == [7, 8, 9]
            assert not b.flags.writeable
            del b
