// Fuzz target: the shared-memory ring (include/ipckit/ring.hpp) over memory a hostile or buggy
// peer can write at any moment. Whatever the bytes of the region, attach, send, loan, recv and
// read must give a Status or an Error, never read or write outside the region, never return a
// record that is not inside the data area.
//
// Input: byte 0 picks the capacity (64 << (b & 7)), extra bytes after the ring (b >> 3 & 3) and
// stats=latency (b >> 5 & 1: records carry their commit time, the consumer a histogram).
// The region is formatted, then the rest of the input is a program; each operation is one byte
// (its low nibble) and its arguments:
//   0 patch OFF16 LEN8 BYTES    write bytes anywhere in the region (header, cursors, records)
//   1 field SEL8 VALUE64        write a value into a header field (magic, capacity, owner words,
//                               cursors, ...)
//   2 attach the consumer       3 attach the producer
//   4 try_recv into a vector    5 try_recv into a buffer of SIZE8 bytes
//   6 read, touch every byte, release
//   7 try_send SIZE16           8 loan SIZE16, fill, commit SIZE16
//   9 close the consumer        10 close the producer
//   11 record OFF16 SIZE32 TAG8 write a commit word into the data area: at 8-byte slot OFF16, with
//                               length SIZE32 and the stamp of a data record (TAG8 % 3 == 0) or a
//                               padding (1) for the position on lap (TAG8 >> 2) & 3, or a raw stamp (2)
//   12 image                    the rest of the input becomes the region from its first byte
// Then the consumer, if attached, drains until it gets anything but a message.
//
// While nothing has written the region behind the ring's back, the target also checks that the
// ring works: every message received is the next one sent, whole; the only errors are the
// caller's own (a message too large, a buffer too small, commit without a loan).
#include <algorithm>
#include <cstring>
#include <deque>
#include <new>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include "fuzz_program.hpp"
#include "fuzz_targets.hpp"
#include "ipckit/deadline.hpp"
#include "ipckit/error.hpp"
#include "ipckit/ring.hpp"
#include "rings/ring_layout.hpp"

namespace ipckit::fuzz {
namespace {
// Named: tests/faults/fuzz_regression_test.cpp includes every target into one translation unit.
namespace ring_input {

using Bytes = std::vector<std::byte>;
namespace layout = detail::ring;

void check(bool ok, const char* what) {
    if (!ok) fuzz_fail("ring", what);
}

using Input = ProgramInput;
using Region = HeapRegion;  // fuzz_program.hpp: its exact size on the heap

class Session {
public:
    Session(Input& in, std::size_t capacity, std::size_t extra, bool latency)
        : in_(in), region_(layout::kHeaderSize + capacity + extra), capacity_(capacity) {
        (void)Ring::format(region_.span(), {.capacity = capacity, .latency = latency});
    }

    void run() {
        while (!in_.empty()) {
            const auto op = static_cast<unsigned>(in_.take(1) & 0xf);
            try {
                step(op);
            } catch (const Error& e) {
                if (!tampered_) check(caller_error(e), "an intact ring reported corruption");
            }
        }
        drain();
    }

private:
    void step(unsigned op) {
        switch (op) {
            case 0:
                patch(in_.take(2), in_.take_span(in_.take(1)));
                break;
            case 1:
                field(in_.take(1), in_.take(8));
                break;
            case 2:
                if (!consumer_) consumer_.emplace(RingConsumer::attach(region_.span()));
                break;
            case 3:
                if (!producer_) producer_.emplace(RingProducer::attach(region_.span()));
                break;
            case 4:
                recv_vector();
                break;
            case 5:
                recv_fixed(in_.take(1));
                break;
            case 6:
                read_release();
                break;
            case 7:
                send(in_.take(2));
                break;
            case 8:
                loan_commit(in_.take(2), in_.take(2));
                break;
            case 9:
                consumer_.reset();
                break;
            case 10:
                producer_.reset();
                break;
            case 11:
                record(in_.take(2), in_.take(4), in_.take(1));
                break;
            case 12:
                image();
                break;
            default:
                break;
        }
    }

