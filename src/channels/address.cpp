#include "ipckit/address.hpp"

#include <sys/un.h>

#include <array>
#include <charconv>
#include <limits>
#include <utility>

#include "ipckit/error.hpp"
#include "ipckit/unix_socket.hpp"
#include "mechanisms/object_rules.hpp"
#include "transports.hpp"

namespace ipckit {
namespace {

[[noreturn]] void malformed(std::string_view address, std::string_view expected) {
    std::string message = "address \"";
    message += address;
    message += "\": ";
    message += expected;
    throw_error(std::errc::invalid_argument, message);
}

template <class Int>
std::optional<Int> parse_int(std::string_view text, int base = 10) {
    Int value{};
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value, base);
    if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
    return value;
}

// A System V key: decimal, 0x hex, or PATH#PROJ (ftok). The parse here checks the form; the
// key itself is computed when the object is created or opened (ftok needs the path to exist).
bool is_sysv_key(std::string_view text) {
    if (text.empty()) return false;
    if (const auto hash = text.rfind('#'); hash != std::string_view::npos) {
        const auto proj = text.substr(hash + 1);
        if (hash == 0 || proj.empty()) return false;
        if (proj.size() == 1 && !(proj[0] >= '0' && proj[0] <= '9')) return true;  // a character
        const auto n = parse_int<int>(proj);
        return n && *n >= 1 && *n <= 255;
    }
    if (text.starts_with("0x") || text.starts_with("0X"))
        return parse_int<std::uint32_t>(text.substr(2), 16).has_value();
    return parse_int<std::int32_t>(text).has_value() || parse_int<std::uint32_t>(text).has_value();
}

}  // namespace

