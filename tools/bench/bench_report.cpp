// `ipckit bench` output: table, claims, JSON and CSV.
#include "bench_report.hpp"

#include "bench_pairs.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <set>

#include <fmt/format.h>

namespace ipckit::bench {
namespace {

std::string json_string(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20)
                    out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
                else
                    out += c;
        }
    }
    return out + "\"";
}

std::string csv_field(std::string_view text) {
    if (text.find_first_of(",\"\n") == std::string_view::npos) return std::string(text);
    std::string out = "\"";
    for (const char c : text) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

// A JSON number: integers stay integers, the rest keep enough digits.
std::string json_number(double value) {
    if (!std::isfinite(value)) return "0";
    return fmt::format("{:.6g}", value);
}

const Result* find_row(const std::vector<Result>& results, std::string_view transport, Mode mode,
                       std::size_t size) {
    for (const auto& r : results)
        if (r.transport == transport && r.mode == mode && (size == 0 || r.size == size) && r.ok()) return &r;
    return nullptr;
}

bool is_ring(std::string_view name) {
    return name.starts_with("shm") || name.starts_with("sysvshm");
}
// The header-only loan row passes a frame by reference: it does not move the payload, so it is
// left out where rows are ranked by how fast they move bytes.
bool moves_every_byte(std::string_view name) {
    return !name.ends_with("-header");
}
// Rows with several peers (a topic's N subscribers, N senders into lanes) measure fan-out and
// fan-in, not one link: the claims and the "ahead of every peer" lines rank links, so they leave
// them out (a 4-subscriber round trip is not a mechanism's latency, two senders' sum not its rate).
bool is_one_link(std::string_view name) {
    return name.find("subscribers=") == std::string_view::npos &&
           name.find("senders=") == std::string_view::npos;
}
bool is_message_queue(std::string_view name) {
    return name == "sysvmq" || name == "posixmq" || name == "raw-sysvmq";
}

std::string format_rate(double per_second) {
    if (per_second >= 1e9) return fmt::format("{:.2f}G", per_second / 1e9);
    if (per_second >= 1e6) return fmt::format("{:.2f}M", per_second / 1e6);
    if (per_second >= 1e3) return fmt::format("{:.1f}k", per_second / 1e3);
    return fmt::format("{:.0f}", per_second);
}

std::string format_bandwidth(double bytes_per_s) {
    if (bytes_per_s >= 1e9) return fmt::format("{:.2f} GB/s", bytes_per_s / 1e9);
    return fmt::format("{:.1f} MB/s", bytes_per_s / 1e6);
}

// The rows the claims compare: ipckit's channels and the peers (the raw loops only when the
// channel layer is not built, so the claims still speak about the mechanisms).
std::vector<const Result*> contenders_for_claims(const std::vector<Result>& results, Mode mode,
                                                 std::size_t size) {
    const bool have_channels = std::any_of(results.begin(), results.end(), [](const Result& r) {
        return r.category == Category::channel && r.ok();
    });
    std::vector<const Result*> rows;
    for (const auto& r : results) {
        if (!r.ok() || r.mode != mode || r.size != size || !moves_every_byte(r.transport) ||
            !is_one_link(r.transport))
            continue;
        if (r.category == Category::peer || r.category == Category::channel ||
            (!have_channels && r.category == Category::raw))
            rows.push_back(&r);
    }
    return rows;
}

// The size the claims look at: `wanted` when the run has it, else the nearest one measured.
std::size_t nearest_size(const std::vector<Result>& results, Mode mode, std::size_t wanted) {
    std::size_t best = 0;
    for (const auto& r : results) {
        if (!r.ok() || r.mode != mode || r.category == Category::baseline) continue;
        const auto distance = [&](std::size_t s) {
            return std::abs(std::log2(double(s)) - std::log2(double(wanted)));
        };
        if (best == 0 || distance(r.size) < distance(best)) best = r.size;
    }
    return best;
}

// Small ratios keep two significant digits: 0.0031x says more than 0.00x.
std::string format_ratio(double ratio) {
    return ratio >= 0.1 ? fmt::format("{:.2f}x", ratio) : fmt::format("{:.2g}x", ratio);
}

// "0.81x [0.75-0.85]": the median of the pairs and their quartiles; "?" after it when fewer
// than half of the pairs were steady.
std::string ratio_cell(const Result& r) {
    if (!r.ratio || !r.spread) return "-";
    return fmt::format("{} [{}-{}]{}", format_ratio(r.spread->median), format_ratio(r.spread->q1),
                       format_ratio(r.spread->q3), r.spread->unsteady() ? "?" : "");
}

// "median 0.81x (quartiles 0.75-0.85x, min-max 0.70-0.90x, 8 pairs, 7 steady)".
std::string describe_spread(const Spread& s) {
    return fmt::format("median {} (quartiles {}-{}, min-max {}-{}, {} pairs, {} steady)",
                       format_ratio(s.median), format_ratio(s.q1), format_ratio(s.q3), format_ratio(s.min),
                       format_ratio(s.max), s.total, s.steady);
}

std::string json_pairs(const std::vector<Pair>& pairs) {
    std::string out = "[";
    for (std::size_t i = 0; i < pairs.size(); ++i) {
        const auto& p = pairs[i];
        out += fmt::format(
            "{}{{\"before\": {}, \"row\": {}, \"after\": {}, \"ratio\": {}, \"steady\": {}, "
            "\"remeasured\": {}}}",
            i == 0 ? "" : ", ", json_number(p.before), json_number(p.row), json_number(p.after),
            json_number(p.ratio()), p.steady ? "true" : "false", p.remeasured ? "true" : "false");
    }
    return out + "]";
}

std::string json_spread(const Spread& s) {
    return fmt::format(
        "{{\"median\": {}, \"q1\": {}, \"q3\": {}, \"min\": {}, \"max\": {}, \"pairs\": {}, "
        "\"steady\": {}}}",
        json_number(s.median), json_number(s.q1), json_number(s.q3), json_number(s.min), json_number(s.max),
        s.total, s.steady);
}

double speed(const Result& r) {
    return r.mode == Mode::latency ? -static_cast<double>(r.p50) : r.bytes_per_s;
}

std::string describe(const Result& r) {
    if (r.mode == Mode::latency)
        return fmt::format("{} {} p50", r.transport, format_ns(static_cast<double>(r.p50)));
    return fmt::format("{} {}", r.transport, format_bandwidth(r.bytes_per_s));
}

}  // namespace

