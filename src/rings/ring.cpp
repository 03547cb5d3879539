// The shared-memory ring: layout in ipckit/detail/ring_layout.hpp, design in docs/ring.md.
#include "ipckit/ring.hpp"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <utility>

#include "ipckit/detail/futex.hpp"
#include "ipckit/detail/ring_layout.hpp"
#include "ipckit/error.hpp"

namespace ipckit {

using namespace detail::ring;
using Clock = Deadline::Clock;

namespace {

// Adaptive waiting: spin long enough to catch a reply from a peer that is running (a round trip
// is well under a microsecond), yield a few times for a peer that shares our core, then sleep.
constexpr auto kAdaptiveSpin = std::chrono::microseconds(5);
constexpr int kAdaptiveYields = 8;
// Reading the clock costs ~20 ns; a pause ~10–40 ns. Looking every 16 spins keeps both small.
constexpr unsigned kSpinsPerClockRead = 16;
// Even `spin` yields the core this often when nothing comes: with more runnable threads than
// cores, the peer we wait for may be the one we keep off the CPU. A running peer never sees it.
constexpr auto kSpinYieldEvery = std::chrono::microseconds(200);

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();  // frees the sibling hyper-thread and avoids a memory-order flush on exit
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

// The sleeper handshake (see notify) needs a store-buffer barrier between publishing a cursor and
// reading the other side's sleeper count. A release store + seq_cst fence measures ~25% faster
// on the ping-pong than a seq_cst store (xchg) on the contended cursor line, so that is the
// default; the thread sanitizer does not model fences, so under it the same order is built from
// seq_cst operations, which the standard guarantees just as well.
#if defined(__SANITIZE_THREAD__)
#define IPCKIT_RING_FENCELESS 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define IPCKIT_RING_FENCELESS 1
#endif
#endif

#ifdef IPCKIT_RING_FENCELESS
constexpr std::memory_order kCursorLoad = std::memory_order_seq_cst;
inline void publish_cursor(std::atomic<std::uint64_t>& cursor, std::uint64_t value) noexcept {
    cursor.store(value, std::memory_order_seq_cst);
}
inline void announce_sleeper(std::atomic<std::uint32_t>& sleepers) noexcept {
    sleepers.fetch_add(1, std::memory_order_seq_cst);
}
#else
// acquire: pairs with the other side's release of its cursor (see the callers for what it orders).
constexpr std::memory_order kCursorLoad = std::memory_order_acquire;
inline void publish_cursor(std::atomic<std::uint64_t>& cursor, std::uint64_t value) noexcept {
    cursor.store(value, std::memory_order_release);
    std::atomic_thread_fence(std::memory_order_seq_cst);  // the cursor store before the sleepers load
}
inline void announce_sleeper(std::atomic<std::uint32_t>& sleepers) noexcept {
    sleepers.fetch_add(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);  // the announcement before the cursor re-check
}
#endif

std::string hex(std::uint64_t value) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s = "0x";
    bool started = false;
    for (int shift = 60; shift >= 0; shift -= 4) {
        const auto d = static_cast<unsigned>((value >> shift) & 0xf);
        if (d != 0 || started || shift == 0) {
            s += digits[d];
            started = true;
        }
    }
    return s;
}

std::string str(std::uint64_t value) {
    return std::to_string(value);
}

[[noreturn]] void corrupt_header(const std::string& what) {
    throw_error(std::errc::protocol_error, "ring header: " + what);
}

[[noreturn]] void corrupt_record(std::uint64_t cursor, std::uint64_t offset, const std::string& what) {
    throw_error(std::errc::bad_message,
                "ring record at offset " + str(offset) + " (cursor " + str(cursor) + "): " + what);
}

struct Geometry {
    RingHeader* header;
    std::byte* data;
    std::uint64_t capacity;
    std::uint64_t head;
    std::uint64_t tail;
};

void check_region(std::span<std::byte> region) {
    if (reinterpret_cast<std::uintptr_t>(region.data()) % kLineSize != 0) {
        throw_error(std::errc::invalid_argument, "ring region at " +
                                                     hex(reinterpret_cast<std::uintptr_t>(region.data())) +
                                                     " is not aligned to " + str(kLineSize) + " bytes");
    }
    if (region.size() < kHeaderSize + kMinCapacity) {
        throw_error(std::errc::invalid_argument,
                    "ring region of " + str(region.size()) + " bytes is too small: a ring needs at least " +
                        str(kHeaderSize + kMinCapacity) + " (a " + str(kHeaderSize) + "-byte header and " +
                        str(kMinCapacity) + " bytes of records)");
    }
}

bool valid_capacity(std::uint64_t capacity) {
    return std::has_single_bit(capacity) && capacity >= kMinCapacity && capacity <= kMaxCapacity;
}

// Reads every header field once, into locals, and checks it: the header is shared with a process
// that may be buggy or hostile, and a value read twice could change between check and use.
Geometry validate(std::span<std::byte> region) {
    check_region(region);
    auto* header = std::launder(reinterpret_cast<RingHeader*>(region.data()));
    const ControlLine& control = header->control;
    // acquire: pairs with format's release of the magic, so the fields below are the formatted ones.
    const std::uint64_t magic = control.magic.load(std::memory_order_acquire);
    if (magic != kMagic) {
        corrupt_header("bad magic " + hex(magic) + ", expected " + hex(kMagic) +
                       " (not an ipckit ring, or not formatted yet)");
    }
    const std::uint32_t version = control.version;
    if (version != kVersion) {
        corrupt_header("version " + str(version) + ", this ipckit reads version " + str(kVersion));
    }
    const std::uint32_t header_size = control.header_size;
    const std::uint32_t alignment = control.record_alignment;
    const std::uint32_t line_size = control.line_size;
    if (header_size != kHeaderSize || alignment != kRecordAlignment || line_size != kLineSize) {
        corrupt_header("layout (header " + str(header_size) + ", record alignment " + str(alignment) +
                       ", line " + str(line_size) + ") differs from this ipckit's (" + str(kHeaderSize) +
                       ", " + str(kRecordAlignment) + ", " + str(kLineSize) + ")");
    }
    const std::uint64_t capacity = control.capacity;
    if (!valid_capacity(capacity)) {
        corrupt_header("capacity " + str(capacity) + " is not a power of two between " + str(kMinCapacity) +
                       " and " + str(kMaxCapacity));
    }
    if (capacity > region.size() - kHeaderSize) {
        corrupt_header("capacity " + str(capacity) + " needs a region of " + str(kHeaderSize + capacity) +
                       " bytes, but the region has " + str(region.size()));
    }
    const std::uint64_t head = header->producer.position.load(std::memory_order_acquire);
    const std::uint64_t tail = header->consumer.position.load(std::memory_order_acquire);
    if (tail > head || head - tail > capacity || head % kRecordAlignment != 0 ||
        tail % kRecordAlignment != 0) {
        throw_error(std::errc::protocol_error, "ring cursors corrupt: consumer at " + str(tail) +
                                                   ", producer at " + str(head) + ", capacity " +
                                                   str(capacity));
    }
    return {header, region.data() + kHeaderSize, capacity, head, tail};
}

void claim(std::atomic<std::uint32_t>& state, std::atomic<std::int32_t>& pid, const char* side) {
    std::uint32_t expected = kVacant;
    // acq_rel: one winner among racing attachers, and the winner sees the state it replaced.
    if (!state.compare_exchange_strong(expected, kAttached, std::memory_order_acq_rel)) {
        if (expected == kAttached) {
            throw_error(std::errc::device_or_resource_busy,
                        std::string("ring already has a ") + side + " (pid " +
                            str(static_cast<std::uint32_t>(pid.load())) +
                            "): a ring has one producer and one consumer");
        }
        if (expected == kClosed) {
            throw_error(std::errc::device_or_resource_busy,
                        std::string("ring's ") + side + " has closed: format the region again to reuse it");
        }
        corrupt_header(std::string(side) + " state " + str(expected) + " is not a known state");
    }
    pid.store(static_cast<std::int32_t>(::getpid()), std::memory_order_release);
}

// Marks a side closed and wakes the other side if it sleeps. Rare: the system call is fine.
void mark_closed(std::atomic<std::uint32_t>& state, std::atomic<std::uint32_t>& event) noexcept {
    // release: everything this side published happens-before a peer that sees `closed`.
    state.store(kClosed, std::memory_order_release);
    event.fetch_add(1, std::memory_order_release);
    try {
        (void)detail::futex_wake(event, INT_MAX);
    } catch (...) {
        // A waiter also notices `closed` at its next ~20 ms slice.
    }
}

// Wakes the other side if it announced that it sleeps.
inline void notify(std::atomic<std::uint32_t>& sleepers, std::atomic<std::uint32_t>& event) {
    // Called after publish_cursor. We store our cursor then load the sleeper count; a waiter
    // stores its announcement then loads our cursor. With a seq_cst fence (or seq_cst operations)
    // between store and load on both sides, both loads cannot miss the other's store (the
    // store-buffer litmus test): either we see the sleeper and wake it, or it sees our cursor
    // and does not sleep. No wake-up is lost, and nobody sleeping costs no system call.
    if (sleepers.load(std::memory_order_seq_cst) != 0) [[unlikely]] {
        // release: a waiter that reads the new event value (acquire) before announcing itself has
        // its announcement ordered after our sleepers load, so that cannot be missed either.
        event.fetch_add(1, std::memory_order_release);
        (void)detail::futex_wake(event, INT_MAX);
    }
}

// Waits until `ready()` (which re-reads the other side's cursor) is true. Returns ok when it is,
// closed when the peer is gone (the caller drains what it published first), or timed_out.
template <typename Ready>
Status wait_until(WaitMode mode, Deadline deadline, std::atomic<std::uint32_t>& sleepers,
                  std::atomic<std::uint32_t>& event, detail::RingPeer& peer, Ready&& ready) {
    if (mode != WaitMode::block) {
        const auto start = Clock::now();
        auto next_yield = start + kSpinYieldEvery;
        for (unsigned spins = 1;; ++spins) {
            if (ready()) return Status::ok;
            cpu_relax();
            if (spins % kSpinsPerClockRead == 0) {
                const auto now = Clock::now();
                if (now >= deadline.when()) return Status::timed_out;
                if (peer.gone(now)) return Status::closed;
                if (mode == WaitMode::adaptive && now - start >= kAdaptiveSpin) break;
                if (now >= next_yield) {
                    ::sched_yield();
                    next_yield = now + kSpinYieldEvery;
                }
            }
        }
        for (int i = 0; i < kAdaptiveYields; ++i) {
            ::sched_yield();
            if (ready()) return Status::ok;
        }
    }
    struct Announcement {
        std::atomic<std::uint32_t>& sleepers;
        explicit Announcement(std::atomic<std::uint32_t>& s) : sleepers(s) {
            announce_sleeper(sleepers);  // ordered before the re-check of the cursor: see notify()
        }
        ~Announcement() { sleepers.fetch_sub(1, std::memory_order_relaxed); }
        Announcement(const Announcement&) = delete;
        Announcement& operator=(const Announcement&) = delete;
    };
    for (;;) {
        {
            // The key is read before announcing: a notify after this point changes the word, and
            // futex_wait then returns at once instead of sleeping through it.
            const std::uint32_t key = event.load(std::memory_order_acquire);
            const Announcement announced(sleepers);
            if (ready()) return Status::ok;
            // Sleep in slices so a peer that died without waking us is noticed in bounded time.
            const auto slice = std::min(deadline.when(), Clock::now() + detail::RingPeer::kCheckInterval);
            (void)detail::futex_wait(event, key, Deadline::at(slice));
        }
        if (ready()) return Status::ok;
        const auto now = Clock::now();
        if (peer.gone(now)) return Status::closed;
        if (now >= deadline.when()) return Status::timed_out;
    }
}

}  // namespace

