"""ipckit.array: a NumPy array over a loan or a read view, with no copy. NumPy is optional:
everything else in ipckit works without it, and this call says plainly when it is missing."""

import sys


class NumPyMissing(ImportError):
    """A call that needs NumPy was made in an interpreter without it."""


def array(buffer, dtype="uint8", shape=None):
    """A NumPy array sharing `buffer`'s memory (a `tx.loan` buffer: writes go straight into the
    ring record; an `rx.read` view: read-only, valid inside its `with` block). `dtype` and
    `shape` as numpy.frombuffer and reshape take them. Raises NumPyMissing without NumPy."""
    try:
        import numpy
    except ImportError as e:
        raise NumPyMissing(
            f"ipckit.array needs NumPy, which {sys.executable} cannot import ({e}); "
            f"install it with `{sys.executable} -m pip install numpy`, or use the memoryview "
            "itself (bytes(view), view.cast(...)), which needs no NumPy"
        ) from None
    result = numpy.frombuffer(buffer, dtype=dtype)
    return result if shape is None else result.reshape(shape)
