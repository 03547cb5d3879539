#include "shared_region.hpp"

#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/backoff.hpp"
#include "core/quiet_thread.hpp"
#include "ipckit/error.hpp"
#include "ipckit/memfd.hpp"
#include "ipckit/unix_socket.hpp"

namespace ipckit::detail {

// ---- BusGuard ----------------------------------------------------------------------------

namespace {

struct GuardSlot {
    std::atomic<std::uintptr_t> base{0};  // 0: free or being set up
    std::atomic<std::size_t> size{0};
    std::atomic<bool> used{false};
    std::atomic<bool> lost{false};
    // The file under a watched region and its inotify watch; -1 for none. Under the watch's mutex.
    int fd = -1;
    int wd = -1;
};
constexpr std::size_t kGuardSlots = 256;
std::array<GuardSlot, kGuardSlots> guard_slots;
struct sigaction previous_sigbus {};
std::once_flag sigbus_installed;

// Bumped (and its sleepers woken) whenever a region is lost; sleep_on watches it.
std::atomic<std::uint32_t> lost_event{0};

void wake_lost_sleepers() noexcept {
    lost_event.fetch_add(1, std::memory_order_release);
    // The raw call: this runs in the SIGBUS handler too (a system call is async-signal-safe).
    (void)::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&lost_event), FUTEX_WAKE, INT_MAX, nullptr,
                    nullptr, 0);
}

