// Internal: a thread of ipckit's own that lives as long as its process and only sleeps (the ring
// end keeper, the shm: truncation watch, the System V waker).
#pragma once

#include <cstddef>

namespace ipckit::detail {

// Starts `main(arg)` on a detached thread with a `stack`-byte stack and every signal blocked, so
// no handler of the program ever runs there and no process-directed signal is delivered to it.
// Returns 0, or pthread_create's error number.
[[nodiscard]] int start_quiet_thread(void* (*main)(void*), void* arg, std::size_t stack) noexcept;

}  // namespace ipckit::detail
