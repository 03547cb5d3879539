// `ipckit bench` peer `iceoryx`: Eclipse iceoryx 2 (Debian's iceoryx and libiceoryx-posh-dev), the
// zero-copy middleware a user would pick instead of ipckit's ring. Publish/subscribe through
// its untyped API: the publisher loans a chunk, writes every byte in place (touch_write, as the
// shm-loan rows do) and publishes it; the subscriber takes the chunk, reads every byte in place
// (touch_read) and releases it. Latency: a ping and a pong service; throughput: one service,
// the publisher waiting for the subscriber (WAIT_FOR_CONSUMER / BLOCK_PRODUCER) so nothing is
// dropped. A subscriber with nothing to read waits in a WaitSet (iceoryx's blocking wait).
//
// RouDi, iceoryx's broker, is started by the bench for these rows, with a private config (the
// memory pools these sizes need, up to 16 MiB), in its own process group (Ctrl-C goes to the
// tool, which then stops it) and with PR_SET_PDEATHSIG. It is stopped with SIGKILL, because on
// SIGTERM RouDi signals every process registered with it, the tool included; its shared memory
// (/dev/shm/iceoryx_mgmt and /dev/shm/<user>) and lock file are then removed by the bench,
// which only does so when it started that RouDi itself.
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include "bench_harness.hpp"
#include "bench_touch.hpp"

#if IPCKIT_BENCH_ICEORYX
#include "iceoryx_hoofs/log/logmanager.hpp"
#include "iceoryx_posh/popo/untyped_publisher.hpp"
#include "iceoryx_posh/popo/untyped_subscriber.hpp"
#include "iceoryx_posh/popo/wait_set.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"
#endif