// Puts zero pages where the slot's region was, so every later access completes, and marks it.
bool lose(GuardSlot& slot, std::uintptr_t base, std::size_t size) noexcept {
    void* replaced = ::mmap(reinterpret_cast<void*>(base), size, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (replaced == MAP_FAILED) return false;
    slot.lost.store(true, std::memory_order_release);
    wake_lost_sleepers();
    return true;
}

void on_sigbus(int signal, siginfo_t* info, void* context) {
    const int saved_errno = errno;
    const auto address = reinterpret_cast<std::uintptr_t>(info->si_addr);
    for (auto& slot : guard_slots) {
        const std::uintptr_t base = slot.base.load(std::memory_order_acquire);
        const std::size_t size = slot.size.load(std::memory_order_relaxed);
        if (base == 0 || address < base || address - base >= size) continue;
        // The file under the region shrank: put zero pages where it was, so the faulting access
        // (and every later one) completes, and let the channel code report it.
        if (lose(slot, base, size)) {
            errno = saved_errno;
            return;
        }
        break;
    }
    errno = saved_errno;
    if ((previous_sigbus.sa_flags & SA_SIGINFO) != 0 && previous_sigbus.sa_sigaction != nullptr) {
        previous_sigbus.sa_sigaction(signal, info, context);
        return;
    }
    if (previous_sigbus.sa_handler != SIG_DFL && previous_sigbus.sa_handler != SIG_IGN &&
        previous_sigbus.sa_handler != nullptr) {
        previous_sigbus.sa_handler(signal);
        return;
    }
    // Not ours and nobody else's: the default action, when the access faults again on return.
    struct sigaction fallback {};
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    ::sigaction(SIGBUS, &fallback, nullptr);
}

// The truncation watch: one inotify descriptor per process and a thread that sleeps in read()
// on it. A truncate (of any kind: truncate(1), ftruncate, O_TRUNC) of a watched file is an
// IN_MODIFY event; the thread then compares each watched file's size with its mapping and loses
// the regions it no longer covers, which wakes whoever sleeps on them (sleep_on watches
// lost_event). A write(2) to the file is an event too, and changes no size: nothing happens.
struct TruncationWatch {
    std::mutex mutex;  // the slots' fd and wd, the descriptor, the thread's start
    int inotify = -1;
};

TruncationWatch& truncation_watch() {
    static TruncationWatch* w = [] {
        auto* made = new TruncationWatch;  // never destroyed: its thread outlives static destructors
        // A child of fork has no watch thread, and its copy of the descriptor shares the parent's
        // queue of events: it starts afresh (its copies of the parent's guards go unwatched).
        ::pthread_atfork([] { truncation_watch().mutex.lock(); }, [] { truncation_watch().mutex.unlock(); },
                         [] {
                             TruncationWatch& c = truncation_watch();
                             if (c.inotify >= 0) ::close(c.inotify);
                             c.inotify = -1;
                             for (auto& slot : guard_slots) {
                                 slot.fd = -1;
                                 slot.wd = -1;
                             }
                             c.mutex.unlock();
                         });
        return made;
    }();
    return *w;
}

void* watch_main(void* arg) {
    auto* w = static_cast<TruncationWatch*>(arg);
    const int fd = w->inotify;
    alignas(inotify_event) char events[4096];
    for (;;) {
        const ssize_t n = ::read(fd, events, sizeof events);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return nullptr;  // the descriptor went (a forked child's copy): nothing to watch
        const std::lock_guard lock(w->mutex);
        for (auto& slot : guard_slots) {
            if (slot.fd < 0 || slot.lost.load(std::memory_order_acquire)) continue;
            struct stat st {};
            const std::size_t size = slot.size.load(std::memory_order_relaxed);
            if (::fstat(slot.fd, &st) != 0 || static_cast<std::size_t>(st.st_size) >= size) continue;
            (void)lose(slot, slot.base.load(std::memory_order_acquire), size);
        }
    }
}

// Under the mutex. False when the kernel refuses a watch (no inotify, /proc not mounted, the
// user's inotify limits): the caller then looks for a truncation between slices.
bool watch_file(TruncationWatch& w, GuardSlot& slot, int fd) {
    if (w.inotify < 0) {
        const int made = ::inotify_init1(IN_CLOEXEC);
        if (made < 0) return false;
        w.inotify = made;
        if (start_quiet_thread(watch_main, &w, 64 * 1024) != 0) {
            ::close(made);
            w.inotify = -1;
            return false;
        }
    }
    // By the descriptor's /proc link: the inode this process mapped, whatever the name now is.
    const std::string path = "/proc/self/fd/" + std::to_string(fd);
    const int wd = ::inotify_add_watch(w.inotify, path.c_str(), IN_MODIFY);
    if (wd < 0) return false;
    slot.fd = fd;
    slot.wd = wd;
    return true;
}

// Under the mutex. One inode watched twice (both ends of a ring in one process) has one watch:
// it goes with the last slot that uses it.
void unwatch_file(TruncationWatch& w, GuardSlot& slot) {
    if (slot.wd < 0) return;
    const int wd = std::exchange(slot.wd, -1);
    slot.fd = -1;
    for (const auto& other : guard_slots) {
        if (other.wd == wd) return;
    }
    (void)::inotify_rm_watch(w.inotify, wd);
}

void install_sigbus_handler() {
    struct sigaction action {};
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    if (::sigaction(SIGBUS, &action, &previous_sigbus) != 0) throw_errno("sigaction", "SIGBUS");
}

}  // namespace

BusGuard::BusGuard(std::span<std::byte> region, std::string object, int fd) : object_(std::move(object)) {
    std::call_once(sigbus_installed, install_sigbus_handler);
    for (std::size_t i = 0; i < kGuardSlots; ++i) {
        bool expected = false;
        if (!guard_slots[i].used.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) continue;
        guard_slots[i].lost.store(false, std::memory_order_relaxed);
        guard_slots[i].size.store(region.size(), std::memory_order_relaxed);
        guard_slots[i].base.store(reinterpret_cast<std::uintptr_t>(region.data()), std::memory_order_release);
        slot_ = static_cast<int>(i);
        lost_ = &guard_slots[i].lost;
        if (fd >= 0) {
            TruncationWatch& w = truncation_watch();
            const std::lock_guard lock(w.mutex);
            watched_ = watch_file(w, guard_slots[i], fd);
        }
        return;
    }
    throw_error(std::errc::too_many_files_open,
                object_ + ": more than " + std::to_string(kGuardSlots) +
                    " shared memory regions are mapped in this process (the SIGBUS guard's limit)");
}

