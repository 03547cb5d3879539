// The ipckit Python module's native part (ipckit._ipckit): the channel API, its zero-copy
// loans and reads, the wait set, and services (Server, Client), for Python.
// python/ipckit/__init__.py re-exports it and docs/python.md describes it; the exception
// classes live in python/ipckit/_errors.py.
//
// Waiting: every call that may block releases the GIL and waits in slices of kSlice, taking
// the GIL back between slices to run Python's signal handlers (PyErr_CheckSignals), so other
// threads run meanwhile and Ctrl-C raises KeyboardInterrupt within a slice. A slice that ends
// leaves the channel as it was (ipckit's deadlines never tear a message), so it stays usable.
//
// Zero copy: a loan or a read hands Python a memoryview over a RecordBuffer, a tiny object
// that exports the ring record and counts its exports. When the `with` block ends the view is
// released; if anything still exports the record (a numpy array, a slice of the view), the
// record is not given back to the ring (that would let a reader see reused space): the block
// raises BufferError and the channel refuses other calls until those exports are gone.
//
// Thread-safety: each Sender/Receiver admits one call at a time; a second thread calling in
// while another waits gets RuntimeError instead of the C++ API's undefined behaviour.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/channel.hpp"
#include "ipckit/error.hpp"
#include "ipckit/objects.hpp"
#include "ipckit/poll_set.hpp"
#include "ipckit/service.hpp"

namespace py = pybind11;

namespace ipckit::python {
namespace {

using Clock = Deadline::Clock;
// Long enough to cost nothing measurable, short enough that Ctrl-C feels immediate.
constexpr auto kSlice = std::chrono::milliseconds(50);

// The exception classes of python/ipckit/_errors.py, looked up once at import.
struct Exceptions {
    PyObject* error = nullptr;
    PyObject* closed = nullptr;
    PyObject* timeout = nullptr;
};
Exceptions exceptions;

[[noreturn]] void raise(PyObject* type, py::tuple args) {
    PyErr_SetObject(type, args.ptr());
    throw py::error_already_set();
}

std::string quoted(const std::string& address) {
    return "address \"" + address + "\"";
}

[[noreturn]] void raise_closed(const std::string& address, const char* peer) {
    raise(exceptions.closed, py::make_tuple(quoted(address) + ": the " + peer + " closed"));
}

[[noreturn]] void raise_timeout(const std::string& address, std::optional<double> timeout, const char* what) {
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%g", timeout.value_or(0));
    raise(exceptions.timeout,
          py::make_tuple(ETIMEDOUT, quoted(address) + ": " + what + " within " + seconds + " s"));
}

// timeout=None waits for ever, 0 does not wait, a positive number of seconds waits that long.
Deadline deadline_for(std::optional<double> timeout) {
    if (!timeout) return Deadline::never();
    if (!(*timeout >= 0)) throw py::value_error("timeout must be None or a number of seconds >= 0");
    if (*timeout == 0) return Deadline::immediate();
    return Deadline::after(
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(*timeout)));
}

// Runs `attempt(deadline)` until it gives something other than a timeout or `deadline` passes:
// first once without waiting and with the GIL held (a busy channel costs no GIL round trip),
// then with the GIL released in slices, checking for signals between them.
template <class Attempt>
auto wait_sliced(Deadline deadline, Attempt attempt) {
    auto result = attempt(Deadline::immediate());
    // An immediate attempt that would have to wait says would_block (or, from a wait with a
    // deadline of its own inside the call, timed_out): either way, wait in slices.
    const bool must_wait = result.status == Status::would_block || result.status == Status::timed_out;
    if (!must_wait || deadline.is_immediate()) return result;
    for (;;) {
        const auto slice_end = Clock::now() + kSlice;
        const Deadline slice = deadline.is_never() ? Deadline::at(slice_end)
                                                   : Deadline::at(std::min(slice_end, deadline.when()));
        {
            py::gil_scoped_release unlocked;
            result = attempt(slice);
        }
        if (result.status != Status::timed_out && result.status != Status::would_block) return result;
        if (!deadline.is_never() && deadline.expired()) {
            result.status = Status::timed_out;
            return result;
        }
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    }
}

// ---- RecordBuffer: a ring record exported to Python, with its exports counted ----

struct RecordBuffer {
    PyObject_HEAD void* data;
    Py_ssize_t size;
    int readonly;
    Py_ssize_t exports;
    bool valid;
    PyObject* owner;  // the Sender or Receiver: keeps the ring mapped while anything exports it
};

PyTypeObject* record_buffer_type = nullptr;

int record_buffer_get(PyObject* self, Py_buffer* view, int flags) {
    auto* b = reinterpret_cast<RecordBuffer*>(self);
    if (!b->valid) {
        view->obj = nullptr;
        PyErr_SetString(PyExc_ValueError, "ipckit: this ring record's with block has ended");
        return -1;
    }
    if (PyBuffer_FillInfo(view, self, b->data, b->size, b->readonly, flags) != 0) return -1;
    ++b->exports;
    return 0;
}

void record_buffer_release(PyObject* self, Py_buffer*) {
    --reinterpret_cast<RecordBuffer*>(self)->exports;
}

void record_buffer_dealloc(PyObject* self) {
    auto* b = reinterpret_cast<RecordBuffer*>(self);
    Py_CLEAR(b->owner);
    PyTypeObject* type = Py_TYPE(self);
    PyObject_Free(self);
    Py_DECREF(type);
}

void make_record_buffer_type() {
    static PyType_Slot slots[] = {
        {Py_bf_getbuffer, reinterpret_cast<void*>(record_buffer_get)},
        {Py_bf_releasebuffer, reinterpret_cast<void*>(record_buffer_release)},
        {Py_tp_dealloc, reinterpret_cast<void*>(record_buffer_dealloc)},
        {Py_tp_doc, const_cast<char*>("A ring record lent to Python for the length of a with block.")},
        {0, nullptr},
    };
    static PyType_Spec spec = {"ipckit._ipckit.RecordBuffer", sizeof(RecordBuffer), 0, Py_TPFLAGS_DEFAULT,
                               slots};
    record_buffer_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&spec));
    if (record_buffer_type == nullptr) throw py::error_already_set();
}

