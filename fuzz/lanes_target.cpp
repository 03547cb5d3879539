// Fuzz target: the many-to-one lanes region (include/ipckit/lanes.hpp, layout kind 2) over memory
// a hostile or buggy process can write at any moment (the lanes header, the receiver line, each
// lane's ring header, cursors and records). Whatever the bytes, attach, send, loan, recv and read
// must give a Status or an Error, never read or write outside the region, never return a record
// or a loan outside a lane's data area.
//
// Input: byte 0 picks the lanes (1 + (b & 3)), the capacity per lane (64 << (b >> 2 & 7),
// 64 B to 8 KiB) and stats=latency on every lane (b >> 5 & 1). The region is formatted, then each operation
// is one byte (its low nibble) and its arguments (SND8: a sender slot, 0-3):
//   0 patch OFF16 LEN8 BYTES    write bytes anywhere in the region
//   1 field SEL8 VALUE64        write a value into a header field (SEL & 31) or, for lane
//                               (SEL >> 5) % lanes, an endpoint, cursor or wait-line field
//   2 attach the receiver (a second one, while one is attached)
//   3 attach a sender into the first free slot (a fifth, while four are attached)
//   4 try_send SND8 SIZE16      5 loan SND8 SIZE16, fill, commit SIZE16
//   6 try_recv into a vector    7 try_recv into a buffer of SIZE16 bytes
//   8 read HOW8                 HOW % 3: 0 read, touch every byte, release; 1 read and keep it
//                               (the next read or recv gives it again); 2 release alone
//   9 close SND8 (bit 7: close() and keep the object, else destroy it)
//   10 close the receiver HOW8 (bit 7: close() and keep the object, else destroy it)
//   11 image                    the rest of the input becomes the region from its first byte
//   12 record LANE8 OFF16 SIZE32 TAG8  a commit word in a lane's data area (as the ring target)
//   13 has_data, arm, disarm on the receiver
//   14 consumer_present and drain(immediate) on SND8
// Then the receiver (attached now if there is none) drains.
//
// While nothing has written the region behind the lanes' back, the target also checks that the
// lanes work: every message received is the next one its sender sent, whole (each carries its
// sender's id and a per-sender sequence number, which only grow, none skipped); the receiver takes
// from the lanes in turn, starting after the lane it last took from; a sender claims the first lane
// no live sender holds; recv is `closed` only when no live sender is left and one came (was there
// when the receiver attached, or came since), and
// `would_block` only with every lane empty; the only errors are the caller's own (more senders
// than lanes or a second receiver: device_or_resource_busy; a message too large or a buffer too
// small: message_size; commit beyond the loan: invalid_argument; a closed end: bad_file_descriptor).
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
#include "ipckit/lanes.hpp"
#include "rings/ring_layout.hpp"

namespace ipckit::fuzz {
namespace {
// Named: tests/faults/fuzz_regression_test.cpp includes every target into one translation unit.
namespace lanes_input {

using Bytes = std::vector<std::byte>;
namespace layout = detail::ring;

void check(bool ok, const char* what) {
    if (!ok) fuzz_fail("lanes", what);
}

using Input = ProgramInput;
using Region = HeapRegion;  // fuzz_program.hpp: its exact size on the heap

// The first bytes of every message say who sent it and which of its messages it is (as far as
// the size allows); the rest differ per message, so a stale or shifted record shows.
constexpr std::size_t kTagSize = 5;

Bytes make_message(std::uint8_t sender, std::uint32_t seq, std::size_t size) {
    Bytes m(size);
    std::uint8_t tag[kTagSize] = {sender, static_cast<std::uint8_t>(seq), static_cast<std::uint8_t>(seq >> 8),
                                  static_cast<std::uint8_t>(seq >> 16), static_cast<std::uint8_t>(seq >> 24)};
    for (std::size_t i = 0; i < size; ++i)
        m[i] = static_cast<std::byte>(i < kTagSize ? tag[i] : sender * 131 + seq * 31 + i);
    return m;
}

constexpr std::size_t kMaxSenders = 4;

struct Sent {
    std::uint8_t sender;
    std::uint32_t seq;
    Bytes message;
};

struct SenderSlot {
    std::optional<LanesSender> sender;
    bool live = false;  // attached and not closed: its lane is held
    std::uint8_t id = 0;
    std::uint32_t seq = 0;  // of its next message
};

class Session {
public:
    Session(Input& in, std::uint32_t lanes, std::size_t capacity, bool latency)
        : in_(in),
          region_(Lanes::region_size(lanes, capacity)),
          lanes_(lanes),
          capacity_(capacity),
          stride_(layout::kHeaderSize + capacity),
          queued_(lanes) {
        (void)Lanes::format(region_.span(), {.lanes = lanes, .capacity = capacity, .latency = latency});
    }

