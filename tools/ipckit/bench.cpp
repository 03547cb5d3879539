// ipckit bench — every mechanism side by side, with this machine's floor (raw-spin), one core's
// copy bandwidth (raw-memcpy), raw syscall loops and the peer libraries, in one run.
//
//     ipckit bench --quick
//     ipckit bench --transport shm,fifo,zmq --size 64,1MiB --json out.json --plot out.svg
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "bench_harness.hpp"
#include "bench_pairs.hpp"
#include "bench_report.hpp"
#include "commands.hpp"
#include "ipckit/address.hpp"
#include "ipckit/error.hpp"

namespace ipckit::cli {
namespace {

using namespace ipckit::bench;

struct BenchOptions {
    bool quick = false;
    std::string transports;
    std::string sizes;
    std::string json_file, csv_file, plot_file;
    std::size_t count = 0;
    long duration_ms = 0;
    long warmup_ms = -1;
    bool pin = false;
    int pairs = 8;
    double margin_pct = 25;
    std::string peer_spec;
};

// A usage error: printed as one line, exit status 2.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> items;
    std::size_t start = 0;
    while (start <= text.size()) {
        const auto end = std::min(text.find(',', start), text.size());
        std::string item = text.substr(start, end - start);
        item.erase(0, item.find_first_not_of(' '));
        item.erase(item.find_last_not_of(' ') + 1);
        if (!item.empty()) items.push_back(item);
        start = end + 1;
    }
    return items;
}

// A size as every ipckit option spells it (ipckit::parse_size), within what a row can carry.
std::size_t parse_size_item(const std::string& text) {
    std::size_t value = 0;
    try {
        value = ipckit::parse_size(text);
    } catch (const ipckit::Error&) {
        throw UsageError("--size: \"" + text + "\" is not a size (expected e.g. 8, 64, 1KiB, 64KiB, 1MiB)");
    }
    if (value == 0 || value > (std::size_t{64} << 20))
        throw UsageError("--size: \"" + text + "\" is out of range (1 B to 64 MiB)");
    return value;
}

bool selected(const std::vector<std::string>& wanted, const std::string& name) {
    if (wanted.empty()) return true;
    // A row is an address: "shm" also selects shm?wait=spin and the loan rows (shm-loan…),
    // "raw" every raw loop.
    return std::any_of(wanted.begin(), wanted.end(), [&](const std::string& w) {
        return name == w || name.starts_with(w + "-") || name.starts_with(w + "?");
    });
}

// The run's private directory for FIFOs and socket paths, removed with everything in it.
class RunDirectory {
public:
    RunDirectory() {
        std::string pattern = "/tmp/ipckit-bench-" + std::to_string(::getpid()) + "-XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr) throw_errno("mkdtemp", pattern);
        path_ = pattern;
    }
    RunDirectory(const RunDirectory&) = delete;
    RunDirectory& operator=(const RunDirectory&) = delete;
    ~RunDirectory() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    std::string path_;
};

// Opened before the run, so a bad path fails in a second rather than after a minute of work.
std::ofstream open_output(const std::string& file, const char* option) {
    std::ofstream out(file, std::ios::trunc);
    if (!out)
        throw UsageError(std::string(option) + " " + file + ": cannot open for writing (" +
                         std::strerror(errno) + ")");
    return out;
}

std::vector<int> two_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof(set), &set) != 0) throw_errno("sched_getaffinity", "self");
    std::vector<int> cpus;
    for (int cpu = 0; cpu < CPU_SETSIZE && cpus.size() < 2; ++cpu)
        if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    if (cpus.size() < 2) throw UsageError("--pin: needs two CPUs and this process may use only one");
    return cpus;
}

// The groups of pairs: each row against the baseline of its ratio column, then the pairs
// DESIGN.md's targets name that the ratio column does not hold (shm-loan and topic against shm).
std::vector<PairGroup> plan_groups(const std::vector<RowKey>& keys, const ContenderList& contenders) {
    std::vector<PairGroup> groups;
    const auto find_key = [&](std::string_view name, Mode mode, std::size_t size) -> std::optional<RowKey> {
        for (const auto& key : keys)
            if (key.contender->name() == name && key.mode == mode &&
                (key.size == size || key.contender->only_size()))
                return key;
        return std::nullopt;
    };
    const auto add = [&](const RowKey& base, const RowKey& row) {
        auto group =
            std::find_if(groups.begin(), groups.end(), [&](const PairGroup& g) { return g.base == base; });
        if (group == groups.end()) {
            groups.push_back({base, {}});
            group = groups.end() - 1;
        }
        if (std::find(group->rows.begin(), group->rows.end(), row) == group->rows.end())
            group->rows.push_back(row);
    };
    for (const auto& key : keys) {
        if (key.contender->absent()) continue;
        const std::string base = ratio_baseline(key.contender->name(), key.mode);
        if (base == key.contender->name()) continue;
        if (const auto b = find_key(base, key.mode, key.size)) add(*b, key);
    }
    (void)contenders;
    for (const auto& t : targets()) {
        const auto row = find_key(t.row, t.mode, t.size);
        const auto base = find_key(t.base, t.mode, t.size);
        if (row && base && !row->contender->absent()) add(*base, *row);
    }
    return groups;
}

