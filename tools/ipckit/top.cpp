// ipckit top [--sort COLUMN] [--interval SECONDS] [--once] [--json] [--prometheus] [--match GLOB]
// — every ipckit channel on this machine, refreshed: rates, backlog, the slowest reader's lag,
// missed records, holders and whether they live, sleepers (docs/observability.md). It only reads
// regions (channel_stats.hpp). Interactive: the terminal in raw mode, `q` quits, `s` changes the
// sort column; the terminal is restored on exit and on SIGINT/SIGTERM.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <poll.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>

#include "commands.hpp"
#include "ipckit/channel_stats.hpp"
#include "ipckit/objects.hpp"
#include "json.hpp"

namespace ipckit::cli {
namespace {

struct TopOptions {
    std::string sort = "lag";
    double interval = 1;
    bool once = false;
    bool json = false;
    bool prometheus = false;
    std::string match = "*";
};

constexpr std::array<const char*, 6> kSortColumns{"lag", "backlog", "rate", "missed", "sleepers", "address"};

// A channel as shown: its snapshot and the rates since the one before.
struct Row {
    ChannelStats stats;
    std::optional<double> bytes_per_s;
    std::optional<double> messages_per_s;
};

// One of a channel's counters, if it has them (rings, lanes, topics).
using CounterField = std::uint64_t ChannelCounters::*;
std::optional<std::uint64_t> counted(const ChannelStats& c, CounterField field) {
    return c.counters ? std::optional<std::uint64_t>((*c.counters).*field) : std::nullopt;
}

std::vector<ChannelStats> snapshot(const std::string& match) {
    std::vector<ChannelStats> shown;
    for (auto& c : read_channel_stats())
        if (address_matches(c.address, match)) shown.push_back(std::move(c));
    return shown;
}

// Rates from the counters that only grow: messages and payload bytes sent, as the ends of a ring,
// lanes or topic counted them; a queue's message count is a level, not a counter, and gets none.
std::vector<Row> rows_since(std::vector<ChannelStats> now, const std::vector<ChannelStats>& before,
                            double seconds) {
    std::map<std::string, const ChannelStats*> earlier;
    for (const auto& c : before)
        earlier[c.address] = &c;
    std::vector<Row> rows;
    for (auto& c : now) {
        Row row{std::move(c), {}, {}};
        const auto it = earlier.find(row.stats.address);
        if (it != earlier.end() && seconds > 0) {
            const auto rate = [&](const std::optional<std::uint64_t>& a,
                                  const std::optional<std::uint64_t>& b) {
                return a && b && *a >= *b ? std::optional<double>(static_cast<double>(*a - *b) / seconds)
                                          : std::nullopt;
            };
            const ChannelStats& was = *it->second;
            row.bytes_per_s = rate(counted(row.stats, &ChannelCounters::bytes_sent),
                                   counted(was, &ChannelCounters::bytes_sent));
            row.messages_per_s = rate(counted(row.stats, &ChannelCounters::messages_sent),
                                      counted(was, &ChannelCounters::messages_sent));
        }
        rows.push_back(std::move(row));
    }
    return rows;
}

void sort_rows(std::vector<Row>& rows, const std::string& column) {
    const auto key = [&](const Row& r) -> double {
        const auto value = [](const std::optional<std::uint64_t>& v) {
            return static_cast<double>(v.value_or(0));
        };
        if (column == "backlog") return value(r.stats.backlog);
        if (column == "rate") return r.bytes_per_s.value_or(0);
        if (column == "missed") return value(r.stats.missed);
        if (column == "sleepers") return r.stats.sleepers;
        return value(r.stats.slowest_lag_bytes);
    };
    std::stable_sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
        if (column == "address") return a.stats.address < b.stats.address;
        return key(a) > key(b);  // the largest first: what needs looking at
    });
}

std::size_t alive_holders(const ChannelStats& c) {
    return static_cast<std::size_t>(
        std::count_if(c.holders.begin(), c.holders.end(), [](const ChannelHolder& h) { return h.alive; }));
}

