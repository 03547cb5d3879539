// Internal: reading a kernel limit from /proc/sys, for error messages and defaults.
#pragma once

#include <fstream>
#include <optional>
#include <string>

namespace ipckit::detail {

// The value of a numeric /proc/sys file ("/proc/sys/kernel/msgmax"), or nothing if it cannot
// be read (a container may hide /proc/sys). Never throws: it is used while building errors.
inline std::optional<long long> read_kernel_limit(const char* path) noexcept {
    try {
        std::ifstream file(path);
        long long value = 0;
        if (file >> value) return value;
    } catch (...) {
    }
    return std::nullopt;
}

// "8192" or "unknown", for messages.
inline std::string limit_text(std::optional<long long> value) {
    return value ? std::to_string(*value) : std::string("unknown");
}

}  // namespace ipckit::detail