    // A patch makes the ring's contents unknowable: from then on only memory safety is checked.
    void patch(std::uint64_t offset, std::span<const std::uint8_t> bytes) {
        offset %= region_.size;
        const std::size_t n = std::min<std::size_t>(bytes.size(), region_.size - offset);
        if (n != 0) std::memcpy(region_.bytes + offset, bytes.data(), n);
        tampered_ = true;
    }

    void field(std::uint64_t selector, std::uint64_t value) {
        // Layout version 2, kind 1 (src/rings/ring_layout.hpp): magic, version, kind,
        // capacity, header_size, record_alignment, line_size, producer and consumer owner words,
        // producer start time, producer cursor, consumer cursor, sleepers and futex words.
        static constexpr std::size_t kOffsets[] = {0,   8,   12,  32,  16,  24,  20,  128,
                                                   256, 136, 384, 512, 640, 644, 648, 652};
        static constexpr std::size_t kWidths[] = {8, 4, 4, 8, 4, 4, 4, 8, 8, 8, 8, 8, 4, 4, 4, 4};
        const std::size_t i = selector % std::size(kOffsets);
        std::uint8_t raw[8];
        for (std::size_t b = 0; b < 8; ++b)
            raw[b] = static_cast<std::uint8_t>(value >> (8 * b));
        patch(kOffsets[i], std::span<const std::uint8_t>(raw, kWidths[i]));
    }

    void record(std::uint64_t slot, std::uint64_t length, std::uint64_t tag_choice) {
        const std::uint64_t offset = (slot * layout::kRecordAlignment) % capacity_;
        const std::uint64_t position = ((tag_choice >> 2) & 3) * capacity_ + offset;
        const std::uint32_t stamp = tag_choice % 3 == 0 ? layout::data_stamp(position)
                                    : tag_choice % 3 == 1
                                        ? layout::padding_stamp(position)
                                        : static_cast<std::uint32_t>(tag_choice * 0x01010101u);
        const std::uint64_t word = layout::commit_word(static_cast<std::uint32_t>(length), stamp);
        std::uint8_t raw[sizeof word];
        std::memcpy(raw, &word, sizeof word);
        patch(layout::kHeaderSize + offset, raw);
    }

    void image() {
        const auto rest = in_.take_span(region_.size);
        patch(0, rest);
    }

    void received(std::span<const std::byte> message) {
        check(consumer_ && message.size() <= consumer_->max_message_size(),
              "a message over the ring's limit");
        if (tampered_) return;
        check(!sent_.empty(), "a message nobody sent");
        check(std::equal(message.begin(), message.end(), sent_.front().begin(), sent_.front().end()),
              "a message that differs from the one sent");
        sent_.pop_front();
    }

    void nothing_received(Status status) {
        check(status != Status::ok, "ok without a message");
        check(status != Status::timed_out, "timed_out from a try_ call");
        if (!tampered_ && status == Status::would_block)
            check(sent_.empty(), "would_block with messages queued");
    }

    void recv_vector() {
        if (!consumer_) return;
        Bytes message(3, std::byte{0x5a});  // stale contents must be replaced, not appended to
        const IoResult r = consumer_->try_recv(message);
        if (!r.ok()) return nothing_received(r.status);
        check(r.bytes == message.size(), "try_recv reports a size it did not give");
        received(message);
    }

    void recv_fixed(std::uint64_t size) {
        if (!consumer_) return;
        Bytes buffer(size);
        try {
            const IoResult r = consumer_->try_recv(std::span<std::byte>(buffer));
            if (!r.ok()) return nothing_received(r.status);
            check(r.bytes <= buffer.size(), "try_recv wrote past the buffer it was given");
            received(std::span<const std::byte>(buffer).first(r.bytes));
        } catch (const Error& e) {
            if (!tampered_ && is(e, std::errc::message_size)) {
                check(!sent_.empty() && sent_.front().size() > size,
                      "buffer too small for a message that fits");
            }
            throw;
        }
    }