// The forms of a target, one per kind of object (the table in transports.cpp names one per
// scheme).
namespace detail {

void parse_fd_target(Address& a, std::string_view target) {
    const auto fd = parse_int<int>(target);
    if (!fd || *fd < 0) malformed(a.text, "expected fd:N with N an inherited descriptor number");
    a.stream.fd = *fd;
}

void parse_path_target(Address& a, std::string_view target) {
    if (target.empty()) malformed(a.text, "expected " + std::string(to_string(a.transport)) + ":PATH");
}

void parse_sysv_target(Address& a, std::string_view target) {
    if (target.starts_with("id=")) {  // an existing object by id, as ipcs and ipckit ls show it
        const auto id = parse_int<int>(target.substr(3));
        if (!id || *id < 0) malformed(a.text, "expected id=N with N a System V identifier (ipcs -q / -m)");
        a.sysv.id = *id;
        return;
    }
    if (!is_sysv_key(target)) {
        malformed(a.text,
                  "expected a System V key: decimal, 0x hex, or PATH#PROJ with PROJ 1-255 or one character");
    }
}

// The one rule for POSIX names, so a name PosixQueue or PosixShm takes is taken here.
void parse_posix_name_target(Address& a, std::string_view target) {
    const auto object = a.transport == Transport::posixmq ? PosixObject::queue : PosixObject::shm;
    if (const auto problem = posix_name_problem(target, object))
        malformed(a.text, "expected a POSIX name, " + posix_name_rule(object) + ": " + *problem);
}

void parse_shm_target(Address& a, std::string_view target) {
    // shm:@NAME: a sealed memfd served on the abstract socket @NAME (no file anywhere);
    // shm:@/PATH: the same served on the socket file PATH (processes that share a directory).
    if (!target.starts_with('@')) return parse_posix_name_target(a, target);
    if (target.starts_with("@/")) {
        constexpr std::size_t limit = sizeof(sockaddr_un{}.sun_path) - 1;
        if (target.size() - 1 > limit || target.find('\0') != std::string_view::npos)
            malformed(a.text, "expected shm:@/PATH with PATH an absolute socket file path of at most " +
                                  std::to_string(limit) + " bytes");
        return;
    }
    if (target.size() < 2 || target.size() - 1 > UnixAddress::max_length ||
        target.find('\0') != std::string_view::npos) {
        malformed(a.text, "expected shm:@NAME with NAME 1-" + std::to_string(UnixAddress::max_length) +
                              " bytes (an abstract socket name)");
    }
}

void parse_topic_target(Address& a, std::string_view target) {
    // topic:@NAME and service:@NAME: a sealed memfd passed over an abstract socket, as shm:@NAME.
    const std::string scheme(to_string(a.transport));
    if (target.starts_with('@')) {
        if (target.size() < 2 || target.size() > 100)
            malformed(a.text, "expected " + scheme + ":@NAME with a NAME of 1-99 characters");
    } else if (const auto problem = posix_name_problem(target, PosixObject::shm)) {
        malformed(a.text, "expected " + scheme + ":/NAME or " + scheme + ":@NAME, with /NAME a POSIX name, " +
                              posix_name_rule(PosixObject::shm) + ": " + *problem);
    }
}

void parse_unix_target(Address& a, std::string_view target) {
    if (target.empty()) malformed(a.text, "expected a socket path or @NAME after the colon");
    // sun_path holds 108 bytes with the terminating NUL; an abstract name has no NUL but
    // spends one byte on the leading zero that replaces '@'.
    constexpr std::size_t limit = sizeof(sockaddr_un{}.sun_path) - 1;
    if (target.size() > limit) {
        malformed(a.text, "socket path is " + std::to_string(target.size()) +
                              " bytes; the limit (sun_path) is " + std::to_string(limit));
    }
}

void parse_tcp_target(Address& a, std::string_view rest) {
    const std::string_view expected = "expected tcp://HOST:PORT with a port from 1 to 65535";
    if (!rest.starts_with("//")) malformed(a.text, expected);
    rest.remove_prefix(2);
    std::string_view host;
    std::string_view port;
    if (rest.starts_with('[')) {  // [IPv6]:PORT
        const auto close = rest.find(']');
        if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
            malformed(a.text, "expected tcp://[IPV6]:PORT");
        }
        host = rest.substr(1, close - 1);
        port = rest.substr(close + 2);
    } else {
        const auto colon = rest.rfind(':');
        if (colon == std::string_view::npos) malformed(a.text, expected);
        host = rest.substr(0, colon);
        port = rest.substr(colon + 1);
        if (host.find(':') != std::string_view::npos)
            malformed(a.text, "an IPv6 host goes in brackets: tcp://[::1]:PORT");
    }
    const auto number = parse_int<unsigned>(port);
    if (host.empty() || !number || *number == 0 || *number > 65535) malformed(a.text, expected);
    a.target = std::string(host);
    a.stream.port = static_cast<std::uint16_t>(*number);
}

// A NATS subject: tokens separated by '.', none empty, no spaces or control characters. A
// receiver may use the wildcards `*` (one token) and `>` (the rest, last token only); whether
// a sender may is checked when it opens (publishing to a wildcard is refused).
bool is_nats_subject(std::string_view subject) {
    if (subject.empty()) return false;
    std::size_t start = 0;
    for (;;) {
        const auto dot = subject.find('.', start);
        const auto token = subject.substr(start, dot == std::string_view::npos ? dot : dot - start);
        if (token.empty()) return false;
        for (const char c : token) {
            if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return false;
        }
        if (token.size() > 1 &&
            (token.find('*') != std::string_view::npos || token.find('>') != std::string_view::npos))
            return false;
        if (token == ">" && dot != std::string_view::npos) return false;
        if (dot == std::string_view::npos) return true;
        start = dot + 1;
    }
}

