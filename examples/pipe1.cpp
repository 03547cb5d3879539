// pipe1 — the lecture's first pipe program: write into a pipe and read it back in one process.
//
// Not yet inter-process communication (the lecture calls it "NOT a perfect IPC example"):
// it only shows that what goes into the write end comes out of the read end.
//
//     $ build/bin/pipe1
//     Read 123
#include <array>
#include <cstdio>
#include <exception>
#include <string_view>

#include "ipckit/io.hpp"
#include "ipckit/pipe.hpp"

int main() try {
    auto pipe = ipckit::Pipe::create();
    (void)pipe.writer.write_all(ipckit::as_bytes("123"));

    std::array<std::byte, BUFSIZ> buffer{};
    const ipckit::IoResult r = pipe.reader.read_some(buffer);
    const std::string_view text(reinterpret_cast<const char*>(buffer.data()), r.bytes);
    std::printf("Read %.*s\n", static_cast<int>(text.size()), text.data());
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "pipe1: %s\n", e.what());
    return 1;
}
