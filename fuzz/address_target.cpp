// Fuzz target: the address parser, which reads what a user types (ipckit send ADDRESS) and what a
// configuration file holds. Any text must parse or give Error(invalid_argument); an address
// that parses must keep the promises in include/ipckit/address.hpp.
#include <string>
#include <string_view>
#include <system_error>

#include "fuzz_targets.hpp"
#include "ipckit/address.hpp"
#include "ipckit/error.hpp"

namespace ipckit::fuzz {
namespace {
// Named: tests/faults/fuzz_regression_test.cpp includes every target into one translation unit.
namespace address_input {

void check(bool ok, const char* what) {
    if (!ok) fuzz_fail("address", what);
}

void check_parsed(const Address& a, std::string_view text) {
    // A nats:// token is a secret: the text shows `token=***` in its place, and differs in nothing else.
    if (a.text != text)
        check(a.transport == Transport::nats && a.text.find("token=***") != std::string::npos,
              "text is not the input (only a nats token may be hidden)");
    // Every token= option in the shown text carries "***", never its value. (The value may still
    // show elsewhere when the user typed it elsewhere too, say as a subject: that is not a leak.)
    if (const auto q = a.text.find('?'); q != std::string::npos) {
        std::string_view options = std::string_view(a.text).substr(q + 1);
        while (!options.empty()) {
            const auto amp = options.find('&');
            const auto option = options.substr(0, amp);
            check(!option.starts_with("token=") || option == "token=***",
                  "a token shows in the address text");
            options = amp == std::string_view::npos ? std::string_view() : options.substr(amp + 1);
        }
    }
    check(a.mode <= 0777, "mode beyond 0777");
    check(!a.capacity || *a.capacity > 0, "capacity of zero accepted");
    check(!a.max_message || *a.max_message > 0, "max of zero accepted");
    check(a.sysv.type > 0, "System V type not above zero");
    check(a.region.wait == WaitMode::spin || a.region.wait == WaitMode::block ||
              a.region.wait == WaitMode::adaptive,
          "unknown wait mode");
    check(a.stream.framing == Framing::length || is_stream(a.transport),
          "framing option on a message transport");
    switch (a.transport) {
        case Transport::fd:
            check(a.stream.fd >= 0, "negative descriptor");
            break;
        case Transport::tcp:
            check(a.stream.port != 0, "tcp port 0");
            check(!a.target.empty(), "tcp without a host");
            break;
        case Transport::shm:
            if (a.target.starts_with('@')) {  // shm:@NAME: an abstract socket's name
                check(a.target.size() >= 2 && a.target.size() <= 108, "shm:@ name empty or over sun_path");
                check(a.target.find('\0') == std::string::npos, "shm:@ name with a NUL");
                // shm:@/PATH: a socket file, whose path fits sun_path with its NUL.
                if (a.target.starts_with("@/"))
                    check(a.target.size() - 1 <= 107, "shm:@/ path over sun_path");
                break;
            }
            [[fallthrough]];
        case Transport::posixmq:
            check(a.target.size() >= 2 && a.target[0] == '/', "POSIX name without a leading '/'");
            check(a.target.find('/', 1) == std::string::npos, "POSIX name with a second '/'");
            break;
        case Transport::unix_stream:
        case Transport::unix_seqpacket:
        case Transport::unix_dgram:
            check(!a.target.empty() && a.target.size() <= 107, "socket path empty or over sun_path");
            break;
        case Transport::fifo:
        case Transport::file:
        case Transport::sysvmq:
        case Transport::sysvshm:
            check(!a.target.empty(), "empty target");
            break;
        case Transport::nats:
            check(a.nats.port != 0, "nats port 0");
            check(!a.target.empty(), "nats without a host");
            check(!a.nats.subject.empty() && a.nats.subject.find(' ') == std::string::npos,
                  "nats subject empty or spaced");
            break;
        case Transport::topic:
            check(a.target.size() >= 2 && (a.target[0] == '/' || a.target[0] == '@'),
                  "topic name without a leading '/' or '@'");
            check(a.region.subscribers >= 1 && a.region.subscribers <= 1024,
                  "topic subscribers out of range");
            check(a.region.history <= 64, "topic history over 64");
            break;
        case Transport::service:
            check(a.target.size() >= 2 && (a.target[0] == '/' || a.target[0] == '@'),
                  "service name without a leading '/' or '@'");
            check(a.region.clients >= 1 && a.region.clients <= 1023, "service clients out of range");
            check(a.region.inflight >= 1 && a.region.inflight <= 64, "service inflight out of range");
            break;
    }
    // The parser is a pure function: the same text gives the same address.
    const Address again = parse_address(a.text);
    check(again.transport == a.transport && again.target == a.target && again.stream.port == a.stream.port &&
              again.nats.port == a.nats.port && again.stream.fd == a.stream.fd && again.mode == a.mode,
          "parsing the same text twice differs");
}

}  // namespace address_input
}  // namespace

int fuzz_address(const std::uint8_t* data, std::size_t size) {
    using namespace address_input;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        check_parsed(parse_address(text), text);
    } catch (const Error& e) {
        check(e.code() == std::errc::invalid_argument, "parse_address error is not invalid_argument");
    }
    try {
        const std::size_t bytes = parse_size(text);
        // What format_size prints, parse_size reads back (docs and messages show sizes this way).
        check(parse_size(format_size(bytes)) == bytes, "parse_size(format_size(n)) != n");
    } catch (const Error& e) {
        check(e.code() == std::errc::invalid_argument, "parse_size error is not invalid_argument");
    }
    return 0;
}

}  // namespace ipckit::fuzz
