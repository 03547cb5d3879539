// `ipckit bench` raw syscall loops: pipe, FIFO, System V message queue and Unix stream socket
// driven with plain read/write/msgsnd/msgrcv and no library, so each channel row has the
// kernel's own cost beside it and the difference is the library's overhead.
#include <fcntl.h>
#include <poll.h>
#include <sys/msg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "bench_harness.hpp"
#include "ipckit/error.hpp"
#include "ipckit/fd.hpp"

namespace ipckit::bench {
namespace {

void write_whole(int fd, std::span<const std::byte> message) {
    std::size_t done = 0;
    while (done < message.size()) {
        const ssize_t n = ::write(fd, message.data() + done, message.size() - done);
        if (n > 0) {
            done += static_cast<std::size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            check_abort("writing");
        } else if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
            throw PeerGone("peer closed");
        } else {
            throw_errno("write", "raw loop descriptor " + std::to_string(fd));
        }
    }
}

void read_whole(int fd, std::span<std::byte> buffer) {
    std::size_t done = 0;
    while (done < buffer.size()) {
        const ssize_t n = ::read(fd, buffer.data() + done, buffer.size() - done);
        if (n > 0) {
            done += static_cast<std::size_t>(n);
        } else if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            throw PeerGone("peer closed");
        } else if (errno == EINTR) {
            check_abort("reading");
        } else {
            throw_errno("read", "raw loop descriptor " + std::to_string(fd));
        }
    }
}

bool readable_now(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
}

Fd adopt(const std::string& text) {
    const int fd = std::stoi(text);
    if (fd < 0) return Fd();
    Fd owned(fd);
    owned.set_inheritable(false);
    return owned;
}

// A stream: `in` and `out` may be one descriptor (a socket) or two (pipes, FIFOs).
class StreamSide final : public Side {
public:
    StreamSide(Fd in, Fd out, std::vector<Fd> peer_ends = {}, std::vector<std::string> unlink_paths = {})
        : in_(std::move(in)),
          out_(std::move(out)),
          peer_ends_(std::move(peer_ends)),
          paths_(std::move(unlink_paths)) {}
    ~StreamSide() override {
        for (const auto& path : paths_)
            ::unlink(path.c_str());
    }
    void connect() override { peer_ends_.clear(); }  // the peer has its copies now
    void send(std::span<const std::byte> message) override { write_whole(out_fd(), message); }
    void recv(std::span<std::byte> buffer) override { read_whole(in_fd(), buffer); }
    bool try_recv(std::span<std::byte> buffer) override {
        if (!readable_now(in_fd())) return false;
        read_whole(in_fd(), buffer);
        return true;
    }
    // FIFOs open by name once the peer runs; the order (ping before pong) matches the peer's.
    void set_fifo_opens(std::string in_path, std::string out_path, bool out_first) {
        fifo_in_ = std::move(in_path);
        fifo_out_ = std::move(out_path);
        out_first_ = out_first;
    }
    void open_fifos() {
        auto open_one = [](const std::string& path, int flags) {
            for (;;) {
                Fd fd(::open(path.c_str(), flags | O_CLOEXEC));
                if (fd) return fd;
                if (errno != EINTR) throw_errno("open", path);
                check_abort("opening " + path);
            }
        };
        if (out_first_ && !fifo_out_.empty()) out_ = open_one(fifo_out_, O_WRONLY);
        if (!fifo_in_.empty()) in_ = open_one(fifo_in_, O_RDONLY);
        if (!out_first_ && !fifo_out_.empty()) out_ = open_one(fifo_out_, O_WRONLY);
    }

private:
    int in_fd() const { return in_.get(); }
    int out_fd() const { return out_ ? out_.get() : in_.get(); }
    Fd in_, out_;
    std::vector<Fd> peer_ends_;
    std::vector<std::string> paths_;
    std::string fifo_in_, fifo_out_;
    bool out_first_ = true;
};

class FifoSide final : public Side {
public:
    explicit FifoSide(std::unique_ptr<StreamSide> stream) : stream_(std::move(stream)) {}
    void connect() override { stream_->open_fifos(); }
    void send(std::span<const std::byte> message) override { stream_->send(message); }
    void recv(std::span<std::byte> buffer) override { stream_->recv(buffer); }
    bool try_recv(std::span<std::byte> buffer) override { return stream_->try_recv(buffer); }

private:
    std::unique_ptr<StreamSide> stream_;
};

std::pair<Fd, Fd> make_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2", "raw-pipe");
    return {Fd(fds[0]), Fd(fds[1])};
}