// A lent record: the buffer object and the memoryview handed out over it.
class Lent {
public:
    enum class State { none, active, stuck };

    // Returns the memoryview over `bytes`, owned by `owner`.
    py::object lend(std::span<const std::byte> bytes, bool readonly, py::handle owner) {
        auto* b = PyObject_New(RecordBuffer, record_buffer_type);
        if (b == nullptr) throw py::error_already_set();
        b->data = const_cast<std::byte*>(bytes.data());
        b->size = static_cast<Py_ssize_t>(bytes.size());
        b->readonly = readonly ? 1 : 0;
        b->exports = 0;
        b->valid = true;
        b->owner = owner.inc_ref().ptr();
        buffer_ = py::reinterpret_steal<py::object>(reinterpret_cast<PyObject*>(b));
        view_ = py::reinterpret_steal<py::object>(PyMemoryView_FromObject(buffer_.ptr()));
        if (!view_) throw py::error_already_set();
        state_ = State::active;
        return view_;
    }

    // Ends the block: true if the record may go back to the ring now. Otherwise the lent
    // record stays valid (something still reads or writes it) and the state is `stuck`.
    bool end() {
        if (view_) {
            // Fails while the memoryview itself is exported (numpy.frombuffer(view)).
            if (PyObject* r = PyObject_CallMethod(view_.ptr(), "release", nullptr)) {
                Py_DECREF(r);
                view_ = py::object();
            } else {
                PyErr_Clear();
            }
        }
        auto* b = reinterpret_cast<RecordBuffer*>(buffer_.ptr());
        if (view_ || b->exports != 0) {
            state_ = State::stuck;
            return false;
        }
        b->valid = false;
        Py_CLEAR(b->owner);  // the channel no longer needs to outlive the buffer
        buffer_ = py::object();
        state_ = State::none;
        return true;
    }

    [[nodiscard]] State state() const { return state_; }

private:
    State state_ = State::none;
    py::object buffer_;
    py::object view_;
};

[[noreturn]] void raise_still_exported(const std::string& address, const char* what) {
    PyErr_SetString(PyExc_BufferError,
                    (quoted(address) + ": the " + what +
                     " is still in use by a numpy array or a slice of its view; delete those, or copy "
                     "(bytes(view), numpy.array(...)), before the with block ends")
                        .c_str());
    throw py::error_already_set();
}

// One call at a time per channel: set while a call runs (it may have released the GIL).
class Busy {
public:
    Busy(bool& flag, const char* type) : flag_(flag) {
        if (flag_) {
            throw std::runtime_error(std::string("ipckit: this ") + type +
                                     " is in use by another thread (one call at a time per channel)");
        }
        flag_ = true;
    }
    ~Busy() { flag_ = false; }
    Busy(const Busy&) = delete;
    Busy& operator=(const Busy&) = delete;

private:
    bool& flag_;
};

// A read-only or writable buffer held for the length of one call.
class HeldBuffer {
public:
    HeldBuffer(py::handle object, bool writable) {
        if (PyObject_GetBuffer(object.ptr(), &view_, writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) != 0)
            throw py::error_already_set();
    }
    ~HeldBuffer() { PyBuffer_Release(&view_); }
    HeldBuffer(const HeldBuffer&) = delete;
    HeldBuffer& operator=(const HeldBuffer&) = delete;
    [[nodiscard]] std::span<std::byte> bytes() const {
        return {static_cast<std::byte*>(view_.buf), static_cast<std::size_t>(view_.len)};
    }

private:
    Py_buffer view_{};
};