    void read_release() {
        if (!consumer_) return;
        const RecordView view = consumer_->read(Deadline::immediate());
        if (!view.ok()) return nothing_received(view.status);
        const std::byte* data_area = region_.bytes + layout::kHeaderSize;
        check(view.message.data() >= data_area &&
                  view.message.data() + view.message.size() <= data_area + capacity_,
              "read gave a record outside the data area");
        unsigned sum = 0;  // every byte of the view is read: a view past the region is an ASan report
        for (const std::byte b : view.message)
            sum += std::to_integer<unsigned>(b);
        (void)sum;
        const Bytes copy(view.message.begin(), view.message.end());
        consumer_->release();
        received(copy);
    }

    void send(std::uint64_t size_choice) {
        if (!producer_) return;
        // Up to a little past the limit, so "too large" is exercised too.
        const std::size_t size = size_choice % (producer_->max_message_size() + 16);
        Bytes message = make_message(sequence_, size);
        const IoResult r = producer_->try_send(message);
        if (!r.ok()) {
            check(r.status == Status::would_block || r.status == Status::closed,
                  "try_send: unexpected status");
            return;
        }
        check(r.bytes == size, "try_send sent another size");
        sent(std::move(message));
    }

    void loan_commit(std::uint64_t size_choice, std::uint64_t commit_choice) {
        if (!producer_) return;
        const std::size_t size = size_choice % (producer_->max_message_size() + 16);
        const Loan loan = producer_->loan(size, Deadline::immediate());
        if (!loan.ok()) {
            check(loan.status == Status::would_block || loan.status == Status::closed,
                  "loan: unexpected status");
            return;
        }
        check(loan.buffer.size() == size, "a loan of another size");
        const std::byte* data_area = region_.bytes + layout::kHeaderSize;
        check(loan.buffer.data() >= data_area && loan.buffer.data() + size <= data_area + capacity_,
              "a loan outside the data area");
        const Bytes message = make_message(sequence_, size);
        std::copy(message.begin(), message.end(), loan.buffer.begin());
        const std::size_t committed = commit_choice % (size + 2);  // sometimes more than loaned
        producer_->commit(committed);
        sent(Bytes(message.begin(), message.begin() + static_cast<std::ptrdiff_t>(committed)));
    }

    void sent(Bytes message) {
        ++sequence_;
        if (!tampered_) sent_.push_back(std::move(message));
    }

    void drain() {
        if (!consumer_) return;
        for (std::size_t i = 0; i <= capacity_ / layout::kRecordAlignment + 1; ++i) {
            try {
                Bytes message;
                const IoResult r = consumer_->try_recv(message);
                if (!r.ok()) return nothing_received(r.status);
                received(message);
            } catch (const Error& e) {
                if (!tampered_) check(caller_error(e), "an intact ring reported corruption while draining");
                return;
            }
        }
        check(false, "more messages than an intact ring of this capacity can hold");
    }

    // Errors the caller causes, which an intact ring may report.
    static bool caller_error(const Error& e) {
        return is(e, std::errc::message_size) || is(e, std::errc::invalid_argument) ||
               is(e, std::errc::device_or_resource_busy) || is(e, std::errc::bad_file_descriptor);
    }

    Input& in_;
    Region region_;
    std::size_t capacity_;
    std::optional<RingConsumer> consumer_;
    std::optional<RingProducer> producer_;
    std::deque<Bytes> sent_;
    std::uint32_t sequence_ = 0;
    bool tampered_ = false;
};

}  // namespace ring_input
}  // namespace

int fuzz_ring(const std::uint8_t* data, std::size_t size) {
    using namespace ring_input;
    if (size == 0) return 0;
    Input in(data, size);
    const auto geometry = in.take(1);
    static constexpr std::size_t kExtra[] = {0, 8, 128, 1000};
    Session session(in, std::size_t{64} << (geometry & 7), kExtra[(geometry >> 3) & 3],
                    ((geometry >> 5) & 1) != 0);
    session.run();
    return 0;
}

}  // namespace ipckit::fuzz