class RawPipe final : public Contender {
public:
    RawPipe() : Contender("raw-pipe", Category::raw) {}
    std::unique_ptr<Side> prepare(const RowPlan& plan, PeerLaunch& launch) override {
        // Latency: ping (A→B) and pong (B→A). Throughput: one pipe, B→A.
        auto [data_read, data_write] = make_pipe();
        std::vector<Fd> peer_ends;
        if (plan.mode == Mode::latency) {
            auto [pong_read, pong_write] = make_pipe();
            launch.args = {std::to_string(data_read.get()), std::to_string(pong_write.get())};
            launch.inherit_fds = {data_read.get(), pong_write.get()};
            peer_ends.push_back(std::move(data_read));
            peer_ends.push_back(std::move(pong_write));
            return std::make_unique<StreamSide>(std::move(pong_read), std::move(data_write),
                                                std::move(peer_ends));
        }
        launch.args = {"-1", std::to_string(data_write.get())};
        launch.inherit_fds = {data_write.get()};
        peer_ends.push_back(std::move(data_write));
        return std::make_unique<StreamSide>(std::move(data_read), Fd(), std::move(peer_ends));
    }
    std::unique_ptr<Side> join(const RowPlan&, const std::vector<std::string>& args) override {
        return std::make_unique<StreamSide>(adopt(args.at(0)), adopt(args.at(1)));
    }
};

class RawFifo final : public Contender {
public:
    RawFifo() : Contender("raw-fifo", Category::raw) {}
    std::unique_ptr<Side> prepare(const RowPlan& plan, PeerLaunch& launch) override {
        const std::string ping = plan.dir + "/" + plan.stem + "-raw-ping";
        const std::string pong = plan.dir + "/" + plan.stem + "-raw-pong";
        std::vector<std::string> made;
        auto make = [&](const std::string& path) {
            if (::mkfifo(path.c_str(), 0600) != 0) throw_errno("mkfifo", path);
            made.push_back(path);
        };
        make(ping);
        if (plan.mode == Mode::latency) {
            try {
                make(pong);
            } catch (...) {
                ::unlink(ping.c_str());
                throw;
            }
        }
        auto stream = std::make_unique<StreamSide>(Fd(), Fd(), std::vector<Fd>{}, made);
        launch.args = {ping, plan.mode == Mode::latency ? pong : ""};
        // Latency: A writes ping, reads pong. Throughput: B writes the one FIFO, A reads it.
        if (plan.mode == Mode::latency)
            stream->set_fifo_opens(pong, ping, true);
        else
            stream->set_fifo_opens(ping, "", true);
        return std::make_unique<FifoSide>(std::move(stream));
    }
    std::unique_ptr<Side> join(const RowPlan& plan, const std::vector<std::string>& args) override {
        auto stream = std::make_unique<StreamSide>(Fd(), Fd());
        if (plan.mode == Mode::latency)
            stream->set_fifo_opens(args.at(0), args.at(1), false);
        else
            stream->set_fifo_opens("", args.at(0), true);
        stream->open_fifos();
        return stream;
    }
};

class RawUnix final : public Contender {
public:
    RawUnix() : Contender("raw-unix", Category::raw) {}
    std::unique_ptr<Side> prepare(const RowPlan&, PeerLaunch& launch) override {
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
            throw_errno("socketpair", "raw-unix");
        Fd mine(fds[0]), theirs(fds[1]);
        launch.args = {std::to_string(theirs.get()), "-1"};
        launch.inherit_fds = {theirs.get()};
        std::vector<Fd> peer_ends;
        peer_ends.push_back(std::move(theirs));
        return std::make_unique<StreamSide>(std::move(mine), Fd(), std::move(peer_ends));
    }
    std::unique_ptr<Side> join(const RowPlan&, const std::vector<std::string>& args) override {
        return std::make_unique<StreamSide>(adopt(args.at(0)), Fd());
    }
};

long read_limit(const char* path, long fallback) {
    std::ifstream in(path);
    long value = fallback;
    if (in >> value) return value;
    return fallback;
}

