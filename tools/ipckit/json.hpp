// JSON output of the tool's subcommands (ls, top): strings escaped so the output always parses.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace ipckit::cli {

// JSON strings: addresses are paths and may hold any byte. Bytes that are not UTF-8 become
// U+FFFD so the output always parses.
inline std::string json_string(std::string_view text) {
    std::string out = "\"";
    for (std::size_t i = 0; i < text.size();) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
            ++i;
        } else if (c < 0x20 || c == 0x7f) {
            out += fmt::format("\\u{:04x}", c);
            ++i;
        } else if (c < 0x80) {
            out += static_cast<char>(c);
            ++i;
        } else {
            const std::size_t length = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
            bool valid = length != 0 && c <= 0xf4 && i + length <= text.size();
            for (std::size_t k = 1; valid && k < length; ++k)
                valid = (static_cast<unsigned char>(text[i + k]) & 0xc0) == 0x80;
            if (valid) {
                out.append(text.substr(i, length));
                i += length;
            } else {
                out += "\\ufffd";
                ++i;
            }
        }
    }
    out += '"';
    return out;
}

template <typename Number>
std::string json_number_or_null(bool known, Number value) {
    return known ? fmt::format("{}", value) : "null";
}

// A JSON array of one object a line ("[\n  {...},\n  {...}\n]\n", or "[]\n" when empty): what
// `ls --json` and `top --json` print. `object_of(item)` gives one object's text.
template <typename Items, typename ObjectOf>
std::string json_array(const Items& items, ObjectOf&& object_of) {
    std::string out = "[";
    bool first = true;
    for (const auto& item : items) {
        out += first ? "\n  " : ",\n  ";
        out += object_of(item);
        first = false;
    }
    out += first ? "]\n" : "\n]\n";
    return out;
}

}  // namespace ipckit::cli