// ---- Ring ----

std::size_t Ring::region_size(std::size_t capacity) noexcept {
    return kHeaderSize + capacity;
}

std::size_t Ring::max_message_size(std::size_t capacity) noexcept {
    return capacity / 2 - sizeof(RecordHeader);
}

std::size_t Ring::format(std::span<std::byte> region, RingOptions options) {
    check_region(region);
    const std::uint64_t room = region.size() - kHeaderSize;
    std::uint64_t capacity = options.capacity;
    if (capacity == 0) {
        capacity = std::bit_floor(std::min(room, kMaxCapacity));
    } else if (!valid_capacity(capacity)) {
        throw_error(std::errc::invalid_argument, "ring capacity " + str(capacity) +
                                                     " is not a power of two between " + str(kMinCapacity) +
                                                     " and " + str(kMaxCapacity));
    } else if (capacity > room) {
        throw_error(std::errc::invalid_argument, "ring capacity " + str(capacity) + " needs a region of " +
                                                     str(kHeaderSize + capacity) + " bytes; the region has " +
                                                     str(region.size()));
    }
    auto* header = ::new (region.data()) RingHeader{};
    ControlLine& control = header->control;
    control.version = kVersion;
    control.header_size = static_cast<std::uint32_t>(kHeaderSize);
    control.capacity = capacity;
    control.record_alignment = kRecordAlignment;
    control.line_size = static_cast<std::uint32_t>(kLineSize);
    // release: an attacher that acquires the magic sees every field above.
    control.magic.store(kMagic, std::memory_order_release);
    return static_cast<std::size_t>(capacity);
}