// ---- Sender ----

class PySender {
public:
    explicit PySender(Sender sender) : address_(sender.address()), sender_(std::move(sender)) {}

    Sender& get(const char* call) {
        if (!sender_) throw py::value_error(quoted(address_) + ": " + call + " on a closed Sender");
        settle();
        return *sender_;
    }

    // A loan whose block ended with its view still exported is discarded once nothing uses it.
    void settle() {
        if (lent_.state() == Lent::State::active)
            throw std::runtime_error(quoted(address_) + ": a loan is open; commit it or end its with block");
        if (lent_.state() == Lent::State::stuck && !lent_.end())
            raise_still_exported(address_, "loaned record");
    }

    bool send(py::handle data, std::optional<double> timeout) {
        Sender& sender = get("send");
        Busy busy(busy_, "Sender");
        HeldBuffer held(data, false);
        const auto bytes = held.bytes();
        const IoResult r =
            wait_sliced(deadline_for(timeout), [&](Deadline d) { return sender.send(bytes, d); });
        if (r.status == Status::closed) raise_closed(address_, "receiver");
        return r.ok();
    }

    py::object begin_loan(py::handle self, std::size_t size, std::optional<double> timeout) {
        Sender& sender = get("loan");
        Busy busy(busy_, "Sender");
        const Loan loan =
            wait_sliced(deadline_for(timeout), [&](Deadline d) { return sender.loan(size, d); });
        if (loan.status == Status::closed) raise_closed(address_, "receiver");
        if (!loan.ok()) raise_timeout(address_, timeout, "no room for the loan");
        loan_size_ = size;
        return lent_.lend(loan.buffer, false, self);
    }

    // Ends the loan's block: commits `size` bytes (none: all), or discards when `commit` is false.
    void end_loan(std::optional<std::size_t> size, bool commit) {
        if (lent_.state() != Lent::State::active)
            throw std::runtime_error(quoted(address_) + ": no loan is open");
        if (!lent_.end()) raise_still_exported(address_, "loaned record");
        if (commit) sender_->commit(size.value_or(loan_size_));
    }

    void close() {
        if (!sender_) return;
        Busy busy(busy_, "Sender");
        settle();
        sender_.reset();
    }

    std::size_t max_message_size() { return get("max_message_size").max_message_size(); }
    const std::string& address() const { return address_; }
    bool closed() const { return !sender_; }

private:
    std::string address_;
    std::optional<Sender> sender_;
    bool busy_ = false;
    Lent lent_;
    std::size_t loan_size_ = 0;
};

// with tx.loan(n) as buf: — the view on entry; commit on a clean exit, discard on an exception.
struct LoanBlock {
    py::object sender;
    std::size_t size;
    std::optional<double> timeout;
    bool open = false;

    PySender& owner() const { return sender.cast<PySender&>(); }
    py::object enter() {
        if (open) throw std::runtime_error("ipckit: this loan's with block is already open");
        py::object view = owner().begin_loan(sender, size, timeout);
        open = true;
        return view;
    }
    void commit(std::optional<std::size_t> bytes) {
        if (!open) throw std::runtime_error("ipckit: commit outside the loan's with block");
        open = false;
        owner().end_loan(bytes, true);
    }
    bool exit(py::handle type, py::handle, py::handle) {
        if (!open) return false;  // committed inside the block
        open = false;
        owner().end_loan(std::nullopt, type.is_none());
        return false;
    }
};

// ---- Receiver ----

class PyReceiver {
public:
    explicit PyReceiver(Receiver receiver) : address_(receiver.address()), receiver_(std::move(receiver)) {}

    Receiver& get(const char* call) {
        if (!receiver_) throw py::value_error(quoted(address_) + ": " + call + " on a closed Receiver");
        settle();
        return *receiver_;
    }

    // A read whose block ended with its view still exported is released once nothing uses it.
    void settle() {
        if (lent_.state() == Lent::State::active)
            throw std::runtime_error(quoted(address_) + ": a read() block is open; end it first");
        if (lent_.state() == Lent::State::stuck) {
            if (!lent_.end()) raise_still_exported(address_, "record read() lent");
            receiver_->release();
        }
    }

    py::object recv(std::optional<double> timeout) {
        Receiver& receiver = get("recv");
        Busy busy(busy_, "Receiver");
        const IoResult r =
            wait_sliced(deadline_for(timeout), [&](Deadline d) { return receiver.recv(message_, d); });
        if (r.status == Status::closed) raise_closed(address_, "sender");
        if (!r.ok()) return py::none();
        return py::bytes(reinterpret_cast<const char*>(message_.data()), message_.size());
    }

