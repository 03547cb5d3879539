// `ipckit bench --plot FILE`: latency and throughput against message size, one line per
// transport, log scales, drawn by gnuplot (run as a child with a generated script).
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "bench_report.hpp"
#include "ipckit/error.hpp"

namespace ipckit::bench {
namespace {

std::string gnuplot_quote(std::string_view text) {
    std::string out = "'";
    for (const char c : text) {
        if (c == '\'') out += '\'';  // gnuplot doubles a quote inside single quotes
        out += c;
    }
    return out + "'";
}

// Temporary files for the script and data, removed however plotting ends.
class TempFile {
public:
    explicit TempFile(const char* suffix) {
        std::string pattern = std::string("/tmp/ipckit-plot-XXXXXX") + suffix;
        const int fd = ::mkstemps(pattern.data(), static_cast<int>(std::string_view(suffix).size()));
        if (fd < 0) throw_errno("mkstemps", pattern);
        ::close(fd);
        path_ = pattern;
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    ~TempFile() { ::unlink(path_.c_str()); }
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    std::string path_;
};

}  // namespace

std::string find_gnuplot() {
    const char* path = std::getenv("PATH");
    std::istringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
    for (std::string dir; std::getline(dirs, dir, ':');) {
        const std::string candidate = (dir.empty() ? "." : dir) + "/gnuplot";
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return {};
}

void plot(const std::string& file, const Machine& machine, const std::vector<Result>& results) {
    const std::string gnuplot = find_gnuplot();
    if (gnuplot.empty())
        throw_error(std::errc::no_such_file_or_directory,
                    "--plot " + file + ": gnuplot is not on PATH (install gnuplot-nox)");
    std::string terminal;
    if (file.ends_with(".svg"))
        terminal = "svg size 1280,560 dynamic font 'sans,11' background rgb 'white'";
    else if (file.ends_with(".png"))
        terminal = "pngcairo size 1600,700 font 'sans,11'";
    else
        throw_error(std::errc::invalid_argument, "--plot " + file + ": the file must end in .svg or .png");

    // One data block per transport and mode: "size value" lines.
    TempFile data(".dat");
    std::ofstream out(data.path());
    int blocks[2] = {0, 0};
    std::vector<std::string> plots[2];
    std::vector<std::string> order;
    for (const auto& r : results)
        if (std::find(order.begin(), order.end(), r.transport) == order.end()) order.push_back(r.transport);
    int index = 0;
    for (const Mode mode : {Mode::latency, Mode::throughput}) {
        const int m = mode == Mode::latency ? 0 : 1;
        for (const auto& name : order) {
            std::string block;
            for (const auto& r : results) {
                if (r.transport != name || r.mode != mode || !r.ok()) continue;
                const double value = mode == Mode::latency ? double(r.p50) / 1e3 : r.bytes_per_s / 1e6;
                block += fmt::format("{} {}\n", r.size, value);
            }
            if (block.empty()) continue;
            out << "# " << name << "\n" << block << "\n\n";
            const std::string style =
                name.starts_with("raw-spin") || name.starts_with("raw-memcpy")
                    ? "linespoints lw 3 dt 2 pt 7"
                    : (name.starts_with("raw-") ? "linespoints dt 3 pt 6" : "linespoints pt 7");
            plots[m].push_back(fmt::format("{} index {} using 1:2 with {} title {}",
                                           gnuplot_quote(data.path()), index, style, gnuplot_quote(name)));
            ++index;
            ++blocks[m];
        }
    }
    out.close();
    if (blocks[0] + blocks[1] == 0)
        throw_error(std::errc::invalid_argument, "--plot " + file + ": no rows to draw");

    TempFile script(".gp");
    std::ofstream gp(script.path());
    gp << "set terminal " << terminal << "\n";
    gp << "set output " << gnuplot_quote(file) << "\n";
    gp << "set multiplot layout 1,2 title "
       << gnuplot_quote(fmt::format("ipckit bench: {} ({} CPUs), {}{}", machine.cpu_model, machine.cores,
                                    machine.kernel, machine.quick ? ", --quick" : ""))
       << "\n";
    gp << "set logscale xy\nset grid\nset key left top font ',9'\nset format x '%.0s%cB'\n";
    gp << "set xlabel 'message size (bytes)'\n";
    if (!plots[0].empty()) {
        gp << "set ylabel 'round trip p50 (µs), lower is better'\nset title 'Latency'\n";
        gp << "plot ";
        for (std::size_t i = 0; i < plots[0].size(); ++i)
            gp << (i ? ", \\\n     " : "") << plots[0][i];
        gp << "\n";
    }
    if (!plots[1].empty()) {
        gp << "set ylabel 'MB/s, higher is better'\nset title 'Throughput'\n";
        gp << "plot ";
        for (std::size_t i = 0; i < plots[1].size(); ++i)
            gp << (i ? ", \\\n     " : "") << plots[1][i];
        gp << "\n";
    }
    gp << "unset multiplot\n";
    gp.close();

    const pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork", "gnuplot");
    if (pid == 0) {
        ::execl(gnuplot.c_str(), "gnuplot", script.path().c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) throw_errno("waitpid", "gnuplot");
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw_error(std::errc::io_error,
                    "--plot " + file + ": gnuplot failed (status " + std::to_string(status) + ")");
}

}  // namespace ipckit::bench
