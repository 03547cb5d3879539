#include "ipckit/status.hpp"

namespace ipckit {

std::string_view to_string(Status status) noexcept {
    switch (status) {
        case Status::ok:
            return "ok";
        case Status::would_block:
            return "would block";
        case Status::timed_out:
            return "timed out";
        case Status::closed:
            return "closed";
    }
    return "unknown";
}

}  // namespace ipckit
