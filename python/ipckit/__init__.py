"""ipckit: whole messages between processes over any Linux IPC mechanism, named by an address.

    import ipckit
    with ipckit.Receiver.create("shm:/demo") as rx:        # process A
        print(rx.recv(timeout=1.0))
    with ipckit.Sender.open("shm:/demo", timeout=5) as tx:  # process B
        tx.send(b"hello")

Addresses are those of the C++ channel API (docs/channels.md): fifo:PATH, sysvmq:KEY,
posixmq:/NAME, shm:/NAME, sysvshm:KEY, unix:PATH, unix:@NAME, unix+seqpacket:...,
unix+dgram:..., tcp://HOST:PORT, fd:N. docs/python.md describes this module.

Services (request/response, docs/services.md): ``Server.create("service:/calc")`` answers,
``Client.open("service:/calc").call(b"1+2", timeout=1)`` asks (None on timeout, ``Closed`` if
the server died during the call).

Outcomes: ``recv`` returns None on timeout, ``send`` returns False; a closed or dead peer
raises ``Closed``; everything else that fails raises ``Error`` (an OSError) with the C++
message. Blocking calls release the GIL and are interrupted by Ctrl-C.
"""

from ._errors import Closed, Error, Timeout
from ._ipckit import (
    Client,
    LoanBlock,
    PollSet,
    ReadBlock,
    Receiver,
    ReplyHandle,
    Request,
    Sender,
    Server,
    objects,
)
from ._numpy import NumPyMissing, array

__all__ = [
    "Client",
    "Closed",
    "Error",
    "LoanBlock",
    "NumPyMissing",
    "PollSet",
    "ReadBlock",
    "Receiver",
    "ReplyHandle",
    "Request",
    "Sender",
    "Server",
    "Timeout",
    "array",
    "objects",
]
