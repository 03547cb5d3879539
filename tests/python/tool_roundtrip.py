"""The ipckit module as installed (pip into a venv, or the python3-ipckit package) against
the C++ `ipckit` tool: a message each way over shm:, objects(), and NumPy: zero copy when it
is importable, the NumPyMissing message when it is not. Run by scripts/pip-test.sh and
scripts/package-test.sh, outside the source tree's own build.
Usage: python3 tool_roundtrip.py IPCKIT_TOOL"""

import os
import subprocess
import sys

import ipckit

tool = sys.argv[1]
where = os.path.dirname(ipckit.__file__)
address = f"shm:/ipckit-pycheck-{os.getpid()}"

with ipckit.Receiver.create(address) as rx:
    assert any(o["address"] == address for o in ipckit.objects()), "objects() does not list " + address
    sender = subprocess.Popen([tool, "send", address, "from the tool"])
    assert rx.recv(timeout=20) == b"from the tool"
    assert sender.wait(timeout=30) == 0

receiver = subprocess.Popen([tool, "recv", address + "-b", "--count", "1", "--timeout", "20"], stdout=subprocess.PIPE)
with ipckit.Sender.open(address + "-b", timeout=20) as tx:
    with tx.loan(11) as buf:
        buf[:] = b"from Python"
out, _ = receiver.communicate(timeout=30)
assert receiver.returncode == 0 and out == b"from Python\n", (receiver.returncode, out)

try:
    import numpy
except ImportError:
    numpy = None
with ipckit.Receiver.create(address + "-c") as rx, ipckit.Sender.open(address + "-c") as tx:
    with tx.loan(8) as buf:
        if numpy is None:
            try:
                ipckit.array(buf)
                raise AssertionError("ipckit.array worked without NumPy")
            except ipckit.NumPyMissing as e:
                assert "needs NumPy" in str(e) and sys.executable in str(e), str(e)
                print(f"tool_roundtrip: without NumPy, ipckit.array says: {e}")
            buf[:] = bytes(range(8))
        else:
            a = ipckit.array(buf, dtype=numpy.uint8)
            a[:] = numpy.arange(8, dtype=numpy.uint8)  # into the ring, no copy
            del a
    with rx.read(timeout=10) as view:
        assert bytes(view) == bytes(range(8))

print(f"tool_roundtrip: ipckit {where} with {sys.executable} and {tool}: ok "
      f"(NumPy {'present: zero copy' if numpy else 'absent'})")