std::string format_ns(double ns) {
    if (ns < 1e3) return fmt::format("{:.0f} ns", ns);
    if (ns < 1e6) return fmt::format("{:.2f} µs", ns / 1e3);
    return fmt::format("{:.2f} ms", ns / 1e6);
}

std::string format_bytes(std::size_t bytes) {
    if (bytes >= (1u << 20) && bytes % (1u << 20) == 0) return fmt::format("{}MiB", bytes >> 20);
    if (bytes >= 1024 && bytes % 1024 == 0) return fmt::format("{}KiB", bytes >> 10);
    return fmt::format("{}B", bytes);
}

Machine describe_machine() {
    Machine machine;
    std::ifstream cpuinfo("/proc/cpuinfo");
    for (std::string line; std::getline(cpuinfo, line);) {
        if (line.starts_with("model name")) {
            const auto colon = line.find(':');
            if (colon != std::string::npos)
                machine.cpu_model = line.substr(line.find_first_not_of(' ', colon + 1));
            break;
        }
    }
    if (machine.cpu_model.empty()) machine.cpu_model = "unknown";
    machine.cores = static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
    utsname name{};
    if (::uname(&name) == 0) machine.kernel = std::string(name.sysname) + " " + name.release;
    return machine;
}

std::string ratio_baseline(std::string_view transport, Mode mode) {
    if (mode == Mode::latency) return "raw-spin";
    if (transport == "raw-memcpy" || transport == "raw-copy-ring") return "raw-memcpy";
    if (transport.starts_with("shm-loan")) return "raw-loan-ring";
    return "raw-copy-ring";
}

const std::vector<Target>& targets() {
    static const std::vector<Target> list = {
        {"shm?wait=spin", "raw-spin", Mode::latency, 64, 1.3, true},
        {"shm", "raw-spin", Mode::latency, 64, 1.5, true},
        {"shm", "raw-copy-ring", Mode::throughput, 64, 0.5, false},
        {"shm", "raw-copy-ring", Mode::throughput, 1 << 20, 0.95, false},
        {"shm-loan", "raw-loan-ring", Mode::throughput, 1 << 20, 0.9, false},
        {"shm-loan", "raw-loan-ring", Mode::throughput, 16 << 20, 0.9, false},
        {"shm-loan", "shm", Mode::throughput, 64, 0.9, false},
        {"shm-loan", "shm", Mode::throughput, 16 << 20, 1.3, false},
        // A topic with one subscriber against the 1:1 ring it is built like.
        {"topic", "shm", Mode::latency, 64, 1.2, true},
        {"topic", "shm", Mode::throughput, 64, 0.8, false},
        {"topic", "shm", Mode::throughput, 1 << 20, 0.8, false},
        // A service call against the ping-pong of the ring it is built like (issue 24).
        {"service", "shm", Mode::latency, 64, 1.3, true},
        {"service", "shm", Mode::latency, 1 << 20, 1.3, true},
    };
    return list;
}