// ---- RingPeer ----

bool detail::RingPeer::closed() const noexcept {
    // acquire: pairs with mark_closed's release, so the peer's last cursor is visible after this.
    return state_ != nullptr && state_->load(std::memory_order_acquire) == kClosed;
}

bool detail::RingPeer::gone(std::chrono::steady_clock::time_point now) {
    if (dead_) return true;
    const std::uint32_t state = state_->load(std::memory_order_acquire);
    if (state == kClosed) return true;
    if (state != kAttached || now < next_check_) return false;
    next_check_ = now + kCheckInterval;
    const std::int32_t pid = pid_->load(std::memory_order_acquire);
    if (pid <= 0) return false;  // attached, PID not stored yet (or nonsense: never signal a group)
    if (!pidfd_ || pid != watched_pid_) {
        // A pidfd names one process for good: a PID reused after the peer's death cannot fool it.
        const long fd = ::syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0) {
            if (errno == ESRCH) return dead_ = true;
            // No pidfd (old kernel, seccomp): kill(pid, 0) is the best left.
            if (::kill(pid, 0) != 0 && errno == ESRCH) return dead_ = true;
            return false;
        }
        pidfd_.reset(static_cast<int>(fd));
        watched_pid_ = pid;
    }
    // A pidfd polls readable once the process has exited, reaped or not.
    pollfd p{pidfd_.get(), POLLIN, 0};
    if (::poll(&p, 1, 0) > 0) dead_ = true;
    return dead_;
}

