// pipe2 — the lecture's "perfect IPC example": the parent writes into a pipe, a child made
// by fork() reads from it.
//
// fork() copies both ends into the child. Each process closes the end it does not use, so
// the child sees end of file once the parent has written and closed its end.
//
//     $ build/bin/pipe2
//     Read 123
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <exception>
#include <string>

#include "ipckit/io.hpp"
#include "ipckit/pipe.hpp"

namespace {

// Reads until every writer has closed: a pipe is a stream, one read may bring only part.
std::string read_all(ipckit::PipeReader& reader) {
    std::string text;
    std::array<std::byte, BUFSIZ> buffer{};
    for (;;) {
        const ipckit::IoResult r = reader.read_some(buffer);
        if (!r.ok()) return text;  // Status::closed: end of file
        text.append(reinterpret_cast<const char*>(buffer.data()), r.bytes);
    }
}

}  // namespace

int main() try {
    auto pipe = ipckit::Pipe::create();
    const pid_t child = ::fork();
    if (child < 0) {
        std::perror("pipe2: fork");
        return 1;
    }
    if (child == 0) {
        pipe.writer.close();
        std::printf("Read %s\n", read_all(pipe.reader).c_str());
        return 0;
    }
    pipe.reader.close();
    if (!pipe.writer.write_all(ipckit::as_bytes("123")).ok()) {
        std::fprintf(stderr, "pipe2: the child is gone\n");
        return 1;
    }
    pipe.writer.close();  // end of file for the child

    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "pipe2: %s\n", e.what());
    return 1;
}
