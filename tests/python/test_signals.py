"""Ctrl-C and dead peers: SIGINT interrupts a blocking recv with KeyboardInterrupt and leaves
the channel usable; a killed sender shows as Closed after what it sent."""

import signal
import subprocess

import pytest

import ipckit
from conftest import open_sender, python_child, wait_until_blocked


def test_sigint_interrupts_a_blocking_recv_and_the_channel_stays_usable(transport):
    child = python_child(
        """
        import sys, ipckit
        rx = ipckit.Receiver.create(sys.argv[1])
        try:
            print("ready", flush=True)
            rx.recv()  # no timeout: only the signal ends this wait
            print("recv returned", flush=True)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        print(rx.recv(timeout=30).decode(), flush=True)
        """,
        transport.address,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline() == "ready\n"
        # The signal lands while recv waits: the child's thread is asleep in the wait's call.
        wait_until_blocked(child.pid)
        child.send_signal(signal.SIGINT)
        assert child.stdout.readline() == "interrupted\n"
        with open_sender(transport.address) as tx:
            assert tx.send(b"after the interrupt", timeout=10)
            assert child.stdout.readline() == "after the interrupt\n"
        assert child.wait(timeout=60) == 0
    finally:
        child.kill()
        child.wait()


def test_sigint_interrupts_a_poll_set_wait_and_a_blocking_read():
    child = python_child(
        """
        import os, ipckit
        rx = ipckit.Receiver.create("shm:/ipckit-pytest-sigint-%d" % os.getpid())
        ps = ipckit.PollSet()
        ps.add(rx)
        for wait in (lambda: ps.wait(), lambda: rx.read().__enter__()):
            try:
                print("ready", flush=True)
                wait()
            except KeyboardInterrupt:
                print("interrupted", flush=True)
        """,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(2):
            assert child.stdout.readline() == "ready\n"
            wait_until_blocked(child.pid)
            child.send_signal(signal.SIGINT)
            assert child.stdout.readline() == "interrupted\n"
        assert child.wait(timeout=60) == 0
    finally:
        child.kill()
        child.wait()


def test_a_killed_sender_shows_as_closed_after_what_it_sent(transport):
    with ipckit.Receiver.create(transport.address) as rx:
        child = python_child(
            """
            import sys, time
            sys.path.insert(0, sys.argv[2])
            from conftest import open_sender
            tx = open_sender(sys.argv[1])
            assert tx.send(b"last words", timeout=10)
            print("sent", flush=True)
            time.sleep(600)
            """,
            transport.address,
            __import__("os").path.dirname(__file__),
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout.readline() == "sent\n"
            child.kill()
            child.wait(timeout=60)
            assert rx.recv(timeout=10) == b"last words"
            if transport.connectionless:
                # unix+dgram: a receiver learns nothing of its senders; it stays open.
                assert rx.recv(timeout=0.1) is None
            else:
                with pytest.raises(ipckit.Closed):
                    rx.recv(timeout=30)
        finally:
            child.kill()
            child.wait()