BusGuard::BusGuard(BusGuard&& other) noexcept
    : slot_(std::exchange(other.slot_, -1)),
      lost_(std::exchange(other.lost_, nullptr)),
      watched_(std::exchange(other.watched_, false)),
      object_(std::move(other.object_)) {}

BusGuard& BusGuard::operator=(BusGuard&& other) noexcept {
    if (this != &other) {
        release();
        slot_ = std::exchange(other.slot_, -1);
        lost_ = std::exchange(other.lost_, nullptr);
        watched_ = std::exchange(other.watched_, false);
        object_ = std::move(other.object_);
    }
    return *this;
}

BusGuard::~BusGuard() {
    release();
}

void BusGuard::release() noexcept {
    if (slot_ < 0) return;
    auto& slot = guard_slots[static_cast<std::size_t>(slot_)];
    if (watched_) {
        // Under the watch's mutex: its thread never replaces a mapping that is about to go.
        TruncationWatch& w = truncation_watch();
        const std::lock_guard lock(w.mutex);
        unwatch_file(w, slot);
        watched_ = false;
    }
    slot.base.store(0, std::memory_order_release);
    slot.used.store(false, std::memory_order_release);
    slot_ = -1;
    lost_ = nullptr;
}

std::atomic<std::uint32_t>& region_lost_event() noexcept {
    return lost_event;
}

bool region_lost_at(const void* address) noexcept {
    const auto at = reinterpret_cast<std::uintptr_t>(address);
    for (const auto& slot : guard_slots) {
        const std::uintptr_t base = slot.base.load(std::memory_order_acquire);
        if (base != 0 && at >= base && at - base < slot.size.load(std::memory_order_relaxed))
            return slot.lost.load(std::memory_order_acquire);
    }
    return false;
}

void BusGuard::throw_lost() const {
    throw_error(std::errc::no_such_device_or_address,
                object_ +
                    ": the shared memory was truncated under this process (a page beyond its end was "
                    "touched); its contents are gone and the channel cannot go on");
}

// ---- SharedRegion ------------------------------------------------------------------------

namespace {

// What the creator sends with the descriptor: who it is (so a stranger's socket of the same
// name is told apart) and the size it sealed.
constexpr std::array<char, 8> kMagic{'I', 'P', 'C', 'K', 'R', 'G', 'N', '1'};
// What a serving holder that closes sends to one it serves, with its listening socket: serve
// the name in my place. The name stays bound throughout, so no opener (a new creator above all)
// finds it free between this holder's close and the next one's bind.
constexpr std::array<char, 8> kHandOver{'I', 'P', 'C', 'K', 'H', 'N', 'D', '1'};
struct Offer {
    std::array<char, 8> magic;
    std::uint64_t size;
};
static_assert(sizeof(Offer) == 16);

// "/PATH" is a socket file (shm:@/PATH: processes that share only a directory meet there), any
// other name an abstract socket (shm:@NAME: one network namespace).
UnixAddress socket_address(std::string_view socket_name) {
    return socket_name.starts_with('/') ? UnixAddress::path(socket_name) : UnixAddress::abstract(socket_name);
}

bool same_file(int a, int b) noexcept {
    struct stat x {};
    struct stat y {};
    return ::fstat(a, &x) == 0 && ::fstat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

}  // namespace

// Every holder of a region keeps its memfd and runs this thread, so that the memory can still be
// handed out when the process serving the name goes. The server listens on the name, sends the
// descriptor to each opener of its uid and keeps the connection open; every other holder keeps
// its connection to the server, whose hang-up (the server's process died, or closed its end) is
// its signal to take over: bind the name and serve, or, when another survivor bound it first,
// connect to that one and watch it instead. A server of an abstract name that closes hands its
// listening socket to one it serves, which serves on without the name ever being free. Nothing
// wakes while nothing happens.
//
// The name is free only between a killed server's death and a survivor's bind. A creator that
// binds it then makes new memory: the survivors' is reachable no more (`superseded`), and a
// holder that needs a peer who opens by the name (a service client) lets it go.
struct SharedRegion::Server {
    Memfd memfd;
    std::string name;                      // the socket's name, as the address gave it
    std::optional<UnixListener> listener;  // while this process serves the name
    std::optional<UnixSocket> upstream;    // while another process does: its hang-up is our cue
    std::vector<UnixSocket> clients;       // held open, so that each sees this server go
    Fd stop;                               // an eventfd: written when the server is to stop
    std::string object;
    pid_t owner = ::getpid();
    std::thread thread;
    std::atomic<bool> serving{false};
    std::atomic<bool> superseded{false};  // the name serves other memory now
    // Set by the thread just before it first waits. The creator returns only after that: a
    // process that forks right after creating (as tests and servers do) must not fork while the
    // new thread is still starting up inside the allocator or the sanitizer's thread registry,
    // whose locks the child would inherit held.
    std::atomic<bool> waiting{false};

