// fifo_producer — the producer half of the lecture's producer/consumer over a named pipe.
//
// Sends numbered, checksummed records of 256 bytes (under PIPE_BUF, so each write is atomic)
// into the FIFO that fifo_consumer created. The two are unrelated processes: they meet only
// through the FIFO's path. The producer may start first; it waits (10 s, or --wait SECONDS)
// for the consumer to create the FIFO and open it.
//
//     $ build/bin/fifo_consumer /tmp/demo.fifo &
//     $ build/bin/fifo_producer /tmp/demo.fifo --count 100000
//     fifo_producer: sent 100000 records
//     fifo_consumer: received 100000 records, 0 torn, 0 out of order
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

#include "fifo_record.hpp"
#include "ipckit/fifo.hpp"

namespace {

int usage(const std::string& problem) {
    std::fprintf(stderr,
                 "fifo_producer: %s\n"
                 "usage: fifo_producer PATH [--count N] [--wait SECONDS]\n"
                 "  PATH            the FIFO fifo_consumer created\n"
                 "  --count N       records to send (default 100000)\n"
                 "  --wait SECONDS  how long to wait for the consumer (default 10)\n",
                 problem.c_str());
    return 2;
}

bool parse_number(std::string_view text, std::uint64_t& number) {
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
    return !text.empty() && error == std::errc() && end == text.data() + text.size();
}

}  // namespace

int main(int argc, char** argv) try {
    std::string path;
    std::uint64_t count = 100000;
    std::uint64_t wait_seconds = 10;
    for (int i = 1; i < argc; ++i) {
        const std::string_view argument = argv[i];
        if (argument == "--count") {
            if (++i == argc || !parse_number(argv[i], count)) return usage("--count needs a whole number");
        } else if (argument == "--wait") {
            if (++i == argc || !parse_number(argv[i], wait_seconds))
                return usage("--wait needs a whole number");
        } else if (argument.starts_with("-") || !path.empty()) {
            return usage("unexpected argument '" + std::string(argument) + "'");
        } else {
            path = argument;
        }
    }
    if (path.empty()) return usage("missing PATH");

    const auto wait =
        std::chrono::seconds(static_cast<std::int64_t>(std::min<std::uint64_t>(wait_seconds, 86400)));
    auto writer = ipckit::Fifo::open_write(path, ipckit::Deadline::after(wait));
    if (!writer) {
        std::fprintf(stderr, "fifo_producer: no consumer opened %s within %lld s\n", path.c_str(),
                     static_cast<long long>(wait.count()));
        return 1;
    }
    fifo_record::Bytes record;
    for (std::uint64_t sequence = 0; sequence < count; ++sequence) {
        fifo_record::fill(record, sequence);
        if (!writer->write_all(record).ok()) {  // Status::closed: the consumer went away
            std::fprintf(stderr, "fifo_producer: the consumer left after %llu records\n",
                         static_cast<unsigned long long>(sequence));
            return 1;
        }
    }
    std::printf("fifo_producer: sent %llu records\n", static_cast<unsigned long long>(count));
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "fifo_producer: %s\n", e.what());
    return 1;
}