// nats://HOST[:PORT]/SUBJECT
void parse_nats_target(Address& a, std::string_view rest) {
    const std::string_view expected =
        "expected nats://HOST:PORT/SUBJECT, e.g. nats://localhost:4222/cam.front";
    if (!rest.starts_with("//")) malformed(a.text, expected);
    rest.remove_prefix(2);
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos) malformed(a.text, "no subject: " + std::string(expected));
    auto authority = rest.substr(0, slash);
    const auto subject = rest.substr(slash + 1);
    std::string_view port;
    bool has_port = false;
    if (authority.starts_with('[')) {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) malformed(a.text, "expected nats://[IPV6]:PORT/SUBJECT");
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':') malformed(a.text, expected);
            port = authority.substr(close + 2);
            has_port = true;
        }
        authority = authority.substr(1, close - 1);
    } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
        port = authority.substr(colon + 1);
        has_port = true;
        authority = authority.substr(0, colon);
        if (authority.find(':') != std::string_view::npos)
            malformed(a.text, "an IPv6 host goes in brackets: nats://[::1]:4222/SUBJECT");
    }
    if (authority.empty()) malformed(a.text, "no host: " + std::string(expected));
    a.nats.port = 4222;  // NATS's registered port
    if (has_port) {
        const auto number = parse_int<unsigned>(port);
        if (!number || *number == 0 || *number > 65535) malformed(a.text, "port: " + std::string(expected));
        a.nats.port = static_cast<std::uint16_t>(*number);
    }
    if (!is_nats_subject(subject)) {
        malformed(a.text,
                  "subject \"" + std::string(subject) +
                      "\": expected tokens separated by '.', none empty, no spaces; wildcards * and > "
                      "only as whole tokens, > only last");
    }
    a.target = std::string(authority);
    a.nats.subject = std::string(subject);
}

}  // namespace detail

