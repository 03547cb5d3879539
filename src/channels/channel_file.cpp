// The file: transport: a sender appends records to a log, a receiver replays one
// (docs/record-replay.md). The log's format and reader are in record_log.hpp.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <thread>

#include "channel_backend.hpp"
#include "ipckit/io.hpp"
#include "mechanisms/object_rules.hpp"
#include "record_log.hpp"

namespace ipckit::detail {
namespace {

template <std::size_t N>
void put_le(std::byte* at, std::uint64_t value) {
    for (std::size_t i = 0; i < N; ++i)
        at[i] = static_cast<std::byte>(value >> (8 * i));
}

template <std::size_t N>
std::uint64_t get_le(const std::byte* at) {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < N; ++i)
        value |= std::to_integer<std::uint64_t>(at[i]) << (8 * i);
    return value;
}

}  // namespace

std::array<std::byte, kLogHeaderSize> encode_log_header() {
    std::array<std::byte, kLogHeaderSize> header{};
    for (std::size_t i = 0; i < kLogMagic.size(); ++i)
        header[i] = static_cast<std::byte>(kLogMagic[i]);
    put_le<4>(header.data() + 8, kLogVersion);
    return header;  // flags (bytes 12-15) stay 0
}

std::array<std::byte, kLogRecordHeaderSize> encode_log_record_header(std::uint32_t length,
                                                                     std::uint64_t timestamp_ns) {
    std::array<std::byte, kLogRecordHeaderSize> header{};
    put_le<4>(header.data(), length);
    put_le<8>(header.data() + 4, timestamp_ns);
    return header;
}

LogReader::LogReader(Fd fd, std::size_t limit, std::string object)
    : fd_(std::move(fd)), limit_(limit), object_(std::move(object)) {
    std::array<std::byte, kLogHeaderSize> header{};
    const std::size_t got = read_fully(header);
    if (got < header.size())
        fail(std::errc::bad_message, "the log header is cut short: " + std::to_string(got) + " of " +
                                         std::to_string(header.size()) + " bytes");
    if (!std::equal(kLogMagic.begin(), kLogMagic.end(), header.begin(),
                    [](char c, std::byte b) { return static_cast<std::byte>(c) == b; }))
        fail(std::errc::protocol_error, "not an ipckit log: the magic is not \"IPKLOG\\r\\n\"");
    if (const auto version = get_le<4>(header.data() + 8); version != kLogVersion)
        fail(std::errc::protocol_error,
             "log version " + std::to_string(version) + ", this ipckit reads " + std::to_string(kLogVersion));
    offset_ = header.size();
}

void LogReader::fail(std::errc code, const std::string& what) {
    const std::string where =
        offset_ == 0 ? "at byte 0"
                     : "record " + std::to_string(taken_ + 1) + " at byte " + std::to_string(offset_);
    failure_ = Error(std::make_error_code(code), object_ + ": " + where + ": " + what + " (" +
                                                     std::to_string(taken_) + " records read before it)");
    throw *failure_;
}

std::size_t LogReader::read_fully(std::span<std::byte> out) {
    const IoResult r = read_exact(fd_.get(), out, Deadline::never(), object_);
    return r.bytes;
}

std::uint64_t LogReader::file_size() const {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) throw_errno("fstat", object_);
    return static_cast<std::uint64_t>(st.st_size);
}

const LogRecord* LogReader::peek() {
    if (failure_) throw *failure_;
    if (next_) return &*next_;
    std::array<std::byte, kLogRecordHeaderSize> header{};
    const std::size_t got = read_fully(header);
    if (got == 0) return nullptr;  // the end, between records
    if (got < header.size())
        fail(std::errc::bad_message, "the log ends inside a record header (" + std::to_string(got) + " of " +
                                         std::to_string(header.size()) + " bytes)");
    LogRecord record;
    record.length = static_cast<std::uint32_t>(get_le<4>(header.data()));
    record.timestamp_ns = get_le<8>(header.data() + 4);
    record.number = taken_ + 1;
    record.offset = offset_;
    if (record.length > limit_)
        fail(std::errc::message_size, "a length of " + std::to_string(record.length) +
                                          " bytes, over the limit of " + std::to_string(limit_) + " (max=)");
    // Checked before the caller allocates: a hostile length within the limit still cannot
    // make a buffer larger than the file.
    const std::uint64_t body_at = offset_ + header.size();
    if (known_size_ < body_at + record.length)
        known_size_ = file_size();  // asked again only when the size last seen is too small
    if (const auto size = known_size_; size < body_at || size - body_at < record.length)
        fail(std::errc::bad_message, "the log ends inside a record of " + std::to_string(record.length) +
                                         " bytes (" + std::to_string(size > body_at ? size - body_at : 0) +
                                         " present)");
    next_ = record;
    return &*next_;
}

