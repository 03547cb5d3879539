// fifo_consumer — the consumer half of the lecture's producer/consumer over a named pipe.
//
// Creates the FIFO (mode 0600, refusing any existing path), waits in a blocking open for a
// producer, as the lecture describes, then reads records until the producer closes its end.
// Every record is checked: a bad checksum or a short record at the end counts as torn, a
// sequence number other than the next expected one as out of order. The FIFO is removed when
// the consumer exits. Exit status 1 if any record was bad (or, with --expect N, if the count
// differs), so scripts and tests can rely on it.
//
//     $ build/bin/fifo_consumer /tmp/demo.fifo &
//     $ build/bin/fifo_producer /tmp/demo.fifo
//     fifo_producer: sent 100000 records
//     fifo_consumer: received 100000 records, 0 torn, 0 out of order
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include "fifo_record.hpp"
#include "ipckit/fifo.hpp"

namespace {

int usage(const std::string& problem) {
    std::fprintf(stderr,
                 "fifo_consumer: %s\n"
                 "usage: fifo_consumer PATH [--expect N]\n"
                 "  PATH        where to create the FIFO (it must not exist)\n"
                 "  --expect N  also fail unless exactly N records arrive\n",
                 problem.c_str());
    return 2;
}

bool parse_count(std::string_view text, std::uint64_t& count) {
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), count);
    return !text.empty() && error == std::errc() && end == text.data() + text.size();
}

}  // namespace

int main(int argc, char** argv) try {
    std::string path;
    std::optional<std::uint64_t> expected;
    for (int i = 1; i < argc; ++i) {
        const std::string_view argument = argv[i];
        if (argument == "--expect") {
            std::uint64_t n = 0;
            if (++i == argc || !parse_count(argv[i], n)) return usage("--expect needs a whole number");
            expected = n;
        } else if (argument.starts_with("-") || !path.empty()) {
            return usage("unexpected argument '" + std::string(argument) + "'");
        } else {
            path = argument;
        }
    }
    if (path.empty()) return usage("missing PATH");

    const auto fifo = ipckit::Fifo::create(path);        // removed again when main returns
    auto reader = ipckit::Fifo::open_read(fifo.path());  // blocks until a producer opens it

    std::uint64_t received = 0, torn = 0, out_of_order = 0, next = 0;
    fifo_record::Bytes record;
    for (;;) {
        const ipckit::IoResult r = reader.read_exact(record);
        if (r.status == ipckit::Status::closed) {
            if (r.bytes > 0) {  // the producer stopped in the middle of a record
                ++received;
                ++torn;
            }
            break;
        }
        ++received;
        if (!fifo_record::intact(record)) {
            ++torn;
            continue;
        }
        const std::uint64_t sequence = fifo_record::sequence_of(record);
        if (sequence != next) ++out_of_order;
        next = sequence + 1;
    }

    std::printf("fifo_consumer: received %llu records, %llu torn, %llu out of order\n",
                static_cast<unsigned long long>(received), static_cast<unsigned long long>(torn),
                static_cast<unsigned long long>(out_of_order));
    if (expected && *expected != received) {
        std::fprintf(stderr, "fifo_consumer: expected %llu records\n",
                     static_cast<unsigned long long>(*expected));
        return 1;
    }
    return torn == 0 && out_of_order == 0 ? 0 : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "fifo_consumer: %s\n", e.what());
    return 1;
}