void attach_ratios(std::vector<Result>& results, const std::vector<PairedRatio>& ratios) {
    for (auto& r : results) {
        if (!r.ok()) continue;
        const std::string base = ratio_baseline(r.transport, r.mode);
        const PairedRatio* paired = find_ratio(ratios, r.transport, base, r.mode, r.size);
        if (paired == nullptr) continue;
        r.pairs = paired->pairs;
        r.spread = summarize(paired->pairs);
        if (!r.spread) continue;
        r.ratio = r.spread->median;
        r.ratio_to = base;
    }
}

void print_table(std::FILE* out, const std::vector<Result>& results) {
    // Contenders not built in at all get one line each at the end, not one per row.
    std::vector<std::pair<std::string, std::string>> missing;
    std::set<std::string> missing_names;
    auto is_missing = [&](const Result& r) {
        return r.error.starts_with("absent:") || r.error.starts_with("not built:");
    };
    for (const auto& r : results)
        if (is_missing(r) && missing_names.insert(r.transport).second)
            missing.emplace_back(r.transport, r.error);

    std::vector<std::size_t> sizes;
    for (const auto& r : results)
        if (std::find(sizes.begin(), sizes.end(), r.size) == sizes.end()) sizes.push_back(r.size);
    std::sort(sizes.begin(), sizes.end());

    for (const Mode mode : {Mode::latency, Mode::throughput}) {
        if (std::none_of(results.begin(), results.end(), [&](const Result& r) { return r.mode == mode; }))
            continue;
        if (mode == Mode::latency) {
            fmt::print(out,
                       "\nLatency: round trip between two processes (ping-pong), from every sample; "
                       "ratio = median over pairs of p50 / the baseline's p50 [quartiles]\n");
            fmt::print(out, "{:<20} {:<8} {:>7} {:>8} {:>10} {:>10} {:>10} {:>10} {:>22} {}\n", "transport",
                       "wait", "size", "count", "p50", "p99", "p99.9", "max", "ratio", "baseline");
        } else {
            fmt::print(
                out,
                "\nThroughput: one process sends flat out, the other counts; "
                "ratio = median over pairs of bytes/s / the baseline's bytes/s at that size [quartiles]\n");
            fmt::print(out, "{:<20} {:<8} {:>7} {:>8} {:>10} {:>12} {:>22} {}\n", "transport", "wait", "size",
                       "count", "msgs/s", "MB/s", "ratio", "baseline");
        }
        for (const std::size_t size : sizes) {
            bool any = false;
            for (const auto& r : results) {
                if (r.mode != mode || r.size != size || is_missing(r)) continue;
                any = true;
                const std::string head =
                    fmt::format("{:<20} {:<8} {:>7} ", r.transport, r.wait, format_bytes(r.size));
                if (!r.ok()) {
                    fmt::print(out, "{}{:>8} {}\n", head, "-", r.error);
                } else if (mode == Mode::latency) {
                    fmt::print(out, "{}{:>8} {:>10} {:>10} {:>10} {:>10} {:>22} {}\n", head, r.count,
                               format_ns(double(r.p50)), format_ns(double(r.p99)), format_ns(double(r.p999)),
                               format_ns(double(r.max)), ratio_cell(r), r.ratio_to);
                } else {
                    fmt::print(out, "{}{:>8} {:>10} {:>12.1f} {:>22} {}\n", head, r.count,
                               format_rate(r.msgs_per_s), r.bytes_per_s / 1e6, ratio_cell(r), r.ratio_to);
                }
            }
            if (any) fmt::print(out, "\n");
        }
    }
    for (const auto& [name, why] : missing)
        fmt::print(out, "{:<20} {}\n", name, why);
}