std::string optional_text(const std::optional<std::uint64_t>& v) {
    return v ? std::to_string(*v) : "-";
}
// A latency quantile of stats=latency, short: 512ns, 4us, 2ms, 1s (bucket edges, powers of two).
std::string latency_text(const ChannelStats& c, double q) {
    const auto ns = latency_quantile(c.latency_histogram, q);
    if (!ns) return "-";
    if (*ns < 10'000) return fmt::format("{}ns", *ns);
    if (*ns < 10'000'000) return fmt::format("{}us", *ns / 1000);
    if (*ns < 10'000'000'000) return fmt::format("{}ms", *ns / 1'000'000);
    return fmt::format("{}s", *ns / 1'000'000'000);
}

// One line of the table: every column after the address, in the order of the heading.
constexpr auto kRowFormat = FMT_STRING(
    "{:<{}} {:<7} {:>10} {:>12} {:>10} {:>10} {:>8} {:>7} {:>5} {:>7} {:>5} {:>7} {:>7} {:>7} {:>5} {:>6} "
    "{:>6}\n");
std::string rate_text(const std::optional<double>& v) {
    return v ? fmt::format("{:.0f}", *v) : "-";
}

std::string table(const std::vector<Row>& rows, const std::string& sort) {
    std::size_t width = 7;
    for (const auto& r : rows)
        width = std::max(width, r.stats.address.size());
    std::string out =
        fmt::format(kRowFormat, "ADDRESS", width, "KIND", "MSG/S", "B/S", "BACKLOG", "LAG", "LAGMSG",
                    "MISSED", "SUBS", "HOLDERS", "SLEEP", "FULL", "SLEEPS", "WAKES", "TAKEN", "P50", "P99");
    for (const auto& r : rows) {
        const auto& c = r.stats;
        if (!c.problem.empty()) {
            out += fmt::format("{:<{}} {:<7} {}\n", c.address, width, c.kind, c.problem);
            continue;
        }
        const bool region = c.capacity.has_value();  // queues: only what the kernel says
        const auto messages = c.counters   ? rate_text(r.messages_per_s)
                              : c.messages ? "q " + std::to_string(*c.messages)
                                           : "-";
        const auto count = [&](CounterField field) { return optional_text(counted(c, field)); };
        out += fmt::format(kRowFormat, c.address, width, c.kind, messages, rate_text(r.bytes_per_s),
                           optional_text(c.backlog), optional_text(c.slowest_lag_bytes),
                           optional_text(c.slowest_lag_messages), optional_text(c.missed),
                           c.kind == "topic" ? std::to_string(c.subscribers) : "-",
                           region ? fmt::format("{}/{}", alive_holders(c), c.holders.size()) : "-",
                           region ? std::to_string(c.sleepers) : "-", count(&ChannelCounters::full_waits),
                           count(&ChannelCounters::sleeps), count(&ChannelCounters::wakes_sent),
                           count(&ChannelCounters::takeovers), latency_text(c, 0.5), latency_text(c, 0.99));
    }
    out += fmt::format("{} channel(s), sorted by {}; q quits, s changes the sort\n", rows.size(), sort);
    return out;
}

std::string json(const std::vector<Row>& rows) {
    const auto number = [](const std::optional<std::uint64_t>& v) {
        return json_number_or_null(v.has_value(), v.value_or(0));
    };
    const auto rate = [](const std::optional<double>& v) { return v ? fmt::format("{:.1f}", *v) : "null"; };
    return json_array(rows, [&](const Row& row) {
        const auto& c = row.stats;
        std::string holders = "[";
        for (std::size_t h = 0; h < c.holders.size(); ++h)
            holders += fmt::format(
                "{}{{\"role\": {}, \"pid\": {}, \"alive\": {}, \"messages\": {}, \"bytes\": {}, "
                "\"missed\": {}}}",
                h == 0 ? "" : ", ", json_string(c.holders[h].role), c.holders[h].pid, c.holders[h].alive,
                c.holders[h].messages, c.holders[h].bytes, c.holders[h].missed);
        holders += "]";
        std::string histogram = "null";
        if (!c.latency_histogram.empty())
            histogram = fmt::format("[{}]", fmt::join(c.latency_histogram, ", "));
        const auto quantile = [&](double q) {
            const auto ns = latency_quantile(c.latency_histogram, q);
            return json_number_or_null(ns.has_value(), ns.value_or(0));
        };
        std::string counters = "null";
        if (const auto& k = c.counters) {
            counters = fmt::format(
                "{{\"messages_sent\": {}, \"bytes_sent\": {}, \"messages_received\": {}, "
                "\"bytes_received\": {}, \"full_waits\": {}, \"sleeps\": {}, \"wakes_sent\": {}, "
                "\"takeovers\": {}}}",
                k->messages_sent, k->bytes_sent, k->messages_received, k->bytes_received, k->full_waits,
                k->sleeps, k->wakes_sent, k->takeovers);
        }
        return fmt::format(
            "{{\"address\": {}, \"kind\": {}, \"problem\": {}, \"capacity\": {}, \"bytes\": {}, "
            "\"messages\": {}, "
            "\"backlog\": {}, \"slowest_lag_bytes\": {}, \"slowest_lag_messages\": {}, \"missed\": {}, "
            "\"subscribers\": {}, \"sleepers\": {}, \"bytes_per_s\": {}, \"messages_per_s\": {}, "
            "\"holders\": {}, \"counters\": {}, \"latency_p50_ns\": {}, \"latency_p99_ns\": {}, "
            "\"latency_histogram\": {}}}",
            json_string(c.address), json_string(c.kind), c.problem.empty() ? "null" : json_string(c.problem),
            number(c.capacity), number(c.bytes), number(c.messages), number(c.backlog),
            number(c.slowest_lag_bytes), number(c.slowest_lag_messages), number(c.missed), c.subscribers,
            c.sleepers, rate(row.bytes_per_s), rate(row.messages_per_s), holders, counters, quantile(0.5),
            quantile(0.99), histogram);
    });
}

// The text exposition format: a label value escapes \, " and newline; each family has one HELP
// and one TYPE line before its samples; counters end in _total.
std::string label_value(std::string_view text) {
    std::string out;
    for (const char c : text) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

std::string prometheus(const std::vector<ChannelStats>& channels) {
    struct Family {
        const char* name;
        const char* type;
        const char* help;
        std::function<std::optional<std::uint64_t>(const ChannelStats&)> value;
    };
    const auto counter = [](CounterField field) {
        return [field](const ChannelStats& c) { return counted(c, field); };
    };
    const std::vector<Family> families{
        {"ipckit_channel_bytes_total", "counter", "Bytes ever committed to the ring, lanes or topic.",
         [](const ChannelStats& c) { return c.bytes; }},
        {"ipckit_topic_messages_total", "counter", "Messages ever published on the topic.",
         [](const ChannelStats& c) { return c.kind == "topic" ? c.messages : std::nullopt; }},
        {"ipckit_queue_messages", "gauge", "Messages queued now (System V and POSIX queues).",
         [](const ChannelStats& c) { return c.kind != "topic" ? c.messages : std::nullopt; }},
        {"ipckit_channel_backlog_bytes", "gauge", "Bytes committed and not yet taken by the slowest reader.",
         [](const ChannelStats& c) { return c.backlog; }},
        {"ipckit_channel_slowest_lag_bytes", "gauge", "The slowest reader's lag behind the writer, bytes.",
         [](const ChannelStats& c) { return c.slowest_lag_bytes; }},
        {"ipckit_topic_slowest_lag_messages", "gauge", "The slowest subscriber's lag, messages.",
         [](const ChannelStats& c) { return c.slowest_lag_messages; }},
        {"ipckit_topic_missed_total", "counter", "Records lost to overflow=drop, all subscribers.",
         [](const ChannelStats& c) { return c.missed; }},
        {"ipckit_channel_sleepers", "gauge", "Processes asleep on the region now.",
         [](const ChannelStats& c) {
             return c.problem.empty() && c.capacity ? std::optional<std::uint64_t>(c.sleepers) : std::nullopt;
         }},
        {"ipckit_channel_holders", "gauge", "Ends of the region held, by whether their process lives.",
         nullptr},
        {"ipckit_channel_messages_sent_total", "counter",
         "Messages committed by the producers or the publisher.", counter(&ChannelCounters::messages_sent)},
        {"ipckit_channel_sent_bytes_total", "counter", "Payload bytes of the messages sent.",
         counter(&ChannelCounters::bytes_sent)},
        {"ipckit_channel_messages_received_total", "counter",
         "Messages consumed by the consumer, the lanes receiver or all joined subscribers.",
         counter(&ChannelCounters::messages_received)},
        {"ipckit_channel_received_bytes_total", "counter", "Payload bytes of the messages received.",
         counter(&ChannelCounters::bytes_received)},
        {"ipckit_channel_full_waits_total", "counter", "Sends that found no room.",
         counter(&ChannelCounters::full_waits)},
        {"ipckit_channel_sleeps_total", "counter", "Futex sleeps of the region's ends.",
         counter(&ChannelCounters::sleeps)},
        {"ipckit_channel_wakes_sent_total", "counter", "Futex wake-ups issued for a sleeping peer.",
         counter(&ChannelCounters::wakes_sent)},
        {"ipckit_channel_takeovers_total", "counter", "Ends claimed from a holder that had died.",
         counter(&ChannelCounters::takeovers)},
        {"ipckit_channel_latency_p50_nanoseconds", "gauge",
         "stats=latency: median commit-to-consume time since format (a power-of-two bucket edge).",
         [](const ChannelStats& c) { return latency_quantile(c.latency_histogram, 0.5); }},
        {"ipckit_channel_latency_p99_nanoseconds", "gauge",
         "stats=latency: 99th percentile commit-to-consume time since format (a bucket edge).",
         [](const ChannelStats& c) { return latency_quantile(c.latency_histogram, 0.99); }},
        {"ipckit_channel_unreadable", "gauge",
         "1 for a region top cannot read: corrupt, or of another layout version (see the problem label).",
         [](const ChannelStats& c) {
             return c.problem.empty() ? std::nullopt : std::optional<std::uint64_t>(1);
         }},
    };
    std::string out;
    for (const auto& f : families) {
        out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name, f.help, f.name, f.type);
        for (const auto& c : channels) {
            const std::string labels =
                fmt::format("address=\"{}\",kind=\"{}\"", label_value(c.address), label_value(c.kind));
            if (f.value == nullptr) {
                if (!c.problem.empty() || !c.capacity) continue;
                const auto alive = alive_holders(c);
                out += fmt::format("{}{{{},alive=\"true\"}} {}\n", f.name, labels, alive);
                out += fmt::format("{}{{{},alive=\"false\"}} {}\n", f.name, labels, c.holders.size() - alive);
            } else if (const auto v = f.value(c)) {
                const std::string problem =
                    c.problem.empty() ? "" : fmt::format(",problem=\"{}\"", label_value(c.problem));
                out += fmt::format("{}{{{}{}}} {}\n", f.name, labels, problem, *v);
            }
        }
    }
    return out;
}

std::atomic<bool> g_stop{false};
extern "C" void stop_top(int) {
    g_stop.store(true);
}

// Raw mode for single keys, undone by the destructor: on `q`, on a signal (the loop sees the
// flag) and on an exception.
class RawTerminal {
public:
    RawTerminal() {
        if (::isatty(STDIN_FILENO) == 0 || ::tcgetattr(STDIN_FILENO, &saved_) != 0) return;
        termios raw = saved_;
        raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        active_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    RawTerminal(const RawTerminal&) = delete;
    RawTerminal& operator=(const RawTerminal&) = delete;
    ~RawTerminal() {
        if (active_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
    }

private:
    termios saved_{};
    bool active_ = false;
};

int run_live(TopOptions options) {
    struct sigaction action {};
    action.sa_handler = stop_top;  // no SA_RESTART: poll returns at once
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);
    const RawTerminal terminal;
    const bool keys = ::isatty(STDIN_FILENO) != 0;
    std::size_t sort_index = static_cast<std::size_t>(
        std::find(kSortColumns.begin(), kSortColumns.end(), options.sort) - kSortColumns.begin());
    auto before = snapshot(options.match);
    auto taken = std::chrono::steady_clock::now();
    std::vector<Row> rows = rows_since(before, {}, 0);
    while (!g_stop.load()) {
        sort_rows(rows, kSortColumns[sort_index]);
        const std::string screen = "\x1b[H\x1b[2J" + table(rows, kSortColumns[sort_index]);
        std::fwrite(screen.data(), 1, screen.size(), stdout);
        std::fflush(stdout);
        const auto next = taken + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                      std::chrono::duration<double>(options.interval));
        while (!g_stop.load() && std::chrono::steady_clock::now() < next) {
            const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
                next - std::chrono::steady_clock::now());
            pollfd in{STDIN_FILENO, POLLIN, 0};
            if (!keys) {
                std::this_thread::sleep_for(std::min(wait, std::chrono::milliseconds(100)));
                continue;
            }
            if (::poll(&in, 1, static_cast<int>(std::max<long>(wait.count(), 1))) <= 0) continue;
            char key = 0;
            if (::read(STDIN_FILENO, &key, 1) != 1) continue;
            if (key == 'q' || key == 'Q') g_stop.store(true);
            if (key == 's') {
                sort_index = (sort_index + 1) % kSortColumns.size();
                break;  // redraw now, sorted anew
            }
        }
        if (g_stop.load()) break;
        auto now = snapshot(options.match);
        const auto at = std::chrono::steady_clock::now();
        if (at >= next) {
            rows = rows_since(now, before, std::chrono::duration<double>(at - taken).count());
            before = std::move(now);
            taken = at;
        } else {
            rows = rows_since(std::move(now), before, std::chrono::duration<double>(at - taken).count());
        }
    }
    std::fputs("\n", stdout);
    return 0;
}

int run_top(const TopOptions& options) {
    if (std::find(kSortColumns.begin(), kSortColumns.end(), options.sort) == kSortColumns.end()) {
        std::fprintf(stderr,
                     "ipckit top: --sort %s: expected lag, backlog, rate, missed, sleepers or address\n",
                     options.sort.c_str());
        return 2;
    }
    if (options.prometheus) {  // counters, not rates: the scraper takes the differences
        const std::string text = prometheus(snapshot(options.match));
        std::fwrite(text.data(), 1, text.size(), stdout);
        return 0;
    }
    if (!options.once) return run_live(options);
    const auto before = snapshot(options.match);
    const auto start = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(options.interval));
    auto rows = rows_since(snapshot(options.match), before,
                           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    sort_rows(rows, options.sort);
    const std::string text = options.json ? json(rows) : table(rows, options.sort);
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
}

void setup(CLI::App& app, int& exit_code) {
    auto options = std::make_shared<TopOptions>();
    auto* command = app.add_subcommand(
        "top", "Every ipckit channel live: rates, backlog, slowest lag, missed, holders, sleepers (q quits)");
    command->add_option("--sort", options->sort,
                        "column: lag (default), backlog, rate, missed, sleepers, address");
    command->add_option("--interval", options->interval, "seconds between refreshes (and the rates' window)")
        ->check(CLI::PositiveNumber);
    command->add_flag("--once", options->once, "print one table (two snapshots --interval apart) and exit");
    command->add_flag("--json", options->json, "with --once: a JSON array instead of the table");
    command->add_flag("--prometheus", options->prometheus,
                      "print the Prometheus text exposition format and exit");
    command->add_option("--match", options->match,
                        "only addresses matching this shell glob, e.g. 'topic:/cam*'");
    command->callback([options, &exit_code] { exit_code = run_top(*options); });
}

IPCKIT_COMMAND(45, setup);

}  // namespace
}  // namespace ipckit::cli
