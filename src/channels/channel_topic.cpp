// Topic transport (topic:/NAME, topic:@NAME): one publisher (a Sender), up to `subscribers`
// Receivers, each receiving every message, over the shared-memory topic (ipckit/topic.hpp) in
// POSIX shared memory, or for topic:@NAME in a sealed memfd served on an abstract socket
// (rings/region_memory.hpp, as shm:@NAME). Who creates: whichever side comes first, publisher or subscriber,
// by the usual create/open roles (the tool's automatic mode: a receiver creates unless the object exists, a
// sender opens and otherwise creates). The creator sizes and formats the region with its address's options
// (capacity, subscribers, overflow, history) and removes the name when it goes away, unless keep=1; openers
// take the region as it is. A subscriber that arrives before any publisher waits for one; a publisher with no
// subscribers publishes into the history only.
#include <optional>

#include "channel_backend.hpp"
#include "ipckit/error.hpp"
#include "ipckit/topic.hpp"
#include "rings/region_memory.hpp"

namespace ipckit::detail {
namespace {

// As the ring's default: 1 MiB messages without asking.
constexpr std::size_t kDefaultTopicCapacity = 4u << 20;
TopicOptions topic_options(const Address& address) {
    return TopicOptions{address.capacity.value_or(kDefaultTopicCapacity), address.region.subscribers,
                        address.region.history, address.region.drop ? Overflow::drop : Overflow::block,
                        address.region.latency};
}

std::size_t topic_region_size(const Address& address) {
    return Topic::region_size(address.capacity.value_or(kDefaultTopicCapacity), address.region.subscribers,
                              address.region.latency);
}

// The topic's memory, created or opened, with the end this channel holds in it; the end is
// declared after the memory, so it closes before the memory goes.
template <class End>
struct TopicEnd {
    RegionMemory memory;
    End end;
};

TopicEnd<TopicPublisher> open_publisher(const Address& address, Role role, Deadline deadline) {
    RegionMemory memory = role == Role::create
                              ? RegionMemory::create(region_place(address), topic_region_size(address),
                                                     [&](std::span<std::byte> region) {
                                                         Topic::format(region, topic_options(address));
                                                     })
                              : RegionMemory::open(region_place(address), deadline);
    auto publisher = attach_formatted<TopicPublisher>(memory.bytes(), address.region.wait, role);
    return {std::move(memory), std::move(publisher)};
}

// A receiver that creates the topic joins it inside the format (TopicSubscriber::create), so a
// sender that opens the topic the moment it exists already counts this receiver.
TopicEnd<TopicSubscriber> open_subscriber(const Address& address, Role role, Deadline deadline) {
    if (role != Role::create) {
        RegionMemory memory = RegionMemory::open(region_place(address), deadline);
        auto subscriber = attach_formatted<TopicSubscriber>(memory.bytes(), address.region.wait, role);
        return {std::move(memory), std::move(subscriber)};
    }
    std::optional<TopicSubscriber> creator;
    RegionMemory memory = RegionMemory::create(
        region_place(address), topic_region_size(address), [&](std::span<std::byte> region) {
            creator.emplace(TopicSubscriber::create(region, topic_options(address), address.region.wait));
        });
    return {std::move(memory), std::move(*creator)};
}

class TopicSender final : public SenderBackend {
public:
    TopicSender(const Address& address, Role role, Deadline deadline)
        : SenderBackend(address), topic_(open_publisher(address, role, deadline)) {}
    IoResult send(std::span<const std::byte> message, Deadline deadline) override {
        return topic_.end.send(message, deadline);
    }
    std::size_t max_message_size() const override { return topic_.end.max_message_size(); }

private:
    TopicEnd<TopicPublisher> topic_;
};

class TopicReceiver final : public ReceiverBackend {
public:
    TopicReceiver(const Address& address, Role role, Deadline deadline)
        : ReceiverBackend(address), topic_(open_subscriber(address, role, deadline)) {}
    IoResult recv(std::span<std::byte> buffer, Deadline deadline) override {
        return topic_.end.recv(buffer, deadline);
    }
    IoResult recv(std::vector<std::byte>& message, Deadline deadline) override {
        return topic_.end.recv(message, deadline);
    }
    std::size_t max_message_size() const override { return topic_.end.max_message_size(); }
    bool ready() override { return topic_.end.ready(); }
    Arm arm(std::vector<int>& fds) override {
        if (!topic_.end.arm()) return Arm::ready;
        fds.push_back(topic_.end.doorbell_fd());
        if (const int pidfd = topic_.end.publisher_fd(); pidfd >= 0) fds.push_back(pidfd);  // its death
        return Arm::armed;
    }
    void disarm() noexcept override { topic_.end.disarm(); }
    std::uint64_t missed() const override { return topic_.end.missed(); }

private:
    TopicEnd<TopicSubscriber> topic_;
};

}  // namespace

std::unique_ptr<SenderBackend> make_topic_sender(const Address& address, Role role, Deadline deadline) {
    return std::make_unique<TopicSender>(address, role, deadline);
}

std::unique_ptr<ReceiverBackend> make_topic_receiver(const Address& address, Role role, Deadline deadline) {
    return std::make_unique<TopicReceiver>(address, role, deadline);
}

}  // namespace ipckit::detail