// ---- RingProducer ----

RingProducer RingProducer::attach(std::span<std::byte> region, WaitMode mode) {
    const Geometry g = validate(region);
    claim(g.header->control.producer_state, g.header->control.producer_pid, "producer");
    RingProducer p;
    p.header_ = g.header;
    p.data_ = g.data;
    p.capacity_ = g.capacity;
    p.mask_ = g.capacity - 1;
    p.max_message_ = Ring::max_message_size(g.capacity);
    p.mode_ = mode;
    p.head_ = g.head;
    p.cached_tail_ = g.tail;
    p.consumer_ = detail::RingPeer(&g.header->control.consumer_state, &g.header->control.consumer_pid);
    return p;
}

RingProducer::RingProducer(RingProducer&& other) noexcept
    : header_(std::exchange(other.header_, nullptr)),
      data_(other.data_),
      capacity_(other.capacity_),
      mask_(other.mask_),
      max_message_(other.max_message_),
      mode_(other.mode_),
      head_(other.head_),
      cached_tail_(other.cached_tail_),
      pending_padding_(other.pending_padding_),
      pending_offset_(other.pending_offset_),
      pending_size_(other.pending_size_),
      pending_(std::exchange(other.pending_, false)),
      consumer_(std::move(other.consumer_)) {}

