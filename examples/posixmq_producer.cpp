// posixmq_producer — the lecture's message-queue producer, over a POSIX queue with priorities.
//
// It creates the queue (10 messages of at most 128 bytes: the unprivileged default limit
// fs.mqueue.msg_max is 10), sends COUNT records at each of the priorities 1, 2 and 3 — in that
// order, lowest first — then an end-of-data message at priority 0 that carries the total.
// A POSIX queue always hands out the highest priority first, so the consumer sees the
// priority-3 records before the others. The producer does not wait for a consumer unless the
// queue is full; then it blocks (up to --wait seconds) until the consumer makes room.
//
//     posixmq_producer [--name /NAME] [--count COUNT] [--wait SECONDS]
//     posixmq_consumer [--name /NAME] [--wait SECONDS]
//     (defaults: /ipckit-posixmq-example, 3 per priority, 10 s)
//
// Who removes: once everything is sent the producer keeps the queue and exits; the consumer
// unlinks it after the end message. If the producer fails half-way, it unlinks what it created.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>

#include "ipckit/error.hpp"
#include "ipckit/io.hpp"
#include "ipckit/posix_queue.hpp"

namespace {

constexpr unsigned kHighestPriority = 3;
constexpr unsigned kEndPriority = 0;  // the lowest: taken only when no record is waiting

int usage(const char* program) {
    std::fprintf(stderr, "usage: %s [--name /NAME] [--count COUNT] [--wait SECONDS]\n", program);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::string name = "/ipckit-posixmq-example";
    long count = 3;
    long wait_seconds = 10;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        char* end = nullptr;
        if (arg == "--name" && i + 1 < argc) {
            name = argv[++i];
        } else if (arg == "--count" && i + 1 < argc) {
            count = std::strtol(argv[++i], &end, 10);
            if (*end != '\0' || count < 0) return usage(argv[0]);
        } else if (arg == "--wait" && i + 1 < argc) {
            wait_seconds = std::strtol(argv[++i], &end, 10);
            if (*end != '\0' || wait_seconds < 0) return usage(argv[0]);
        } else {
            return usage(argv[0]);
        }
    }
    const auto patience = std::chrono::seconds(wait_seconds);

    try {
        auto queue = ipckit::PosixQueue::create(name, {.max_messages = 10, .max_message_size = 128});
        const auto send = [&](std::string_view body, unsigned priority) {
            const auto r = queue.send(ipckit::as_bytes(body), priority, ipckit::Deadline::after(patience));
            if (r.status == ipckit::Status::timed_out)
                throw std::runtime_error("the queue stayed full for " + std::to_string(wait_seconds) +
                                         " s: is a consumer reading?");
        };
        long sent = 0;
        for (long i = 0; i < count; ++i) {
            for (unsigned priority = 1; priority <= kHighestPriority; ++priority) {
                send("record " + std::to_string(sent) + " priority " + std::to_string(priority), priority);
                ++sent;
            }
        }
        send(std::to_string(sent), kEndPriority);
        queue.keep();  // the messages are the consumer's now, and so is unlinking the queue
        std::printf(
            "producer: sent %ld records (%ld at each priority 1-%u) and an end message (priority %u) to %s\n",
            sent, count, kHighestPriority, kEndPriority, name.c_str());
        return 0;
    } catch (const ipckit::Error& e) {
        std::fprintf(stderr, "posixmq_producer: %s\n", e.what());
        if (e.code() == std::errc::file_exists)
            std::fprintf(stderr, "posixmq_producer: run posixmq_consumer --name %s to drain and remove it\n",
                         name.c_str());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "posixmq_producer: %s\n", e.what());
        return 1;
    }
}
