// Topic transport (topic:/NAME, topic:@NAME): one publisher (a Sender), up to `subscribers`
// Receivers, each receiving every message, over the shared-memory topic (ipckit/topic.hpp) in
// POSIX shared memory, or for topic:@NAME in a sealed memfd served on an abstract socket
// (rings/region_memory.hpp, as shm:@NAME). Who creates: whichever side comes first, publisher or subscriber,
// by the usual create/open roles (the tool's automatic mode: a receiver creates unless the object exists, a
// sender opens and otherwise creates). The creator sizes and formats the region with its address's options
// (capacity, subscribers, overflow, history) and removes the name when it goes away, unless keep=1; openers
// take the region as it is. A subscriber that arrives before any publisher waits for one; a publisher with no
// subscribers publishes into the history only.
#include "channel_backend.hpp"
#include "core/backoff.hpp"
#include "ipckit/error.hpp"
#include "ipckit/topic.hpp"
#include "rings/region_memory.hpp"
#include "rings/topic_layout.hpp"

namespace ipckit::detail {
namespace {

// As the ring's default: 1 MiB messages without asking.
constexpr std::size_t kDefaultTopicCapacity = 4u << 20;
// How long a publisher that opened a topic nobody has subscribed to yet waits for its creator's
// slot claim (see wait_for_a_subscriber). Only a topic created and never subscribed to costs it.
constexpr auto kCreatorClaimGrace = std::chrono::seconds(5);

class TopicRegion {
public:
    TopicRegion(const Address& address, Role role, Deadline deadline)
        : memory_(role == Role::create ? create(address)
                                       : RegionMemory::open(region_place(address), deadline)),
          created_(role == Role::create) {}
    [[nodiscard]] std::span<std::byte> bytes() const { return memory_.bytes(); }
    [[nodiscard]] bool created() const { return created_; }

    // A receiver that created the topic claims its slot a moment after the format made the
    // region visible: a publisher that opened it in that moment would publish to nobody. So an
    // opening publisher waits until some slot has been claimed, up to kCreatorClaimGrace: 1 s
    // (the format grace) was too short on a loaded machine under ASan, where a recording bridge
    // that created the topic claimed its slot after the sender had come and gone, and waited
    // for the next sender to its deadline.
    void wait_for_a_subscriber() const {
        auto* header = reinterpret_cast<topic::TopicHeader*>(bytes().data());
        const auto slots = static_cast<std::uint32_t>(header->control.kind_words[topic::kSlotsWord]);
        const auto grace = Deadline::after(kCreatorClaimGrace);
        for (auto backoff = Backoff::for_peer(); backoff.pause(grace);) {
            for (std::uint32_t i = 0; i < slots; ++i) {
                const auto owner = ring::OwnerWord::unpack(topic::slots(header)[i].end.owner.load());
                if (owner.state != ring::EndpointState::vacant) return;
            }
        }
    }

private:
    static RegionMemory create(const Address& address) {
        const std::size_t capacity = address.capacity.value_or(kDefaultTopicCapacity);
        return RegionMemory::create(
            region_place(address),
            Topic::region_size(capacity, address.region.subscribers, address.region.latency),
            [&](std::span<std::byte> region) {
                Topic::format(region,
                              TopicOptions{capacity, address.region.subscribers, address.region.history,
                                           address.region.drop ? Overflow::drop : Overflow::block,
                                           address.region.latency});
            });
    }

    RegionMemory memory_;
    bool created_;
};

class TopicSender final : public SenderBackend {
public:
    TopicSender(const Address& address, Role role, Deadline deadline)
        : SenderBackend(address),
          region_(address, role, deadline),
          publisher_(attach_formatted<TopicPublisher>(region_.bytes(), address.region.wait, role)) {
        // attach validated the header (slot count in range) before this reads it.
        if (!region_.created()) region_.wait_for_a_subscriber();
    }
    IoResult send(std::span<const std::byte> message, Deadline deadline) override {
        return publisher_.send(message, deadline);
    }
    std::size_t max_message_size() const override { return publisher_.max_message_size(); }

private:
    TopicRegion region_;  // declared first: outlives the publisher
    TopicPublisher publisher_;
};

class TopicReceiver final : public ReceiverBackend {
public:
    TopicReceiver(const Address& address, Role role, Deadline deadline)
        : ReceiverBackend(address),
          region_(address, role, deadline),
          subscriber_(attach_formatted<TopicSubscriber>(region_.bytes(), address.region.wait, role)) {}
    IoResult recv(std::span<std::byte> buffer, Deadline deadline) override {
        return subscriber_.recv(buffer, deadline);
    }
    IoResult recv(std::vector<std::byte>& message, Deadline deadline) override {
        return subscriber_.recv(message, deadline);
    }
    std::size_t max_message_size() const override { return subscriber_.max_message_size(); }
    bool ready() override { return subscriber_.ready(); }
    Arm arm(std::vector<int>& fds) override {
        if (!subscriber_.arm()) return Arm::ready;
        fds.push_back(subscriber_.doorbell_fd());
        if (const int pidfd = subscriber_.publisher_fd(); pidfd >= 0) fds.push_back(pidfd);  // its death
        return Arm::armed;
    }
    void disarm() noexcept override { subscriber_.disarm(); }
    std::uint64_t missed() const override { return subscriber_.missed(); }

private:
    TopicRegion region_;
    TopicSubscriber subscriber_;
};

}  // namespace

std::unique_ptr<SenderBackend> make_topic_sender(const Address& address, Role role, Deadline deadline) {
    return std::make_unique<TopicSender>(address, role, deadline);
}

std::unique_ptr<ReceiverBackend> make_topic_receiver(const Address& address, Role role, Deadline deadline) {
    return std::make_unique<TopicReceiver>(address, role, deadline);
}

}  // namespace ipckit::detail
