// msgq_producer — the lecture's message-queue producer, over a System V queue.
//
// It creates the queue, sends COUNT records of each of three message types, interleaved
// (3, 2, 1, 3, 2, 1, ...), then one end-of-data message of type 4 that carries the total, and
// exits. It does not wait for a consumer: a message queue is connection-less, the kernel keeps
// the messages until someone reads them. So once everything is sent the producer keeps the
// queue when it exits, and msgq_consumer removes it after the end-of-data message. (If the
// producer fails half-way, it removes the queue it created.)
//
//     msgq_producer [--key KEY] [--count COUNT]      (defaults: key 0x49504b31, 10 per type)
//     msgq_consumer [--key KEY] [--first TYPE]
//
// KEY is a System V key as `ipckit` spells it: 1234, 0x1234, PATH#PROJ (ftok), e.g.
// --key /tmp#7. If a previous run left the queue behind, the producer refuses to reuse it:
// run the consumer, or remove it with `ipcrm -Q KEY`.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include "ipckit/error.hpp"
#include "ipckit/io.hpp"
#include "ipckit/sysv_queue.hpp"

namespace {

constexpr long kTypes = 3;    // record types 1, 2, 3
constexpr long kEndType = 4;  // end of data; the highest type, so a consumer reading "lowest
                              // type first" gets it only after every record

int usage(const char* program) {
    std::fprintf(stderr, "usage: %s [--key KEY] [--count COUNT]\n", program);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::string key_text = "0x49504b31";
    long count = 10;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--key" && i + 1 < argc) {
            key_text = argv[++i];
        } else if (arg == "--count" && i + 1 < argc) {
            char* end = nullptr;
            count = std::strtol(argv[++i], &end, 10);
            if (*end != '\0' || count < 0) return usage(argv[0]);
        } else {
            return usage(argv[0]);
        }
    }

    try {
        // Until every message is sent this process owns the queue: if it fails half-way, the
        // queue goes with it (SysvQueue removes what it created unless told to keep it).
        auto queue = ipckit::SysvQueue::create(ipckit::SysvKey::parse(key_text));
        long sent = 0;
        for (long i = 0; i < count; ++i) {
            for (long type = kTypes; type >= 1; --type) {
                const std::string record = "record " + std::to_string(sent) + " type " + std::to_string(type);
                // Blocks while the queue is full (kernel.msgmnb bytes) until the consumer reads.
                if (!queue.send(type, ipckit::as_bytes(record)).ok()) {
                    std::fprintf(stderr, "msgq_producer: the queue was removed while sending\n");
                    return 1;
                }
                ++sent;
            }
        }
        const std::string end = std::to_string(sent);
        if (!queue.send(kEndType, ipckit::as_bytes(end)).ok()) return 1;
        queue.keep();  // the messages are the consumer's now, and so is removing the queue
        std::printf(
            "producer: sent %ld records (%ld of each type 1-%ld) and an end message (type %ld) to %s\n", sent,
            count, kTypes, kEndType, queue.name().c_str());
        std::printf("producer: the queue stays until msgq_consumer reads it and removes it\n");
        return 0;
    } catch (const ipckit::Error& e) {
        std::fprintf(stderr, "msgq_producer: %s\n", e.what());
        if (e.code() == std::errc::file_exists)
            std::fprintf(stderr,
                         "msgq_producer: a queue with this key exists: run msgq_consumer --key %s, "
                         "or remove it with ipcrm\n",
                         key_text.c_str());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "msgq_producer: %s\n", e.what());
        return 1;
    }
}