    py::object recv_into(py::handle buffer, std::optional<double> timeout) {
        Receiver& receiver = get("recv_into");
        Busy busy(busy_, "Receiver");
        HeldBuffer held(buffer, true);
        const auto bytes = held.bytes();
        const IoResult r =
            wait_sliced(deadline_for(timeout), [&](Deadline d) { return receiver.recv(bytes, d); });
        if (r.status == Status::closed) raise_closed(address_, "sender");
        if (!r.ok()) return py::none();
        return py::int_(r.bytes);
    }

    py::object begin_read(py::handle self, std::optional<double> timeout) {
        Receiver& receiver = get("read");
        Busy busy(busy_, "Receiver");
        const RecordView view =
            wait_sliced(deadline_for(timeout), [&](Deadline d) { return receiver.read(d); });
        if (view.status == Status::closed) raise_closed(address_, "sender");
        if (!view.ok()) raise_timeout(address_, timeout, "no message");
        return lent_.lend(view.message, true, self);
    }

    void end_read() {
        if (lent_.state() != Lent::State::active)
            throw std::runtime_error(quoted(address_) + ": no read is open");
        if (!lent_.end()) raise_still_exported(address_, "record read() lent");
        receiver_->release();
    }

    void close() {
        if (!receiver_) return;
        Busy busy(busy_, "Receiver");
        settle();
        receiver_.reset();
    }

    // For PollSet: marks the receiver busy for the length of a wait.
    Receiver& for_poll() { return get("PollSet.wait"); }
    bool& busy_flag() { return busy_; }

    std::size_t max_message_size() { return get("max_message_size").max_message_size(); }
    int native_handle() { return get("native_handle").native_handle(); }
    const std::string& address() const { return address_; }
    bool closed() const { return !receiver_; }

private:
    std::string address_;
    std::optional<Receiver> receiver_;
    bool busy_ = false;
    Lent lent_;
    std::vector<std::byte> message_;  // reused: one allocation for a stream of messages
};

struct ReadBlock {
    py::object receiver;
    std::optional<double> timeout;
    bool open = false;

    py::object enter() {
        if (open) throw std::runtime_error("ipckit: this read's with block is already open");
        py::object view = receiver.cast<PyReceiver&>().begin_read(receiver, timeout);
        open = true;
        return view;
    }
    bool exit(py::handle, py::handle, py::handle) {
        if (!open) return false;
        open = false;
        receiver.cast<PyReceiver&>().end_read();
        return false;
    }
};

// ---- PollSet ----

class PyPollSet {
public:
    std::size_t add(py::object receiver) {
        PyReceiver& r = receiver.cast<PyReceiver&>();
        for (const auto& member : members_) {
            if (member.is(receiver)) throw py::value_error(quoted(r.address()) + ": already in this PollSet");
        }
        // ipckit::PollSet keeps a pointer: the Python object keeps the Receiver where it is.
        const std::size_t index = set_.add(r.for_poll());
        members_.push_back(std::move(receiver));
        return index;
    }

    py::list wait(std::optional<double> timeout) {
        // Every member is held busy while the GIL is released, so no thread closes one meanwhile.
        std::vector<std::unique_ptr<Busy>> held;
        for (const auto& member : members_) {
            PyReceiver& r = member.cast<PyReceiver&>();
            (void)r.for_poll();
            held.push_back(std::make_unique<Busy>(r.busy_flag(), "Receiver"));
        }
        struct Ready {
            Status status;
            std::vector<std::size_t> indices;
        };
        const Ready ready = wait_sliced(deadline_for(timeout), [&](Deadline d) {
            auto indices = set_.wait(d);
            return Ready{
                indices.empty() ? (d.is_immediate() ? Status::would_block : Status::timed_out) : Status::ok,
                std::move(indices)};
        });
        py::list out;
        for (std::size_t i : ready.indices)
            out.append(members_.at(i));
        return out;
    }

    std::size_t size() const { return members_.size(); }
    py::object at(std::size_t index) const {
        if (index >= members_.size()) throw py::index_error("PollSet index out of range");
        return members_[index];
    }

private:
    PollSet set_;
    std::vector<py::object> members_;
};

// ---- objects() ----

py::object or_none(bool known, long long value) {
    return known ? py::object(py::int_(value)) : py::object(py::none());
}

