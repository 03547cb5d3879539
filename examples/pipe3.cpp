// pipe3 — the lecture's fork() + exec() program: the child becomes another program, pipe4,
// and the read end of the pipe goes with it, its descriptor number written in pipe4's argv.
//
// ipckit opens every descriptor close-on-exec, so nothing crosses exec by accident: the child
// makes just the read end inheritable (inherit_across_exec) and passes its number. The write
// end closes at exec, so pipe4 sees end of file once the parent closes its own copy.
// pipe4 is looked up next to this program (both are built into build/bin/).
//
//     $ build/bin/pipe3
//     read 123
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>

#include "ipckit/io.hpp"
#include "ipckit/pipe.hpp"

int main() try {
    const std::string pipe4 =
        (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "pipe4").string();
    auto pipe = ipckit::Pipe::create();

    const pid_t child = ::fork();
    if (child < 0) {
        std::perror("pipe3: fork");
        return 1;
    }
    if (child == 0) {
        const std::string fd_number = std::to_string(pipe.reader.inherit_across_exec());
        ::execl(pipe4.c_str(), "pipe4", fd_number.c_str(), static_cast<char*>(nullptr));
        std::fprintf(stderr, "pipe3: cannot run %s: %s\n", pipe4.c_str(), std::strerror(errno));
        ::_exit(127);
    }
    pipe.reader.close();
    if (!pipe.writer.write_all(ipckit::as_bytes("123")).ok()) {
        std::fprintf(stderr, "pipe3: pipe4 is gone\n");
    }
    pipe.writer.close();  // end of file for pipe4

    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "pipe3: %s\n", e.what());
    return 1;
}
