// posixmq_consumer — the lecture's message-queue consumer, over a POSIX queue with priorities.
//
// It opens the queue posixmq_producer created (waiting up to --wait seconds for it to appear)
// and receives until the end-of-data message. A POSIX receive always takes the oldest message
// of the highest priority present, so the records come out by priority (3, then 2, then 1)
// although the producer sent them lowest first; and the end message, at priority 0, comes only
// after every record. It reports the count per priority and the order in which priorities came,
// checks the total against the end message, and unlinks the queue.
//
//     posixmq_producer && posixmq_consumer                       # one after the other
//     posixmq_consumer & posixmq_producer --count 100            # at the same time
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/posix_queue.hpp"

namespace {

using namespace std::chrono_literals;

constexpr unsigned kEndPriority = 0;

int usage(const char* program) {
    std::fprintf(stderr, "usage: %s [--name /NAME] [--wait SECONDS]\n", program);
    return 2;
}

// The producer may not have created the queue yet: retry while the name does not exist.
ipckit::PosixQueue open_when_there(const std::string& name, ipckit::Deadline deadline) {
    for (;;) {
        try {
            return ipckit::PosixQueue::open(name, ipckit::PosixQueue::Access::read);
        } catch (const ipckit::Error& e) {
            if (e.code() != std::errc::no_such_file_or_directory || deadline.expired()) throw;
        }
        std::this_thread::sleep_for(10ms);
    }
}

// "3x3 2x3 1x3": the priorities in the order they were received, runs counted.
std::string runs(const std::vector<unsigned>& priorities) {
    std::string text;
    for (std::size_t i = 0; i < priorities.size();) {
        std::size_t j = i;
        while (j < priorities.size() && priorities[j] == priorities[i])
            ++j;
        if (!text.empty()) text += ' ';
        text += std::to_string(priorities[i]) + "x" + std::to_string(j - i);
        i = j;
    }
    return text;
}

}  // namespace

int main(int argc, char** argv) {
    std::string name = "/ipckit-posixmq-example";
    long wait_seconds = 10;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        char* end = nullptr;
        if (arg == "--name" && i + 1 < argc) {
            name = argv[++i];
        } else if (arg == "--wait" && i + 1 < argc) {
            wait_seconds = std::strtol(argv[++i], &end, 10);
            if (*end != '\0' || wait_seconds < 0) return usage(argv[0]);
        } else {
            return usage(argv[0]);
        }
    }
    const auto patience = std::chrono::seconds(wait_seconds);

    try {
        auto queue = open_when_there(name, ipckit::Deadline::after(patience));
        // A POSIX receive needs room for the queue's largest message, whatever comes next.
        std::vector<std::byte> buffer(queue.max_message_size());
        std::map<unsigned, long, std::greater<>> counts;
        std::vector<unsigned> order;
        long bad = 0;
        long announced = -1;
        for (;;) {
            const auto r = queue.receive(buffer, ipckit::Deadline::after(patience));
            if (!r.ok()) {
                // A POSIX queue cannot tell that its producer died: a deadline is the only way out.
                std::fprintf(
                    stderr,
                    "posixmq_consumer: no message for %ld s and no end message: is the producer alive?\n",
                    wait_seconds);
                return 1;
            }
            const std::string body(reinterpret_cast<const char*>(buffer.data()), r.bytes);
            if (r.priority == kEndPriority) {
                announced = std::strtol(body.c_str(), nullptr, 10);
                break;
            }
            // A record names its own priority; a mismatch would mean a message was mixed up.
            if (body.rfind("record ", 0) != 0 ||
                body.substr(body.rfind(' ') + 1) != std::to_string(r.priority))
                ++bad;
            ++counts[r.priority];
            order.push_back(r.priority);
        }
        ipckit::PosixQueue::unlink(name);

        long total = 0;
        std::printf("consumer: %s\n", name.c_str());
        for (const auto& [priority, count] : counts) {
            std::printf("priority %u: %ld\n", priority, count);
            total += count;
        }
        std::printf("total: %ld (producer sent %ld)\n", total, announced);
        std::printf("order: %s\n", runs(order).c_str());
        std::printf("consumer: unlinked the queue\n");
        if (bad != 0)
            std::fprintf(stderr, "posixmq_consumer: %ld records did not match their priority\n", bad);
        return total == announced && bad == 0 ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "posixmq_consumer: %s\n", e.what());
        return 1;
    }
}