py::list objects() {
    std::vector<IpcObject> found;
    {
        py::gil_scoped_release unlocked;
        found = list_objects();
    }
    py::list out;
    for (const auto& o : found) {
        const bool queue = o.kind == ObjectKind::sysvmq;
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(o.mode));
        py::dict d;
        d["kind"] = std::string(kind_name(o));
        d["address"] = o.address;
        d["owner"] = o.owner;
        d["owner_uid"] = or_none(o.owner_uid != static_cast<uid_t>(-1), o.owner_uid);
        d["mode"] = std::string(mode);
        d["size"] = or_none(o.size.has_value(), static_cast<long long>(o.size.value_or(0)));
        d["messages"] = or_none(o.messages.has_value(), static_cast<long long>(o.messages.value_or(0)));
        d["id"] = or_none(o.sysv_id >= 0, o.sysv_id);
        d["creator_pid"] = or_none(o.creator_source != CreatorSource::unknown, o.creator_pid);
        d["creator_source"] = std::string(to_string(o.creator_source));
        d["creator_alive"] = o.creator_alive;
        d["creator_in_other_pid_namespace"] = o.creator_in_other_pid_namespace;
        d["in_use"] = o.in_use;
        d["last_sender_pid"] = or_none(queue, o.last_sender_pid);
        d["last_receiver_pid"] = or_none(queue, o.last_receiver_pid);
        d["stale"] = o.stale;
        if (o.service) {
            py::dict s;
            s["clients"] = o.service->clients;
            s["clients_attached"] = o.service->clients_attached;
            s["server_alive"] = o.service->server_alive;
            s["server_pid"] = o.service->server_pid;
            s["calls"] = o.service->calls;
            s["replies"] = o.service->replies;
            s["replies_dropped"] = o.service->replies_dropped;
            s["takeovers"] = o.service->takeovers;
            d["service"] = std::move(s);
        } else {
            d["service"] = py::none();
        }
        out.append(std::move(d));
    }
    return out;
}

// ---- services: Server and Client ----

py::bytes bytes_of(const std::vector<std::byte>& data) {
    return {reinterpret_cast<const char*>(data.data()), data.size()};
}

// One request as the server received it.
struct PyRequest {
    py::bytes data;
    ReplyHandle handle;
};

class PyServer {
public:
    explicit PyServer(Server server) : address_(server.address()), server_(std::move(server)) {}

    Server& get(const char* call) {
        if (!server_) throw py::value_error(quoted(address_) + ": " + call + " on a closed Server");
        return *server_;
    }

    // The next request, or None at the timeout; Closed once the service was closed.
    py::object recv(std::optional<double> timeout) {
        Server& server = get("recv");
        Busy busy(busy_, "Server's recv");
        const IoResult r =
            wait_sliced(deadline_for(timeout), [&](Deadline d) { return server.recv(request_, d); });
        if (r.status == Status::closed) raise_closed(address_, "service");
        if (!r.ok()) return py::none();
        return py::cast(PyRequest{bytes_of(request_.message), request_.handle});
    }

    // True when written; False when the client closed, died or gave up (dropped and counted).
    // Never waits: the GIL stays held, so close() cannot run meanwhile.
    bool reply(py::handle to, py::handle data) {
        Server& server = get("reply");
        const ReplyHandle handle =
            py::isinstance<PyRequest>(to) ? to.cast<const PyRequest&>().handle : to.cast<ReplyHandle>();
        HeldBuffer held(data, false);
        return server.reply(handle, held.bytes()).ok();
    }

    py::dict counts() {
        const ServerCounts c = get("counts").counts();
        py::dict out;
        out["calls"] = c.calls;
        out["replies"] = c.replies;
        out["replies_dropped"] = c.replies_dropped;
        out["takeovers"] = c.takeovers;
        return out;
    }

    void close() {
        if (!server_) return;
        Busy busy(busy_, "Server's recv");
        server_.reset();
    }

    std::size_t max_message_size() { return get("max_message_size").max_message_size(); }
    const std::string& address() const { return address_; }
    bool closed() const { return !server_; }

private:
    std::string address_;
    std::optional<Server> server_;
    Request request_;
    bool busy_ = false;
};

// Calls wait as recv does: without the GIL, in slices, running Python's signal handlers between
// them. A start that times out sent nothing, and a look at a call with Deadline::immediate()
// keeps it in flight, so a slice that ends changes nothing: after Ctrl-C the call can be waited
// for again. Between looks the client waits in a PollSet (its response ring's doorbell, or
// short sleeps for NATS).
class PyClient {
public:
    explicit PyClient(Client client) : address_(client.address()), client_(std::move(client)) {}

    Client& get(const char* call) {
        if (!client_) throw py::value_error(quoted(address_) + ": " + call + " on a closed Client");
        return *client_;
    }

    // The response, or None at the timeout; Closed when the server died or closed meanwhile.
    py::object call(py::handle data, std::optional<double> timeout) {
        Client& client = get("call");
        Busy busy(busy_, "Client");
        HeldBuffer held(data, false);
        const Deadline deadline = deadline_for(timeout);
        const Client::Started started = start_sliced(client, held.bytes(), deadline);
        if (!started.ok()) return answered({started.status, 0});
        return answered(wait_sliced_call(client, started.call, deadline));
    }