    Server(Memfd m, std::string n, Fd s, std::string o)
        : memfd(std::move(m)), name(std::move(n)), stop(std::move(s)), object(std::move(o)) {}

    void serve(UnixListener l) {
        listener.emplace(std::move(l));
        upstream.reset();
        serving.store(true, std::memory_order_release);
    }

    // False when nobody was waiting to be accepted.
    bool offer_to_next() {
        auto peer = listener->accept(Deadline::immediate());
        if (!peer) return false;
        // Only the creator's own user gets the memory; anybody else is hung up on.
        if (peer->peer_credentials().uid != ::geteuid()) return true;
        const Offer offer{kMagic, static_cast<std::uint64_t>(memfd.size())};
        const int fds[] = {memfd.fd().get()};
        if (peer->send_with_fds(std::as_bytes(std::span(&offer, 1)), fds,
                                Deadline::after(std::chrono::seconds(1)))
                .ok())
            clients.push_back(std::move(*peer));
        return true;
    }

    // The server went: serve the name, or watch whoever bound it first. Bounded: a name nobody
    // can bind or reach (another user's socket, say) is given up after about a second.
    void take_over() noexcept {
        const UnixAddress address = socket_address(name);
        // Pauses from 100 us: the name is free from the server's death until somebody binds it,
        // and a creator that binds it meanwhile makes new memory.
        const auto limit = Deadline::after(std::chrono::seconds(1));
        for (auto backoff = Backoff::for_peer();; (void)backoff.pause(limit)) {
            if (limit.expired()) return;
            try {
                serve(UnixListener::bind(address, SocketType::seqpacket));
                return;
            } catch (const Error&) {
            }
            try {
                UnixSocket next = UnixSocket::connect(address, SocketType::seqpacket,
                                                      Deadline::after(std::chrono::milliseconds(100)));
                if (next.peer_credentials().uid == ::geteuid()) {
                    // Take its offer (the descriptor closes here): we hold the memory already,
                    // unless a creator bound the name while it was free and serves new memory.
                    Offer offer{};
                    const FdMessage got = next.recv_with_fds(std::as_writable_bytes(std::span(&offer, 1)), 1,
                                                             Deadline::after(std::chrono::seconds(1)));
                    if (got.io.ok() && got.fds.size() == 1 &&
                        !same_file(got.fds[0].get(), memfd.fd().get())) {
                        superseded.store(true, std::memory_order_release);
                        return;  // nothing of ours to serve or watch any more
                    }
                    upstream.emplace(std::move(next));
                    return;
                }
            } catch (const Error&) {
            }
        }
    }

