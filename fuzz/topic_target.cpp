// Fuzz target: the shared-memory topic (include/ipckit/topic.hpp) over memory a hostile or buggy
// process can write at any moment (the header, the publisher line, the subscriber slots, the
// records). Whatever the bytes, attach, send, loan, recv and read must give a Status or an Error,
// never read or write outside the region, never return a record outside the data area.
//
// Input: byte 0 picks the capacity (64 << (b & 7)), the slots (1 + (b >> 3 & 3)), overflow=drop
// (b >> 5 & 1) and history ((b >> 6) * 4). The region is formatted, then each operation is one
// byte (its low nibble) and its arguments:
//   0 patch OFF16 LEN8 BYTES    write bytes anywhere in the region
//   1 field SEL8 VALUE64        write a value into a header or slot field
//   2 attach a subscriber       3 attach the publisher
//   4 try_recv SUB8             5 read/release SUB8 (block only; throws under drop)
//   6 try_send SIZE16           7 loan SIZE16, fill, commit SIZE16
//   8 close subscriber SUB8     9 close the publisher
//   10 image                    the rest of the input becomes the region from its first byte
// Then every subscriber drains.
//
// While nothing has written the region behind the topic's back, the target also checks that the
// topic works: every message a subscriber receives is the one published with its sequence
// number, whole; sequence numbers only grow; under block nothing is missed.
#include <algorithm>
#include <cstring>
#include <new>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include "fuzz_program.hpp"
#include "fuzz_targets.hpp"
#include "ipckit/deadline.hpp"
#include "ipckit/error.hpp"
#include "ipckit/topic.hpp"
#include "rings/topic_layout.hpp"

namespace ipckit::fuzz {
namespace {
// Named: tests/faults/fuzz_regression_test.cpp includes every target into one translation unit.
namespace topic_input {

using Bytes = std::vector<std::byte>;
namespace layout = detail::topic;

void check(bool ok, const char* what) {
    if (!ok) fuzz_fail("topic", what);
}

using Input = ProgramInput;
using Region = HeapRegion;  // fuzz_program.hpp: its exact size on the heap

constexpr std::size_t kMaxSubscribers = 4;

class Session {
public:
    Session(Input& in, std::size_t capacity, std::uint32_t slots, bool drop, std::uint32_t history)
        : in_(in),
          region_(Topic::region_size(capacity, slots)),
          capacity_(capacity),
          data_offset_(layout::header_size(slots)),
          drop_(drop) {
        (void)Topic::format(region_.span(),
                            {capacity, slots, history, drop ? Overflow::drop : Overflow::block});
    }

    void run() {
        while (!in_.empty()) {
            const auto op = static_cast<unsigned>(in_.take(1) & 0xf);
            try {
                step(op);
            } catch (const Error& e) {
                if (!tampered_) check(caller_error(e), "an intact topic reported corruption");
            }
        }
        for (std::size_t i = 0; i < kMaxSubscribers; ++i)
            drain(i);
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
                attach_subscriber();
                break;
            case 3:
                if (!publisher_) publisher_.emplace(TopicPublisher::attach(region_.span()));
                break;
            case 4:
                recv(in_.take(1) % kMaxSubscribers);
                break;
            case 5:
                read_release(in_.take(1) % kMaxSubscribers);
                break;
            case 6:
                send(in_.take(2));
                break;
            case 7:
                loan_commit(in_.take(2), in_.take(2));
                break;
            case 8:
                subscribers_[in_.take(1) % kMaxSubscribers].reset();
                break;
            case 9:
                publisher_.reset();
                break;
            case 10:
                patch(0, in_.take_span(region_.size));
                break;
            default:
                break;
        }
    }

    void patch(std::uint64_t offset, std::span<const std::uint8_t> bytes) {
        offset %= region_.size;
        const std::size_t n = std::min<std::size_t>(bytes.size(), region_.size - offset);
        if (n != 0) std::memcpy(region_.bytes + offset, bytes.data(), n);
        tampered_ = true;
    }

    void field(std::uint64_t selector, std::uint64_t value) {
        // magic, version, kind, header_size, capacity, slots, history, overflow, publisher owner,
        // publisher version, committed, next sequence, oldest, joiners, slot 0 owner, slot 0 cursor.
        static constexpr std::size_t kOffsets[] = {0,   8,   12,  16,  32,  40,  48,   56,
                                                   128, 256, 264, 272, 384, 392, 1280, 1408};
        static constexpr std::size_t kWidths[] = {8, 4, 4, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8};
        const std::size_t i = selector % std::size(kOffsets);
        std::uint8_t raw[8];
        for (std::size_t b = 0; b < 8; ++b)
            raw[b] = static_cast<std::uint8_t>(value >> (8 * b));
        patch(kOffsets[i], std::span<const std::uint8_t>(raw, kWidths[i]));
    }

    void attach_subscriber() {
        for (auto& s : subscribers_) {
            if (!s) {
                s.emplace(TopicSubscriber::attach(region_.span()));
                last_[&s - subscribers_] = ~std::uint64_t{0};
                return;
            }
        }
    }