namespace ipckit::bench {
namespace {

#if IPCKIT_BENCH_ICEORYX

// Chunk pools: each size the default sweep uses, plus room for iceoryx's chunk header. A row is
// several slices, each with a fresh peer whose chunks RouDi frees only when it has noticed the
// peer gone: room for several slices' chunks (tmpfs pages, touched only when used).
constexpr std::pair<std::size_t, int> kPools[] = {
    {256, 4096}, {2048, 1024}, {(64u << 10) + 1024, 160}, {(1u << 20) + 1024, 64}, {(16u << 20) + 1024, 32},
};
constexpr std::size_t kLargestMessage = 16u << 20;

std::string user_name() {
    if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr) return pw->pw_name;
    return std::to_string(::getuid());
}

// The files a RouDi of this user makes: they are what the bench removes after it.
std::vector<std::string> roudi_files() {
    return {"/dev/shm/iceoryx_mgmt", "/dev/shm/" + user_name(), "/tmp/iox-unique-roudi.lock", "/tmp/roudi",
            "/tmp/roudi.lock"};
}

std::string find_roudi() {
    const char* path = std::getenv("PATH");
    std::istringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
    for (std::string dir; std::getline(dirs, dir, ':');) {
        const std::string candidate = dir + "/iox-roudi";
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return {};
}

// The RouDi the bench started, for the iceoryx rows of this run.
class RouDi {
public:
    // Throws std::runtime_error saying why when RouDi cannot be started.
    explicit RouDi(const std::string& dir) {
        const std::string program = find_roudi();
        if (program.empty())
            throw std::runtime_error("iox-roudi is not on PATH (install the iceoryx package)");
        for (const auto& file : roudi_files())
            if (::access(file.c_str(), F_OK) == 0)
                throw std::runtime_error(
                    file + " exists: another RouDi runs (or was killed); the bench starts its own");
        const std::string config = dir + "/roudi.toml", log = dir + "/roudi.log";
        {
            std::ofstream out(config);
            out << "[general]\nversion = 1\n\n[[segment]]\n";
            for (const auto& [size, count] : kPools)
                out << "\n[[segment.mempool]]\nsize = " << size << "\ncount = " << count << "\n";
            if (!out.flush()) throw std::runtime_error("cannot write " + config);
        }
        const pid_t parent = ::getpid();
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork for iox-roudi failed");
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(127);
            ::setpgid(0, 0);  // Ctrl-C reaches the tool, which stops RouDi itself
            const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (fd >= 0) {
                ::dup2(fd, 1);
                ::dup2(fd, 2);
            }
            ::execl(program.c_str(), "iox-roudi", "-c", config.c_str(), "-l", "info", "-m", "off",
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
        started_ = true;
        // Ready when it says so in its log.
        const auto until = Clock::now() + std::chrono::seconds(10);
        for (;;) {
            std::ifstream in(log);
            std::stringstream text;
            text << in.rdbuf();
            if (text.str().find("RouDi is ready for clients") != std::string::npos) break;
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                std::string last = text.str();
                if (last.size() > 300) last = last.substr(last.size() - 300);
                for (auto& c : last)
                    if (c == '\n') c = ' ';
                stop();
                throw std::runtime_error("iox-roudi exited before it was ready: " + last);
            }
            if (Clock::now() > until) {
                stop();
                throw std::runtime_error("iox-roudi was not ready within 10 s");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    RouDi(const RouDi&) = delete;
    RouDi& operator=(const RouDi&) = delete;
    ~RouDi() { stop(); }

private:
    void stop() noexcept {
        if (started_) {
            // This process's iceoryx runtime notices RouDi gone (its keep-alive thread, and its
            // goodbye when the program exits) and prints errors about it. The table is out by now
            // and nothing else writes to stderr after the run: silence them, before RouDi goes.
            if (const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC); null >= 0) {
                ::dup2(null, 2);
                ::close(null);
            }
        }
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            int status = 0;
            while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
            }
            pid_ = -1;
        }
        if (started_) {
            for (const auto& file : roudi_files())
                ::unlink(file.c_str());
            started_ = false;
        }
    }
    pid_t pid_ = -1;
    bool started_ = false;
};

// Each process registers with RouDi once, under a name of its own.
void init_runtime(const std::string& name) {
    static bool done = false;
    if (done) return;
    // Its info lines ("RouDi cleaned up resources of …") would land in the table's progress.
    iox::log::LogManager::GetLogManager().SetDefaultLogLevel(iox::log::LogLevel::kWarn,
                                                             iox::log::LogLevelOutput::kHideLogLevel);
    iox::runtime::PoshRuntime::initRuntime(iox::RuntimeName_t(iox::cxx::TruncateToCapacity, name.c_str()));
    done = true;
}

iox::capro::ServiceDescription service(const RowPlan& plan, int direction) {
    // The row's stem names the instance, so two rows never share a service.
    const std::string instance = plan.stem.substr(std::string("ipckit-bench-").size());
    return {iox::capro::IdString_t(iox::cxx::TruncateToCapacity, "ipckit-bench"),
            iox::capro::IdString_t(iox::cxx::TruncateToCapacity, instance.c_str()),
            iox::capro::IdString_t(iox::cxx::TruncateToCapacity, direction == 0 ? "ping" : "pong")};
}

std::uint64_t queue_for(std::size_t size) {
    // Chunks in flight stay below the pool's count: the publisher waits instead of running out.
    if (size > (1u << 20)) return 2;
    if (size > (64u << 10)) return 8;
    if (size > 2048) return 64;
    return 256;
}

class IceoryxSide final : public Side {
public:
    IceoryxSide(const RowPlan& plan, bool a_side) : size_(plan.size) {
        iox::popo::PublisherOptions publisher_options;
        publisher_options.subscriberTooSlowPolicy = iox::popo::ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER;
        iox::popo::SubscriberOptions subscriber_options;
        subscriber_options.queueFullPolicy = iox::popo::QueueFullPolicy::BLOCK_PRODUCER;
        subscriber_options.queueCapacity = queue_for(plan.size);
        const bool latency = plan.mode == Mode::latency;
        // A publishes on ping and subscribes to pong; B the other way round. Throughput: B publishes.
        if (latency || !a_side)
            publisher_.emplace(service(plan, a_side || !latency ? 0 : 1), publisher_options);
        if (latency || a_side) {
            subscriber_.emplace(service(plan, a_side && latency ? 1 : 0), subscriber_options);
            waitset_.emplace();
            if (waitset_->attachState(*subscriber_, iox::popo::SubscriberState::HAS_DATA).has_error())
                throw std::runtime_error("iceoryx: WaitSet::attachState failed");
        }
    }
    ~IceoryxSide() override {
        if (waitset_ && subscriber_)
            waitset_->detachState(*subscriber_, iox::popo::SubscriberState::HAS_DATA);
    }

    void send(std::span<const std::byte> message) override {
        // The subscriber subscribes asynchronously: the first message waits for it. One that
        // goes away afterwards is the other side ending the row.
        while (!publisher_->hasSubscribers()) {
            if (had_subscriber_) throw PeerGone("iceoryx: the subscriber went away");
            pause("waiting for a subscriber");
        }
        had_subscriber_ = true;
        for (;;) {
            auto chunk = publisher_->loan(static_cast<std::uint32_t>(message.size()));
            if (!chunk.has_error()) {
                void* payload = chunk.value();
                touch_write({static_cast<std::byte*>(payload), message.size()}, ++sequence_);
                publisher_->publish(payload);
                return;
            }
            // Every chunk of the pool is in flight: the subscriber releases one soon, or RouDi
            // frees an ended slice's. iceoryx reports every refused loan on stderr whatever its
            // log level, so the retries are a millisecond apart.
            check_abort("loaning a chunk");
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    void recv(std::span<std::byte> buffer) override {
        while (!try_recv(buffer)) {
            // A publisher that stops offering is the other side ending the row.
            const bool subscribed = subscriber_->getSubscriptionState() == iox::SubscribeState::SUBSCRIBED;
            if (subscribed) was_subscribed_ = true;
            if (was_subscribed_ && !subscribed) throw PeerGone("iceoryx: the publisher went away");
            (void)waitset_->timedWait(iox::units::Duration::fromMilliseconds(10));
            check_abort("waiting in the WaitSet");
        }
    }
    bool try_recv(std::span<std::byte> buffer) override {
        auto chunk = subscriber_->take();
        if (chunk.has_error()) return false;
        const void* payload = chunk.value();
        checksum_ ^= touch_read({static_cast<const std::byte*>(payload), size_});
        subscriber_->release(payload);
        if (!buffer.empty()) buffer[0] = static_cast<std::byte>(checksum_);
        return true;
    }

private:
    static void pause(const char* what) {
        check_abort(what);
        std::this_thread::yield();
    }
    std::size_t size_;
    std::uint64_t sequence_ = 0, checksum_ = 0;
    bool had_subscriber_ = false, was_subscribed_ = false;
    std::optional<iox::popo::UntypedPublisher> publisher_;
    std::optional<iox::popo::UntypedSubscriber> subscriber_;
    std::optional<iox::popo::WaitSet<>> waitset_;
};

// What the run's iceoryx rows share: the RouDi the bench started and the peers' runtimes to
// clean up. The usual row and the polling one (iceoryx?wait=spin) use the same, and it goes
// (RouDi stopped, files removed) with the last of them.
struct IceoryxRun {
    std::optional<RouDi> roudi;
    std::string roudi_error;
    std::vector<std::string> peer_runtimes;
    IceoryxRun() = default;
    IceoryxRun(const IceoryxRun&) = delete;
    IceoryxRun& operator=(const IceoryxRun&) = delete;
    ~IceoryxRun() {
        // A peer that was killed (it did not end in time) leaves its runtime's socket and lock
        // file, which iceoryx names after the runtime; they go with the run.
        for (const auto& path : peer_runtimes) {
            ::unlink(path.c_str());
            ::unlink((path + ".lock").c_str());
        }
    }
};

class Iceoryx final : public Contender {
public:
    explicit Iceoryx(std::shared_ptr<IceoryxRun> run)
        : Contender("iceoryx", Category::peer), run_(std::move(run)) {}
    std::optional<std::string> cannot_carry(std::size_t size) const override {
        if (size > kLargestMessage)
            return std::string("over the bench's RouDi config's largest chunk, 16 MiB");
        return {};
    }
    std::unique_ptr<Side> prepare(const RowPlan& plan, PeerLaunch&) override {
        if (!run_->roudi_error.empty()) throw std::runtime_error(run_->roudi_error);
        if (!run_->roudi) {
            try {
                run_->roudi.emplace(plan.dir);
            } catch (const std::exception& e) {
                run_->roudi_error = std::string("absent: RouDi did not start: ") + e.what();
                throw std::runtime_error(run_->roudi_error);
            }
            init_runtime("ipckit-bench-" + std::to_string(::getpid()));
        }
        run_->peer_runtimes.push_back("/tmp/" + plan.stem + "-b");
        return std::make_unique<IceoryxSide>(plan, true);
    }
    std::unique_ptr<Side> join(const RowPlan& plan, const std::vector<std::string>&) override {
        init_runtime(plan.stem + "-b");
        return std::make_unique<IceoryxSide>(plan, false);
    }

private:
    std::shared_ptr<IceoryxRun> run_;
};

#endif

}  // namespace

#if IPCKIT_BENCH_ICEORYX
std::unique_ptr<Contender> make_iceoryx() {
    static std::weak_ptr<IceoryxRun> current;
    auto run = current.lock();
    if (!run) {
        run = std::make_shared<IceoryxRun>();
        current = run;
    }
    return std::make_unique<Iceoryx>(std::move(run));
}
#else
std::unique_ptr<Contender> make_iceoryx() {
    return {};
}
#endif

}  // namespace ipckit::bench
