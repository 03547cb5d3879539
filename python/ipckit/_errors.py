"""The exceptions of ipckit (imported by the native module when it loads)."""


class Error(OSError):
    """A failure ipckit reports: the C++ ``ipckit::Error``.

    ``errno`` is the error code (``errno.EINVAL`` for a malformed address, ``errno.EMSGSIZE``
    for a message over ``max_message_size`` ...) and ``str(e)`` is the C++ message, one line
    that names the call or the address and the limit.
    """

    def __str__(self) -> str:
        return self.strerror if self.strerror is not None else super().__str__()


class Closed(Error):
    """The peer closed or died, or the object was removed: nothing more will come.

    ``recv`` raises it only after every message sent before the close was received;
    iterating over a Receiver ends there instead. ``errno`` is None: it is an outcome, not
    a failing call.
    """


class Timeout(Error, TimeoutError):
    """A ``loan`` or ``read`` block found no room or no message within its timeout.

    (``recv`` returns None and ``send`` returns False instead.) ``errno`` is ETIMEDOUT.
    """


# Shown as ipckit.Error in tracebacks, where users catch it.
for _cls in (Error, Closed, Timeout):
    _cls.__module__ = "ipckit"
