// msgq_consumer — the lecture's message-queue consumer, over a System V queue.
//
// It opens the queue msgq_producer created (waiting up to --wait seconds for it to appear)
// and receives selectively by message type, which is what System V queues add over a pipe:
//
//   1. with --first TYPE, every message of that type already in the queue (msgrcv type TYPE);
//   2. then, repeatedly, the lowest type present (msgrcv type -4: "lowest type <= 4"), so type
//      1 records come before type 2 and type 3 ones, whatever order they were sent in, and the
//      end-of-data message (type 4) comes only after every record.
//
// It reports how many records of each type it received and in which order the types came,
// checks the total against the producer's end message, and then removes the queue: the
// producer left it for the consumer. Run it after the producer, or beside it:
//
//     msgq_producer --count 5 && msgq_consumer                 # one after the other
//     msgq_consumer --first 3 & msgq_producer --count 1000      # at the same time
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/sysv_queue.hpp"

namespace {

using namespace std::chrono_literals;

constexpr long kEndType = 4;

int usage(const char* program) {
    std::fprintf(stderr, "usage: %s [--key KEY] [--first TYPE] [--wait SECONDS]\n", program);
    return 2;
}

// The producer may not have created the queue yet: retry while the key does not exist.
ipckit::SysvQueue open_when_there(const ipckit::SysvKey& key, ipckit::Deadline deadline) {
    for (;;) {
        try {
            return ipckit::SysvQueue::open(key);
        } catch (const ipckit::Error& e) {
            if (e.code() != std::errc::no_such_file_or_directory || deadline.expired()) throw;
        }
        std::this_thread::sleep_for(10ms);
    }
}

// "1x10 2x10 3x10": the types in the order they were received, runs counted.
std::string runs(const std::vector<long>& types) {
    std::string text;
    for (std::size_t i = 0; i < types.size();) {
        std::size_t j = i;
        while (j < types.size() && types[j] == types[i])
            ++j;
        if (!text.empty()) text += ' ';
        text += std::to_string(types[i]) + "x" + std::to_string(j - i);
        i = j;
    }
    return text;
}

}  // namespace

int main(int argc, char** argv) {
    std::string key_text = "0x49504b31";
    long first = 0;
    long wait_seconds = 10;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        char* end = nullptr;
        if (arg == "--key" && i + 1 < argc) {
            key_text = argv[++i];
        } else if (arg == "--first" && i + 1 < argc) {
            first = std::strtol(argv[++i], &end, 10);
            if (*end != '\0' || first < 1 || first >= kEndType) return usage(argv[0]);
        } else if (arg == "--wait" && i + 1 < argc) {
            wait_seconds = std::strtol(argv[++i], &end, 10);
            if (*end != '\0' || wait_seconds < 0) return usage(argv[0]);
        } else {
            return usage(argv[0]);
        }
    }
    const auto patience = std::chrono::seconds(wait_seconds);

    try {
        auto queue = open_when_there(ipckit::SysvKey::parse(key_text), ipckit::Deadline::after(patience));
        std::vector<std::byte> buffer(ipckit::SysvQueue::max_message_size());
        std::map<long, long> counts;
        std::vector<long> order;
        long bad = 0;

        const auto take = [&](const ipckit::SysvReceiveResult& r) {
            const std::string body(reinterpret_cast<const char*>(buffer.data()), r.bytes);
            // A record names its own type; a mismatch would mean a message was mixed up.
            if (body.rfind("record ", 0) != 0 || body.substr(body.rfind(' ') + 1) != std::to_string(r.type))
                ++bad;
            ++counts[r.type];
            order.push_back(r.type);
        };

        if (first != 0) {
            for (;;) {
                const auto r = queue.receive(ipckit::TypeSelector::exactly(first), buffer,
                                             ipckit::Deadline::immediate());
                if (!r.ok()) break;
                take(r);
            }
        }
        long announced = -1;
        for (;;) {
            const auto r = queue.receive(ipckit::TypeSelector::lowest_up_to(kEndType), buffer,
                                         ipckit::Deadline::after(patience));
            if (r.status == ipckit::Status::timed_out) {
                std::fprintf(
                    stderr,
                    "msgq_consumer: no message for %ld s and no end message: is the producer alive?\n",
                    wait_seconds);
                return 1;
            }
            if (r.status == ipckit::Status::closed) {
                std::fprintf(stderr, "msgq_consumer: the queue was removed before the end message\n");
                return 1;
            }
            if (r.type == kEndType) {
                announced = std::strtol(
                    std::string(reinterpret_cast<const char*>(buffer.data()), r.bytes).c_str(), nullptr, 10);
                break;
            }
            take(r);
        }
        queue.remove();

        long total = 0;
        std::printf("consumer: %s\n", queue.name().c_str());
        for (const auto& [type, count] : counts) {
            std::printf("type %ld: %ld\n", type, count);
            total += count;
        }
        std::printf("total: %ld (producer sent %ld)\n", total, announced);
        std::printf("order: %s\n", runs(order).c_str());
        std::printf("consumer: removed the queue\n");
        if (bad != 0) std::fprintf(stderr, "msgq_consumer: %ld records did not match their type\n", bad);
        return total == announced && bad == 0 ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "msgq_consumer: %s\n", e.what());
        return 1;
    }
}
