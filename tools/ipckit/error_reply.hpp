// How `ipckit serve` says a command failed, and how `ipckit call` recognises it. A service carries
// bytes and no status, so an error reply is a response that begins with kErrorReplyMarker (a NUL
// byte, "IPCKIT-ERROR", a NUL byte: text never starts so) followed by one line saying how the
// command ended ("tr exited with status 1") and then what it wrote to its stderr.
#pragma once

#include <string>
#include <string_view>

namespace ipckit::cli {

inline constexpr std::string_view kErrorReplyMarker{"\0IPCKIT-ERROR\0", 14};

inline std::string error_reply(std::string_view how_it_ended, std::string_view stderr_text) {
    std::string reply(kErrorReplyMarker);
    reply += how_it_ended;
    reply += '\n';
    reply += stderr_text;
    return reply;
}

// The text after the marker, or nothing when `response` is an ordinary reply.
inline bool is_error_reply(std::string_view response) {
    return response.starts_with(kErrorReplyMarker);
}

}  // namespace ipckit::cli