void LogReader::take(std::span<std::byte> out) {
    if (!next_ || out.size() != next_->length)
        throw_error(std::errc::invalid_argument, object_ + ": take() without peek() or of another length");
    if (const std::size_t got = read_fully(out); got < out.size())  // shrunk since peek()
        fail(std::errc::bad_message, "the log ends inside a record of " + std::to_string(out.size()) +
                                         " bytes (" + std::to_string(got) + " present)");
    offset_ += kLogRecordHeaderSize + out.size();
    ++taken_;
    next_.reset();
}

void LogReader::skip() {
    if (!next_) throw_error(std::errc::invalid_argument, object_ + ": skip() without peek()");
    // peek() saw the whole body in the file.
    if (::lseek(fd_.get(), next_->length, SEEK_CUR) < 0) throw_errno("lseek", object_);
    offset_ += kLogRecordHeaderSize + next_->length;
    ++taken_;
    next_.reset();
}

namespace {

using Clock = Deadline::Clock;

std::string object_name(const Address& address) {
    return "file:" + address.target;
}

// A log is opened only as a regular file of this user, never through a symbolic link
// (O_NOFOLLOW), as every other named object of ipckit.
void check_log_file(const Fd& fd, const Address& address) {
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw_errno("fstat", address.target);
    if (!S_ISREG(st.st_mode))
        throw_error(std::errc::invalid_argument,
                    "open(" + address.target + "): not a regular file; a log is one");
    if (st.st_uid != ::geteuid())
        throw_error(std::errc::permission_denied,
                    "open(" + address.target + "): the log belongs to uid " + std::to_string(st.st_uid) +
                        ", not to this process's uid " + std::to_string(::geteuid()) + "; refused");
}

Fd open_log(const Address& address, int flags) {
    for (;;) {
        Fd fd(::open(address.target.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, address.mode));
        if (fd) {
            if ((flags & O_EXCL) != 0 && ::fchmod(fd.get(), address.mode) != 0)  // the mode, not the umask's
                throw_errno("fchmod", address.target);
            check_log_file(fd, address);
            return fd;
        }
        if (errno == EINTR) continue;
        if (errno == ELOOP)
            throw Error(
                std::make_error_code(std::errc::too_many_symbolic_link_levels),
                "open(" + address.target + "): a symbolic link; ipckit never opens a log through one");
        throw_errno("open", address.target);
    }
}

std::size_t limit_of(const Address& address) {
    return std::min<std::size_t>(address.max_message.value_or(kDefaultStreamLimit), UINT32_MAX);
}

std::uint64_t now_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

class FileSender final : public SenderBackend {
public:
    FileSender(const Address& address, Role role) : SenderBackend(address), limit_(limit_of(address)) {
        check_mode(address.mode, "open", address.target);
        if (role == Role::open) {
            // Appends to the log there is, or starts one: a recorder has no peer to wait for.
            try {
                fd_ = open_log(address, O_RDWR | O_APPEND);
            } catch (const Error& e) {
                if (e.code() != std::errc::no_such_file_or_directory) throw;
            }
        }
        if (!fd_) {
            fd_ = open_log(address, O_RDWR | O_APPEND | O_CREAT | O_EXCL);
            const auto header = encode_log_header();
            const IoResult r = write_all(fd_.get(), header, Deadline::never(), object_name(address));
            if (!r.ok())
                throw_error(std::errc::io_error, object_name(address) + ": the log header was not written");
            return;
        }
        // Appending after a damaged tail would bury every new record behind it: the whole log
        // is read once, and refused with the reader's error if it does not end cleanly.
        LogReader check(fd_.duplicate(), UINT32_MAX, object_name(address) + " (not appending to it)");
        while (check.peek() != nullptr)
            check.skip();
    }