    // The server we watch spoke or hung up: its listening socket (it closes, we serve on), or
    // its end (killed, or closed with none to hand to): take over.
    void from_upstream() noexcept {
        try {
            Offer note{};
            FdMessage got = upstream->recv_with_fds(std::as_writable_bytes(std::span(&note, 1)), 1,
                                                    Deadline::immediate());
            if (got.io.ok() && got.io.bytes == sizeof note && note.magic == kHandOver &&
                got.fds.size() == 1) {
                serve(UnixListener::adopt(std::move(got.fds[0])));
                return;
            }
        } catch (const Error&) {
        }
        upstream.reset();
        take_over();
    }

    // Stopping while serving an abstract name: the listening socket goes to the first holder
    // that takes it. A socket file (shm:@/PATH) is not handed over: the last process to serve it
    // must remove it, and a holder that is itself leaving would take it and never serve (nor
    // remove) it; such a name is free from our close to a survivor's bind, as after a kill.
    void hand_over() noexcept {
        if (!listener || !listener->address().is_abstract()) return;
        // Those who connected since the thread last looked (a survivor of our upstream, say) first.
        try {
            while (offer_to_next()) {
            }
        } catch (const Error&) {
        }
        const Offer note{kHandOver, static_cast<std::uint64_t>(memfd.size())};
        const int fds[] = {listener->fd().get()};
        for (auto& client : clients) {
            try {
                if (client.send_with_fds(std::as_bytes(std::span(&note, 1)), fds, Deadline::immediate())
                        .ok()) {
                    return;
                }
            } catch (const Error&) {
                // That holder went: the next one.
            }
        }
    }

    void run() noexcept {
        std::vector<pollfd> wait;
        for (;;) {
            wait.assign(1, pollfd{stop.get(), POLLIN, 0});
            if (listener) wait.push_back({listener->fd().get(), POLLIN, 0});
            if (upstream) wait.push_back({upstream->fd().get(), POLLIN, 0});
            for (const auto& client : clients)
                wait.push_back({client.fd().get(), POLLIN, 0});
            waiting.store(true, std::memory_order_release);
            if (::poll(wait.data(), wait.size(), -1) < 0) {
                if (errno == EINTR) continue;
                return;
            }
            if (wait[0].revents != 0) return;
            std::size_t next = 1;
            try {
                if (listener && wait[next++].revents != 0) (void)offer_to_next();
                if (upstream && wait[next++].revents != 0) from_upstream();
            } catch (const Error&) {
                // One opener's failure (it went away mid-handshake) does not stop the server.
            }
            // A client that hung up (or sent anything: it never does) is let go.
            std::size_t kept = 0;
            for (std::size_t i = 0; i < clients.size(); ++i) {
                const std::size_t at = next + i;
                if (at < wait.size() && wait[at].revents != 0) continue;
                if (kept != i) clients[kept] = std::move(clients[i]);
                ++kept;
            }
            clients.erase(clients.begin() + static_cast<std::ptrdiff_t>(kept), clients.end());
        }
    }