    // Sends a request: its call id, or None if it could not be sent within the timeout.
    py::object start(py::handle data, std::optional<double> timeout) {
        Client& client = get("start");
        Busy busy(busy_, "Client");
        HeldBuffer held(data, false);
        const Client::Started started = start_sliced(client, held.bytes(), deadline_for(timeout));
        if (started.status == Status::closed) raise_closed(address_, "server");
        if (!started.ok()) return py::none();
        return py::int_(started.call.id);
    }

    py::object wait(std::uint64_t call, std::optional<double> timeout) {
        Client& client = get("wait");
        Busy busy(busy_, "Client");
        return answered(wait_sliced_call(client, CallId{call}, deadline_for(timeout)));
    }

    void close() {
        if (!client_) return;
        Busy busy(busy_, "Client");
        client_.reset();
    }

    std::size_t max_message_size() { return get("max_message_size").max_message_size(); }
    const std::string& address() const { return address_; }
    bool closed() const { return !client_; }

private:
    static Deadline slice_of(Deadline deadline) {
        const auto slice_end = Clock::now() + kSlice;
        return deadline.is_never() ? Deadline::at(slice_end)
                                   : Deadline::at(std::min(slice_end, deadline.when()));
    }

    // A start waits for a server (and attaches) within its deadline; one that timed out sent nothing.
    Client::Started start_sliced(Client& client, std::span<const std::byte> request, Deadline deadline) {
        for (;;) {
            Client::Started started;
            {
                py::gil_scoped_release unlocked;
                started = client.start(request, deadline.is_immediate() ? deadline : slice_of(deadline));
            }
            if (started.status != Status::timed_out || deadline.is_immediate()) return started;
            if (!deadline.is_never() && deadline.expired()) return started;
            if (PyErr_CheckSignals() != 0) throw py::error_already_set();
        }
    }

    IoResult wait_sliced_call(Client& client, CallId call, Deadline deadline) {
        PollSet set;
        set.add(client);
        bool ready_for_another = false;  // the last wake was for another call's response
        for (;;) {
            const IoResult r = client.wait(call, response_, Deadline::immediate());
            if (r.status != Status::would_block || deadline.is_immediate()) return r;
            // Past the deadline: the look that ends the call (timed_out; a late answer is dropped).
            if (!deadline.is_never() && deadline.expired()) return client.wait(call, response_, deadline);
            {
                py::gil_scoped_release unlocked;
                // Still ready for another call's response (several in flight): pause, not spin.
                if (ready_for_another) std::this_thread::sleep_for(std::chrono::milliseconds(1));
                ready_for_another = !set.wait(slice_of(deadline)).empty();
            }
            if (PyErr_CheckSignals() != 0) throw py::error_already_set();
        }
    }

    py::object answered(IoResult r) {
        if (r.status == Status::closed)
            raise(exceptions.closed,
                  py::make_tuple(quoted(address_) + ": the server closed during the call"));
        if (!r.ok()) return py::none();
        return bytes_of(response_);
    }

    std::string address_;
    std::optional<Client> client_;
    std::vector<std::byte> response_;
    bool busy_ = false;
};

// Opening may wait for the peer (a FIFO's reader, a socket's server): without the GIL.
template <class Channel>
Channel open_channel(const std::string& address, std::optional<double> timeout) {
    const Deadline deadline = deadline_for(timeout);
    py::gil_scoped_release unlocked;
    return Channel::open(address, deadline);
}

}  // namespace
}  // namespace ipckit::python

