// ipckit ls [--json] [--match PATTERN] — every IPC object this user can see, who made it,
// whether that process is alive and whether anything still uses the object.
#include <fmt/format.h>

#include <cstdio>
#include <string>

#include "commands.hpp"
#include "ipckit/objects.hpp"
#include "json.hpp"
#include "mechanisms/object_rules.hpp"

namespace {

using ipckit::cli::json_number_or_null;
using ipckit::cli::json_string;

// A service's server and clients (null for every other object).
std::string service_json(const ipckit::IpcObject& o) {
    if (!o.service) return "null";
    const auto& s = *o.service;
    return fmt::format(
        "{{\"clients\": {}, \"clients_attached\": {}, \"server_alive\": {}, \"server_pid\": {}, "
        "\"calls\": {}, \"replies\": {}, \"replies_dropped\": {}, \"takeovers\": {}}}",
        s.clients, s.clients_attached, s.server_alive, s.server_pid, s.calls, s.replies, s.replies_dropped,
        s.takeovers);
}

void print_json(const std::vector<ipckit::IpcObject>& objects) {
    const std::string out = ipckit::cli::json_array(objects, [](const ipckit::IpcObject& o) {
        const bool queue = o.kind == ipckit::ObjectKind::sysvmq;
        return fmt::format(
            "{{\"kind\": {}, \"address\": {}, \"owner\": {}, \"owner_uid\": {}, \"mode\": \"{}\", "
            "\"size\": {}, \"messages\": {}, \"id\": {}, \"creator_pid\": {}, \"creator_source\": \"{}\", "
            "\"creator_alive\": {}, \"creator_in_other_pid_namespace\": {}, \"in_use\": {}, "
            "\"last_sender_pid\": {}, \"last_receiver_pid\": {}, "
            "\"stale\": {}, \"service\": {}}}",
            json_string(ipckit::kind_name(o)), json_string(o.address), json_string(o.owner),
            json_number_or_null(o.owner_uid != static_cast<uid_t>(-1), o.owner_uid),
            ipckit::detail::mode_text(o.mode), json_number_or_null(o.size.has_value(), o.size.value_or(0)),
            json_number_or_null(o.messages.has_value(), o.messages.value_or(0)),
            json_number_or_null(o.sysv_id >= 0, o.sysv_id),
            json_number_or_null(o.creator_source != ipckit::CreatorSource::unknown, o.creator_pid),
            ipckit::to_string(o.creator_source), o.creator_alive, o.creator_in_other_pid_namespace, o.in_use,
            json_number_or_null(queue, o.last_sender_pid), json_number_or_null(queue, o.last_receiver_pid),
            o.stale, service_json(o));
    });
    std::fputs(out.c_str(), stdout);
}

void print_table(const std::vector<ipckit::IpcObject>& objects) {
    std::size_t address_width = 7;
    for (const auto& o : objects)
        address_width = std::max(address_width, o.address.size());
    const auto row = [&](std::string_view kind, std::string_view address, std::string_view owner,
                         std::string_view mode, std::string_view size, std::string_view messages,
                         std::string_view creator, std::string_view alive, std::string_view in_use,
                         std::string_view stale) {
        std::fputs(fmt::format("{:<8} {:<{}} {:<10} {:<5} {:>10} {:>6} {:>8} {:<5} {:<6} {}\n", kind, address,
                               address_width, owner, mode, size, messages, creator, alive, in_use, stale)
                       .c_str(),
                   stdout);
    };
    row("KIND", "ADDRESS", "OWNER", "MODE", "SIZE", "MSGS", "CREATOR", "ALIVE", "IN-USE", "STALE");
    const auto yes_no = [](bool b) { return b ? "yes" : "no"; };
    for (const auto& o : objects) {
        const bool known_creator = o.creator_source != ipckit::CreatorSource::unknown;
        row(ipckit::kind_name(o), o.address, o.owner, ipckit::detail::mode_text(o.mode),
            o.size ? std::to_string(*o.size) : "-", o.messages ? std::to_string(*o.messages) : "-",
            !known_creator                     ? std::string("-")
            : o.creator_in_other_pid_namespace ? "in another PID namespace"
                                               : std::to_string(o.creator_pid),
            known_creator ? yes_no(o.creator_alive) : "-", yes_no(o.in_use), yes_no(o.stale));
        if (o.service) {
            const auto& s = *o.service;
            std::fputs(
                fmt::format("         server {}, {} of {} clients attached; {} calls, {} replies, {} "
                            "dropped, {} takeovers\n",
                            s.server_alive ? "pid " + std::to_string(s.server_pid) + " alive" : "gone",
                            s.clients_attached, s.clients, s.calls, s.replies, s.replies_dropped, s.takeovers)
                    .c_str(),
                stdout);
        }
    }
}

void setup_ls(CLI::App& app, int& exit_code) {
    auto* command =
        app.add_subcommand("ls", "List IPC objects: owner, size, creator PID, alive, in use, stale");
    auto json = std::make_shared<bool>(false);
    auto match = std::make_shared<std::string>("*");
    command->add_flag("--json", *json, "Print a JSON array instead of a table");
    command->add_option("--match", *match, "Only addresses matching this shell glob, e.g. 'shm:/myapp-*'");
    command->callback([json, match, &exit_code] {
        std::vector<ipckit::IpcObject> shown;
        for (auto& object : ipckit::list_objects())
            if (ipckit::address_matches(object.address, *match)) shown.push_back(std::move(object));
        if (*json) {
            print_json(shown);
        } else {
            print_table(shown);
        }
        exit_code = 0;
    });
}

}  // namespace

IPCKIT_COMMAND(40, setup_ls);
