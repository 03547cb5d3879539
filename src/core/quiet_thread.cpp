// A detached thread with every signal blocked (quiet_thread.hpp).
#include "quiet_thread.hpp"

#include <pthread.h>
#include <signal.h>

namespace ipckit::detail {

int start_quiet_thread(void* (*main)(void*), void* arg, std::size_t stack) noexcept {
    pthread_attr_t attr;
    ::pthread_attr_init(&attr);
    ::pthread_attr_setstacksize(&attr, stack);
    ::pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigset_t all, old;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);  // the thread inherits it
    pthread_t thread;
    const int r = ::pthread_create(&thread, &attr, main, arg);
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    ::pthread_attr_destroy(&attr);
    return r;
}

}  // namespace ipckit::detail