    void start() {
        thread = std::thread([this] { run(); });
        while (!waiting.load(std::memory_order_acquire))
            std::this_thread::yield();
    }
};

SharedRegion::SharedRegion(Mapping mapping, std::unique_ptr<Server> server) noexcept
    : mapping_(std::move(mapping)), server_(std::move(server)) {}
SharedRegion::SharedRegion(SharedRegion&&) noexcept = default;
SharedRegion& SharedRegion::operator=(SharedRegion&&) noexcept = default;

bool SharedRegion::serving() const noexcept {
    return server_ != nullptr && server_->serving.load(std::memory_order_acquire);
}

SharedRegion::~SharedRegion() {
    if (!server_) return;
    if (server_->owner != ::getpid()) {
        // A forked child's copy: the thread is the parent's, not ours to stop or join.
        (void)server_.release();
        return;
    }
    const std::uint64_t one = 1;
    (void)::write(server_->stop.get(), &one, sizeof one);
    if (server_->thread.joinable()) server_->thread.join();
    server_->hand_over();
}

bool SharedRegion::superseded() const noexcept {
    return server_ != nullptr && server_->superseded.load(std::memory_order_acquire);
}

SharedRegion SharedRegion::create(std::string_view socket_name, std::size_t size,
                                  const std::function<void(std::span<std::byte>)>& initialise,
                                  std::string object) {
    // Bound first: a name already served is refused before any memory is made.
    // A socket file left by a creator that was killed is replaced; the listener removes its own
    // file when the server stops, so a clean exit leaves nothing behind.
    UnixListener listener = UnixListener::bind(socket_address(socket_name), SocketType::seqpacket);
    Memfd memfd = Memfd::create(object, size);
    memfd.seal(Memfd::fixed_size);
    Mapping mapping = memfd.map(Access::read_write);
    Fd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!stop) throw_errno("eventfd", object);
    auto server =
        std::make_unique<Server>(std::move(memfd), std::string(socket_name), std::move(stop), object);
    server->serve(std::move(listener));
    // Everything that can fail comes before `initialise` but the server thread's start: the
    // initialiser may attach an end of its own (TopicSubscriber::create), whose line is on this
    // process's robust list from then on and must never be unmapped while it is. Should the
    // thread fail to start, the mapping stays (a leak on a path that is already out of threads).
    initialise(mapping.bytes());
    try {
        server->start();
    } catch (...) {
        (void)new Mapping(std::move(mapping));
        throw;
    }
    return SharedRegion(std::move(mapping), std::move(server));
}

SharedRegion SharedRegion::open(std::string_view socket_name, Deadline deadline, std::string object) {
    const UnixAddress address = socket_address(socket_name);
    UnixSocket socket = retry_while_absent(deadline, [&] {
        return UnixSocket::connect(address, SocketType::seqpacket,
                                   deadline.is_never() ? Deadline::never() : deadline);
    });
    // The server's uid as it was at listen(): a socket of this name bound by another user is
    // not trusted with our data.
    if (const uid_t server = socket.peer_credentials().uid; server != ::geteuid()) {
        throw_error(std::errc::permission_denied, object + ": served by uid " + std::to_string(server) +
                                                      ", not this process's uid " +
                                                      std::to_string(::geteuid()) + "; refused");
    }
    Offer offer{};
    FdMessage got =
        socket.recv_with_fds(std::as_writable_bytes(std::span(&offer, 1)), 1,
                             deadline.is_never() ? Deadline::after(std::chrono::seconds(5)) : deadline);
    if (got.io.status == Status::closed) {
        throw_error(std::errc::permission_denied, object + ": the creator refused this process (uid " +
                                                      std::to_string(::geteuid()) +
                                                      "): only the creator's own user may open it");
    }
    if (!got.io.ok())
        throw_error(std::errc::timed_out, object + ": the creator did not send the memory in time");
    if (got.io.bytes != sizeof offer || offer.magic != kMagic || got.fds.size() != 1) {
        throw_error(std::errc::protocol_error,
                    object + ": the socket @" + std::string(socket_name) + " is not an ipckit shared region");
    }
    Memfd memfd = Memfd::adopt(std::move(got.fds[0]), Memfd::fixed_size);
    if (memfd.size() != offer.size) {
        throw_error(std::errc::protocol_error, object + ": the memory is " + std::to_string(memfd.size()) +
                                                   " bytes, the creator said " + std::to_string(offer.size));
    }
    // The descriptor stays, with the connection: should the server go, this holder can serve
    // the memory in its place (Server).
    Mapping mapping = memfd.map(Access::read_write);
    Fd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!stop) throw_errno("eventfd", object);
    auto server =
        std::make_unique<Server>(std::move(memfd), std::string(socket_name), std::move(stop), object);
    server->upstream.emplace(std::move(socket));
    server->start();
    return SharedRegion(std::move(mapping), std::move(server));
}

}  // namespace ipckit::detail
