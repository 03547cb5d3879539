"""Loans and in-place reads from Python: commit on exit, discard on an exception, views that
end with their block, and the refusal on transports without a ring."""

import pytest

import ipckit
from conftest import python_child


def test_a_loan_is_committed_when_its_block_ends(ring):
    with ipckit.Receiver.create(ring.address) as rx, ipckit.Sender.open(ring.address) as tx:
        with tx.loan(5) as buf:
            assert isinstance(buf, memoryview) and not buf.readonly and len(buf) == 5
            buf[:] = b"hello"
            assert rx.try_recv() is None  # nothing is published before the block ends
        assert rx.recv(timeout=10) == b"hello"


def test_commit_inside_the_block_publishes_fewer_bytes(ring):
    with ipckit.Receiver.create(ring.address) as rx, ipckit.Sender.open(ring.address) as tx:
        with tx.loan(100) as buf:
            buf[:3] = b"abc"
            # The LoanBlock is not bound by `as`: commit through the block object instead.
        assert rx.recv(timeout=10) == b"abc" + bytes(97)
        block = tx.loan(100)
        with block as buf:
            buf[:3] = b"xyz"
            block.commit(3)
            with pytest.raises(ValueError):
                buf[0]  # the view ended with the commit
        assert rx.recv(timeout=10) == b"xyz"


def test_an_exception_discards_the_loan(ring):
    with ipckit.Receiver.create(ring.address) as rx, ipckit.Sender.open(ring.address) as tx:
        with pytest.raises(ZeroDivisionError):
            with tx.loan(4) as buf:
                buf[:] = b"lost"
                1 / 0
        assert rx.try_recv() is None
        assert tx.send(b"next")
        assert rx.recv(timeout=10) == b"next"


def test_a_read_shows_the_message_in_place_and_releases_it(ring):
    with ipckit.Receiver.create(ring.address) as rx, ipckit.Sender.open(ring.address) as tx:
        tx.send(b"first")
        tx.send(b"second")
        with rx.read(timeout=10) as view:
            assert view.readonly and bytes(view) == b"first"
            with pytest.raises(TypeError):
                view[0] = 0
        # Used after its block ended, the view raises instead of reading ring space.
        with pytest.raises(ValueError):
            bytes(view)
        with pytest.raises(ValueError):
            view[0]
        assert rx.recv(timeout=10) == b"second"


def test_a_view_still_exported_when_the_block_ends_keeps_the_record(ring):
    with ipckit.Receiver.create(ring.address) as rx, ipckit.Sender.open(ring.address) as tx:
        tx.send(b"kept")
        tx.send(b"after")
        with pytest.raises(BufferError, match="still in use"):
            with rx.read(timeout=10) as view:
                kept = view[1:]  # a slice exports the record beyond the block
        assert bytes(kept) == b"ept"  # still valid: the record was not given back
        with pytest.raises(BufferError):
            rx.recv(timeout=0)  # the channel waits for the slice to go
        del kept, view
        assert rx.recv(timeout=10) == b"after"


def test_calls_inside_an_open_block_are_refused(ring):
    with ipckit.Receiver.create(ring.address) as rx, ipckit.Sender.open(ring.address) as tx:
        tx.send(b"one")
        with rx.read(timeout=10):
            with pytest.raises(RuntimeError, match="read\\(\\) block is open"):
                rx.recv()
            with pytest.raises(RuntimeError):
                rx.close()
        with tx.loan(3) as buf:
            buf[:] = b"two"
            with pytest.raises(RuntimeError, match="a loan is open"):
                tx.send(b"three")
        assert rx.recv(timeout=10) == b"two"


def test_timeouts_and_closed_peers_in_blocks(ring):
    with ipckit.Receiver.create(ring.address) as rx:
        with pytest.raises(ipckit.Timeout, match="no message within 0.05 s") as e:
            with rx.read(timeout=0.05):
                pass
        assert isinstance(e.value, TimeoutError) and e.value.errno == 110
        tx = ipckit.Sender.open(ring.address)
        with pytest.raises(ipckit.Error, match="exceeds the ring's limit"):
            with tx.loan(tx.max_message_size + 1):
                pass
        tx.close()
        with pytest.raises(ipckit.Closed):
            with rx.read(timeout=10):
                pass
    # A loan towards a receiver that is gone.
    child = python_child(
        """
        import sys, ipckit
        rx = ipckit.Receiver.create(sys.argv[1])
        print("ready", flush=True)
        sys.stdin.readline()
        """,
        ring.address,
        stdin=__import__("subprocess").PIPE,
        stdout=__import__("subprocess").PIPE,
        text=True,
    )
    assert child.stdout.readline() == "ready\n"
    tx = ipckit.Sender.open(ring.address)
    child.stdin.write("\n")
    child.stdin.flush()
    assert child.wait(timeout=60) == 0
    with pytest.raises(ipckit.Closed, match="the receiver closed"):
        with tx.loan(8, timeout=10):
            pass
    tx.close()


@pytest.mark.parametrize("name", ["fifo", "posixmq", "unix_abstract", "tcp"])
def test_transports_without_a_ring_refuse_in_one_line(name, tmp_path):
    from conftest import Transport, open_sender

    t = Transport(name, tmp_path)
    with ipckit.Receiver.create(t.address) as rx, open_sender(t.address) as tx:
        with pytest.raises(ipckit.Error) as e:
            with tx.loan(8):
                pass
        assert str(e.value) == (
            f'address "{t.address}": zero-copy loans need a ring transport (shm:, sysvshm:): '
            "Operation not supported"
        )
        with pytest.raises(ipckit.Error, match="zero-copy reads need a ring transport"):
            with rx.read(timeout=0):
                pass
        assert tx.send(b"still fine", timeout=10)
        assert rx.recv(timeout=10) == b"still fine"