    void run() {
        while (!in_.empty()) {
            const auto op = static_cast<unsigned>(in_.take(1) & 0xf);
            try {
                step(op);
            } catch (const Error& e) {
                if (!tampered_) check(caller_error(e), "intact lanes reported corruption");
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
                attach_receiver();
                break;
            case 3:
                attach_sender();
                break;
            case 4:
                send(in_.take(1) % kMaxSenders, in_.take(2));
                break;
            case 5:
                loan_commit(in_.take(1) % kMaxSenders, in_.take(2), in_.take(2));
                break;
            case 6:
                recv_vector();
                break;
            case 7:
                recv_fixed(in_.take(2) % 8192);
                break;
            case 8:
                read(in_.take(1));
                break;
            case 9:
                close_sender(in_.take(1));
                break;
            case 10:
                close_receiver(in_.take(1));
                break;
            case 11:
                patch(0, in_.take_span(region_.size));
                break;
            case 12:
                record(in_.take(1), in_.take(2), in_.take(4), in_.take(1));
                break;
            case 13:
                arm_disarm();
                break;
            case 14:
                sender_queries(in_.take(1) % kMaxSenders);
                break;
            default:
                break;
        }
    }

    // A patch makes the lanes' contents unknowable: from then on only memory safety is checked.
    void patch(std::uint64_t offset, std::span<const std::uint8_t> bytes) {
        offset %= region_.size;
        const std::size_t n = std::min<std::size_t>(bytes.size(), region_.size - offset);
        if (n != 0) std::memcpy(region_.bytes + offset, bytes.data(), n);
        tampered_ = true;
    }

    void field(std::uint64_t selector, std::uint64_t value) {
        // Layout version 2, kind 2 (src/rings/ring_layout.hpp). The lanes header:
        // magic, version, kind, header_size, capacity, lane count, stride, receiver owner and start
        // time. Then in lane (selector >> 5): its magic, capacity and header_size, the producer's
        // owner, start time and may_sleep, the consumer's owner and start time, the producer and
        // consumer cursors, the wait line (sleepers, futex words, space_wanted), the doorbell.
        struct Field {
            bool in_lane;
            std::size_t offset;
            std::size_t width;
        };
        static constexpr Field kFields[] = {
            {false, 0, 8},  {false, 8, 4},   {false, 12, 4},  {false, 16, 4}, {false, 32, 8}, {false, 40, 8},
            {false, 48, 8}, {false, 128, 8}, {false, 136, 8}, {true, 0, 8},   {true, 32, 8},  {true, 16, 4},
            {true, 128, 8}, {true, 136, 8},  {true, 144, 4},  {true, 256, 8}, {true, 264, 8}, {true, 384, 8},
            {true, 512, 8}, {true, 640, 4},  {true, 644, 4},  {true, 648, 4}, {true, 652, 4}, {true, 656, 8},
            {true, 768, 4}, {true, 772, 4},
        };
        const Field& f = kFields[(selector & 31) % std::size(kFields)];
        const std::size_t lane = (selector >> 5) % lanes_;
        const std::size_t base = f.in_lane ? layout::kLanesHeaderSize + lane * stride_ : 0;
        std::uint8_t raw[8];
        for (std::size_t b = 0; b < 8; ++b)
            raw[b] = static_cast<std::uint8_t>(value >> (8 * b));
        patch(base + f.offset, std::span<const std::uint8_t>(raw, f.width));
    }

    void record(std::uint64_t lane_choice, std::uint64_t slot, std::uint64_t length,
                std::uint64_t tag_choice) {
        const std::uint64_t offset = (slot * layout::kRecordAlignment) % capacity_;
        const std::uint64_t position = ((tag_choice >> 2) & 3) * capacity_ + offset;
        const std::uint32_t stamp = tag_choice % 3 == 0 ? layout::data_stamp(position)
                                    : tag_choice % 3 == 1
                                        ? layout::padding_stamp(position)
                                        : static_cast<std::uint32_t>(tag_choice * 0x01010101u);
        const std::uint64_t word = layout::commit_word(static_cast<std::uint32_t>(length), stamp);
        std::uint8_t raw[sizeof word];
        std::memcpy(raw, &word, sizeof word);
        const std::size_t lane = lane_choice % lanes_;
        patch(layout::kLanesHeaderSize + lane * stride_ + layout::kHeaderSize + offset, raw);
    }

    // ---- the model of intact lanes ----

    [[nodiscard]] bool any_queued() const {
        return std::any_of(queued_.begin(), queued_.end(), [](const auto& q) { return !q.empty(); });
    }
    [[nodiscard]] bool any_live() const {
        return std::any_of(std::begin(senders_), std::end(senders_), [](const auto& s) { return s.live; });
    }
    // The receiver says `closed` once every sender that came (was there when the receiver
    // attached, or came since) has left and every lane is drained.
    [[nodiscard]] bool all_left() const { return ever_sent_from_ && !any_live(); }
    // The lane whose turn it is: the first, from the one after the last taken, with a message.
    // A record read and not released is the next one again, whatever the turn.
    [[nodiscard]] std::size_t turn() const {
        if (held_lane_) return *held_lane_;
        for (std::size_t k = 0; k < lanes_; ++k) {
            const std::size_t i = (next_ + k) % lanes_;
            if (!queued_[i].empty()) return i;
        }
        return lanes_;
    }
    [[nodiscard]] bool lane_held(std::size_t lane) const {
        return std::any_of(std::begin(senders_), std::end(senders_),
                           [&](const auto& s) { return s.live && s.sender->lane() == lane; });
    }

    // ---- attach and close ----

    void attach_receiver() {
        if (receiver_open_) {
            // A second receiver while one is attached, in the same (live) process: refused.
            const LanesReceiver second = LanesReceiver::attach(region_.span());
            check(tampered_, "a second receiver attached beside a live one");
            return;
        }
        receiver_.emplace(LanesReceiver::attach(region_.span()));
        receiver_open_ = true;
        // A sender that left before this receiver came counts as never having come (the
        // receiver drains what it left and waits for the next one): only live ones count.
        ever_sent_from_ = any_live();
        next_ = 0;
        held_lane_.reset();
        if (tampered_) return;
        check(receiver_->lanes() == lanes_ && receiver_->capacity() == capacity_,
              "the receiver sees another geometry than the one formatted");
        check(!receiver_->took_over(), "a takeover when nobody died");
        std::size_t pending = 0;
        for (const auto& q : queued_)
            pending += q.size();
        check(receiver_->pending_at_attach() == pending, "pending_at_attach differs from what is queued");
    }

    void attach_sender() {
        std::size_t expected = lanes_;
        for (std::size_t i = 0; i < lanes_ && expected == lanes_; ++i)
            if (!lane_held(i)) expected = i;
        SenderSlot* slot = nullptr;
        for (auto& s : senders_)
            if (!s.sender && slot == nullptr) slot = &s;
        try {
            LanesSender sender = LanesSender::attach(region_.span());
            if (!tampered_) {
                check(expected != lanes_, "a sender attached with every lane held by a live sender");
                check(sender.lane() == expected, "a sender did not claim the first free lane");
                check(sender.lanes() == lanes_ && sender.capacity() == capacity_,
                      "a sender sees another geometry than the one formatted");
            }
            ever_sent_from_ = true;
            // No slot free (a fifth sender, or one with a closed sender kept): it leaves at once.
            if (slot == nullptr) return;
            slot->sender.emplace(std::move(sender));
            slot->live = true;
            slot->id = next_id_++;
            slot->seq = 0;
        } catch (const Error& e) {
            if (!tampered_ && is(e, std::errc::device_or_resource_busy))
                check(expected == lanes_, "a sender refused with a lane free");
            throw;
        }
    }

    void close_receiver(std::uint64_t how) {
        if (!receiver_) return;
        if ((how & 0x80) != 0) {
            receiver_->close();  // kept: recv, read, release and arm are then bad_file_descriptor
        } else {
            receiver_.reset();
        }
        receiver_open_ = false;
        held_lane_.reset();  // a record read and not released stays queued for the next receiver
    }

    void close_sender(std::uint64_t choice) {
        SenderSlot& s = senders_[choice % kMaxSenders];
        if (!s.sender) return;
        if ((choice & 0x80) != 0) {
            s.sender->close();  // kept: every later call on it is the caller's bad_file_descriptor
        } else {
            s.sender.reset();
        }
        s.live = false;
    }

    // ---- senders ----

    void send(std::size_t i, std::uint64_t size_choice) {
        SenderSlot& s = senders_[i];
        if (!s.sender) return;
        // Up to a little past the limit, so "too large" is exercised too.
        const std::size_t size = size_choice % (s.sender->max_message_size() + 16);
        Bytes message = make_message(s.id, s.seq, size);
        const IoResult r = s.sender->try_send(message);
        if (!r.ok()) return not_sent(s, r.status);
        check(r.bytes == size, "try_send sent another size");
        sent(s, std::move(message));
    }

    void loan_commit(std::size_t i, std::uint64_t size_choice, std::uint64_t commit_choice) {
        SenderSlot& s = senders_[i];
        if (!s.sender) return;
        LanesSender& sender = *s.sender;
        const std::size_t size = size_choice % (sender.max_message_size() + 16);
        const Loan loan = sender.loan(size, Deadline::immediate());
        if (!loan.ok()) return not_sent(s, loan.status);
        check(loan.buffer.size() == size, "a loan of another size");
        const std::byte* data_area = region_.bytes + layout::kLanesHeaderSize +
                                     sender.lane() * (layout::kHeaderSize + sender.capacity()) +
                                     layout::kHeaderSize;
        check(loan.buffer.data() >= data_area && loan.buffer.data() + size <= data_area + sender.capacity(),
              "a loan outside its lane's data area");
        const Bytes message = make_message(s.id, s.seq, size);
        std::copy(message.begin(), message.end(), loan.buffer.begin());
        const std::size_t committed = commit_choice % (size + 2);  // sometimes more than loaned
        sender.commit(committed);
        sent(s, Bytes(message.begin(), message.begin() + static_cast<std::ptrdiff_t>(committed)));
    }

    void not_sent(const SenderSlot& s, Status status) {
        check(status == Status::would_block || status == Status::closed,
              "try_send or loan: unexpected status");
        if (tampered_) return;
        if (status == Status::would_block)
            check(!queued_[s.sender->lane()].empty(), "would_block on an empty lane");
        else
            check(!receiver_open_, "closed while the receiver is attached");
    }

    void sent(SenderSlot& s, Bytes message) {
        if (!tampered_) queued_[s.sender->lane()].push_back({s.id, s.seq, std::move(message)});
        ++s.seq;
    }

    void sender_queries(std::size_t i) {
        SenderSlot& s = senders_[i];
        if (!s.sender) return;
        const bool present = s.sender->consumer_present();
        if (!tampered_) check(present == (s.live && receiver_open_), "consumer_present is wrong");
        const Status drained = s.sender->drain(Deadline::immediate());
        if (!tampered_) {
            check((drained == Status::ok) == queued_[s.sender->lane()].empty(),
                  "drain(immediate) is ok with messages in the lane, or not ok with none");
        }
    }

    // ---- the receiver ----

    void received(std::span<const std::byte> message) {
        if (!tampered_) taken(expect(message));
    }

    // Checks `message` is the one due; returns its lane.
    std::size_t expect(std::span<const std::byte> message) {
        check(message.size() <= receiver_->max_message_size(), "a message over the lanes' limit");
        if (tampered_) return lanes_;
        const std::size_t lane = turn();
        check(lane != lanes_, "a message nobody sent");
        // The next one that lane's sender sent, whole: so its sequence numbers only grow, none
        // skipped, and a lane handed to a new sender delivers the old one's messages first.
        if (!same(message, queued_[lane].front().message)) wrong_message(message, queued_[lane].front());
        return lane;
    }

    // The receiver consumed the message due in `lane`: the turn passes to the next lane.
    void taken(std::size_t lane) {
        queued_[lane].pop_front();
        next_ = (lane + 1) % lanes_;
        held_lane_.reset();
    }

    static bool same(std::span<const std::byte> a, const Bytes& b) {
        return std::equal(a.begin(), a.end(), b.begin(), b.end());
    }

    // Says what went wrong, from the sender id and sequence number the message carries.
    [[noreturn]] void wrong_message(std::span<const std::byte> message, const Sent& expected) const {
        for (const auto& q : queued_) {
            if (!q.empty() && same(message, q.front().message))
                fuzz_fail("lanes", "a message from a lane whose turn it was not");
        }
        if (message.size() >= kTagSize && std::to_integer<std::uint8_t>(message[0]) == expected.sender) {
            std::uint32_t seq = 0;
            for (std::size_t b = 0; b < 4; ++b)
                seq |= std::uint32_t{std::to_integer<std::uint8_t>(message[1 + b])} << (8 * b);
            if (seq > expected.seq) fuzz_fail("lanes", "a sender's message skipped");
            if (seq < expected.seq)
                fuzz_fail("lanes", "a sender's sequence number went back (a message twice)");
        }
        fuzz_fail("lanes", "a message that is not the next one its sender sent");
    }

    void nothing_received(Status status) {
        check(status != Status::ok, "ok without a message");
        check(status != Status::timed_out, "timed_out from a try_ call");
        if (tampered_) return;
        check(!any_queued(), "no message with messages queued");
        if (status == Status::closed) check(all_left(), "closed with a live sender, or before any came");
        if (status == Status::would_block) check(!all_left(), "would_block when every sender has left");
    }

    void recv_vector() {
        if (!receiver_) return;
        Bytes message(3, std::byte{0x5a});  // stale contents must be replaced, not appended to
        const IoResult r = receiver_->try_recv(message);
        if (!r.ok()) return nothing_received(r.status);
        check(r.bytes == message.size(), "try_recv reports a size it did not give");
        received(message);
    }

    void recv_fixed(std::size_t size) {
        if (!receiver_) return;
        Bytes buffer(size);
        try {
            const IoResult r = receiver_->try_recv(std::span<std::byte>(buffer));
            if (!r.ok()) return nothing_received(r.status);
            check(r.bytes <= buffer.size(), "try_recv wrote past the buffer it was given");
            received(std::span<const std::byte>(buffer).first(r.bytes));
        } catch (const Error& e) {
            if (!tampered_ && is(e, std::errc::message_size)) {
                const std::size_t lane = turn();
                check(lane != lanes_ && queued_[lane].front().message.size() > size,
                      "buffer too small for a message that fits");
            }
            throw;
        }
    }

    void read(std::uint64_t how) {
        if (!receiver_) return;
        LanesReceiver& rx = *receiver_;
        if (how % 3 == 2) {
            rx.release();  // without a read: invalid_argument, the caller's own
            if (tampered_) return;
            check(held_lane_.has_value(), "release without a read succeeded");
            taken(*held_lane_);
            return;
        }
        const RecordView view = rx.read(Deadline::immediate());
        if (!view.ok()) return nothing_received(view.status);
        // The record (its commit word, then the view) inside the data area of one of the lanes the
        // receiver attached to, by its own geometry: a patched header may have given it another
        // than the one formatted. (An empty view of a record that ends the area points at its end.)
        const std::byte* first_lane = region_.bytes + layout::kLanesHeaderSize;
        const std::size_t stride = layout::kHeaderSize + rx.capacity();
        const std::byte* record = view.message.data() - layout::kCommitWordSize;
        check(record >= first_lane, "read gave a record before the first lane");
        const auto offset = static_cast<std::size_t>(record - first_lane);
        const std::size_t within = offset % stride;
        check(offset / stride < rx.lanes() && within >= layout::kHeaderSize &&
                  within + layout::kCommitWordSize + view.message.size() <= stride,
              "read gave a record outside a lane's data area");
        unsigned sum = 0;  // every byte of the view is read: a view past the region is an ASan report
        for (const std::byte b : view.message)
            sum += std::to_integer<unsigned>(b);
        (void)sum;
        const std::size_t lane = expect(view.message);
        if (!tampered_)
            check(offset / stride == lane, "read gave a record of another lane than its sender's");
        if (how % 3 == 1) {
            if (!tampered_) held_lane_ = lane;
            return;
        }
        rx.release();
        if (!tampered_) taken(lane);
    }

    void arm_disarm() {
        if (!receiver_) return;
        const bool has_data = receiver_->has_data();
        if (!tampered_) check(has_data == (receiver_open_ && any_queued()), "has_data is wrong");
        std::vector<int> fds;
        const bool armed = receiver_->arm(fds);
        receiver_->disarm();
        if (tampered_) return;
        check(armed == (!any_queued() && !all_left()),
              "arm says sleep when it should not, or not when it should");
        // A false arm may stop early (do not sleep); a true one gave every lane's doorbell.
        if (armed) check(fds.size() >= lanes_, "arm gave fewer descriptors than lanes");
    }

    void drain() {
        if (!receiver_open_) {
            try {
                attach_receiver();
            } catch (const Error& e) {
                if (!tampered_) check(caller_error(e), "intact lanes refused the receiver before draining");
                return;
            }
        }
        const std::size_t most = lanes_ * (capacity_ / layout::kRecordAlignment + 1) + 1;
        for (std::size_t n = 0; n <= most; ++n) {
            try {
                Bytes message;
                const IoResult r = receiver_->try_recv(message);
                if (!r.ok()) return nothing_received(r.status);
                received(message);
            } catch (const Error& e) {
                if (!tampered_) check(caller_error(e), "intact lanes reported corruption while draining");
                return;
            }
        }
        check(tampered_, "more messages than intact lanes of this capacity can hold");
    }

    // Errors the caller causes, which intact lanes may report.
    static bool caller_error(const Error& e) {
        return is(e, std::errc::message_size) || is(e, std::errc::invalid_argument) ||
               is(e, std::errc::device_or_resource_busy) || is(e, std::errc::bad_file_descriptor);
    }

    Input& in_;
    Region region_;
    std::uint32_t lanes_;
    std::size_t capacity_;
    std::size_t stride_;
    bool tampered_ = false;
    SenderSlot senders_[kMaxSenders];
    std::optional<LanesReceiver> receiver_;
    bool receiver_open_ = false;  // attached and not closed (a closed one may be kept)
    // The model: what each lane holds, whose turn it is, who came, what each sender sent last.
    std::vector<std::deque<Sent>> queued_;
    std::size_t next_ = 0;
    std::optional<std::size_t> held_lane_;  // a record read and not yet released, in this lane
    bool ever_sent_from_ = false;           // a sender the receiver counts came: live at its attach, or since
    std::uint8_t next_id_ = 0;              // only tags messages: it may wrap
};

}  // namespace lanes_input
}  // namespace

int fuzz_lanes(const std::uint8_t* data, std::size_t size) {
    using namespace lanes_input;
    if (size == 0) return 0;
    Input in(data, size);
    const auto shape = in.take(1);
    const auto lanes = static_cast<std::uint32_t>(1 + (shape & 3));
    const std::size_t capacity = std::size_t{64} << ((shape >> 2) & 7);
    try {
        Session session(in, lanes, capacity, ((shape >> 5) & 1) != 0);
        session.run();
    } catch (const Error&) {
        // A hostile region that even the destructors' paths reject: an answer, not a bug.
    }
    return 0;
}

}  // namespace ipckit::fuzz
