// ipckit/wait_mode.hpp — how a shared-memory ring or topic end waits for the other side: the
// `wait=` option of an address (`shm:/x?wait=spin`) and the argument of the rings' attach calls.
//
//     auto rx = ipckit::RingConsumer::attach(region, ipckit::WaitMode::spin);
//
// A value type; no errors.
#pragma once

namespace ipckit {

enum class WaitMode {
    spin,      // busy-poll with a pause instruction; checks the deadline and the peer as it goes
    block,     // sleep on a futex at once
    adaptive,  // spin ~5 µs, yield a few times, then sleep on a futex (the default)
};

}  // namespace ipckit