int run_bench(const BenchOptions& options) {
    // Defaults: the full sweep. --quick: the same table with short rows.
    // Past the L2 cache (16 MiB), so the table shows where copying stops being cheap.
    std::vector<std::size_t> sizes = {8, 64, 1024, 64 << 10, 1 << 20, 16 << 20};
    if (!options.sizes.empty()) {
        sizes.clear();
        for (const auto& item : split_list(options.sizes))
            sizes.push_back(parse_size_item(item));
        if (sizes.empty()) throw UsageError("--size: the list is empty");
        std::sort(sizes.begin(), sizes.end());
        sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
    }
    RunOptions run;
    // The budgets are a slice's: each ratio takes `pairs` slices of its row and as many of its
    // baseline's.
    run.budget = options.quick ? Budget{milliseconds(5), milliseconds(15), 200'000}
                               : Budget{milliseconds(50), milliseconds(150), 1'000'000};
    if (options.duration_ms > 0) run.budget.duration = milliseconds(options.duration_ms);
    if (options.warmup_ms >= 0) run.budget.warmup = milliseconds(options.warmup_ms);
    if (options.count > 0) run.budget.max_count = options.count;

    auto contenders = all_contenders();
    const auto wanted = split_list(options.transports);
    for (const auto& w : wanted) {
        if (std::none_of(contenders.begin(), contenders.end(),
                         [&](const auto& c) { return selected({w}, c->name()); })) {
            std::string known;
            for (const auto& c : contenders)
                known += (known.empty() ? "" : ", ") + c->name();
            throw UsageError("--transport: unknown transport \"" + w + "\" (known: " + known + ")");
        }
    }
    if (!options.plot_file.empty()) {
        if (!options.plot_file.ends_with(".svg") && !options.plot_file.ends_with(".png"))
            throw UsageError("--plot " + options.plot_file + ": the file must end in .svg or .png");
        if (find_gnuplot().empty())
            throw UsageError("--plot " + options.plot_file +
                             ": gnuplot is not on PATH (install gnuplot-nox)");
    }
    std::ofstream json_out, csv_out;
    if (!options.json_file.empty()) json_out = open_output(options.json_file, "--json");
    if (!options.csv_file.empty()) csv_out = open_output(options.csv_file, "--csv");

    Machine machine = describe_machine();
    machine.quick = options.quick;
    machine.budget = run.budget;
    if (options.pin) {
        run.pin = true;
        run.cpus = two_cpus();
        pin_to_cpu(run.cpus[0]);
        machine.pinned = true;
        machine.cpus = run.cpus;
    }
#if IPCKIT_BENCH_CHANNEL
    machine.channel_layer = "present";
#else
    machine.channel_layer = "absent";
#endif
    for (const auto& c : contenders)
        if (c->category() == Category::peer) machine.peers[c->name()] = c->absent() ? "absent" : "present";

    // The rows, size by size; before them the baselines their ratios need (all of them, with
    // their own ratios, when no --transport filters the rows), and raw-spin always: it is the
    // floor printed at both ends of the run.
    std::vector<RowKey> rows;
    for (const Mode mode : {Mode::latency, Mode::throughput})
        for (const auto size : sizes)
            for (const auto& c : contenders)
                if (c->category() != Category::baseline && c->measures(mode) && selected(wanted, c->name()))
                    rows.push_back({c.get(), mode, size});
    const auto baseline_needed = [&](const Contender& c, Mode mode) {
        if (wanted.empty() || c.name() == "raw-spin" || selected(wanted, c.name())) return true;
        return std::any_of(rows.begin(), rows.end(), [&](const RowKey& row) {
            return row.mode == mode && ratio_baseline(row.contender->name(), mode) == c.name();
        });
    };
    std::vector<RowKey> keys;
    for (const Mode mode : {Mode::latency, Mode::throughput}) {
        for (const auto& c : contenders) {
            if (c->category() != Category::baseline || !c->measures(mode) || !baseline_needed(*c, mode))
                continue;
            if (auto only = c->only_size())
                keys.push_back({c.get(), mode, *only});
            else
                for (const auto size : sizes)
                    keys.push_back({c.get(), mode, size});
        }
    }
    keys.insert(keys.end(), rows.begin(), rows.end());
    const auto groups = plan_groups(keys, contenders);

    const auto runnable = [](const RowKey& key) {
        return !key.contender->absent() && !key.contender->cannot_carry(key.size);
    };
    // Per pair: a slice of the row and one of its baseline (each a warm-up, the measurement, and
    // about 30 ms to start the peer and tear down); plus one slice per group and round, and the
    // floor's two.
    std::size_t slices = 2 + std::size_t(std::count_if(keys.begin(), keys.end(), [](const RowKey& key) {
                             return key.contender->absent().has_value();
                         }));
    for (const auto& g : groups)
        slices += std::size_t(options.pairs) *
                  (1 + 2 * std::size_t(std::count_if(g.rows.begin(), g.rows.end(), runnable)));
    const double estimate =
        double(slices) * (double(run.budget.warmup.count() + run.budget.duration.count()) + 30.0) / 1000.0;
    fmt::print(
        stderr,
        "ipckit bench: {} rows, {} pairs per ratio (baselines more than {:.0f}% apart re-measure a pair), "
        "about {} slices of {} ms warm-up + {} ms{}, at most {} samples each; about {:.0f} s\n",
        keys.size(), options.pairs, options.margin_pct, slices, run.budget.warmup.count(),
        run.budget.duration.count(), options.quick ? " (--quick)" : "", run.budget.max_count, estimate);
    fmt::print(stderr, "machine: {}, {} CPUs, {}{}\n", machine.cpu_model, machine.cores, machine.kernel,
               run.pin ? fmt::format(", pinned to CPUs {} and {}", run.cpus[0], run.cpus[1]) : "");

    RunDirectory directory;
    run.dir = directory.path();
    SignalScope signals;
    std::size_t number = 0;
    const auto run_slice = [&](const RowKey& key) {
        ++number;
        Result result = run_row(*key.contender, key.mode, key.size, run, number);
        std::string figure;
        if (!result.ok())
            figure = result.error;
        else if (key.mode == Mode::latency)
            figure = fmt::format("p50 {}, p99 {} ({} samples)", format_ns(double(result.p50)),
                                 format_ns(double(result.p99)), result.count);
        else
            figure = fmt::format("{:.1f} MB/s, {:.0f} msgs/s", result.bytes_per_s / 1e6, result.msgs_per_s);
        slices = std::max(slices, number);  // pairs measured again add slices
        fmt::print(stderr, "[{}/{}] {} {} {}: {}\n", number, slices, result.transport, to_string(key.mode),
                   format_bytes(key.size), figure);
        return result;
    };
    // The placement signal: the floor (raw-spin's round trip) before and after everything else.
    const auto floor = [&]() -> std::uint64_t {
        for (const auto& key : keys)
            if (key.contender->name() == "raw-spin" && key.mode == Mode::latency) {
                const Result r = run_slice(key);
                return r.ok() ? r.p50 : 0;
            }
        return 0;
    };
    machine.pairs = options.pairs;
    machine.margin = options.margin_pct / 100.0;
    machine.floor_start_ns = floor();
    fmt::print(stderr, "floor at the start: raw-spin p50 {}\n", format_ns(double(machine.floor_start_ns)));
    PairedRun paired;
    run_pairs(groups, options.pairs, machine.margin, run_slice, paired);
    if (!interrupted()) machine.floor_end_ns = floor();
    fmt::print(stderr, "floor at the end: raw-spin p50 {}\n", format_ns(double(machine.floor_end_ns)));

    // Rows in no pair (a peer library not built in) still get their line.
    for (const auto& key : keys)
        if (paired.slices.count(key) == 0 && !interrupted()) paired.slices[key].push_back(run_slice(key));

    std::vector<Result> results;
    for (const auto& key : keys)
        if (const auto it = paired.slices.find(key); it != paired.slices.end())
            results.push_back(merge_slices(it->second));
    attach_ratios(results, paired.ratios);

    fmt::print("ipckit bench on {} ({} CPUs), {}{}; waits block unless the wait column says otherwise\n",
               machine.cpu_model, machine.cores, machine.kernel,
               run.pin ? fmt::format(", pinned to CPUs {},{}", run.cpus[0], run.cpus[1]) : ", not pinned");
    fmt::print(
        "Every ratio is the median of {} interleaved pairs (row slice between two baseline slices; "
        "baselines more than {:.0f}% apart re-measure the pair, then mark it unsteady: '?' when fewer "
        "than half are steady). Floor (raw-spin p50): {} at the start, {} at the end.\n",
        options.pairs, options.margin_pct, format_ns(double(machine.floor_start_ns)),
        format_ns(double(machine.floor_end_ns)));
    print_table(stdout, results);
    fmt::print("\nThe lecture's claims, as this run found them:\n");
    for (const auto& line : summarize_claims(results))
        fmt::print("  {}\n", line);
    if (const auto targets = summarize_targets(results, paired.ratios); !targets.empty()) {
        fmt::print(
            "\nDESIGN.md's performance targets, judged from the median of the pairs and their quartiles "
            "(met / missed / unstable: the target lies between the quartiles, or fewer than half of "
            "the pairs are steady):\n");
        for (const auto& line : targets)
            fmt::print("  {}\n", line);
    }
    std::fflush(stdout);

    if (json_out.is_open()) {
        json_out << to_json(machine, results, paired.ratios);
        if (!json_out.flush()) throw_errno("write", options.json_file);
    }
    if (csv_out.is_open()) {
        csv_out << to_csv(results);
        if (!csv_out.flush()) throw_errno("write", options.csv_file);
    }
    if (!options.plot_file.empty()) plot(options.plot_file, machine, results);
    if (interrupted()) {
        fmt::print(stderr, "ipckit bench: interrupted; the table shows the rows that finished\n");
        return 130;
    }
    return 0;
}

void setup(CLI::App& app, int& exit_code) {
    auto options = std::make_shared<BenchOptions>();
    auto* cmd = app.add_subcommand("bench", "Measure every mechanism side by side: latency and throughput");
    cmd->add_flag("--quick", options->quick,
                  "Short slices (5 ms warm-up + 15 ms, instead of 50 ms + 150 ms)");
    cmd->add_option("--pairs", options->pairs,
                    "Interleaved pairs per ratio (8 by default): the ratio is their median")
        ->check(CLI::Range(1, 64));
    cmd->add_option("--margin", options->margin_pct,
                    "Percent by which a pair's two baseline slices may differ before it is re-measured, then "
                    "marked unsteady (25 by default)")
        ->check(CLI::Range(0.0, 1000.0));
    cmd->add_option(
        "--transport", options->transports,
        "Only these transports (comma-separated; shm selects shm?… and shm-loan…, topic topic?…, zmq "
        "zmq?wait=spin, raw every raw loop; an unknown name lists them all), and the baselines their "
        "ratios need. Rows with several peer "
        "processes: topic?subscribers=2, topic?subscribers=4 (the slowest subscriber's round trip, one "
        "subscriber's rate), shm?senders=2 (two senders into one receiver, throughput)");
    cmd->add_option("--size", options->sizes, "Message sizes, e.g. 8,64,1KiB,64KiB,1MiB,16MiB (the default)");
    cmd->add_option("--json", options->json_file, "Write the results as JSON (docs/bench.schema.json)");
    cmd->add_option("--csv", options->csv_file, "Write the results as CSV");
    cmd->add_option("--plot", options->plot_file,
                    "Draw latency and throughput against size (.svg or .png, gnuplot)");
    cmd->add_option("--count", options->count,
                    "At most N samples (latency) or messages (throughput) per slice")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--duration", options->duration_ms, "Measure each slice for MS milliseconds")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--warmup", options->warmup_ms, "Warm up each slice for MS milliseconds")
        ->check(CLI::NonNegativeNumber);
    cmd->add_flag("--pin", options->pin,
                  "Pin the two processes to two different CPUs (a row's several peers share the second)");
    // Side B of a row: the tool executes itself with this hidden option.
    cmd->add_option("--peer", options->peer_spec)->group("");
    cmd->callback([options, &exit_code] {
        if (!options->peer_spec.empty()) {
            exit_code = run_peer(options->peer_spec);
            return;
        }
        try {
            exit_code = run_bench(*options);
        } catch (const UsageError& e) {
            std::fprintf(stderr, "ipckit: bench: %s\n", e.what());
            exit_code = 2;
        }
    });
}

}  // namespace

IPCKIT_COMMAND(30, setup);

}  // namespace ipckit::cli