RingProducer& RingProducer::operator=(RingProducer&& other) noexcept {
    if (this != &other) {
        close();
        header_ = std::exchange(other.header_, nullptr);
        data_ = other.data_;
        capacity_ = other.capacity_;
        mask_ = other.mask_;
        max_message_ = other.max_message_;
        mode_ = other.mode_;
        head_ = other.head_;
        cached_tail_ = other.cached_tail_;
        pending_padding_ = other.pending_padding_;
        pending_offset_ = other.pending_offset_;
        pending_size_ = other.pending_size_;
        pending_ = std::exchange(other.pending_, false);
        consumer_ = std::move(other.consumer_);
    }
    return *this;
}

RingProducer::~RingProducer() {
    close();
}

void RingProducer::close() noexcept {
    if (header_ == nullptr) return;
    mark_closed(header_->control.producer_state, header_->wait.data_event);
    header_ = nullptr;
    pending_ = false;
}

void RingProducer::refresh_tail() {
    // acquire: pairs with the consumer's release of its cursor, so it has finished reading the
    // bytes it gave back before we overwrite them.
    const std::uint64_t tail = header_->consumer.position.load(kCursorLoad);
    if (tail < cached_tail_ || tail > head_ || tail % kRecordAlignment != 0) {
        throw_error(std::errc::protocol_error, "ring consumer cursor corrupt: it reads " + str(tail) +
                                                   ", but the consumer was at " + str(cached_tail_) +
                                                   " and the producer is at " + str(head_));
    }
    cached_tail_ = tail;
}

Status RingProducer::reserve(std::size_t size, Deadline deadline) {
    if (header_ == nullptr) throw_error(std::errc::bad_file_descriptor, "ring producer is closed");
    if (size > max_message_) {
        throw_error(std::errc::message_size, "ring message of " + str(size) +
                                                 " bytes exceeds the ring's limit of " + str(max_message_) +
                                                 " bytes (half the " + str(capacity_) +
                                                 "-byte capacity, less an 8-byte record header)");
    }
    if (consumer_.closed()) return Status::closed;
    const std::uint64_t record = record_size(size);
    const std::uint64_t offset = head_ & mask_;
    const std::uint64_t to_end = capacity_ - offset;
    // A record never wraps (loans and in-place reads need it contiguous): when it does not fit
    // before the end, a padding record fills the rest and the record starts at offset 0.
    const std::uint64_t padding = record <= to_end ? 0 : to_end;
    const std::uint64_t need = padding + record;
    if (!has_space(need)) {
        refresh_tail();
        while (!has_space(need)) {
            if (consumer_.gone(Clock::now())) return Status::closed;
            if (deadline.is_immediate()) return Status::would_block;
            const Status s = wait_until(mode_, deadline, header_->wait.producer_sleepers,
                                        header_->wait.space_event, consumer_, [&] {
                                            refresh_tail();
                                            return has_space(need) || consumer_.closed();
                                        });
            if (s != Status::ok) return s;
        }
    }
    if (padding != 0) {
        const RecordHeader pad{static_cast<std::uint32_t>(padding), kPaddingTag};
        std::memcpy(data_ + offset, &pad, sizeof pad);
    }
    pending_padding_ = padding;
    pending_offset_ = (offset + padding) & mask_;
    pending_size_ = size;
    pending_ = true;
    return Status::ok;
}

void RingProducer::publish(std::size_t size) {
    const RecordHeader record{static_cast<std::uint32_t>(size), kDataTag};
    std::memcpy(data_ + pending_offset_, &record, sizeof record);
    head_ += pending_padding_ + record_size(size);
    pending_ = false;
    // release: the padding, the record header and the payload are visible before the cursor that
    // covers them; then the fence of the sleeper handshake (see notify()).
    publish_cursor(header_->producer.position, head_);
    notify(header_->wait.consumer_sleepers, header_->wait.data_event);
}

IoResult RingProducer::send(std::span<const std::byte> message, Deadline deadline) {
    const Status s = reserve(message.size(), deadline);
    if (s != Status::ok) return {s, 0};
    if (!message.empty())
        std::memcpy(data_ + pending_offset_ + sizeof(RecordHeader), message.data(), message.size());
    publish(message.size());
    return {Status::ok, message.size()};
}

Loan RingProducer::loan(std::size_t size, Deadline deadline) {
    const Status s = reserve(size, deadline);
    if (s != Status::ok) return {s, {}};
    return {Status::ok, std::span<std::byte>(data_ + pending_offset_ + sizeof(RecordHeader), size)};
}