namespace {

// The address as shown in messages: a token's value never appears.
std::string redact_token(std::string_view text) {
    std::string shown(text);
    const auto q = shown.find('?');
    if (q == std::string::npos) return shown;
    for (auto at = shown.find("token=", q); at != std::string::npos; at = shown.find("token=", at + 1)) {
        if (shown[at - 1] != '?' && shown[at - 1] != '&') continue;
        const auto begin = at + 6;
        const auto end = std::min(shown.find('&', begin), shown.size());
        shown.replace(begin, end - begin, "***");
    }
    return shown;
}

void parse_nats_option(Address& a, std::string_view name, std::string_view value) {
    const auto bad = [&](std::string_view expected) {
        // Never the token's value: it is a secret.
        malformed(a.text, "option " + std::string(name) + (name == "token" ? "" : "=" + std::string(value)) +
                              ": expected " + std::string(expected));
    };
    // Queue groups, streams and consumers are names: no spaces, dots or wildcards.
    const auto is_name = [](std::string_view v) {
        return !v.empty() && v.size() <= 255 && v.find_first_of(" \t.*>/\\") == std::string_view::npos;
    };
    if (name == "group") {
        if (!is_name(value)) bad("a queue group name (no spaces, '.', '*' or '>')");
        a.nats.group = std::string(value);
    } else if (name == "creds") {
        if (value.empty()) bad("the path of a .creds file");
        a.nats.creds = std::string(value);
    } else if (name == "token") {
        if (value.empty()) bad("a token");
        a.nats.token = std::string(value);
    } else if (name == "stream") {
        if (!is_name(value)) bad("a JetStream stream name (no spaces, '.', '*', '>' or '/')");
        a.nats.stream = std::string(value);
    } else if (name == "durable") {
        if (!is_name(value)) bad("a JetStream consumer name (no spaces, '.', '*', '>' or '/')");
        a.nats.durable = std::string(value);
    } else if (name == "reconnect") {
        const auto n = parse_int<int>(value);
        if (!n || *n < 0 || *n > 1'000'000) bad("a number of reconnection attempts, 0 or more");
        a.nats.reconnect = *n;
    }
}

bool is_nats_option(std::string_view name) {
    return name == "group" || name == "creds" || name == "token" || name == "stream" || name == "durable" ||
           name == "reconnect";
}

void parse_option(Address& a, std::string_view option) {
    const auto eq = option.find('=');
    if (eq == std::string_view::npos)
        malformed(a.text, "expected NAME=VALUE in option \"" + std::string(option) + "\"");
    const auto name = option.substr(0, eq);
    const auto value = option.substr(eq + 1);
    const auto bad = [&](std::string_view expected) {
        malformed(a.text, "option " + std::string(name) + "=" + std::string(value) + ": expected " +
                              std::string(expected));
    };
    if (is_nats_option(name)) {
        if (a.transport != Transport::nats) bad("no such option here: it is for nats:// addresses");
        parse_nats_option(a, name, value);
        return;
    }
    if (a.transport == Transport::nats && name != "max" && name != "inflight") {
        malformed(a.text, "unknown option \"" + std::string(name) +
                              "\" for nats:// (known: group, creds, token, stream, durable, reconnect, max, "
                              "inflight)");
    }
    if (name == "mode") {
        const auto mode = parse_int<unsigned>(value, 8);
        if (!mode || *mode > 0777) bad("octal permissions such as 0600");
        a.mode = static_cast<mode_t>(*mode);
    } else if (name == "capacity" || name == "max") {
        std::size_t size = 0;
        try {
            size = parse_size(value);
        } catch (const Error&) {
            bad("a size such as 4096, 64KiB or 1MiB");
        }
        if (size == 0) bad("a size above zero");
        (name == "capacity" ? a.capacity : a.max_message) = size;
    } else if (name == "wait") {
        if (value == "spin") {
            a.region.wait = WaitMode::spin;
        } else if (value == "block") {
            a.region.wait = WaitMode::block;
        } else if (value == "adaptive") {
            a.region.wait = WaitMode::adaptive;
        } else {
            bad("spin, block or adaptive");
        }
    } else if (name == "type") {
        const auto type = parse_int<long>(value);
        if (!type || *type <= 0) bad("a System V message type above zero");
        a.sysv.type = *type;
    } else if (name == "framing") {
        if (value == "length") {
            a.stream.framing = Framing::length;
        } else if (value == "line") {
            a.stream.framing = Framing::line;
        } else {
            bad("length or line");
        }
        if (!is_stream(a.transport)) bad("no framing option: this transport keeps message boundaries itself");
    } else if (name == "keep") {
        if (value != "0" && value != "1") bad("0 or 1");
        a.keep = value == "1";
    } else if (name == "subscribers" || name == "history" || name == "overflow") {
        if (a.transport != Transport::topic) bad("no " + std::string(name) + " option: only topic: has it");
        if (name == "overflow") {
            if (value != "block" && value != "drop") bad("block or drop");
            a.region.drop = value == "drop";
        } else if (name == "subscribers") {
            const auto n = parse_int<std::uint32_t>(value);
            if (!n || *n < 1 || *n > 1024) bad("a number of subscriber slots from 1 to 1024");
            a.region.subscribers = *n;
        } else {
            const auto n = parse_int<std::uint32_t>(value);
            if (!n || *n > 64) bad("a number of messages from 0 to 64");
            a.region.history = *n;
        }
    } else if (name == "clients" || name == "inflight") {
        if (a.transport != Transport::service && (name == "clients" || a.transport != Transport::nats))
            bad(name == "clients" ? "no clients option: only service: has it"
                                  : "no inflight option: only services (service:, nats://) have it");
        const auto n = parse_int<std::uint32_t>(value);
        if (name == "clients") {
            // The server holds two ring ends per slot and its own: 2047, of the 2048 ends the
            // kernel's robust list covers in one process.
            if (!n || *n < 1 || *n > 1023) bad("a number of client slots from 1 to 1023");
            a.region.clients = *n;
        } else {
            if (!n || *n < 1 || *n > 64) bad("a number of calls in flight per client from 1 to 64");
            a.region.inflight = *n;
        }
    } else if (name == "stats") {
        if (a.transport != Transport::shm && a.transport != Transport::sysvshm &&
            a.transport != Transport::topic)
            bad("no stats option: only shm:, sysvshm: and topic: have it");
        if (value != "latency") bad("latency");
        a.region.latency = true;
    } else if (name == "pace") {
        if (a.transport != Transport::file) bad("no pace option: only file: has it");
        if (value != "recorded" && value != "fast") bad("recorded or fast");
        a.file.pace_recorded = value == "recorded";
    } else if (name == "senders") {
        if (a.transport != Transport::shm && a.transport != Transport::sysvshm)
            bad("no senders option: only shm: and sysvshm: have it");
        const auto n = parse_int<std::uint32_t>(value);
        if (!n || *n < 1 || *n > 64) bad("a number of sender lanes from 1 to 64");
        a.region.senders = *n;
    } else {
        malformed(a.text, "unknown option \"" + std::string(name) +
                              "\" (known: mode, capacity, max, wait, type, framing, keep; rings: "
                              "senders; rings and topics: stats; topics: subscribers, overflow, history; "
                              "services: clients, "
                              "inflight; "
                              "file: pace)");
    }
}

}  // namespace

