// Fuzz target: the service region (src/rings/service_region.hpp, layout kind 4) over memory a
// hostile or buggy process can write at any moment (the header, the server's and clients' ends,
// every slot's two rings, their records and request ids). Whatever the bytes, the server's
// attach, recv, reply and loan_reply, and the clients' attach, start, loan, wait and read must
// give a Status or an Error, never read or write outside the region, never hand out a request
// or response outside it.
//
// Input: byte 0 picks the client slots (1 + (b & 1)), the calls in flight (1 + (b >> 1 & 1)) and
// the largest message (16 << (b >> 2 & 3): 16 to 128 bytes). The region is formatted, then each
// operation is one byte (its low nibble) and its arguments (CL8: a client, 0-1):
//   0 patch OFF16 LEN8 BYTES   write bytes anywhere in the region
//   1 attach the server (a second one, while one is attached)
//   2 attach client CL8        3 start CL8 SIZE8 (SIZE % (max + 2) bytes: one past the limit too)
//   4 server try_recv          5 reply IDX8 SIZE8 to a request received (IDX past them: a made-up
//                                handle), 6 the same by loan_reply/commit_reply
//   7 wait CL8 (immediate) for the client's oldest call in flight; 8 the same by read/release
//   9 close the server         10 close client CL8
//   11 image                   the rest of the input becomes the region from its first byte
//   12 loan CL8 SIZE8, fill, commit_call
// While nothing has written the region behind the ends' back, a response a client takes must be
// the one the server replied to that call (each reply is the request's bytes, reversed).
#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include "fuzz_program.hpp"
#include "fuzz_targets.hpp"
#include "ipckit/deadline.hpp"
#include "ipckit/error.hpp"
#include "rings/service_region.hpp"