    void received(std::size_t i, std::span<const std::byte> message) {
        TopicSubscriber& s = *subscribers_[i];
        check(message.size() <= s.max_message_size(), "a message over the topic's limit");
        if (tampered_) return;
        const std::uint64_t seq = s.sequence();
        check(seq < sent_.size(), "a sequence number nobody published");
        check(std::equal(message.begin(), message.end(), sent_[seq].begin(), sent_[seq].end()),
              "a message that differs from the one published with its sequence number");
        check(last_[i] == ~std::uint64_t{0} || seq > last_[i], "a sequence number that goes back");
        if (!drop_) check(s.missed() == 0, "missed messages under overflow=block");
        last_[i] = seq;
    }

    void recv(std::size_t i) {
        if (!subscribers_[i]) return;
        Bytes message(3, std::byte{0x5a});
        const IoResult r = subscribers_[i]->try_recv(message);
        if (!r.ok()) {
            check(r.status != Status::timed_out, "timed_out from a try_ call");
            return;
        }
        check(r.bytes == message.size(), "try_recv reports a size it did not give");
        received(i, message);
    }

    void read_release(std::size_t i) {
        if (!subscribers_[i]) return;
        const RecordView view = subscribers_[i]->read(Deadline::immediate());
        if (!view.ok()) return;
        const std::byte* data_area = region_.bytes + data_offset_;
        check(view.message.data() >= data_area &&
                  view.message.data() + view.message.size() <= data_area + capacity_,
              "read gave a record outside the data area");
        const Bytes copy(view.message.begin(), view.message.end());
        subscribers_[i]->release();
        received(i, copy);
    }

    void send(std::uint64_t size_choice) {
        if (!publisher_) return;
        const std::size_t size = size_choice % (publisher_->max_message_size() + 16);
        Bytes message = make_message(publisher_->sequence(), size);
        const std::uint64_t seq = publisher_->sequence();
        const IoResult r = publisher_->try_send(message);
        if (!r.ok()) {
            check(r.status == Status::would_block, "try_send: unexpected status");
            return;
        }
        published(seq, std::move(message));
    }

    void loan_commit(std::uint64_t size_choice, std::uint64_t commit_choice) {
        if (!publisher_) return;
        const std::size_t size = size_choice % (publisher_->max_message_size() + 16);
        const Loan loan = publisher_->loan(size, Deadline::immediate());
        if (!loan.ok()) {
            check(loan.status == Status::would_block, "loan: unexpected status");
            return;
        }
        const std::byte* data_area = region_.bytes + data_offset_;
        check(loan.buffer.data() >= data_area && loan.buffer.data() + size <= data_area + capacity_,
              "a loan outside the data area");
        const std::uint64_t seq = publisher_->sequence();
        const Bytes message = make_message(seq, size);
        std::copy(message.begin(), message.end(), loan.buffer.begin());
        const std::size_t committed = commit_choice % (size + 2);  // sometimes more than loaned
        publisher_->commit(committed);
        published(seq, Bytes(message.begin(), message.begin() + static_cast<std::ptrdiff_t>(committed)));
    }

    void published(std::uint64_t seq, Bytes message) {
        if (tampered_) return;
        if (sent_.size() <= seq) sent_.resize(seq + 1);
        sent_[seq] = std::move(message);
    }

    void drain(std::size_t i) {
        if (!subscribers_[i]) return;
        for (std::size_t n = 0; n <= capacity_ / 16 + 1; ++n) {
            try {
                Bytes message;
                const IoResult r = subscribers_[i]->try_recv(message);
                if (!r.ok()) return;
                received(i, message);
            } catch (const Error& e) {
                if (!tampered_) check(caller_error(e), "an intact topic reported corruption while draining");
                return;
            }
        }
        check(tampered_, "more messages than an intact topic of this capacity can hold");
    }

    static bool caller_error(const Error& e) {
        return is(e, std::errc::message_size) || is(e, std::errc::invalid_argument) ||
               is(e, std::errc::device_or_resource_busy) || is(e, std::errc::bad_file_descriptor) ||
               is(e, std::errc::operation_not_supported);
    }

    Input& in_;
    Region region_;
    std::size_t capacity_;
    std::size_t data_offset_;
    bool drop_;
    bool tampered_ = false;
    std::optional<TopicPublisher> publisher_;
    std::optional<TopicSubscriber> subscribers_[kMaxSubscribers];
    std::uint64_t last_[kMaxSubscribers] = {};
    std::vector<Bytes> sent_;  // by sequence number
};

}  // namespace topic_input
}  // namespace

int fuzz_topic(const std::uint8_t* data, std::size_t size) {
    topic_input::Input in(data, size);
    const auto shape = in.take(1);
    const std::size_t capacity = std::size_t{64} << (shape & 7);
    const auto slots = static_cast<std::uint32_t>(1 + ((shape >> 3) & 3));
    const bool drop = ((shape >> 5) & 1) != 0;
    const auto history = static_cast<std::uint32_t>((shape >> 6) * 4);
    try {
        topic_input::Session session(in, capacity, slots, drop, history);
        session.run();
    } catch (const Error&) {
        // A hostile region that even the destructors' paths reject: an answer, not a bug.
    }
    return 0;
}

}  // namespace ipckit::fuzz
