#include <ipckit/io.hpp>
#include <ipckit/pipe.hpp>

#include <array>
#include <cstdio>

int main() {
    auto pipe = ipckit::Pipe::create();
    if (!pipe.writer.write_all(ipckit::as_bytes("hello")).ok()) return 1;
    std::array<std::byte, 5> buffer{};
    if (!pipe.reader.read_exact(buffer).ok()) return 2;
    std::printf("%.5s\n", reinterpret_cast<const char*>(buffer.data()));
    return 0;
}
