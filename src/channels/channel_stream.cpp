// Stream transports (fd:, fifo:, unix:, tcp://): a byte stream plus ipckit's framing.
//
// The side that creates the object may have to wait for its peer before bytes can flow (a
// FIFO writer needs a reader, a listener needs a client): that wait happens on the first
// send or recv, bounded by that call's deadline, so `create` itself never blocks.
#include <fcntl.h>

#include <chrono>
#include <functional>
#include <optional>
#include <thread>

#include "channel_backend.hpp"
#include "framing.hpp"
#include "ipckit/error.hpp"
#include "ipckit/fifo.hpp"
#include "ipckit/io.hpp"
#include "ipckit/pipe.hpp"
#include "ipckit/tcp.hpp"
#include "ipckit/unix_socket.hpp"

namespace ipckit::detail {
namespace {

// Produces the connected descriptor: at once, or after waiting for the peer. Returns an
// invalid Fd when the deadline passed first.
using Connect = std::function<Fd(Deadline)>;

// A stream endpoint: the kernel object it owns (a FIFO path, a listening socket; removed
// when the endpoint goes away) and the connected descriptor, obtained lazily.
class StreamEndpoint {
public:
    StreamEndpoint(std::shared_ptr<void> owner, Connect connect)
        : owner_(std::move(owner)), connect_(std::move(connect)) {}
    explicit StreamEndpoint(Fd fd) : fd_(std::move(fd)) {}

    // The descriptor, or -1 when the peer did not come before the deadline.
    int get(Deadline deadline) {
        if (!fd_.valid() && connect_) {
            fd_ = connect_(deadline);
            if (fd_.valid()) connect_ = nullptr;
        }
        return fd_.get();
    }
    [[nodiscard]] int peek() const { return fd_.get(); }

private:
    std::shared_ptr<void> owner_;
    Connect connect_;
    Fd fd_;
};

std::size_t stream_limit(const Address& address) {
    return address.max_message.value_or(kDefaultStreamLimit);
}

class StreamSender final : public SenderBackend {
public:
    StreamSender(const Address& address, StreamEndpoint endpoint)
        : SenderBackend(address),
          endpoint_(std::move(endpoint)),
          framing_(address.stream.framing),
          limit_(stream_limit(address)),
          kind_(address.transport == Transport::fd || address.transport == Transport::fifo
                    ? DescriptorKind::pipe
                    : DescriptorKind::socket) {}

    IoResult send(std::span<const std::byte> message, Deadline deadline) override {
        const int fd = endpoint_.get(deadline);
        if (fd < 0) return {deadline.is_immediate() ? Status::would_block : Status::timed_out, 0};
        return write_frame(fd, framing_, message, deadline, limit_, address(), kind_);
    }
    std::size_t max_message_size() const override { return limit_; }

private:
    StreamEndpoint endpoint_;
    Framing framing_;
    std::size_t limit_;
    DescriptorKind kind_;  // saves an fstat(2) per message
};

class StreamReceiver final : public ReceiverBackend {
public:
    StreamReceiver(const Address& address, StreamEndpoint endpoint)
        : ReceiverBackend(address),
          endpoint_(std::move(endpoint)),
          reader_(address.stream.framing, stream_limit(address), address.text),
          limit_(stream_limit(address)) {}

