// The shared-memory ring, layout version 3: bytes in ring_layout.hpp, the contract
// in docs/ring-layout.md (kind 1), the design and its measurements in docs/ring.md.
#include "ipckit/ring.hpp"

#include <sched.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <utility>

#include "ipckit/error.hpp"
#include "region.hpp"
#include "ring_layout.hpp"
#include "sync/futex.hpp"
#include "wait.hpp"

namespace ipckit {

using namespace detail::ring;
using Clock = Deadline::Clock;
using detail::wait_until;
using detail::region::hex;
using detail::region::str;
using detail::region::wake_all;

namespace {

// The sleeper handshake (see wait.hpp) needs a store-buffer barrier between publishing (a commit
// word, or the consumer cursor) and reading the other side's sleeper count: the publisher's half
// of an asymmetric barrier, a compiler barrier where the process registered for membarrier (the
// sleeper pays), a seq_cst fence where not. The thread sanitizer does not model fences, so under
// it the same order is built from seq_cst operations, which the standard guarantees just as well.
#ifdef IPCKIT_RING_FENCELESS
constexpr std::memory_order kWordLoad = std::memory_order_seq_cst;
constexpr std::memory_order kCursorLoad = std::memory_order_seq_cst;
constexpr std::memory_order kLastCommit = std::memory_order_seq_cst;
inline void handshake_fence(const EndpointLine&) noexcept {}
inline void publish_cursor(std::atomic<std::uint64_t>& cursor, std::uint64_t value,
                           const EndpointLine&) noexcept {
    cursor.store(value, std::memory_order_seq_cst);
}
#else
// acquire: pairs with the producer's release of a commit word (the record's bytes are visible).
constexpr std::memory_order kWordLoad = std::memory_order_acquire;
// acquire: pairs with the consumer's release of its cursor.
constexpr std::memory_order kCursorLoad = std::memory_order_acquire;
// release: the record's bytes and the end mark after it are visible before its commit word.
constexpr std::memory_order kLastCommit = std::memory_order_release;
// The last commit word (or cursor) before the sleepers load of `peer`, the end that may sleep on
// it (see notify()).
inline void handshake_fence(const EndpointLine& peer) noexcept {
    detail::notifier_barrier(peer);
}
inline void publish_cursor(std::atomic<std::uint64_t>& cursor, std::uint64_t value,
                           const EndpointLine& peer) noexcept {
    cursor.store(value, std::memory_order_release);
    handshake_fence(peer);
}
#endif

// A commit word inside the data area. The area is plain shared bytes (payload on one lap, a
// commit word on another), so each access names the word atomically where it happens.
inline std::atomic_ref<std::uint64_t> word_at(const std::byte* data, std::uint64_t offset) noexcept {
    return std::atomic_ref<std::uint64_t>(
        *reinterpret_cast<std::uint64_t*>(const_cast<std::byte*>(data) + offset));  // 8-aligned
}

// Records from this size up go back to offset 0 when the ring is empty (RingProducer::reserve):
// past the L2 caches, where memory reused is memory still in the L3. At 1 MiB the rewind made the
// round trip slower (49 -> 85 us): the consumer's L2 then holds the very lines the producer is
// about to write, and each comes back across the cores.
constexpr std::uint64_t kRewindRecord = 4u << 20;

[[noreturn]] void corrupt_record(std::uint64_t cursor, std::uint64_t offset, const std::string& what) {
    throw_error(std::errc::bad_message,
                "ring record at offset " + str(offset) + " (cursor " + str(cursor) + "): " + what);
}

// What a commit word at `position` says, checked against the ring's limits (never trusted).
enum class WordKind { data, padding, end_mark, corrupt };

struct Classified {
    WordKind kind;
    std::uint32_t length;
};

// `header`: a record's header bytes (the commit word, and the commit time with stats=latency).
// Always inline: it runs for every record, and out of line its result went through the stack.
[[gnu::always_inline]] inline Classified classify(std::uint64_t word, std::uint64_t position,
                                                  std::uint64_t capacity, std::uint64_t max_message,
                                                  std::uint32_t header) noexcept {
    const std::uint32_t stamp = word_stamp(word);
    const std::uint32_t length = word_length(word);
    const std::uint64_t offset = position & (capacity - 1);
    if (stamp == data_stamp(position)) {
        if (length > max_message || record_size(length, header) > capacity - offset)
            return {WordKind::corrupt, length};
        return {WordKind::data, length};
    }
    if (stamp == padding_stamp(position)) {
        if (offset == 0 || length != capacity - offset) return {WordKind::corrupt, length};
        return {WordKind::padding, length};
    }
    if (word == invalid_word(position)) return {WordKind::end_mark, 0};
    // The record one lap back at this very position, still unconsumed when the producer filled the
    // ring to the last byte (it writes no end mark then: see publish). Nothing committed here yet.
    if (position >= capacity &&
        (stamp == data_stamp(position - capacity) || stamp == padding_stamp(position - capacity)))
        return {WordKind::end_mark, 0};
    return {WordKind::corrupt, length};
}

// Bytes from `position` to the next record: the record's, or the padding's.
std::uint64_t advance(const Classified& c, std::uint32_t header) noexcept {
    return c.kind == WordKind::data ? record_size(c.length, header) : c.length;
}

struct Walk {
    std::uint64_t end;     // the first position that holds no committed record
    std::size_t messages;  // data records passed
};

// Follows committed records from `from` while their commit words are valid, and no further than
// the space accounting of a producer that respected `tail` allows. Each word is read only after
// the one before it was acquired, so it is that record's commit word or the end mark
// (docs/ring-layout.md, "Invalidate the next header before committing this one").
Walk walk(const std::byte* data, std::uint64_t from, std::uint64_t tail, std::uint64_t capacity,
          std::uint64_t max_message, std::uint32_t header) noexcept {
    Walk w{from, 0};
    for (std::uint64_t steps = 0; steps <= capacity / kRecordAlignment; ++steps) {
        const std::uint64_t word = word_at(data, w.end & (capacity - 1)).load(std::memory_order_acquire);
        const Classified c = classify(word, w.end, capacity, max_message, header);
        if (c.kind != WordKind::data && c.kind != WordKind::padding) break;
        const std::uint64_t next = w.end + advance(c, header);
        if (next > tail + capacity) break;
        if (c.kind == WordKind::data) ++w.messages;
        w.end = next;
    }
    return w;
}

struct Geometry {
    RingHeader* header;
    std::byte* data;
    std::uint64_t capacity;
    bool latency;  // stats=latency: records carry their commit time
};

// Reads every header field once, into locals, and checks it: the header is shared with a process
// that may be buggy or hostile, and a value read twice could change between check and use.
Geometry validate(std::span<std::byte> region) {
    detail::region::check_span(region, Kind::ring, kHeaderSize + kMinCapacity);
    const auto control = detail::region::read_control(region, Kind::ring, kHeaderSize);
    detail::region::check_fits(Kind::ring, kHeaderSize, control.capacity, region.size());
    return {std::launder(reinterpret_cast<RingHeader*>(region.data())), region.data() + kHeaderSize,
            control.capacity, (control.flags & kFlagLatency) != 0};
}

struct Cursors {
    std::uint64_t head;  // the producer cursor as stored (it may trail the last commit: see attach)
    std::uint64_t tail;
};

// The cursors, read once and checked. The consumer cursor may lead the stored producer cursor by
// one publication: a producer that died between its last commit word and its cursor store.
Cursors read_cursors(const RingHeader& header, std::uint64_t capacity) {
    // acquire: pairs with the consumer's release, so the records it consumed are done with.
    const std::uint64_t tail = header.consumer.position.load(std::memory_order_acquire);
    const std::uint64_t head = header.producer.position.load(std::memory_order_acquire);
    constexpr std::uint64_t kLimit = std::uint64_t{1} << 62;  // no sum below can overflow
    const bool sane = head < kLimit && tail < kLimit && head % kRecordAlignment == 0 &&
                      tail % kRecordAlignment == 0 && (head >= tail ? head - tail : tail - head) <= capacity;
    if (!sane) {
        throw_error(std::errc::protocol_error, "ring cursors corrupt: consumer at " + str(tail) +
                                                   ", producer at " + str(head) + ", capacity " +
                                                   str(capacity));
    }
    return {head, tail};
}

// Wakes the other side if it announced that it sleeps.
inline void notify(std::atomic<std::uint32_t>& sleepers, std::atomic<std::uint32_t>& event) {
    // Called after the handshake fence. We store a commit word (or our cursor) then load the
    // sleeper count; a waiter stores its announcement then loads that word. With a barrier between
    // store and load on both sides (the asymmetric pair of wait.hpp, or seq_cst operations), both
    // loads cannot miss the other's store (the store-buffer litmus test): either we see the sleeper
    // and wake it, or it sees our store and does not sleep. No wake-up is lost, and nobody sleeping
    // costs no system call.
    if (sleepers.load(std::memory_order_seq_cst) != 0) [[unlikely]] {
        // release: a waiter that reads the new event value (acquire) before announcing itself has
        // its announcement ordered after our sleepers load, so that cannot be missed either.
        event.fetch_add(1, std::memory_order_release);
        (void)detail::futex_wake(event, INT_MAX);
    }
}

// Rings the consumer's doorbell if it is armed: one non-blocking datagram. `sender` is the
// producer's cached unbound socket; null makes a temporary one (close and attach are rare).
void ring_doorbell(RingHeader& header, Fd* sender) noexcept {
    DoorbellLine& line = header.doorbell;
    // acquire: pairs with arm()'s release, so the name is the one written before arming.
    if (line.armed.load(std::memory_order_acquire) == 0) return;
    Fd temporary;
    detail::region::ring_doorbell(line.name, line.name_length, sizeof line.name,
                                  sender != nullptr ? *sender : temporary);
}

// A record's header: the commit word, then with stats=latency the commit time.
std::uint32_t record_header(bool latency) noexcept {
    return static_cast<std::uint32_t>(kCommitWordSize + (latency ? detail::region::kTimestampSize : 0));
}

}  // namespace

// ---- Ring ----

std::size_t Ring::region_size(std::size_t capacity) noexcept {
    return kHeaderSize + capacity;
}

std::size_t Ring::max_message_size(std::size_t capacity, bool latency) noexcept {
    // record_size(capacity / 2 - 16) = capacity / 2 - 8: with the 8-byte end mark after it and
    // padding shorter than the record, one always fits in an empty ring. The commit time of
    // stats=latency takes 8 bytes more of each record.
    return capacity / 2 - 2 * kCommitWordSize - (latency ? detail::region::kTimestampSize : 0);
}

std::size_t Ring::format(std::span<std::byte> region, RingOptions options) {
    detail::region::check_span(region, Kind::ring, kHeaderSize + kMinCapacity);
    const std::uint64_t capacity =
        detail::region::choose_capacity(Kind::ring, options.capacity, region.size() - kHeaderSize,
                                        kHeaderSize + options.capacity, region.size());
    auto* header = ::new (region.data()) RingHeader{};
    std::byte* data = region.data() + kHeaderSize;
    // The end mark at position 0: whatever bytes were there must not read as a record.
    word_at(data, 0).store(invalid_word(0), std::memory_order_relaxed);
    detail::region::stamp(header->control, Kind::ring, kHeaderSize, capacity, {},
                          options.latency ? kFlagLatency : 0);
    return static_cast<std::size_t>(capacity);
}

void detail::RingEndCloser::operator()(RingHeader* header) const noexcept {
    if (producer) {
        release_endpoint(header->producer_end, epoch);
        wake_all(header->wait.data_event);
        ring_doorbell(*header, nullptr);  // a consumer in a PollSet sees the close
    } else {
        // A consumer that closes armed stops counting as a sleeper (only the holder arms).
        const OwnerWord holder =
            OwnerWord::unpack(header->consumer_end.owner.load(std::memory_order_relaxed));
        if (holder.epoch == epoch && header->doorbell.armed.exchange(0, std::memory_order_relaxed) != 0)
            header->wait.consumer_sleepers.fetch_sub(1, std::memory_order_relaxed);
        release_endpoint(header->consumer_end, epoch);
        wake_all(header->wait.space_event);
    }
}

// ---- RingProducer ----

RingProducer RingProducer::attach(std::span<std::byte> region, WaitMode mode) {
    const Geometry g = validate(region);
    detail::enable_light_barriers();  // before this end publishes anything
    // A producer that died asleep left its sleeper count and its space request: start clean.
    const Claim claim = claim_endpoint(g.header->producer_end, "ring producer", [&] {
        g.header->wait.producer_sleepers.store(0, std::memory_order_relaxed);
        g.header->wait.space_wanted.store(0, std::memory_order_relaxed);
    });
    RingProducer p;
    p.header_ =
        detail::RingEndHandle(g.header, detail::RingEndCloser{claim.epoch, true});  // closes on a throw
    p.data_ = g.data;
    p.capacity_ = g.capacity;
    p.mask_ = g.capacity - 1;
    p.max_message_ = Ring::max_message_size(g.capacity, g.latency);
    p.record_header_ = record_header(g.latency);
    p.mode_ = mode;
    p.sleeper_ = detail::SleeperBarrier(mode);
    p.sleeper_.set_sleep_counter(&g.header->producer.counters.sleeps);
    // Before this end first waits: the peer of an end that may sleep keeps its fence (wait.hpp).
    g.header->producer_end.may_sleep.store(mode == WaitMode::spin ? 0 : 1, std::memory_order_seq_cst);
    // Read after the claim: the previous holder (closed or dead) no longer moves them.
    const Cursors c = read_cursors(*g.header, g.capacity);
    // A producer that died between a commit word and its cursor store left committed records
    // beyond the cursor: continue after the last of them. An uncommitted loan has no commit word.
    const Walk w = walk(g.data, c.head, c.tail, g.capacity, p.max_message_, p.record_header_);
    if (w.end < c.tail) {
        throw_error(std::errc::protocol_error, "ring cursors corrupt: consumer at " + str(c.tail) +
                                                   ", but the records committed end at " + str(w.end));
    }
    p.head_ = w.end;
    p.cached_tail_ = c.tail;
    // Rewrites the end mark a consumer is polling (the same value unless the region was damaged),
    // unless the ring is full to the last byte: then those bytes are the unconsumed record at the
    // consumer's cursor, one lap back, which reads as "nothing yet" by itself.
    if (w.end + kCommitWordSize <= c.tail + g.capacity)
        word_at(g.data, w.end & p.mask_).store(invalid_word(w.end), std::memory_order_relaxed);
    g.header->producer.position.store(w.end, std::memory_order_release);
    p.consumer_ = EndpointWatch(&g.header->consumer_end);
    if (const OwnerWord owner = p.consumer_.owner(); owner.state == EndpointState::closed)
        p.closed_before_attach_ = owner.epoch;
    // A consumer asleep on its doorbell learns of the new producer now, and so watches its pidfd.
    ring_doorbell(*g.header, &p.bell_sender_);
    return p;
}

void RingProducer::close() noexcept {
    header_.reset();
    pending_ = false;
}

// A consumer that closed before this producer attached is treated as one not attached yet: a new
// sender waits for the next receiver. One that closed while we were attached has said it reads
// no more: `closed`.
bool RingProducer::consumer_closed() const noexcept {
    const OwnerWord owner = consumer_.owner();  // one acquire load, as EndpointWatch::closed()
    return owner.state == EndpointState::closed && owner.epoch != closed_before_attach_;
}

bool RingProducer::consumer_gone(Clock::time_point now) {
    const OwnerWord owner = consumer_.owner();
    if (owner.state == EndpointState::vacant) return false;
    if (owner.state == EndpointState::closed) return owner.epoch != closed_before_attach_;
    return consumer_.gone(now);
}

bool RingProducer::consumer_present() {
    if (!header_) return false;
    return consumer_.owner().state == EndpointState::attached && !consumer_.gone(Clock::now());
}

Status RingProducer::wait_for_consumer(Deadline deadline) {
    if (!header_) throw_error(std::errc::bad_file_descriptor, "ring producer is closed");
    // A consumer's claim changes its holder word (waking us, who announced ourselves in it), and
    // its attach bumps space_event.
    std::atomic<std::uint32_t>* holder = consumer_.holder_word();
    for (;;) {
        const std::uint32_t key = header_->wait.space_event.load(std::memory_order_acquire);
        const std::uint32_t holder_key = holder != nullptr ? holder->load(std::memory_order_acquire) : 0;
        if (consumer_present()) return Status::ok;
        // A try_ form (a zero deadline) would have to wait: would_block, as every try_ says.
        if (deadline.is_immediate()) return Status::would_block;
        if (Clock::now() >= deadline.when()) return Status::timed_out;
        detail::sleep_on(header_->wait.space_event, key, &holder, &holder_key, holder != nullptr ? 1 : 0,
                         deadline);
    }
}

Status RingProducer::drain(Deadline deadline) {
    if (!header_) throw_error(std::errc::bad_file_descriptor, "ring producer is closed");
    auto drained = [this] {
        refresh_tail();
        return cached_tail_ == head_;
    };
    for (;;) {
        if (drained()) return Status::ok;
        if (consumer_closed() || consumer_gone(Clock::now())) return drained() ? Status::ok : Status::closed;
        if (deadline.is_immediate()) return Status::timed_out;
        const Status s = wait_until(
            mode_, deadline, sleeper_, header_->wait.producer_sleepers, header_->wait.space_event,
            [this](Clock::time_point now) { return consumer_gone(now); }, detail::one_holder(consumer_),
            [&] { return drained() || consumer_closed(); }, [this] { want_space(capacity_); });
        if (s == Status::ok) continue;
        if (s == Status::closed) return drained() ? Status::ok : Status::closed;
        return s;
    }
}

void RingProducer::want_space(std::uint64_t bytes) noexcept {
    // Free `bytes` means the consumer cursor at head + bytes - capacity; never past head, where an
    // empty ring puts it, so the consumer always gets there.
    const std::uint64_t free = std::min<std::uint64_t>(bytes, capacity_);
    const std::uint64_t wanted = head_ + free > capacity_ ? head_ + free - capacity_ : 0;
    // relaxed: a consumer that reads an older (smaller) value wakes us sooner, which is only less
    // hysteresis; the sleepers count it pairs with is ordered by the handshake.
    header_->wait.space_wanted.store(wanted, std::memory_order_relaxed);
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
    if (!header_) throw_error(std::errc::bad_file_descriptor, "ring producer is closed");
    if (size > max_message_) {
        throw_error(std::errc::message_size, "ring message of " + str(size) +
                                                 " bytes exceeds the ring's limit of " + str(max_message_) +
                                                 " bytes (half the " + str(capacity_) +
                                                 "-byte capacity, less 16 bytes of commit words)");
    }
    if (consumer_closed()) return Status::closed;
    const std::uint64_t record = record_size(size, record_header_);
    const std::uint64_t offset = head_ & mask_;
    const std::uint64_t to_end = capacity_ - offset;
    // A record never wraps (loans and in-place reads need it contiguous): when it does not fit
    // before the end, a padding record fills the rest and the record starts at offset 0. The
    // end mark after the record takes no space of its own: when the record fills the ring to the
    // last byte, the bytes after it are the consumer's next record, one lap back (see publish).
    std::uint64_t padding = record <= to_end ? 0 : to_end;
    // A large record into an empty ring goes back to offset 0 (after a padding record to the end)
    // when it fits before the current offset: a ping-pong of large messages then reuses the same
    // memory, still in the caches, instead of walking the whole ring (a 64 MiB ring for 16 MiB
    // messages is twice this machine's L3). Refreshing the consumer cursor to see the ring empty
    // costs a line's transfer, nothing beside such a record.
    if (padding == 0 && record >= kRewindRecord && record <= offset) {
        refresh_tail();
        if (cached_tail_ == head_) padding = to_end;
    }
    const std::uint64_t need = padding + record;
    if (!has_space(need)) [[unlikely]] {
        refresh_tail();
        if (!has_space(need)) detail::region::count(header_->producer.counters.full_waits);
        while (!has_space(need)) {
            if (consumer_gone(Clock::now())) return Status::closed;
            if (deadline.is_immediate()) return Status::would_block;
            const Status s = wait_until(
                mode_, deadline, sleeper_, header_->wait.producer_sleepers, header_->wait.space_event,
                [this](Clock::time_point now) { return consumer_gone(now); }, detail::one_holder(consumer_),
                [&] {
                    refresh_tail();
                    return has_space(need) || consumer_closed();
                },
                [&] { want_space(std::max<std::uint64_t>(need, capacity_ / 4)); });
            if (s != Status::ok) return s;
            if (consumer_closed()) return Status::closed;
        }
    }
    pending_padding_ = padding;
    pending_position_ = head_ + padding;
    pending_size_ = size;
    pending_ = true;
    return Status::ok;
}

void RingProducer::publish(std::size_t size) {
    const std::uint64_t position = pending_position_;
    const std::uint64_t end = position + record_size(size, record_header_);
    // The end mark first, so a consumer that acquires this record's word and moves on finds the
    // mark at `end`, never stray bytes of an earlier lap. With the ring full to the last byte
    // (end == cached tail + capacity) there is no room for it, and no need: the bytes at `end` are
    // the commit word of the record at the consumer's cursor, stamped for `end - capacity`, which
    // classify() reads as "nothing yet". So freeing one record always makes room for one more of
    // the same size, as a user expects.
    if (end + kCommitWordSize <= cached_tail_ + capacity_) [[likely]]
        word_at(data_, end & mask_).store(invalid_word(end), std::memory_order_relaxed);
    const std::uint64_t word = commit_word(static_cast<std::uint32_t>(size), data_stamp(position));
    if (record_header_ != kCommitWordSize) [[unlikely]]  // stats=latency: the commit time after the word
        word_at(data_, (position & mask_) + kCommitWordSize)
            .store(detail::region::monotonic_ns(), std::memory_order_relaxed);
    if (pending_padding_ == 0) [[likely]] {
        word_at(data_, position & mask_).store(word, kLastCommit);
    } else {
        // The record at offset 0, then the padding that leads to it: a consumer that passes the
        // padding finds the record committed.
        word_at(data_, 0).store(word, std::memory_order_release);
        word_at(data_, head_ & mask_)
            .store(commit_word(static_cast<std::uint32_t>(pending_padding_), padding_stamp(head_)),
                   kLastCommit);
    }
    head_ = end;
    pending_ = false;
    // Read only by an attacher (a takeover walks from it) and `ipckit ls`: relaxed, off the hot path.
    // The counters share the line, which only this end writes.
    header_->producer.position.store(head_, std::memory_order_relaxed);
    detail::region::count_message(header_->producer.counters, size);
    handshake_fence(header_->consumer_end);
    // As notify(), plus the doorbell: an armed doorbell counts as a sleeper, so it is only
    // looked for on this path and a send with nobody asleep makes no system call.
    if (header_->wait.consumer_sleepers.load(std::memory_order_seq_cst) != 0) [[unlikely]] {
        header_->wait.data_event.fetch_add(1, std::memory_order_release);
        (void)detail::futex_wake(header_->wait.data_event, INT_MAX);
        detail::region::count(header_->producer.counters.wakes_sent);
        ring_doorbell(*header_, &bell_sender_);
    }
}

IoResult RingProducer::send(std::span<const std::byte> message, Deadline deadline) {
    const Status s = reserve(message.size(), deadline);
    if (s != Status::ok) [[unlikely]]
        return {s, 0};
    detail::region::copy_payload(data_ + (pending_position_ & mask_) + record_header_, message.data(),
                                 message.size());
    publish(message.size());
    return {Status::ok, message.size()};
}

Loan RingProducer::loan(std::size_t size, Deadline deadline) {
    const Status s = reserve(size, deadline);
    if (s != Status::ok) [[unlikely]]
        return {s, {}};
    return {Status::ok, std::span<std::byte>(data_ + (pending_position_ & mask_) + record_header_, size)};
}

void RingProducer::commit(std::size_t size) {
    if (!pending_) [[unlikely]] {
        if (!header_) throw_error(std::errc::bad_file_descriptor, "ring producer is closed");
        throw_error(std::errc::invalid_argument, "RingProducer::commit without a loan");
    }
    if (size > pending_size_) [[unlikely]] {
        throw_error(std::errc::invalid_argument, "RingProducer::commit of " + str(size) +
                                                     " bytes exceeds the loan of " + str(pending_size_) +
                                                     " bytes");
    }
    publish(size);
}

// ---- RingConsumer ----

RingConsumer RingConsumer::attach(std::span<std::byte> region, WaitMode mode) {
    const Geometry g = validate(region);
    detail::enable_light_barriers();  // before this end publishes anything
    // A consumer that died asleep or armed left its sleeper count and its doorbell: start clean.
    const Claim claim = claim_endpoint(g.header->consumer_end, "ring consumer", [&] {
        g.header->wait.consumer_sleepers.store(0, std::memory_order_relaxed);
        g.header->doorbell.armed.store(0, std::memory_order_relaxed);
    });
    RingConsumer c;
    c.header_ =
        detail::RingEndHandle(g.header, detail::RingEndCloser{claim.epoch, false});  // closes on a throw
    c.data_ = g.data;
    c.capacity_ = g.capacity;
    c.mask_ = g.capacity - 1;
    c.max_message_ = Ring::max_message_size(g.capacity, g.latency);
    c.record_header_ = record_header(g.latency);
    c.mode_ = mode;
    c.sleeper_ = detail::SleeperBarrier(mode);
    c.sleeper_.set_sleep_counter(&g.header->consumer.counters.sleeps);
    // Before this end first waits: the peer of an end that may sleep keeps its fence (wait.hpp).
    g.header->consumer_end.may_sleep.store(mode == WaitMode::spin ? 0 : 1, std::memory_order_seq_cst);
    // Read after the claim: the previous consumer (closed or dead) no longer moves it. It was
    // stored after every record, so we start exactly after the last one consumed.
    const Cursors cursors = read_cursors(*g.header, g.capacity);
    c.tail_ = cursors.tail;
    c.took_over_ = claim.took_over;
    c.pending_at_attach_ =
        walk(g.data, cursors.tail, cursors.tail, g.capacity, c.max_message_, c.record_header_).messages;
    c.producer_ = EndpointWatch(&g.header->producer_end, EndpointWatch::JoinAfter{});
    wake_all(g.header->wait.space_event);  // a producer in wait_for_consumer
    return c;
}

int RingConsumer::doorbell_fd() {
    if (!header_) throw_error(std::errc::bad_file_descriptor, "ring consumer is closed");
    if (doorbell_) return doorbell_.get();
    std::string name;
    Fd fd = detail::region::bind_doorbell("ring-", name);
    DoorbellLine& line = header_->doorbell;
    std::memcpy(line.name, name.data(), name.size());
    line.name_length = static_cast<std::uint32_t>(name.size());
    doorbell_ = std::move(fd);
    return doorbell_.get();
}

bool RingConsumer::arm() {
    (void)doorbell_fd();
    DoorbellLine& line = header_->doorbell;
    if (line.armed.load(std::memory_order_relaxed) == 0) {
        // release: the name written in doorbell_fd() happens-before a producer that sees armed.
        line.armed.store(1, std::memory_order_release);
        header_->wait.consumer_sleepers.fetch_add(1, std::memory_order_relaxed);
    }
    // The store-buffer handshake, as for a futex sleeper: our announcement, then the re-check;
    // the producer's commit, then its sleepers load. One of the two sees the other.
    sleeper_.pass();
    if (has_data()) return false;
    if (producer_.left()) return false;
    return true;
}

void RingConsumer::disarm() noexcept {
    if (!header_) return;
    if (header_->doorbell.armed.exchange(0, std::memory_order_relaxed) != 0)
        header_->wait.consumer_sleepers.fetch_sub(1, std::memory_order_relaxed);
    detail::region::drain_doorbell(doorbell_);
}

int RingConsumer::producer_fd() {
    if (!header_) return -1;
    return producer_.fd();  // a pidfd for a holder in this PID namespace
}

void RingConsumer::close() noexcept {
    header_.reset();
    holding_ = false;
}

bool RingConsumer::has_data() const noexcept {
    if (!header_) return false;
    if (holding_) return true;
    detail::region::touch_line_after(data_, tail_ & mask_, mask_);  // it is polled by waiters
    const std::uint64_t word = word_at(data_, tail_ & mask_).load(kWordLoad);
    const Classified c = classify(word, tail_, capacity_, max_message_, record_header_);
    if (c.kind != WordKind::padding) return c.kind != WordKind::end_mark;  // corruption: recv says so
    const std::uint64_t next = tail_ + c.length;
    return classify(word_at(data_, next & mask_).load(kWordLoad), next, capacity_, max_message_,
                    record_header_)
               .kind != WordKind::end_mark;
}

detail::RingWaitWords RingConsumer::wait_words() const noexcept {
    if (!header_) return {};
    return {&header_->wait.consumer_sleepers, &header_->wait.data_event, &header_->consumer.counters.sleeps};
}

Status RingConsumer::wait_for_data(Deadline deadline) {
    auto arrived = [this] {
        detail::region::touch_line_after(data_, tail_ & mask_, mask_);
        return classify(word_at(data_, tail_ & mask_).load(kWordLoad), tail_, capacity_, max_message_,
                        record_header_)
                   .kind != WordKind::end_mark;
    };
    // Everything committed before a close or a death is delivered before `closed`.
    if (producer_.left()) return arrived() ? Status::ok : Status::closed;
    if (deadline.is_immediate()) return Status::would_block;
    // The ring is empty: a producer asleep for a quarter of it (space_wanted) has all the room
    // there is. Waking it now keeps a consumer that stopped short of that quarter from leaving
    // it asleep while both wait (there are no slices to end such a sleep).
    if (header_->wait.producer_sleepers.load(std::memory_order_seq_cst) != 0)
        wake_all(header_->wait.space_event);
    const Status s = wait_until(
        mode_, deadline, sleeper_, header_->wait.consumer_sleepers, header_->wait.data_event, producer_,
        // Gone for a waiter: closed, or held by a dead process. An end nobody has claimed yet
        // is not gone: its first holder is still to come.
        [this](Clock::time_point) { return producer_.left(); },
        [&] { return arrived() || producer_.closed(); });
    if (s == Status::closed) return arrived() ? Status::ok : Status::closed;
    if (s == Status::ok && !arrived()) return producer_.left() ? Status::closed : Status::ok;
    return s;
}

Status RingConsumer::next_record(Deadline deadline) {
    if (!header_) [[unlikely]]
        throw_error(std::errc::bad_file_descriptor, "ring consumer is closed");
    for (;;) {
        const std::uint64_t offset = tail_ & mask_;
        // One read of the commit word into a local; only the local is checked and used.
        const std::uint64_t word = word_at(data_, offset).load(kWordLoad);
        const Classified c = classify(word, tail_, capacity_, max_message_, record_header_);
        switch (c.kind) {
            case WordKind::data:
                record_offset_ = offset;
                record_payload_ = c.length;
                return Status::ok;
            case WordKind::padding:
                tail_ += c.length;
                continue;
            case WordKind::end_mark: {
                const Status s = wait_for_data(deadline);
                if (s != Status::ok) return s;
                continue;
            }
            case WordKind::corrupt:
                break;
        }
        const std::uint32_t stamp = word_stamp(word);
        if (stamp == data_stamp(tail_)) {
            corrupt_record(tail_, offset,
                           c.length > max_message_
                               ? "size " + str(c.length) + " exceeds the ring's limit of " + str(max_message_)
                               : "record of " + str(record_size(c.length, record_header_)) +
                                     " bytes crosses the end of the ring");
        }
        if (stamp == padding_stamp(tail_)) {
            corrupt_record(tail_, offset,
                           "padding of " + str(c.length) + " bytes, but the end of the ring is " +
                               str(capacity_ - offset) + " bytes away");
        }
        corrupt_record(tail_, offset,
                       "commit word " + hex(word) + " is neither a record stamped for this position (" +
                           hex(data_stamp(tail_)) + ") nor the end mark");
    }
}

void RingConsumer::consume() {
    if (record_header_ != kCommitWordSize) [[unlikely]]  // stats=latency: read before the cursor frees it
        detail::region::record_latency(
            header_->latency,
            word_at(data_, record_offset_ + kCommitWordSize).load(std::memory_order_relaxed));
    tail_ += record_size(record_payload_, record_header_);
    holding_ = false;
    detail::region::count_message(header_->consumer.counters,
                                  record_payload_);  // our line, before the cursor's release
    // release: our reads of the record are done before the producer may reuse its bytes; then
    // the fence of the sleeper handshake (see notify()).
    publish_cursor(header_->consumer.position, tail_, header_->producer_end);
    // A sleeping producer asked for a quarter of the ring (WaitLine::space_wanted): waking it for
    // every record would put a sleep and a wake-up on every record of a full ring.
    if (header_->wait.producer_sleepers.load(std::memory_order_seq_cst) != 0) [[unlikely]] {
        if (tail_ >= header_->wait.space_wanted.load(std::memory_order_relaxed)) {
            notify(header_->wait.producer_sleepers, header_->wait.space_event);
            detail::region::count(header_->consumer.counters.wakes_sent);
        }
    }
}

IoResult RingConsumer::recv(std::span<std::byte> buffer, Deadline deadline) {
    const Status s = next_record(deadline);
    if (s != Status::ok) [[unlikely]]
        return {s, 0};
    const std::size_t size = record_payload_;
    if (size > buffer.size()) {
        throw_error(std::errc::message_size, "ring message of " + str(size) +
                                                 " bytes does not fit in a buffer of " + str(buffer.size()) +
                                                 " bytes; it stays queued");
    }
    detail::region::copy_payload(buffer.data(), data_ + record_offset_ + record_header_, size);
    consume();
    return {Status::ok, size};
}

IoResult RingConsumer::recv(std::vector<std::byte>& message, Deadline deadline) {
    const Status s = next_record(deadline);
    if (s != Status::ok) [[unlikely]]
        return {s, 0};
    const std::size_t size = record_payload_;
    message.resize(size);
    detail::region::copy_payload(message.data(), data_ + record_offset_ + record_header_, size);
    consume();
    return {Status::ok, size};
}

RecordView RingConsumer::read(Deadline deadline) {
    const Status s = next_record(deadline);
    if (s != Status::ok) [[unlikely]]
        return {s, {}};
    holding_ = true;
    return {Status::ok, std::span<const std::byte>(data_ + record_offset_ + record_header_, record_payload_)};
}

void RingConsumer::release() {
    if (!holding_) [[unlikely]] {
        if (!header_) throw_error(std::errc::bad_file_descriptor, "ring consumer is closed");
        throw_error(std::errc::invalid_argument, "RingConsumer::release without a read");
    }
    consume();
}

}  // namespace ipckit