    IoResult send(std::span<const std::byte> message, Deadline) override {
        if (message.size() > limit_)
            throw_error(std::errc::message_size, address() + ": a message of " +
                                                     std::to_string(message.size()) +
                                                     " bytes is over the limit of " + std::to_string(limit_));
        const auto header = encode_log_record_header(static_cast<std::uint32_t>(message.size()), now_ns());
        const std::array<std::span<const std::byte>, 2> parts{std::span<const std::byte>(header), message};
        // One writev with O_APPEND: the record lands whole at the end, even beside another appender.
        const IoResult r = write_all(fd_.get(), parts, Deadline::never(), address());
        if (!r.ok()) throw_error(std::errc::io_error, address() + ": a record was not appended whole");
        return {Status::ok, message.size()};
    }
    std::size_t max_message_size() const override { return limit_; }
    SenderClose finish() override {
        if (fd_) ::fdatasync(fd_.get());  // a finished recording is on the disk, not only cached
        fd_.reset();
        return {};
    }
    ~FileSender() override { (void)finish(); }

private:
    std::size_t limit_;
    Fd fd_;
};

class FileReceiver final : public ReceiverBackend {
public:
    explicit FileReceiver(const Address& address)
        : ReceiverBackend(address),
          limit_(limit_of(address)),
          pace_recorded_(address.file.pace_recorded),
          log_(open_log(address, O_RDONLY), limit_, object_name(address)) {}

    IoResult recv(std::span<std::byte> buffer, Deadline deadline) override {
        const LogRecord* next = log_.peek();
        if (next == nullptr) return {Status::closed, 0};
        if (const Status due = wait_until_due(*next, deadline); due != Status::ok) return {due, 0};
        if (next->length > buffer.size()) throw_buffer_too_small(address(), next->length, buffer.size());
        return take(buffer.first(next->length));
    }
    IoResult recv(std::vector<std::byte>& message, Deadline deadline) override {
        const LogRecord* next = log_.peek();
        if (next == nullptr) return {Status::closed, 0};
        if (const Status due = wait_until_due(*next, deadline); due != Status::ok) return {due, 0};
        message.resize(next->length);
        return take(message);
    }
    std::size_t max_message_size() const override { return limit_; }
    bool ready() override {
        try {
            const LogRecord* next = log_.peek();
            return next == nullptr || due_time(*next) <= Clock::now();
        } catch (const Error&) {
            return true;  // the next recv throws the reader's error
        }
    }
    // No descriptor says when a paced record falls due: a wait set asks again in slices.
    bool watches_peer_by_polling() const override { return true; }

private:
    // Under pace=recorded each record falls due its recorded gap after the one before (a gap
    // the wall clock made negative counts as none); the first is due at once. Due times chain
    // from each other, not from deliveries, so a slow consumer catches up instead of drifting.
    Clock::time_point due_time(const LogRecord& next) const {
        if (!pace_recorded_ || !started_) return Clock::time_point::min();
        const auto gap = next.timestamp_ns > last_timestamp_ns_ ? next.timestamp_ns - last_timestamp_ns_ : 0;
        return last_due_ + std::chrono::nanoseconds(gap);
    }
    Status wait_until_due(const LogRecord& next, Deadline deadline) const {
        const auto due = due_time(next);
        if (due <= Clock::now()) return Status::ok;
        if (deadline.is_immediate()) return Status::would_block;
        if (deadline.when() < due) {
            std::this_thread::sleep_until(deadline.when());
            return Status::timed_out;
        }
        std::this_thread::sleep_until(due);
        return Status::ok;
    }
    IoResult take(std::span<std::byte> out) {
        const auto timestamp = log_.peek()->timestamp_ns;
        const auto due = due_time(*log_.peek());
        log_.take(out);
        last_due_ = started_ ? due : Clock::now();
        last_timestamp_ns_ = timestamp;
        started_ = true;
        return {Status::ok, out.size()};
    }

    std::size_t limit_;
    bool pace_recorded_;
    LogReader log_;
    bool started_ = false;
    Clock::time_point last_due_{};
    std::uint64_t last_timestamp_ns_ = 0;
};

}  // namespace

std::unique_ptr<SenderBackend> make_file_sender(const Address& address, Role role, Deadline) {
    return std::make_unique<FileSender>(address, role);
}

// A receiver replays a log that exists: "creating" one is refused as file_exists when it is
// there (so a tool that creates-or-opens opens it) and as no_such_file_or_directory when not.
std::unique_ptr<ReceiverBackend> make_file_receiver(const Address& address, Role role, Deadline) {
    if (role == Role::create) {
        struct stat st {};
        if (::lstat(address.target.c_str(), &st) == 0)
            throw Error(
                std::make_error_code(std::errc::file_exists),
                "open(" + address.target + "): a file: receiver replays the log there, it creates none");
        throw Error(std::make_error_code(std::errc::no_such_file_or_directory),
                    "open(" + address.target + "): no log to replay");
    }
    return std::make_unique<FileReceiver>(address);
}

}  // namespace ipckit::detail
