"""The Python examples run end to end: the lecture's producer and consumer over several
transports, and against the C++ tool."""

import os
import subprocess
import sys

import pytest

from conftest import IPCKIT_TOOL, Transport

EXAMPLES = os.path.join(os.environ.get("IPCKIT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..")),
                        "examples", "python")


def example(name, *args, **popen):
    return subprocess.Popen([sys.executable, os.path.join(EXAMPLES, name), *args], text=True, **popen)


@pytest.mark.parametrize("name", ["fifo", "shm", "posixmq", "unix_abstract", "tcp"])
def test_producer_and_consumer(name, tmp_path):
    address = Transport(name, tmp_path).address
    consumer = example("consumer.py", address, stdout=subprocess.PIPE)
    assert consumer.stdout.readline() == "consumer: ready\n"
    producer = example("producer.py", address, "--count", "5000", stdout=subprocess.PIPE)
    assert producer.communicate(timeout=120)[0] == "producer: sent 5000 records\n"
    out = consumer.communicate(timeout=120)[0]
    assert consumer.returncode == 0 and producer.returncode == 0
    assert out == "consumer: received 5000 records, 0 torn, 0 out of order\n"


def test_the_producer_feeds_the_cpp_tool(tmp_path):
    address = Transport("shm", tmp_path).address
    receiver = subprocess.Popen([IPCKIT_TOOL, "recv", address, "--count", "3", "--timeout", "20"],
                                stdout=subprocess.PIPE)
    producer = example("producer.py", address, "--count", "3", stdout=subprocess.PIPE)
    assert producer.wait(timeout=60) == 0
    out = receiver.communicate(timeout=60)[0]
    assert receiver.returncode == 0
    assert out.count(b"\n") >= 3  # binary records, one per line