PYBIND11_MODULE(_ipckit, m) {
    using namespace ipckit::python;
    namespace ik = ipckit;
    m.doc() = "Native part of the ipckit package: import ipckit instead.";

    py::module_ errors = py::module_::import("ipckit._errors");
    exceptions.error = py::object(errors.attr("Error")).release().ptr();
    exceptions.closed = py::object(errors.attr("Closed")).release().ptr();
    exceptions.timeout = py::object(errors.attr("Timeout")).release().ptr();
    make_record_buffer_type();

    // ipckit::Error becomes ipckit.Error(errno, message): the same one-line message as C++.
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const ik::Error& e) {
            PyErr_SetObject(exceptions.error, py::make_tuple(e.code().value(), std::string(e.what())).ptr());
        }
    });

    const auto timeout = py::arg("timeout") = py::none();

    py::class_<PySender>(m, "Sender", "The sending end of a channel: whole messages, one way.")
        .def_static(
            "create", [](const std::string& address) { return PySender(ik::Sender::create(address)); },
            py::arg("address"),
            "Creates the kernel object the address names (exclusively) and sends into it; the "
            "object is removed when this Sender closes unless the address says keep=1.")
        .def_static(
            "open",
            [](const std::string& address, std::optional<double> t) {
                return PySender(open_channel<ik::Sender>(address, t));
            },
            py::arg("address"), timeout,
            "Opens an object another process created, waiting up to `timeout` seconds for it (sockets, "
            "FIFOs).")
        .def("send", &PySender::send, py::arg("data"), timeout,
             "Sends one whole message (bytes or any contiguous buffer). True when sent, False if "
             "`timeout` passed first; raises Closed when nobody will ever read it.")
        .def(
            "try_send", [](PySender& s, py::handle data) { return s.send(data, 0.0); }, py::arg("data"),
            "Sends without waiting: False if there is no room now.")
        .def(
            "loan",
            [](py::object self, std::size_t size, std::optional<double> t) {
                return LoanBlock{std::move(self), size, t};
            },
            py::arg("size"), timeout,
            "Zero copy (shm:, sysvshm:): `with tx.loan(n) as buf:` gives a writable memoryview of n "
            "bytes inside the ring, committed as one message when the block ends cleanly and discarded "
            "on an exception. Raises Timeout if no room came within `timeout`.")
        .def("close", &PySender::close, "Closes the channel (idempotent).")
        .def_property_readonly("closed", &PySender::closed)
        .def_property_readonly("max_message_size", &PySender::max_message_size,
                               "The largest message this channel carries, in bytes.")
        .def_property_readonly("address", &PySender::address)
        .def("__enter__", [](py::object self) { return self; })
        .def("__exit__", [](PySender& s, py::handle, py::handle, py::handle) { s.close(); })
        .def("__repr__", [](const PySender& s) {
            return "<ipckit.Sender " + quoted(s.address()) + (s.closed() ? " closed>" : ">");
        });

    py::class_<LoanBlock>(m, "LoanBlock", "What Sender.loan returns: use it in a with statement.")
        .def("__enter__", &LoanBlock::enter)
        .def("__exit__", &LoanBlock::exit)
        .def("commit", &LoanBlock::commit, py::arg("size") = py::none(),
             "Inside the block: publishes the first `size` bytes (default: all) now; the view ends.");

    py::class_<PyReceiver>(m, "Receiver", "The receiving end of a channel: whole messages, in order.")
        .def_static(
            "create", [](const std::string& address) { return PyReceiver(ik::Receiver::create(address)); },
            py::arg("address"),
            "Creates the kernel object the address names (exclusively) and receives from it.")
        .def_static(
            "open",
            [](const std::string& address, std::optional<double> t) {
                return PyReceiver(open_channel<ik::Receiver>(address, t));
            },
            py::arg("address"), timeout, "Opens an object another process created.")
        .def("recv", &PyReceiver::recv, timeout,
             "The next message as bytes; None if `timeout` passed first; raises Closed once the "
             "sender has closed or died and everything it sent was received.")
        .def(
            "try_recv", [](PyReceiver& r) { return r.recv(0.0); },
            "The next message if one is there now, else None.")
        .def("recv_into", &PyReceiver::recv_into, py::arg("buffer"), timeout,
             "Receives into a writable buffer; returns the message's size, or None on timeout. A message "
             "larger than the buffer raises Error and stays queued.")
        .def(
            "read",
            [](py::object self, std::optional<double> t) {
                return ReadBlock{std::move(self), t};
            },
            timeout,
            "Zero copy (shm:, sysvshm:): `with rx.read() as view:` gives a read-only memoryview of the "
            "next message in place, released when the block ends. Raises Timeout or Closed.")
        .def("close", &PyReceiver::close, "Closes the channel (idempotent).")
        .def_property_readonly("closed", &PyReceiver::closed)
        .def_property_readonly("max_message_size", &PyReceiver::max_message_size)
        .def_property_readonly("address", &PyReceiver::address)
        .def_property_readonly("native_handle", &PyReceiver::native_handle,
                               "A descriptor that polls readable when a message may be ready, or -1.")
        .def("__enter__", [](py::object self) { return self; })
        .def("__exit__", [](PyReceiver& r, py::handle, py::handle, py::handle) { r.close(); })
        .def("__iter__", [](py::object self) { return self; })
        .def("__next__",
             [](PyReceiver& r) {
                 try {
                     return r.recv(std::nullopt);
                 } catch (py::error_already_set& e) {
                     if (e.matches(exceptions.closed)) throw py::stop_iteration();
                     throw;
                 }
             })
        .def("__repr__", [](const PyReceiver& r) {
            return "<ipckit.Receiver " + quoted(r.address()) + (r.closed() ? " closed>" : ">");
        });

    py::class_<ReadBlock>(m, "ReadBlock", "What Receiver.read returns: use it in a with statement.")
        .def("__enter__", &ReadBlock::enter)
        .def("__exit__", &ReadBlock::exit);

    py::class_<PyPollSet>(m, "PollSet", "Waits on several receivers of any transports at once.")
        .def(py::init<>())
        .def("add", &PyPollSet::add, py::arg("receiver"), "Adds a receiver; returns its index.")
        .def("wait", &PyPollSet::wait, timeout,
             "The receivers ready now (a message, or the end of stream), waiting up to `timeout`; "
             "an empty list if none became ready in time.")
        .def("__len__", &PyPollSet::size)
        .def("__getitem__", &PyPollSet::at);

    py::class_<ik::ReplyHandle>(m, "ReplyHandle",
                                "Where a reply goes: what Server.recv gave with the request.")
        .def_readonly("slot", &ik::ReplyHandle::slot)
        .def_readonly("epoch", &ik::ReplyHandle::epoch)
        .def_readonly("id", &ik::ReplyHandle::id)
        .def("__repr__", [](const ik::ReplyHandle& h) {
            return "<ipckit.ReplyHandle slot=" + std::to_string(h.slot) +
                   " epoch=" + std::to_string(h.epoch) + " id=" + std::to_string(h.id) + ">";
        });

    py::class_<PyRequest>(m, "Request",
                          "One request as Server.recv gives it: its bytes and its reply handle.")
        .def_readonly("data", &PyRequest::data)
        .def_readonly("handle", &PyRequest::handle)
        .def("__repr__", [](const PyRequest& r) {
            return "<ipckit.Request " + std::to_string(py::len(r.data)) + " bytes>";
        });

    py::class_<PyServer>(m, "Server",
                         "The answering end of a service: requests from many clients, one reply each.")
        .def_static(
            "create", [](const std::string& address) { return PyServer(ik::Server::create(address)); },
            py::arg("address"),
            "Creates the service (service:/NAME, service:@NAME, nats://HOST:PORT/SUBJECT), or takes over "
            "one whose server died; a live server on the name raises Error (EBUSY).")
        .def("recv", &PyServer::recv, timeout,
             "The next request (a Request: .data, .handle), or None if `timeout` passed first.")
        .def("reply", &PyServer::reply, py::arg("to"), py::arg("data"),
             "Answers a Request (or its ReplyHandle) once, from any thread: True when written, False "
             "when the client closed, died or gave up (the reply is dropped and counted). A second "
             "reply, or one to a handle this server never gave: Error (EINVAL).")
        .def("close", &PyServer::close, "Ends the service: every call in flight ends closed (idempotent).")
        .def_property_readonly("closed", &PyServer::closed)
        .def_property_readonly("counts", &PyServer::counts,
                               "calls, replies, replies_dropped, takeovers: what this server counted.")
        .def_property_readonly("max_message_size", &PyServer::max_message_size)
        .def_property_readonly("address", &PyServer::address)
        .def("__enter__", [](py::object self) { return self; })
        .def("__exit__", [](PyServer& s, py::handle, py::handle, py::handle) { s.close(); })
        .def("__repr__", [](const PyServer& s) { return "<ipckit.Server " + s.address() + ">"; });

    py::class_<PyClient>(m, "Client", "The asking end of a service: calls with deadlines.")
        .def_static(
            "open", [](const std::string& address) { return PyClient(ik::Client::open(address)); },
            py::arg("address"), "Names the service; no server need be there yet (a call waits for one).")
        .def("call", &PyClient::call, py::arg("data"), timeout,
             "Sends a request and returns the response (bytes), or None if no answer came within "
             "`timeout` (no server, or too slow: a late answer is dropped); raises Closed when the "
             "server died or closed during the call. The GIL is released while it waits.")
        .def("start", &PyClient::start, py::arg("data"), timeout,
             "Sends a request without waiting for its answer: its call id (for wait), or None if it "
             "could not be sent within `timeout`.")
        .def("wait", &PyClient::wait, py::arg("call"), timeout,
             "The response to a started call, in any order, as call returns it.")
        .def("close", &PyClient::close, "Closes the client (idempotent).")
        .def_property_readonly("closed", &PyClient::closed)
        .def_property_readonly("max_message_size", &PyClient::max_message_size)
        .def_property_readonly("address", &PyClient::address)
        .def("__enter__", [](py::object self) { return self; })
        .def("__exit__", [](PyClient& c, py::handle, py::handle, py::handle) { c.close(); })
        .def("__repr__", [](const PyClient& c) { return "<ipckit.Client " + c.address() + ">"; });

    m.def("objects", &objects, "The IPC objects on this machine, as `ipckit ls --json` lists them.");
}