std::vector<std::string> summarize_claims(const std::vector<Result>& results) {
    std::vector<std::string> lines;
    auto extremes = [&](Mode mode, std::size_t size) -> std::pair<const Result*, const Result*> {
        auto rows = contenders_for_claims(results, mode, size);
        if (rows.empty()) return {nullptr, nullptr};
        auto by_speed = [](const Result* a, const Result* b) { return speed(*a) < speed(*b); };
        return {*std::max_element(rows.begin(), rows.end(), by_speed),
                *std::min_element(rows.begin(), rows.end(), by_speed)};
    };

    const std::size_t small = nearest_size(results, Mode::latency, 64);
    const std::size_t big = nearest_size(results, Mode::throughput, 64 << 10);
    const std::size_t largest = nearest_size(results, Mode::throughput, 1 << 20);
    const auto [fast_small, slow_small] = extremes(Mode::latency, small);
    const auto [fast_big, slow_big] = extremes(Mode::throughput, big);
    const auto [fast_largest, slow_largest] = extremes(Mode::throughput, largest);
    if (fast_small != nullptr)
        lines.push_back(fmt::format("fastest at {}: {}; slowest: {}", format_bytes(small),
                                    describe(*fast_small), describe(*slow_small)));
    if (fast_big != nullptr)
        lines.push_back(fmt::format("most throughput at {}: {}; least: {}", format_bytes(big),
                                    describe(*fast_big), describe(*slow_big)));

    // "Shared memory is the fastest": a ring leads both the small round trip and the bulk copy.
    {
        const bool rings_ran = std::any_of(results.begin(), results.end(),
                                           [](const Result& r) { return is_ring(r.transport) && r.ok(); });
        if (!rings_ran || fast_small == nullptr || fast_largest == nullptr) {
            lines.emplace_back("shared memory is the fastest: not measured (no shared-memory ring ran)");
        } else {
            const bool latency = is_ring(fast_small->transport);
            const bool bulk = is_ring(fast_largest->transport);
            const char* verdict = latency && bulk ? "confirmed" : (latency || bulk ? "partly" : "refuted");
            lines.push_back(fmt::format(
                "shared memory is the fastest: {} (latency at {}: {}; throughput at {}: {})", verdict,
                format_bytes(small), describe(*fast_small), format_bytes(largest), describe(*fast_largest)));
        }
    }
    // "Message queues are the slowest": a queue is last in the round trip and in throughput at
    // the largest size the queues carry.
    {
        std::size_t queue_size = 0;
        for (const auto& r : results)
            if (r.ok() && r.mode == Mode::throughput && is_message_queue(r.transport))
                queue_size = std::max(queue_size, r.size);
        const auto [fast_q, slow_q] = extremes(Mode::throughput, queue_size);
        (void)fast_q;
        if (slow_small == nullptr || slow_q == nullptr || queue_size == 0) {
            lines.emplace_back("message queues are the slowest: not measured (no message queue ran)");
        } else {
            const bool latency = is_message_queue(slow_small->transport);
            const bool bulk = is_message_queue(slow_q->transport);
            const char* verdict = latency && bulk ? "confirmed" : (latency || bulk ? "partly" : "refuted");
            lines.push_back(
                fmt::format("message queues are the slowest: {} (slowest round trip at {}: {}; "
                            "least throughput at {}: {})",
                            verdict, format_bytes(small), describe(*slow_small), format_bytes(queue_size),
                            describe(*slow_q)));
        }
    }
    // "Two copies through the kernel": a pipe's bulk rate against one core's memcpy.
    {
        const Result* pipe = find_row(results, "fd", Mode::throughput, largest);
        if (pipe == nullptr) pipe = find_row(results, "raw-pipe", Mode::throughput, largest);
        if (pipe != nullptr && pipe->ratio) {
            std::string line = fmt::format(
                "two copies through the kernel: {} moves {} messages at {:.2f}x {} (write copies in, read "
                "copies out)",
                pipe->transport, format_bytes(largest), *pipe->ratio, pipe->ratio_to);
            if (fast_largest != nullptr && is_ring(fast_largest->transport) && fast_largest->ratio)
                line += fmt::format("; {} at {:.2f}x", fast_largest->transport, *fast_largest->ratio);
            lines.push_back(line);
        }
    }
    return lines;
}

