// How `ipckit send` and `ipckit recv` reach an address: created, opened, or (by default)
// whichever applies — a receiver creates the object unless it exists already, a sender
// opens it unless it does not exist yet.
#pragma once

#include <chrono>
#include <string>

#include "core/backoff.hpp"
#include "ipckit/channel.hpp"
#include "ipckit/error.hpp"

namespace ipckit::cli {

enum class Reach { automatic, create, open };

inline void add_reach_options(CLI::App& command, Reach& reach) {
    command.add_flag_callback(
        "--create", [&reach] { reach = Reach::create; }, "create the object (fail if it exists)");
    command.add_flag_callback(
        "--open", [&reach] { reach = Reach::open; }, "open an existing object (fail if it does not exist)");
}

inline bool already_exists(const Error& e) {
    return e.code() == std::errc::file_exists || e.code() == std::errc::address_in_use;
}

inline bool does_not_exist(const Error& e) {
    return e.code() == std::errc::no_such_file_or_directory || e.code() == std::errc::connection_refused;
}

inline Receiver reach_receiver(const std::string& address, Reach reach, Deadline deadline) {
    if (reach == Reach::open) return Receiver::open(address, deadline);
    try {
        return Receiver::create(address);
    } catch (const Error& e) {
        if (reach == Reach::create || !already_exists(e)) throw;
    }
    return Receiver::open(address, deadline);
}

// With a deadline, an automatic sender first waits for a receiver to create the object (the
// usual order in two shells, either way round); without one it creates the object at once.
inline Sender reach_sender(const std::string& address, Reach reach, Deadline deadline) {
    if (reach == Reach::create) return Sender::create(address);
    for (auto backoff = detail::Backoff::for_peer();;) {
        try {
            return Sender::open(address, deadline);
        } catch (const Error& e) {
            if (reach == Reach::open || !does_not_exist(e)) throw;
        }
        if (deadline.is_never() || !backoff.pause(deadline)) break;
    }
    return Sender::create(address);
}

// --timeout SECONDS as a deadline (none: wait as long as it takes).
inline Deadline deadline_after(double seconds) {
    if (seconds < 0) return Deadline::never();
    return Deadline::after(
        std::chrono::duration_cast<Deadline::Clock::duration>(std::chrono::duration<double>(seconds)));
}

}  // namespace ipckit::cli