    IoResult recv(std::span<std::byte> buffer, Deadline deadline) override {
        const int fd = endpoint_.get(deadline);
        if (fd < 0) return {deadline.is_immediate() ? Status::would_block : Status::timed_out, 0};
        return reader_.read(fd, buffer, deadline);
    }
    IoResult recv(std::vector<std::byte>& message, Deadline deadline) override {
        const int fd = endpoint_.get(deadline);
        if (fd < 0) return {deadline.is_immediate() ? Status::would_block : Status::timed_out, 0};
        return reader_.read(fd, message, deadline);
    }
    std::size_t max_message_size() const override { return limit_; }
    int native_handle() const override { return endpoint_.peek(); }
    bool ready() override {
        if (reader_.message_buffered()) return true;
        // Connects if the peer has come (so native_handle() has a descriptor to poll).
        (void)endpoint_.get(Deadline::immediate());
        return false;
    }

private:
    StreamEndpoint endpoint_;
    FrameReader reader_;
    std::size_t limit_;
};

// A FIFO read end opened non-blocking has no writer yet, and read(2) reports end of file
// until one comes. So the receiver first waits for the descriptor to poll readable: Linux
// reports a hang-up only after a writer has come and gone.
Connect fifo_reader(const std::string& path, const Address& address) {
    auto reader = std::make_shared<PipeReader>(Fifo::open_read(path, OpenMode::nonblocking));
    return [reader, object = address.text](Deadline deadline) {
        const Status s = wait_readable(reader->fd().get(), deadline, object);
        return s == Status::ok ? reader->release() : Fd();
    };
}

Connect fifo_writer(const std::string& path) {
    return [path](Deadline deadline) {
        auto writer = Fifo::open_write(path, deadline);
        return writer ? writer->release() : Fd();
    };
}

StreamEndpoint make_endpoint(const Address& address, Role role, Deadline deadline, bool sending) {
    switch (address.transport) {
        case Transport::fd: {
            // An inherited pipe end (or a stream socket): adopt checks what it is.
            Fd fd = sending ? PipeWriter::adopt(address.stream.fd).release()
                            : PipeReader::adopt(address.stream.fd).release();
            return StreamEndpoint(std::move(fd));
        }
        case Transport::fifo: {
            std::shared_ptr<Fifo> owner;
            if (role == Role::create) {
                owner = std::make_shared<Fifo>(Fifo::create(address.target, address.mode));
                if (address.keep) owner->keep();
            }
            return StreamEndpoint(
                owner, sending ? fifo_writer(address.target) : fifo_reader(address.target, address));
        }
        case Transport::unix_stream: {
            const auto where = UnixAddress::parse(address.target);
            if (role == Role::create) {
                auto listener = std::make_shared<UnixListener>(
                    UnixListener::bind(where, SocketType::stream, address.mode));
                if (address.keep) listener->keep();
                return StreamEndpoint(listener, [listener](Deadline d) {
                    auto peer = accept_same_user(*listener, d);
                    return peer ? Fd(peer->fd().duplicate()) : Fd();
                });
            }
            return StreamEndpoint(retry_while_absent(deadline, [&] {
                UnixSocket socket = UnixSocket::connect(where, SocketType::stream, deadline);
                check_abstract_server(where, socket, address);
                return socket.fd().duplicate();
            }));
        }
        case Transport::tcp: {
            if (role == Role::create) {
                auto listener =
                    std::make_shared<TcpListener>(TcpListener::listen(address.target, address.stream.port));
                return StreamEndpoint(listener, [listener](Deadline d) {
                    auto peer = listener->accept(d);
                    return peer ? Fd(peer->fd().duplicate()) : Fd();
                });
            }
            return StreamEndpoint(retry_while_absent(deadline, [&] {
                return TcpStream::connect(address.target, address.stream.port, deadline).fd().duplicate();
            }));
        }
        default:
            break;
    }
    throw_error(std::errc::invalid_argument, "address \"" + address.text + "\": not a stream transport");
}

}  // namespace

std::unique_ptr<SenderBackend> make_stream_sender(const Address& address, Role role, Deadline deadline) {
    return std::make_unique<StreamSender>(address, make_endpoint(address, role, deadline, true));
}

std::unique_ptr<ReceiverBackend> make_stream_receiver(const Address& address, Role role, Deadline deadline) {
    return std::make_unique<StreamReceiver>(address, make_endpoint(address, role, deadline, false));
}

}  // namespace ipckit::detail