void RingProducer::commit(std::size_t size) {
    if (header_ == nullptr) throw_error(std::errc::bad_file_descriptor, "ring producer is closed");
    if (!pending_) throw_error(std::errc::invalid_argument, "RingProducer::commit without a loan");
    if (size > pending_size_) {
        throw_error(std::errc::invalid_argument, "RingProducer::commit of " + str(size) +
                                                     " bytes exceeds the loan of " + str(pending_size_) +
                                                     " bytes");
    }
    publish(size);
}

// ---- RingConsumer ----

RingConsumer RingConsumer::attach(std::span<std::byte> region, WaitMode mode) {
    const Geometry g = validate(region);
    claim(g.header->control.consumer_state, g.header->control.consumer_pid, "consumer");
    RingConsumer c;
    c.header_ = g.header;
    c.data_ = g.data;
    c.capacity_ = g.capacity;
    c.mask_ = g.capacity - 1;
    c.max_message_ = Ring::max_message_size(g.capacity);
    c.mode_ = mode;
    c.tail_ = g.tail;
    c.cached_head_ = g.head;
    c.producer_ = detail::RingPeer(&g.header->control.producer_state, &g.header->control.producer_pid);
    return c;
}

RingConsumer::RingConsumer(RingConsumer&& other) noexcept
    : header_(std::exchange(other.header_, nullptr)),
      data_(other.data_),
      capacity_(other.capacity_),
      mask_(other.mask_),
      max_message_(other.max_message_),
      mode_(other.mode_),
      tail_(other.tail_),
      cached_head_(other.cached_head_),
      record_offset_(other.record_offset_),
      record_payload_(other.record_payload_),
      holding_(std::exchange(other.holding_, false)),
      producer_(std::move(other.producer_)) {}

RingConsumer& RingConsumer::operator=(RingConsumer&& other) noexcept {
    if (this != &other) {
        close();
        header_ = std::exchange(other.header_, nullptr);
        data_ = other.data_;
        capacity_ = other.capacity_;
        mask_ = other.mask_;
        max_message_ = other.max_message_;
        mode_ = other.mode_;
        tail_ = other.tail_;
        cached_head_ = other.cached_head_;
        record_offset_ = other.record_offset_;
        record_payload_ = other.record_payload_;
        holding_ = std::exchange(other.holding_, false);
        producer_ = std::move(other.producer_);
    }
    return *this;
}

RingConsumer::~RingConsumer() {
    close();
}

void RingConsumer::close() noexcept {
    if (header_ == nullptr) return;
    mark_closed(header_->control.consumer_state, header_->wait.space_event);
    header_ = nullptr;
    holding_ = false;
}

bool RingConsumer::refresh_head() {
    // acquire: pairs with the producer's release, so the records it covers are visible.
    const std::uint64_t head = header_->producer.position.load(kCursorLoad);
    // cached_head_ >= tail_ always, so the first test also keeps the producer from moving back.
    if (head < cached_head_ || head - tail_ > capacity_ || head % kRecordAlignment != 0) {
        throw_error(std::errc::protocol_error, "ring producer cursor corrupt: it reads " + str(head) +
                                                   ", but the producer was at " + str(cached_head_) +
                                                   ", the consumer is at " + str(tail_) +
                                                   " and the capacity is " + str(capacity_));
    }
    cached_head_ = head;
    return head != tail_;
}

Status RingConsumer::wait_for_data(Deadline deadline) {
    // Everything published before a close or a death is delivered before `closed`.
    if (producer_.gone(Clock::now())) return refresh_head() ? Status::ok : Status::closed;
    if (deadline.is_immediate()) return Status::would_block;
    const Status s = wait_until(mode_, deadline, header_->wait.consumer_sleepers, header_->wait.data_event,
                                producer_, [this] {
                                    // Pull the next record's first two lines while polling the cursor: when
                                    // the cursor moves, the record is already on its way instead of being
                                    // fetched only after (one cache-line transfer instead of two in a row).
                                    // A prefetch is a hint, not a read: it cannot fault or race.
                                    __builtin_prefetch(data_ + (tail_ & mask_), 0, 3);
                                    __builtin_prefetch(data_ + ((tail_ + 64) & mask_), 0, 3);
                                    return refresh_head() || producer_.closed();
                                });
    if (s == Status::closed) return refresh_head() ? Status::ok : Status::closed;
    return s;
}