std::string_view to_string(Transport transport) noexcept {
    return detail::transport_entry(transport).scheme;
}

bool is_stream(Transport transport) noexcept {
    return detail::transport_entry(transport).stream;
}

Address parse_address(std::string_view given) {
    Address a;
    a.text = redact_token(given);
    std::string_view text = a.text;  // what messages show
    std::string schemes;             // "fd, fifo, …, nats, topic", for messages
    std::string last;
    for (const auto& entry : detail::transports()) {
        if (!last.empty()) schemes += (schemes.empty() ? "" : ", ") + last;
        last = entry.scheme;
    }
    const auto colon = text.find(':');
    if (colon == std::string_view::npos || colon == 0)
        malformed(text, "expected SCHEME:TARGET, where SCHEME is one of " + schemes + ", " + last);
    const auto scheme = text.substr(0, colon);
    auto rest = text.substr(colon + 1);
    const detail::TransportEntry* entry = nullptr;
    for (const auto& candidate : detail::transports()) {
        if (candidate.scheme == scheme) entry = &candidate;
    }
    if (entry == nullptr)
        malformed(text,
                  "unknown scheme \"" + std::string(scheme) + "\"; expected " + schemes + " or " + last);
    a.transport = entry->transport;

    // Options come after the last '?', so a path may not contain '?': a documented limit.
    std::string_view options;
    if (const auto q = rest.find('?'); q != std::string_view::npos) {
        // From the address as given: the shown text has the token's value replaced.
        options = given.substr(colon + 1 + q + 1);
        rest = rest.substr(0, q);
    }
    a.target = std::string(rest);

    entry->parse_target(a, rest);

    while (!options.empty()) {
        const auto amp = options.find('&');
        const auto option = options.substr(0, amp);
        if (option.empty()) malformed(text, "empty option between '&' separators");
        parse_option(a, option);
        options = amp == std::string_view::npos ? std::string_view{} : options.substr(amp + 1);
    }
    return a;
}

const SysvKey& Address::sysv_key() const {
    if (!sysv_key_) sysv_key_ = SysvKey::parse(target);
    return *sysv_key_;
}

std::size_t parse_size(std::string_view text) {
    static constexpr std::array<std::pair<std::string_view, std::size_t>, 8> kUnits{{
        {"KiB", 1ull << 10},
        {"MiB", 1ull << 20},
        {"GiB", 1ull << 30},
        {"K", 1ull << 10},
        {"M", 1ull << 20},
        {"G", 1ull << 30},
        {"B", 1},
        {"", 1},
    }};
    for (const auto& [unit, scale] : kUnits) {
        if (!text.ends_with(unit)) continue;
        const auto number = parse_int<std::size_t>(text.substr(0, text.size() - unit.size()));
        if (!number) break;
        if (*number > std::numeric_limits<std::size_t>::max() / scale) break;
        return *number * scale;
    }
    throw_error(
        std::errc::invalid_argument,
        "size \"" + std::string(text) + "\": expected a number with an optional unit (B, KiB, MiB, GiB)");
}

std::string format_size(std::size_t bytes) {
    static constexpr std::array<std::pair<std::string_view, std::size_t>, 3> kUnits{{
        {"GiB", 1ull << 30},
        {"MiB", 1ull << 20},
        {"KiB", 1ull << 10},
    }};
    for (const auto& [unit, scale] : kUnits) {
        if (bytes >= scale && bytes % scale == 0) return std::to_string(bytes / scale) + std::string(unit);
    }
    return std::to_string(bytes) + "B";
}

}  // namespace ipckit