namespace ipckit::fuzz {
namespace {
// Named: tests/faults/fuzz_regression_test.cpp includes every target into one translation unit.
namespace service_input {

namespace svc = detail::service;
using Bytes = std::vector<std::byte>;

void check(bool ok, const char* what) {
    if (!ok) fuzz_fail("service", what);
}

Bytes reversed(std::span<const std::byte> bytes) {
    return {bytes.rbegin(), bytes.rend()};
}

struct Run {
    explicit Run(std::size_t size) : region(size) {}
    HeapRegion region;  // first: outlives every end below
    std::optional<svc::ServiceServer> server;
    std::array<std::optional<svc::ServiceClient>, 2> clients;
    std::vector<Request> received;
    std::map<std::pair<std::size_t, std::uint64_t>, Bytes> sent;  // {client, call id} -> its reply
    bool tampered = false;
    std::size_t max = 0;
};

// Runs `op`, swallowing the Errors bad input and the caller's own misuse may give.
template <class Op>
void attempt(Op op) {
    try {
        op();
    } catch (const Error&) {
    }
}

void expect_response(Run& run, std::size_t client, std::uint64_t id, std::span<const std::byte> response) {
    const auto it = run.sent.find({client, id});
    if (!run.tampered)
        check(it != run.sent.end() && Bytes(response.begin(), response.end()) == it->second,
              "a response is not the reply to its call");
    if (it != run.sent.end()) run.sent.erase(it);
}

void step(Run& run, ProgramInput& in) {
    const auto op = static_cast<unsigned>(in.take(1) & 15);
    auto& region = run.region;
    switch (op) {
        case 0: {
            const std::size_t at = in.take(2) % region.size;
            const auto bytes = in.take_span(in.take(1));
            const std::size_t n = std::min(bytes.size(), region.size - at);
            std::memcpy(region.bytes + at, bytes.data(), n);
            run.tampered = true;
            break;
        }
        case 1:
            attempt([&] { run.server.emplace(region.span(), WaitMode::block); });
            break;
        case 2: {
            auto& client = run.clients[in.take(1) & 1];
            if (!client) attempt([&] { client.emplace(region.span(), WaitMode::block, 1); });
            break;
        }
        case 3: {
            const std::size_t which = in.take(1) & 1;
            auto& client = run.clients[which];
            const std::uint64_t sequence = in.take(1);
            const Bytes request = make_message(sequence, in.take(1) % (run.max + 2));
            if (!client) break;
            attempt([&] {
                const auto started = client->start(request, Deadline::immediate());
                if (started.ok()) run.sent[{which, started.call.id}] = reversed(request);
            });
            break;
        }
        case 4:
            if (!run.server) break;
            attempt([&] {
                Request request;
                if (run.server->recv(request, Deadline::immediate()).ok()) run.received.push_back(request);
            });
            break;
        case 5:
        case 6: {
            const std::size_t index = in.take(1);
            const std::size_t extra = in.take(1);
            if (!run.server) break;
            ReplyHandle to{static_cast<std::uint32_t>(index & 3), static_cast<std::uint32_t>(extra),
                           in.take(8)};
            Bytes response;
            const bool made_up = index >= run.received.size();
            if (!made_up) {
                to = run.received[index].handle;
                response = reversed(run.received[index].message);
            }
            attempt([&] {
                if (op == 5) {
                    // A made-up handle that names a real call answers it with bytes nobody checks.
                    if (run.server->reply(to, response).ok() && made_up) run.tampered = true;
                } else {
                    const Loan loan = run.server->loan_reply(to, response.size() + extra % 8);
                    if (!loan.ok()) return;
                    if (made_up) run.tampered = true;
                    check(loan.buffer.size() == response.size() + extra % 8, "a loan of the wrong size");
                    std::memcpy(loan.buffer.data(), response.data(), response.size());
                    run.server->commit_reply(to, response.size());
                }
            });
            break;
        }
        case 7:
        case 8: {
            const std::size_t which = in.take(1) & 1;
            auto& client = run.clients[which];
            if (!client) break;
            const auto calls = client->calls();
            if (calls.empty()) break;
            attempt([&] {
                if (op == 7) {
                    Bytes response;
                    if (client->wait(CallId{calls.front()}, response, Deadline::immediate()).ok())
                        expect_response(run, which, calls.front(), response);
                } else {
                    const RecordView view = client->read(CallId{calls.front()}, Deadline::immediate());
                    if (!view.ok()) return;
                    Bytes copy(view.message.begin(), view.message.end());  // touches every byte
                    client->release();
                    expect_response(run, which, calls.front(), copy);
                }
            });
            break;
        }
        case 9:
            run.server.reset();
            run.received.clear();
            break;
        case 10:
            run.clients[in.take(1) & 1].reset();
            break;
        case 11: {
            const auto bytes = in.take_span(region.size);
            std::memcpy(region.bytes, bytes.data(), bytes.size());
            run.tampered = true;
            break;
        }
        case 12: {
            const std::size_t which = in.take(1) & 1;
            auto& client = run.clients[which];
            const std::size_t size = in.take(1) % (run.max + 2);
            if (!client) break;
            attempt([&] {
                const Loan loan = client->loan(size, Deadline::immediate());
                if (!loan.ok()) return;
                check(loan.buffer.size() == size, "a request loan of the wrong size");
                const Bytes request = make_message(size, size);
                std::memcpy(loan.buffer.data(), request.data(), size);
                const auto started = client->commit_call(size);
                if (started.ok()) run.sent[{which, started.call.id}] = reversed(request);
            });
            break;
        }
        default:
            break;
    }
}

}  // namespace service_input
}  // namespace

int fuzz_service(const std::uint8_t* data, std::size_t size) {
    using namespace service_input;
    ProgramInput in(data, size);
    const auto shape = static_cast<unsigned>(in.take(1));
    const svc::ServiceOptions options{1 + (shape & 1), 1 + ((shape >> 1) & 1),
                                      std::size_t{16} << ((shape >> 2) & 3)};
    Run run(svc::region_size(options));
    svc::format(run.region.span(), options);
    run.max = svc::validate(run.region.span()).max_message;
    for (int steps = 0; steps < 256 && !in.empty(); ++steps)
        step(run, in);
    return 0;
}

}  // namespace ipckit::fuzz