Status RingConsumer::next_record(Deadline deadline) {
    if (header_ == nullptr) throw_error(std::errc::bad_file_descriptor, "ring consumer is closed");
    for (;;) {
        if (cached_head_ == tail_ && !refresh_head()) {
            const Status s = wait_for_data(deadline);
            if (s != Status::ok) return s;
            continue;
        }
        const std::uint64_t offset = tail_ & mask_;
        const std::uint64_t published = cached_head_ - tail_;
        // One read of the record header into a local; only the local is checked and used.
        RecordHeader record;
        std::memcpy(&record, data_ + offset, sizeof record);
        if (record.tag == kPaddingTag) {
            if (record.size != capacity_ - offset) {
                corrupt_record(tail_, offset,
                               "padding of " + str(record.size) + " bytes, but the end of the ring is " +
                                   str(capacity_ - offset) + " bytes away");
            }
            if (record.size > published) {
                corrupt_record(tail_, offset,
                               "padding of " + str(record.size) + " bytes runs past the " + str(published) +
                                   " bytes the producer published");
            }
            tail_ += record.size;
            continue;
        }
        if (record.tag != kDataTag) corrupt_record(tail_, offset, "unknown tag " + hex(record.tag));
        if (record.size > max_message_) {
            corrupt_record(tail_, offset,
                           "size " + str(record.size) + " exceeds the ring's limit of " + str(max_message_));
        }
        const std::uint64_t bytes = record_size(record.size);
        if (bytes > published) {
            corrupt_record(tail_, offset,
                           "record of " + str(bytes) + " bytes runs past the " + str(published) +
                               " bytes the producer published");
        }
        if (bytes > capacity_ - offset) {
            corrupt_record(tail_, offset, "record of " + str(bytes) + " bytes crosses the end of the ring");
        }
        record_offset_ = offset;
        record_payload_ = record.size;
        return Status::ok;
    }
}

void RingConsumer::consume() {
    tail_ += record_size(record_payload_);
    holding_ = false;
    // release: our reads of the record are done before the producer may reuse its bytes; then
    // the fence of the sleeper handshake (see notify()).
    publish_cursor(header_->consumer.position, tail_);
    notify(header_->wait.producer_sleepers, header_->wait.space_event);
}

IoResult RingConsumer::recv(std::span<std::byte> buffer, Deadline deadline) {
    const Status s = next_record(deadline);
    if (s != Status::ok) return {s, 0};
    const std::size_t size = record_payload_;
    if (size > buffer.size()) {
        throw_error(std::errc::message_size, "ring message of " + str(size) +
                                                 " bytes does not fit in a buffer of " + str(buffer.size()) +
                                                 " bytes; it stays queued");
    }
    if (size != 0) std::memcpy(buffer.data(), data_ + record_offset_ + sizeof(RecordHeader), size);
    consume();
    return {Status::ok, size};
}

IoResult RingConsumer::recv(std::vector<std::byte>& message, Deadline deadline) {
    const Status s = next_record(deadline);
    if (s != Status::ok) return {s, 0};
    const std::size_t size = record_payload_;
    message.resize(size);
    if (size != 0) std::memcpy(message.data(), data_ + record_offset_ + sizeof(RecordHeader), size);
    consume();
    return {Status::ok, size};
}

RecordView RingConsumer::read(Deadline deadline) {
    const Status s = next_record(deadline);
    if (s != Status::ok) return {s, {}};
    holding_ = true;
    return {Status::ok,
            std::span<const std::byte>(data_ + record_offset_ + sizeof(RecordHeader), record_payload_)};
}

void RingConsumer::release() {
    if (header_ == nullptr) throw_error(std::errc::bad_file_descriptor, "ring consumer is closed");
    if (!holding_) throw_error(std::errc::invalid_argument, "RingConsumer::release without a read");
    consume();
}

}  // namespace ipckit
