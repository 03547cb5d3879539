#include "ipckit/sysv_key.hpp"

#include <sys/ipc.h>

#include <charconv>
#include <cstdint>
#include <cstdio>

#include "ipckit/error.hpp"

namespace ipckit {
namespace {

constexpr std::string_view kExpected =
    "expected a key in decimal (1234) or hex (0x1234), PATH#PROJ (PROJ 1-255 or one character), "
    "or \"private\"";

[[noreturn]] void bad_key(std::string_view text, std::string_view why) {
    std::string message = "bad System V key \"";
    message += text;
    message += "\": ";
    message += why;
    throw_error(std::errc::invalid_argument, message);
}

// Whole-string unsigned parse; false on any stray character or overflow.
bool parse_unsigned(std::string_view digits, int base, std::uint64_t& out) {
    if (digits.empty()) return false;
    const char* end = digits.data() + digits.size();
    const auto [ptr, ec] = std::from_chars(digits.data(), end, out, base);
    return ec == std::errc() && ptr == end;
}

bool looks_numeric(std::string_view text) {
    return !text.empty() && text.front() >= '0' && text.front() <= '9';
}

}  // namespace

SysvKey SysvKey::explicit_key(key_t key) {
    if (key == IPC_PRIVATE)
        throw_error(std::errc::invalid_argument,
                    "bad System V key 0: the kernel reads 0 as IPC_PRIVATE; use SysvKey::private_key()");
    SysvKey result;
    result.key_ = key;
    return result;
}

SysvKey SysvKey::from_file(std::string_view path, int project) {
    std::string origin(path);
    origin += '#';
    origin += std::to_string(project);
    if (path.empty()) bad_key(origin, "the path is empty");
    if (project < 1 || project > 255)
        bad_key(origin, "the project id must be 1-255 (ftok keeps only 8 bits)");
    const std::string path_z(path);
    const key_t key = ::ftok(path_z.c_str(), project);
    if (key == -1) throw_errno("ftok", origin);
    SysvKey result;
    result.key_ = key;
    result.origin_ = std::move(origin);
    return result;
}

SysvKey SysvKey::parse(std::string_view text) {
    if (text == "private" || text == "IPC_PRIVATE") return private_key();
    if (text.empty()) bad_key(text, kExpected);

    const auto hash = text.rfind('#');
    if (hash != std::string_view::npos) {
        const std::string_view path = text.substr(0, hash);
        const std::string_view project = text.substr(hash + 1);
        if (path.empty()) bad_key(text, "the path before '#' is empty");
        std::uint64_t number = 0;
        int project_id = 0;
        if (looks_numeric(project)) {
            if (!parse_unsigned(project, 10, number) || number < 1 || number > 255)
                bad_key(text, "PROJ must be a number 1-255 or a single character");
            project_id = static_cast<int>(number);
        } else if (project.size() == 1) {
            project_id = static_cast<unsigned char>(project.front());
        } else {
            bad_key(text, "PROJ must be a number 1-255 or a single character");
        }
        SysvKey key = from_file(path, project_id);
        key.origin_ = std::string(text);  // as the user wrote it: "/tmp/app#A", not "#65"
        return key;
    }

    std::uint64_t number = 0;
    const bool hex = text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
    const bool parsed = hex ? parse_unsigned(text.substr(2), 16, number)
                            : looks_numeric(text) && parse_unsigned(text, 10, number);
    if (!parsed) bad_key(text, kExpected);
    // Keys are 32 bits; ipcs shows them unsigned, so 0x80000000 and above are accepted as-is.
    if (number > UINT32_MAX) bad_key(text, "a System V key has 32 bits (at most 0xffffffff)");
    if (number == 0) bad_key(text, "the kernel reads 0 as IPC_PRIVATE; write \"private\" if you mean that");
    return explicit_key(static_cast<key_t>(static_cast<std::uint32_t>(number)));
}

std::string SysvKey::to_string() const {
    if (is_private()) return "private key";
    char hex[24];
    std::snprintf(hex, sizeof hex, "0x%x", static_cast<unsigned>(key_));
    std::string text = "key ";
    text += hex;
    if (!origin_.empty()) {
        text += " (";
        text += origin_;
        text += ')';
    }
    return text;
}

}  // namespace ipckit