std::vector<std::string> summarize_targets(const std::vector<Result>& results,
                                           const std::vector<PairedRatio>& ratios) {
    std::vector<std::string> lines;
    const auto verdict = [](bool met) { return met ? "met" : "missed"; };
    for (const auto& t : targets()) {
        const PairedRatio* paired = find_ratio(ratios, t.row, t.base, t.mode, t.size);
        if (paired == nullptr) continue;
        const auto spread = summarize(paired->pairs);
        const std::string what = fmt::format("{} / {}, {} {}{}", t.row, t.base, to_string(t.mode),
                                             format_bytes(t.size), t.mode == Mode::latency ? " p50" : "");
        const std::string bound = fmt::format("target {} {}", t.at_most ? "<=" : ">=", format_ratio(t.bound));
        if (!spread) {
            lines.push_back(fmt::format("{}: no pairs ({}): unstable", what, bound));
            continue;
        }
        const Bound kind = bound_of(t.base);
        const Verdict judged = judge(*spread, t.bound, t.at_most, kind);
        const bool through =
            (kind == Bound::floor && spread->q3 < 1.0) || (kind == Bound::ceiling && spread->q1 > 1.0);
        lines.push_back(
            fmt::format("{}: {}; {}: {}{}", what, describe_spread(*spread), bound, to_string(judged),
                        through ? fmt::format(" ({} {} was not one in this run: the row went {} it)", t.base,
                                              kind == Bound::floor ? "the floor" : "the ceiling",
                                              kind == Bound::floor ? "below" : "above")
                                : ""));
    }
    // With N subscribers DESIGN.md asks for the slowest one's lag and rate, reported beside the
    // one-subscriber topic's (no target).
    for (const char* row : {"topic?subscribers=2", "topic?subscribers=4"}) {
        const Result* lag = find_row(results, row, Mode::latency, 64);
        const Result* rate = find_row(results, row, Mode::throughput, 64);
        if (lag == nullptr && rate == nullptr) continue;
        const Result* one_lag = find_row(results, "topic", Mode::latency, 64);
        const Result* one_rate = find_row(results, "topic", Mode::throughput, 64);
        std::string line = fmt::format("{} at 64B:", row);
        if (lag != nullptr) {
            line += fmt::format(" slowest subscriber's round trip {} p50", format_ns(double(lag->p50)));
            if (one_lag != nullptr && one_lag->p50 > 0)
                line += fmt::format(" ({:.2f}x topic)", double(lag->p50) / double(one_lag->p50));
        }
        if (rate != nullptr) {
            line += fmt::format("{} {} msgs/s per subscriber", lag != nullptr ? ";" : "",
                                format_rate(rate->msgs_per_s));
            if (one_rate != nullptr && one_rate->msgs_per_s > 0)
                line += fmt::format(" ({:.2f}x topic)", rate->msgs_per_s / one_rate->msgs_per_s);
        }
        lines.push_back(line + ": reported");
    }
    // ipckit's best row against the best peer, size by size.
    std::set<std::pair<int, std::size_t>> seen;
    for (const auto& r : results) {
        if (!r.ok() || r.category != Category::peer || !seen.insert({int(r.mode), r.size}).second) continue;
        const Result *ours = nullptr, *theirs = nullptr;
        for (const auto& q : results) {
            if (!q.ok() || q.mode != r.mode || q.size != r.size || !moves_every_byte(q.transport) ||
                !is_one_link(q.transport))
                continue;
            const Result*& best = q.category == Category::channel ? ours : theirs;
            if (q.category != Category::channel && q.category != Category::peer) continue;
            if (best == nullptr || speed(q) > speed(*best)) best = &q;
        }
        if (ours == nullptr || theirs == nullptr) continue;
        lines.push_back(fmt::format("best ipckit row ahead of every peer, {} {}: {} vs {}: {}",
                                    to_string(r.mode), format_bytes(r.size), describe(*ours),
                                    describe(*theirs), verdict(speed(*ours) > speed(*theirs))));
    }
    return lines;
}

