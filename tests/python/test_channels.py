"""The channel API from Python over every transport: Python to Python across processes,
Python to and from the C++ tool, the wait set, and the GIL released while a call waits."""

import os
import subprocess
import threading

import pytest

import ipckit
from conftest import IPCKIT_TOOL, open_sender, python_child, tool, unique_name, wait_until_blocked

SIZES = [0, 1, 7, 64, 1000, 4000]


def payload(i, size):
    return bytes((i * 31 + k) % 251 for k in range(size))


def test_python_to_python_in_another_process(transport):
    count = 200
    with ipckit.Receiver.create(transport.address) as rx:
        child = python_child(
            """
            import sys, ipckit
            sys.path.insert(0, sys.argv[3])
            from conftest import open_sender
            from test_channels import payload, SIZES
            with open_sender(sys.argv[1]) as tx:
                for i in range(int(sys.argv[2])):
                    assert tx.send(payload(i, SIZES[i % len(SIZES)]), timeout=10)
            """,
            transport.address,
            str(count),
            __import__("os").path.dirname(__file__),
        )
        for i in range(count):
            assert rx.recv(timeout=10) == payload(i, SIZES[i % len(SIZES)]), i
        assert child.wait(timeout=60) == 0
        if transport.connectionless:
            assert rx.recv(timeout=0.05) is None
        else:
            with pytest.raises(ipckit.Closed, match="the sender closed"):
                rx.recv(timeout=10)


def test_cpp_tool_sends_and_python_receives(transport):
    with ipckit.Receiver.create(transport.address) as rx:
        # `ipckit send ADDRESS` sends each line of its standard input: a shell pipeline.
        sender = subprocess.Popen(
            ["sh", "-c", f"printf 'one\\ntwo\\nthree\\n' | '{IPCKIT_TOOL}' send '{transport.address}' --timeout 10"],
            stderr=subprocess.PIPE,
            text=True,
        )
        got = [rx.recv(timeout=10) for _ in range(3)]
        assert sender.wait(timeout=60) == 0, sender.stderr.read()
        assert got == [b"one", b"two", b"three"]
        if not transport.connectionless:
            # Iterating ends where recv would raise Closed.
            assert list(rx) == []


