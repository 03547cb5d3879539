# Type stubs for ipckit (the native module ipckit._ipckit re-exported); see docs/python.md.
from types import TracebackType
from typing import Any, Iterator, Optional, Type, Union


# Any object with the buffer protocol: bytes, bytearray, memoryview, array.array, numpy arrays.
BufferLike = Union[bytes, bytearray, memoryview, Any]

class Error(OSError):
    """A failure ipckit reports; str(e) is the C++ message, e.errno its code."""

class Closed(Error):
    """The peer closed or died, or the object was removed: nothing more will come."""

class Timeout(Error, TimeoutError):
    """A loan or read block found no room or no message within its timeout."""

class LoanBlock:
    """What Sender.loan returns: `with tx.loan(n) as buf:` (commit on exit, discard on exception)."""
    def __enter__(self) -> memoryview: ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...
    def commit(self, size: Optional[int] = None) -> None:
        """Inside the block: publishes the first `size` bytes (default: all) now."""

class ReadBlock:
    """What Receiver.read returns: `with rx.read() as view:` (released on exit)."""
    def __enter__(self) -> memoryview: ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

class Sender:
    """The sending end of a channel: whole messages, one way."""
    @staticmethod
    def create(address: str) -> Sender:
        """Creates the object the address names (exclusively); removed on close unless keep=1."""
    @staticmethod
    def open(address: str, timeout: Optional[float] = None) -> Sender:
        """Opens an object another process created, waiting up to `timeout` seconds."""
    def send(self, data: BufferLike, timeout: Optional[float] = None) -> bool:
        """Sends one message: True when sent, False on timeout; raises Closed if nobody reads."""
    def try_send(self, data: BufferLike) -> bool:
        """Sends without waiting: False if there is no room now."""
    def loan(self, size: int, timeout: Optional[float] = None) -> LoanBlock:
        """Zero copy (shm:, sysvshm:): writable record space inside the ring."""
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def max_message_size(self) -> int: ...
    @property
    def address(self) -> str: ...
    def __enter__(self) -> Sender: ...
    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None: ...

class Receiver:
    """The receiving end of a channel: whole messages, in order. Iterating ends at Closed."""
    @staticmethod
    def create(address: str) -> Receiver:
        """Creates the object the address names (exclusively) and receives from it."""
    @staticmethod
    def open(address: str, timeout: Optional[float] = None) -> Receiver:
        """Opens an object another process created."""
    def recv(self, timeout: Optional[float] = None) -> Optional[bytes]:
        """The next message; None on timeout; raises Closed after the sender closed or died."""
    def try_recv(self) -> Optional[bytes]:
        """The next message if one is there now, else None."""
    def recv_into(self, buffer: BufferLike, timeout: Optional[float] = None) -> Optional[int]:
        """Receives into a writable buffer; the message's size, or None on timeout."""
    def read(self, timeout: Optional[float] = None) -> ReadBlock:
        """Zero copy (shm:, sysvshm:): the next message in place, read-only."""
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def max_message_size(self) -> int: ...
    @property
    def address(self) -> str: ...
    @property
    def native_handle(self) -> int: ...
    def __enter__(self) -> Receiver: ...
    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None: ...
    def __iter__(self) -> Iterator[bytes]: ...
    def __next__(self) -> bytes: ...

class PollSet:
    """Waits on several receivers of any transports at once."""
    def __init__(self) -> None: ...
    def add(self, receiver: Receiver) -> int: ...
    def wait(self, timeout: Optional[float] = None) -> list[Receiver]:
        """The receivers ready now; [] if none became ready within `timeout`."""
    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> Receiver: ...

class ReplyHandle:
    """Where a reply goes: what Server.recv gave with the request."""
    @property
    def slot(self) -> int: ...
    @property
    def epoch(self) -> int: ...
    @property
    def id(self) -> int: ...

class Request:
    """One request as Server.recv gives it."""
    @property
    def data(self) -> bytes: ...
    @property
    def handle(self) -> ReplyHandle: ...

class Server:
    """The answering end of a service (service:/NAME, service:@NAME, nats://HOST:PORT/SUBJECT)."""
    @staticmethod
    def create(address: str) -> Server:
        """Creates the service, or takes over one whose server died."""
    def recv(self, timeout: Optional[float] = None) -> Optional[Request]:
        """The next request; None on timeout; raises Closed once the service is closed."""
    def reply(self, to: Union[Request, ReplyHandle], data: BufferLike) -> bool:
        """Answers once: True when written, False when the client left (dropped, counted)."""
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def counts(self) -> dict[str, int]: ...
    @property
    def max_message_size(self) -> int: ...
    @property
    def address(self) -> str: ...
    def __enter__(self) -> Server: ...
    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None: ...

class Client:
    """The asking end of a service: calls with deadlines."""
    @staticmethod
    def open(address: str) -> Client:
        """Names the service; no server need be there yet."""
    def call(self, data: BufferLike, timeout: Optional[float] = None) -> Optional[bytes]:
        """The response; None on timeout; raises Closed if the server died during the call."""
    def start(self, data: BufferLike, timeout: Optional[float] = None) -> Optional[int]:
        """Sends a request: its call id for wait, or None if it could not be sent in time."""
    def wait(self, call: int, timeout: Optional[float] = None) -> Optional[bytes]:
        """The response to a started call, as call returns it."""
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def max_message_size(self) -> int: ...
    @property
    def address(self) -> str: ...
    def __enter__(self) -> Client: ...
    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None: ...

def objects() -> list[dict[str, Any]]:
    """The IPC objects on this machine, as `ipckit ls --json` lists them."""

class NumPyMissing(ImportError):
    """A call that needs NumPy was made in an interpreter without it."""

def array(buffer: BufferLike, dtype: Any = "uint8", shape: Any = None) -> Any:
    """A numpy.ndarray sharing buffer's memory (a loan or a read view): no copy. Raises
    NumPyMissing when NumPy is not installed."""