std::string to_json(const Machine& machine, const std::vector<Result>& results,
                    const std::vector<PairedRatio>& ratios) {
    std::string out = "{\n  \"machine\": {\n";
    out += fmt::format("    \"cpu_model\": {},\n    \"cores\": {},\n    \"kernel\": {},\n",
                       json_string(machine.cpu_model), machine.cores, json_string(machine.kernel));
    std::string cpus;
    for (const int cpu : machine.cpus)
        cpus += (cpus.empty() ? "" : ", ") + std::to_string(cpu);
    out += fmt::format("    \"pinned\": {},\n    \"cpus\": [{}],\n", machine.pinned ? "true" : "false", cpus);
    out += fmt::format(
        "    \"quick\": {},\n    \"warmup_ms\": {},\n    \"duration_ms\": {},\n    \"max_count\": {},\n",
        machine.quick ? "true" : "false", machine.budget.warmup.count(), machine.budget.duration.count(),
        machine.budget.max_count);
    out += "    \"wait\": \"block\",\n";
    out +=
        fmt::format("    \"pairs\": {},\n    \"margin\": {},\n", machine.pairs, json_number(machine.margin));
    out += fmt::format("    \"floor_start_ns\": {},\n    \"floor_end_ns\": {},\n", machine.floor_start_ns,
                       machine.floor_end_ns);
    out += fmt::format("    \"pid\": {},\n", ::getpid());
    out += fmt::format("    \"channel_layer\": {},\n    \"peers\": {{", json_string(machine.channel_layer));
    bool first = true;
    for (const auto& [name, state] : machine.peers) {
        out += fmt::format("{}{}: {}", first ? "" : ", ", json_string(name), json_string(state));
        first = false;
    }
    out += "}\n  },\n  \"results\": [";
    first = true;
    for (const auto& r : results) {
        out += first ? "\n    {" : ",\n    {";
        first = false;
        out += fmt::format(
            "\"transport\": {}, \"category\": {}, \"wait\": {}, \"mode\": {}, \"size\": {}, \"count\": {}",
            json_string(r.transport), json_string(to_string(r.category)), json_string(r.wait),
            json_string(to_string(r.mode)), r.size, r.count);
        if (!r.ok()) {
            out += ", \"error\": " + json_string(r.error);
        } else if (r.mode == Mode::latency) {
            out += fmt::format(", \"rtt_ns\": {{\"p50\": {}, \"p99\": {}, \"p999\": {}, \"max\": {}}}", r.p50,
                               r.p99, r.p999, r.max);
        } else {
            out += fmt::format(", \"msgs_per_s\": {}, \"bytes_per_s\": {}", json_number(r.msgs_per_s),
                               json_number(r.bytes_per_s));
        }
        out += fmt::format(", \"slices\": {}", r.slices);
        if (r.ratio && r.spread)
            out += ", \"ratio\": " + json_number(*r.ratio) + ", \"ratio_to\": " + json_string(r.ratio_to) +
                   ", \"ratio_spread\": " + json_spread(*r.spread) + ", \"pairs\": " + json_pairs(r.pairs);
        out += "}";
    }
    out += "\n  ],\n  \"targets\": [";
    first = true;
    for (const auto& t : targets()) {
        const PairedRatio* paired = find_ratio(ratios, t.row, t.base, t.mode, t.size);
        if (paired == nullptr) continue;
        const auto spread = summarize(paired->pairs);
        out += first ? "\n    {" : ",\n    {";
        first = false;
        out += fmt::format(
            "\"row\": {}, \"base\": {}, \"mode\": {}, \"size\": {}, \"bound\": {}, "
            "\"at_most\": {}, \"verdict\": {}",
            json_string(t.row), json_string(t.base), json_string(to_string(t.mode)), t.size,
            json_number(t.bound), t.at_most ? "true" : "false",
            json_string(spread ? to_string(judge(*spread, t.bound, t.at_most)) : "unstable"));
        if (spread) out += ", \"spread\": " + json_spread(*spread);
        out += ", \"pairs\": " + json_pairs(paired->pairs) + "}";
    }
    out += "\n  ]\n}\n";
    return out;
}

std::string to_csv(const std::vector<Result>& results) {
    std::string out =
        "transport,category,wait,mode,size,count,p50_ns,p99_ns,p999_ns,max_ns,msgs_per_s,bytes_per_s,ratio,"
        "ratio_to,ratio_q1,ratio_q3,pairs,steady_pairs,error\n";
    for (const auto& r : results) {
        const bool latency = r.ok() && r.mode == Mode::latency;
        const bool throughput = r.ok() && r.mode == Mode::throughput;
        out += fmt::format("{},{},{},{},{},{},", csv_field(r.transport), to_string(r.category), r.wait,
                           to_string(r.mode), r.size, r.count);
        out += latency ? fmt::format("{},{},{},{},", r.p50, r.p99, r.p999, r.max) : ",,,,";
        out += throughput ? fmt::format("{:.6g},{:.6g},", r.msgs_per_s, r.bytes_per_s) : ",,";
        out += r.ratio && r.spread
                   ? fmt::format("{:.4g},{},{:.4g},{:.4g},{},{},", *r.ratio, r.ratio_to, r.spread->q1,
                                 r.spread->q3, r.spread->total, r.spread->steady)
                   : ",,,,,,";
        out += csv_field(r.error) + "\n";
    }
    return out;
}

}  // namespace ipckit::bench
