// fd_passing — one process opens a file, another reads it through the descriptor it was sent.
//
// The program forks first, so the child inherits nothing of what comes next. The parent then
// opens FILE (or, without one, creates a memfd and writes a message into it) and sends the
// descriptor over a Unix socket with SCM_RIGHTS. The child receives it, checks who sent it
// (SO_PEERCRED) and prints what it reads through it: the child never opened the file, and
// could not have, had FILE been readable by the parent only.
//
//     $ build/bin/fd_passing /etc/hostname
//     fd_passing: parent 100 opened /etc/hostname as descriptor 4 and sent it
//     fd_passing: child 101 received descriptor 5 from pid 100: /etc/hostname
//     myhost
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <string>

#include "ipckit/error.hpp"
#include "ipckit/unix_socket.hpp"

namespace {

int child_main(ipckit::UnixSocket& socket) {
    std::array<std::byte, 4096> name;
    auto message = socket.recv_with_fds(name, 1, ipckit::Deadline::never());
    if (!message.io.ok() || message.fds.size() != 1) {
        std::fprintf(stderr, "fd_passing: child got no descriptor (%s)\n",
                     std::string(ipckit::to_string(message.io.status)).c_str());
        return 1;
    }
    const ipckit::Fd& file = message.fds.front();
    const auto sender = socket.peer_credentials();
    std::printf("fd_passing: child %d received descriptor %d from pid %d: %.*s\n",
                static_cast<int>(::getpid()), file.get(), static_cast<int>(sender.pid),
                static_cast<int>(message.io.bytes), reinterpret_cast<const char*>(name.data()));
    std::fflush(stdout);
    // pread: the descriptor shares its file offset with the sender's, so read from 0 explicitly.
    char buffer[4096];
    for (off_t offset = 0;;) {
        const ssize_t n = ::pread(file.get(), buffer, sizeof buffer, offset);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) ipckit::throw_errno("pread", "the received descriptor");
        if (n == 0) break;
        std::fwrite(buffer, 1, static_cast<std::size_t>(n), stdout);
        offset += n;
    }
    return 0;
}

ipckit::Fd open_or_create(const char* path, std::string& description) {
    if (path != nullptr) {
        ipckit::Fd file(::open(path, O_RDONLY | O_CLOEXEC));
        if (!file) ipckit::throw_errno("open", path);
        description = path;
        return file;
    }
    ipckit::Fd memfd(::memfd_create("fd_passing", MFD_CLOEXEC));
    if (!memfd) ipckit::throw_errno("memfd_create", "fd_passing");
    const std::string text = "written into a memfd by pid " + std::to_string(::getpid()) + "\n";
    if (::write(memfd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        ipckit::throw_errno("write", "memfd fd_passing");
    description = "a memfd with no name in any filesystem";
    return memfd;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 2) {
        std::fprintf(stderr, "usage: fd_passing [FILE]\n  without FILE, a memfd is passed\n");
        return 2;
    }
    try {
        auto [parent_end, child_end] = ipckit::UnixSocket::pair(ipckit::SocketType::seqpacket);
        std::fflush(stdout);
        const pid_t child = ::fork();
        if (child < 0) ipckit::throw_errno("fork", "fd_passing");
        if (child == 0) {
            { const auto dropped = std::move(parent_end); }  // the child keeps only its own end
            int code = 1;
            try {
                code = child_main(child_end);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "fd_passing: child: %s\n", e.what());
            }
            std::fflush(stdout);
            ::_exit(code);
        }
        std::string description;
        const ipckit::Fd file = open_or_create(argc == 2 ? argv[1] : nullptr, description);
        std::printf("fd_passing: parent %d opened %s as descriptor %d and sent it\n",
                    static_cast<int>(::getpid()), description.c_str(), file.get());
        std::fflush(stdout);
        const std::array<int, 1> fds{file.get()};
        if (!parent_end.send_with_fds(ipckit::as_bytes(description), fds).ok())
            std::fprintf(stderr, "fd_passing: the child went away before it got the descriptor\n");
        int status = 0;
        while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
        }
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fd_passing: %s\n", e.what());
        return 1;
    }
}
