"""Services from Python: ipckit.Server and ipckit.Client over a shared-memory service
(service:/NAME, service:@NAME) and NATS request/reply (nats://, a real nats-server), with
servers in other processes, calls in flight, timeouts, a killed server, and the GIL released
while a call waits."""

import os
import signal
import subprocess
import threading
import time

import pytest

import ipckit
from conftest import free_tcp_port, python_child, tool, unique_name, wait_until_blocked

NATS_SERVER = next(
    (p for p in ("/usr/sbin/nats-server", "/usr/bin/nats-server") if os.access(p, os.X_OK)), None
)


@pytest.fixture(scope="module")
def nats_port():
    """A real nats-server on a free loopback port for this module's tests."""
    if NATS_SERVER is None:
        pytest.skip("nats-server is not installed (Debian package nats-server)")
    port = free_tcp_port()
    server = subprocess.Popen(
        [NATS_SERVER, "-a", "127.0.0.1", "-p", str(port)], stderr=subprocess.PIPE, text=True
    )
    for line in server.stderr:
        if "Server is ready" in line:
            break
    else:
        pytest.fail("nats-server did not start")
    threading.Thread(target=server.stderr.read, daemon=True).start()  # keep its pipe drained
    yield port
    server.kill()
    server.wait()


@pytest.fixture(params=["service", "service_memfd", "nats"])
def address(request):
    name = unique_name()
    if request.param == "nats":
        made = f"nats://127.0.0.1:{request.getfixturevalue('nats_port')}/{name}"
    else:
        made = f"service:{'/' if request.param == 'service' else '@'}{name}"
    yield made
    if made.startswith("service:/") and os.path.exists(f"/dev/shm/{name}"):
        assert tool("rm", made).returncode == 0  # what a killed server left


UPPER_SERVER = """
    import sys, ipckit
    with ipckit.Server.create(sys.argv[1]) as server:
        print("ready", flush=True)
        while (request := server.recv(timeout=30)) is not None:
            server.reply(request, request.data.upper())
            if request.data == b"last":
                break
"""


def test_a_call_gets_the_reply_of_a_server_in_another_process(address):
    child = python_child(UPPER_SERVER, address, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\n"
    with ipckit.Client.open(address) as client:
        assert client.call(b"hello", timeout=30) == b"HELLO"
        assert client.call(bytearray(b"buffer"), timeout=30) == b"BUFFER"
        assert client.call(b"last", timeout=30) == b"LAST"
    assert child.wait(timeout=30) == 0


def test_a_call_with_no_server_returns_none_at_its_timeout(address):
    with ipckit.Client.open(address) as client:
        assert client.call(b"anyone?", timeout=0.3) is None


def test_recv_with_no_request_returns_none(address):
    with ipckit.Server.create(address) as server:
        assert server.recv(timeout=0.1) is None
        assert server.recv(timeout=0) is None


def test_calls_in_flight_are_answered_in_any_order(address):
    with ipckit.Server.create(address) as server, ipckit.Client.open(address) as client:
        first = client.start(b"one", timeout=10)
        second = client.start(b"two", timeout=10)
        requests = [server.recv(timeout=10) for _ in range(2)]
        for request in reversed(requests):
            assert server.reply(request.handle, b"re:" + request.data)
        assert client.wait(second, timeout=10) == b"re:two"
        assert client.wait(first, timeout=10) == b"re:one"
        assert server.counts["calls"] == 2
        assert server.counts["replies"] == 2


def test_a_second_reply_to_one_request_is_an_error(address):
    with ipckit.Server.create(address) as server, ipckit.Client.open(address) as client:
        call = client.start(b"q", timeout=10)
        request = server.recv(timeout=10)
        assert server.reply(request, b"once")
        with pytest.raises(ipckit.Error, match="stale or unknown request id") as raised:
            server.reply(request, b"twice")
        assert raised.value.errno == 22  # EINVAL
        assert client.wait(call, timeout=10) == b"once"


def test_the_gil_is_released_while_a_call_waits(address):
    """The call waits in another thread while this one, needing the GIL, answers it."""
    with ipckit.Server.create(address) as server:
        answers = []
        caller = threading.Thread(
            target=lambda: answers.append(ipckit.Client.open(address).call(b"ping", timeout=60))
        )
        caller.start()
        request = server.recv(timeout=60)
        assert request is not None and request.data == b"ping"
        assert server.reply(request, b"pong")
        caller.join(timeout=60)
        assert answers == [b"pong"]


def test_sigint_interrupts_a_waiting_call_and_the_call_stays_in_flight(address):
    with ipckit.Server.create(address) as server:
        child = python_child(
            """
            import sys, ipckit
            client = ipckit.Client.open(sys.argv[1])
            call = client.start(b"question", timeout=30)
            print("ready", flush=True)
            try:
                client.wait(call)  # no timeout: only the signal ends this wait
                print("wait returned", flush=True)
            except KeyboardInterrupt:
                print("interrupted", flush=True)
            print(client.wait(call, timeout=30).decode(), flush=True)
            """,
            address,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout.readline() == "ready\n"
            request = server.recv(timeout=30)
            assert request is not None and request.data == b"question"
            wait_until_blocked(child.pid)
            child.send_signal(signal.SIGINT)
            assert child.stdout.readline() == "interrupted\n"
            assert server.reply(request, b"the answer")
            assert child.stdout.readline() == "the answer\n"
            assert child.wait(timeout=60) == 0
        finally:
            child.kill()
            child.wait()


def test_a_server_killed_mid_call_raises_closed(address):
    if address.startswith("nats:"):
        pytest.skip("NATS cannot tell a client its server died: such a call ends at its timeout")
    code = """
        import sys, time, ipckit
        server = ipckit.Server.create(sys.argv[1])
        print("ready", flush=True)
        server.recv(timeout=30)
        print("got it", flush=True)
        time.sleep(60)
    """
    for _ in range(2):  # twice on one name: the second server takes over what the first left
        child = python_child(code, address, stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline() == "ready\n"
        with ipckit.Client.open(address) as client:
            call = client.start(b"x", timeout=30)
            assert child.stdout.readline() == "got it\n"
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
            with pytest.raises(ipckit.Closed, match="the server closed during the call"):
                client.wait(call, timeout=60)


def test_bad_use_is_a_clear_error(address):
    with pytest.raises(ipckit.Error, match="is a channel, not a service"):
        ipckit.Server.create("shm:/" + unique_name())
    server = ipckit.Server.create(address)
    with ipckit.Client.open(address) as client:
        with pytest.raises(ipckit.Error, match="no such call in flight|no call in flight"):
            client.wait(12345, timeout=0)
        with pytest.raises(ipckit.Error, match="limit") as raised:
            client.call(b"x" * (server.max_message_size + 1), timeout=10)
        assert raised.value.errno == 90  # EMSGSIZE
    server.close()
    assert server.closed
    with pytest.raises(ValueError, match="recv on a closed Server"):
        server.recv(timeout=0)
