// pipe4 — run by pipe3: reads from the pipe end whose descriptor number is argv[1].
//
// The number must be exactly a non-negative decimal integer naming an open pipe or FIFO end
// (PipeReader::adopt checks); anything else is a usage error, not a read from a random file.
// Any inherited pipe works, for instance standard input:
//
//     $ build/bin/pipe3
//     read 123
//     $ printf 123 | build/bin/pipe4 0
//     read 123
#include <array>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>

#include "ipckit/io.hpp"
#include "ipckit/pipe.hpp"

namespace {

int usage(const char* problem) {
    std::fprintf(stderr,
                 "pipe4: %s\n"
                 "usage: pipe4 FD\n"
                 "  FD  number of an inherited pipe read end (pipe3 passes one; 0 when stdin is a pipe)\n",
                 problem);
    return 2;
}

}  // namespace

int main(int argc, char** argv) try {
    if (argc != 2) return usage("expected exactly one argument");
    const std::string_view argument = argv[1];
    int fd = -1;
    const auto [end, error] = std::from_chars(argument.data(), argument.data() + argument.size(), fd);
    if (argument.empty() || error != std::errc() || end != argument.data() + argument.size() || fd < 0) {
        return usage(("not a descriptor number: '" + std::string(argument) + "'").c_str());
    }

    auto reader = ipckit::PipeReader::adopt(fd);
    std::string text;
    std::array<std::byte, BUFSIZ> buffer{};
    // Until end of file: a pipe is a stream, one read may bring only part of what was written.
    for (ipckit::IoResult r; (r = reader.read_some(buffer)).ok();)
        text.append(reinterpret_cast<const char*>(buffer.data()), r.bytes);
    std::printf("read %s\n", text.c_str());
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "pipe4: %s\n", e.what());
    return 1;
}
