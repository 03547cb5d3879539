#include "ipckit/poll_set.hpp"

#include <poll.h>

#include <algorithm>
#include <chrono>

#include "channel_backend.hpp"
#include "ipckit/error.hpp"
#include "service_backend.hpp"

namespace ipckit {

std::size_t PollSet::add(Receiver& receiver) {
    entries_.push_back({&receiver, nullptr, nullptr});
    return entries_.size() - 1;
}
std::size_t PollSet::add(Server& server) {
    entries_.push_back({nullptr, &server, nullptr});
    return entries_.size() - 1;
}
std::size_t PollSet::add(Client& client) {
    entries_.push_back({nullptr, nullptr, &client});
    return entries_.size() - 1;
}

const PollSet::Entry& PollSet::entry(std::size_t index, const char* what) const {
    if (index >= entries_.size()) {
        throw_error(std::errc::invalid_argument,
                    "poll set: index " + std::to_string(index) + " of " + std::to_string(entries_.size()));
    }
    const Entry& e = entries_[index];
    const char* is = e.receiver != nullptr ? "a receiver" : e.server != nullptr ? "a server" : "a client";
    const bool match = (e.receiver != nullptr && what[0] == 'r') || (e.server != nullptr && what[0] == 's') ||
                       (e.client != nullptr && what[0] == 'c');
    if (!match) {
        throw_error(std::errc::invalid_argument,
                    "poll set: index " + std::to_string(index) + " is " + is + ", not a " + what);
    }
    return e;
}
Receiver& PollSet::operator[](std::size_t index) const {
    return *entry(index, "receiver").receiver;
}
Server& PollSet::server(std::size_t index) const {
    return *entry(index, "server").server;
}
Client& PollSet::client(std::size_t index) const {
    return *entry(index, "client").client;
}

detail::Waitable& PollSet::waitable(const Entry& e) const {
    if (e.receiver != nullptr) return *e.receiver->backend_;
    if (e.server != nullptr) return *e.server->backend_;
    return *e.client->backend_;
}

std::vector<std::size_t> PollSet::wait(Deadline deadline) {
    using namespace std::chrono_literals;
    std::vector<std::size_t> ready;
    std::vector<pollfd> fds;
    std::vector<std::size_t> owners;  // fds[i] belongs to entries_[owners[i]]
    std::vector<bool> doorbell;       // fds[i] is a doorbell or a peer's pidfd: re-check, do not trust
    std::vector<int> armed_fds;
    std::vector<detail::Waitable*> armed;
    // Doorbells are disarmed however the wait ends (a disarmed one costs the publisher nothing).
    struct Disarm {
        std::vector<detail::Waitable*>& armed;
        ~Disarm() {
            for (auto* b : armed)
                b->disarm();
            armed.clear();
        }
    };
    auto pause = std::chrono::nanoseconds(50us);
    for (;;) {
        fds.clear();
        owners.clear();
        doorbell.clear();
        const Disarm disarm{armed};
        bool without_fd = false;
        bool peer_by_polling = false;  // a peer's death shows only through ready(): wake to ask
        for (std::size_t i = 0; i < entries_.size(); ++i) {
            auto& backend = waitable(entries_[i]);
            if (backend.ready()) {
                ready.push_back(i);
                continue;
            }
            peer_by_polling = peer_by_polling || backend.watches_peer_by_polling();
            armed_fds.clear();
            const auto arm = backend.arm(armed_fds);
            if (arm != detail::Waitable::Arm::unsupported) armed.push_back(&backend);
            if (arm == detail::Waitable::Arm::ready) {
                ready.push_back(i);
                continue;
            }
            if (arm == detail::Waitable::Arm::armed) {
                for (const int fd : armed_fds) {
                    fds.push_back({fd, POLLIN, 0});
                    owners.push_back(i);
                    doorbell.push_back(true);
                }
                continue;
            }
            const int fd = backend.native_handle();
            if (fd >= 0) {
                fds.push_back({fd, POLLIN, 0});
                owners.push_back(i);
                doorbell.push_back(false);
            } else {
                without_fd = true;
            }
        }
        if (!ready.empty()) return ready;
        if (deadline.expired()) return ready;

        // Receivers without a descriptor are checked again after a short, growing sleep.
        timespec slice{};
        const timespec* timeout = nullptr;
        const auto left = deadline.remaining();
        if (without_fd || peer_by_polling || !deadline.is_never()) {
            auto wait = without_fd ? std::min<std::chrono::nanoseconds>(pause, left) : left;
            if (peer_by_polling) wait = std::min<std::chrono::nanoseconds>(wait, 50ms);
            slice.tv_sec =
                static_cast<time_t>(std::chrono::duration_cast<std::chrono::seconds>(wait).count());
            slice.tv_nsec = static_cast<long>((wait - std::chrono::seconds(slice.tv_sec)).count());
            timeout = &slice;
            pause = std::min<std::chrono::nanoseconds>(pause * 2, 2ms);
        }
        const int n = ::ppoll(fds.data(), fds.size(), timeout, nullptr);
        if (n < 0 && errno != EINTR) throw_errno("ppoll", "poll set");
        // A doorbell (or a pidfd) says "look again", not "ready": the loop's ready() decides.
        for (std::size_t k = 0; n > 0 && k < fds.size(); ++k) {
            if (fds[k].revents != 0 && !doorbell[k]) ready.push_back(owners[k]);
        }
        if (!ready.empty()) return ready;
    }
}

}  // namespace ipckit