def test_python_sends_and_cpp_tool_receives(transport):
    receiver = subprocess.Popen(
        [IPCKIT_TOOL, "recv", transport.address, "--count", "3", "--timeout", "10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with open_sender(transport.address) as tx:
            for message in [b"alpha", bytearray(b"beta"), memoryview(b"gamma")]:
                assert tx.send(message, timeout=10)
            out, err = receiver.communicate(timeout=60)
    finally:
        receiver.kill()  # a failure above must not leave the tool running
        receiver.wait()
    assert receiver.returncode == 0, err
    assert out.splitlines() == ["alpha", "beta", "gamma"]


def test_try_recv_recv_into_and_limits(transport):
    with ipckit.Receiver.create(transport.address) as rx, open_sender(transport.address) as tx:
        assert rx.try_recv() is None
        assert rx.recv(timeout=0.01) is None
        assert tx.max_message_size > 0 and rx.max_message_size > 0
        assert tx.send(b"into a buffer", timeout=10)
        buffer = bytearray(64)
        n = rx.recv_into(buffer, timeout=10)
        assert buffer[:n] == b"into a buffer"
        assert rx.recv_into(buffer, timeout=0.01) is None
        assert tx.try_send(b"x")
        assert rx.recv(timeout=10) == b"x"
        with pytest.raises(TypeError):
            tx.send("text is not bytes")
        assert rx.address == transport.address and tx.address == transport.address
    assert rx.closed and tx.closed
    with pytest.raises(ValueError, match="closed Receiver"):
        rx.recv()


def test_a_message_larger_than_the_buffer_stays_queued(transport):
    import errno

    with ipckit.Receiver.create(transport.address) as rx, open_sender(transport.address) as tx:
        assert tx.send(bytes(100), timeout=10)
        with pytest.raises(ipckit.Error) as e:
            rx.recv_into(bytearray(10), timeout=10)
        # (the C++ library says ENOBUFS for most transports, EMSGSIZE for System V queues)
        assert e.value.errno in (errno.EMSGSIZE, errno.ENOBUFS)
        assert "10" in str(e.value)  # the buffer's size, named in the one-line message
        assert rx.recv(timeout=10) == bytes(100)


def test_poll_set_says_which_receivers_are_ready(tmp_path):
    a = f"posixmq:/{unique_name()}"
    b = f"shm:/{unique_name()}"
    c = f"unix:{tmp_path}/c.sock"
    with ipckit.Receiver.create(a) as ra, ipckit.Receiver.create(b) as rb, ipckit.Receiver.create(c) as rc:
        ps = ipckit.PollSet()
        assert [ps.add(r) for r in (ra, rb, rc)] == [0, 1, 2]
        assert len(ps) == 3 and ps[1] is rb
        assert ps.wait(timeout=0.01) == []
        with ipckit.Sender.open(b) as tb, ipckit.Sender.open(c, timeout=5) as tc:
            assert tb.send(b"ring")
            assert ps.wait(timeout=10) == [rb]
            assert rb.recv() == b"ring"
            assert tc.send(b"socket")
            ready = ps.wait(timeout=10)
            assert ready == [rc]
            assert rc.recv(timeout=10) == b"socket"
        with pytest.raises(ValueError, match="already in this PollSet"):
            ps.add(ra)


def test_other_threads_run_while_recv_waits():
    address = f"shm:/{unique_name()}"
    with ipckit.Receiver.create(address) as rx, ipckit.Sender.open(address) as tx:
        # The sender thread starts once the receiver thread sleeps in recv's wait, and can only
        # run (as could this thread's check) if that waiting recv released the GIL.
        sender = threading.Thread(target=lambda: tx.send(b"from a thread"))
        results = []
        receiver = threading.Thread(target=lambda: results.append(rx.recv(timeout=30)))
        receiver.start()
        wait_until_blocked(os.getpid(), receiver.native_id)
        assert results == []
        sender.start()
        receiver.join(60)
        sender.join(60)
        assert results == [b"from a thread"]


def test_a_second_thread_on_the_same_receiver_is_refused():
    address = f"shm:/{unique_name()}"
    with ipckit.Receiver.create(address) as rx, ipckit.Sender.open(address) as tx:
        started = threading.Event()
        results = []

        def wait():
            started.set()
            results.append(rx.recv(timeout=30))

        waiter = threading.Thread(target=wait)
        waiter.start()
        started.wait()
        # The waiter may not be inside recv yet: retry until it is (bounded).
        for _ in range(1000):
            try:
                rx.try_recv()
            except RuntimeError as e:
                assert "in use by another thread" in str(e)
                break
            threading.Event().wait(0.001)
        else:
            pytest.fail("a second call while recv waited was not refused")
        assert tx.send(b"done")
        waiter.join(60)
        assert results == [b"done"]


def test_objects_lists_what_ipckit_ls_lists():
    address = f"shm:/{unique_name()}"
    with ipckit.Receiver.create(address):
        mine = [o for o in ipckit.objects() if o["address"] == address]
        assert len(mine) == 1
        assert mine[0]["kind"] == "shm" and mine[0]["in_use"] and not mine[0]["stale"]
        import json

        listed = json.loads(tool("ls", "--json").stdout)
        assert set(listed[0]) == set(mine[0]) if listed else True
        assert any(o["address"] == address for o in listed)


def test_the_type_stubs_cover_the_module():
    import ast
    import os

    stub = os.path.join(os.path.dirname(ipckit.__file__), "__init__.pyi")
    tree = ast.parse(open(stub).read())
    stubbed = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            stubbed[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
        elif isinstance(node, ast.FunctionDef):
            stubbed[node.name] = set()
    for name in ipckit.__all__:
        assert name in stubbed, f"{name} has no stub"
        obj = getattr(ipckit, name)
        if isinstance(obj, type) and not issubclass(obj, BaseException):
            public = {m for m in vars(obj) if not m.startswith("_")} | (
                {m for m in vars(obj) if m in ("__enter__", "__exit__", "__iter__", "__next__", "__len__", "__getitem__")}
            )
            assert public <= stubbed[name], f"{name}: no stub for {sorted(public - stubbed[name])}"
        assert obj.__doc__, f"{name} has no docstring"


def test_an_inherited_pipe_end_fd_transport():
    import os

    r, w = os.pipe()
    child = python_child(
        """
        import sys, ipckit
        with ipckit.Sender.open("fd:" + sys.argv[1]) as tx:
            assert tx.send(b"one") and tx.send(b"two")
        """,
        str(w),
        pass_fds=(w,),
    )
    os.close(w)
    with ipckit.Receiver.open(f"fd:{r}") as rx:  # the channel owns the descriptor now
        assert rx.recv(timeout=10) == b"one"
        assert rx.recv(timeout=10) == b"two"
        with pytest.raises(ipckit.Closed):
            rx.recv(timeout=10)
    assert child.wait(timeout=60) == 0


def test_a_topic_delivers_every_message_to_every_subscriber():
    address = f"topic:/{unique_name()}"
    count = 500
    with ipckit.Receiver.create(address) as first, ipckit.Receiver.open(address) as second:
        child = python_child(
            """
            import sys, ipckit
            with ipckit.Sender.open(sys.argv[1], timeout=10) as tx:
                for i in range(int(sys.argv[2])):
                    assert tx.send(str(i).encode(), timeout=10)
            """,
            address,
            str(count),
        )
        for rx in (first, second):
            assert [rx.recv(timeout=10) for _ in range(count)] == [str(i).encode() for i in range(count)]
        assert child.wait(timeout=60) == 0
        for rx in (first, second):
            with pytest.raises(ipckit.Closed):
                rx.recv(timeout=10)