// One System V queue per direction, created IPC_PRIVATE (no key to collide) and handed to the
// peer by id. The message buffer keeps the type word in front of the payload, so no copy.
class SysvSide final : public Side {
public:
    SysvSide(int send_id, int recv_id, bool owner) : send_id_(send_id), recv_id_(recv_id), owner_(owner) {}
    ~SysvSide() override {
        if (!owner_) return;
        if (send_id_ >= 0) ::msgctl(send_id_, IPC_RMID, nullptr);
        if (recv_id_ >= 0) ::msgctl(recv_id_, IPC_RMID, nullptr);
    }
    std::span<std::byte> send_buffer(std::size_t size) override { return buffer(size); }
    std::span<std::byte> recv_buffer(std::size_t size) override { return buffer(size); }
    void send(std::span<const std::byte> message) override {
        auto* record = prepare_record(message);
        while (::msgsnd(send_id_, record, message.size(), 0) != 0) {
            if (errno == EINTR) {
                check_abort("msgsnd");
            } else if (errno == EIDRM || errno == EINVAL) {
                throw PeerGone("queue removed");
            } else {
                throw_errno("msgsnd", "raw-sysvmq id " + std::to_string(send_id_));
            }
        }
    }
    void recv(std::span<std::byte> buffer) override {
        while (!receive(buffer, 0)) {
        }
    }
    bool try_recv(std::span<std::byte> buffer) override { return receive(buffer, IPC_NOWAIT); }

private:
    std::span<std::byte> buffer(std::size_t size) {
        storage_.resize(sizeof(long) + size);
        return {storage_.data() + sizeof(long), size};
    }
    void* prepare_record(std::span<const std::byte> message) {
        if (message.data() != storage_.data() + sizeof(long)) {
            storage_.resize(sizeof(long) + message.size());
            std::memcpy(storage_.data() + sizeof(long), message.data(), message.size());
        }
        const long type = 1;
        std::memcpy(storage_.data(), &type, sizeof type);
        return storage_.data();
    }
    bool receive(std::span<std::byte> buffer, int flags) {
        const bool in_place = buffer.data() == storage_.data() + sizeof(long);
        if (!in_place) storage_.resize(sizeof(long) + buffer.size());
        const ssize_t n = ::msgrcv(recv_id_, storage_.data(), buffer.size(), 0, flags);
        if (n >= 0) {
            if (!in_place)
                std::memcpy(buffer.data(), storage_.data() + sizeof(long), static_cast<std::size_t>(n));
            return true;
        }
        if (errno == ENOMSG) return false;
        if (errno == EINTR) {
            check_abort("msgrcv");
            return false;
        }
        if (errno == EIDRM || errno == EINVAL) throw PeerGone("queue removed");
        throw_errno("msgrcv", "raw-sysvmq id " + std::to_string(recv_id_));
    }
    std::vector<std::byte> storage_;
    int send_id_, recv_id_;
    bool owner_;
};

class RawSysvmq final : public Contender {
public:
    RawSysvmq() : Contender("raw-sysvmq", Category::raw) {}
    std::optional<std::string> cannot_carry(std::size_t size) const override {
        const long msgmax = read_limit("/proc/sys/kernel/msgmax", 8192);
        if (static_cast<long>(size) > msgmax)
            return "raw-sysvmq: over kernel.msgmax " + std::to_string(msgmax);
        const long msgmnb = read_limit("/proc/sys/kernel/msgmnb", 16384);
        if (static_cast<long>(size) > msgmnb)
            return "raw-sysvmq: over kernel.msgmnb " + std::to_string(msgmnb);
        return {};
    }
    std::unique_ptr<Side> prepare(const RowPlan& plan, PeerLaunch& launch) override {
        auto make = [] {
            const int id = ::msgget(IPC_PRIVATE, IPC_CREAT | IPC_EXCL | 0600);
            if (id < 0) throw_errno("msgget", "IPC_PRIVATE (raw-sysvmq)");
            add_emergency_msq(id);
            return id;
        };
        const int data = make();
        if (plan.mode == Mode::throughput) {
            launch.args = {"-1", std::to_string(data)};
            return std::make_unique<SysvSide>(-1, data, true);
        }
        int pong = -1;
        try {
            pong = make();
        } catch (...) {
            ::msgctl(data, IPC_RMID, nullptr);
            throw;
        }
        auto side = std::make_unique<SysvSide>(data, pong, true);
        launch.args = {std::to_string(data), std::to_string(pong)};
        return side;
    }
    std::unique_ptr<Side> join(const RowPlan&, const std::vector<std::string>& args) override {
        // B receives on A's send queue and answers on A's receive queue.
        return std::make_unique<SysvSide>(std::stoi(args.at(1)), std::stoi(args.at(0)), false);
    }
};

}  // namespace

void add_raw_loops(ContenderList& list) {
    list.push_back(std::make_unique<RawPipe>());
    list.push_back(std::make_unique<RawFifo>());
    list.push_back(std::make_unique<RawSysvmq>());
    list.push_back(std::make_unique<RawUnix>());
}

}  // namespace ipckit::bench
