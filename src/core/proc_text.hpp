// Internal: reading the small text files of /proc (and the records of the registry). Anything
// under /proc can vanish between two calls, so every reader answers "absent" instead of failing.
#pragma once

#include <fcntl.h>
#include <sys/types.h>

#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ipckit::detail {

// The whole file (never through a symbolic link), or nothing if it cannot be read.
[[nodiscard]] std::optional<std::string> read_small_file(const std::string& path, int dir_fd = AT_FDCWD);

// The whole of `text` as a number (base 16 may carry a 0x prefix).
template <typename Number>
[[nodiscard]] bool parse_number(std::string_view text, Number& out, int base = 10) {
    if (base == 16 && text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X'))
        text.remove_prefix(2);
    if (text.empty()) return false;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
    return ec == std::errc() && end == text.data() + text.size();
}

// Words separated by spaces or tabs; lines separated by '\n'. Views into `text`.
[[nodiscard]] std::vector<std::string_view> split_words(std::string_view line);
[[nodiscard]] std::vector<std::string_view> split_lines(std::string_view text);

// A /proc entry named like a PID (only digits).
[[nodiscard]] bool is_pid_name(const char* name);

// The user's name, or the uid in decimal when it has none; "alice (uid 1000)".
[[nodiscard]] std::string user_name(uid_t uid);
[[nodiscard]] std::string describe_user(uid_t uid);

}  // namespace ipckit::detail
