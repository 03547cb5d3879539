/* The C API against the real `ipckit` tool, both ways, over shm: and topic:, and as client
 * and server of a service (service:/NAME) against `ipckit serve` and `ipckit call`. Built by
 * capi_test.sh with -std=c11 -Wall -Wextra -Werror against the installed tree only.
 * Usage: roundtrip IPCKIT_TOOL */
#define _POSIX_C_SOURCE 200809L
#include <ipckit/ipckit.h>

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

static const char* tool;
/* Closed by fail() too, so a failing run leaves no object behind. */
static ipckit_receiver* open_receiver;
static ipckit_sender* open_sender;
static ipckit_server* open_server;
static ipckit_client* open_client;

static void fail(const char* format, ...) {
    va_list args;
    va_start(args, format);
    fputs("roundtrip: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    ipckit_receiver_close(open_receiver);
    ipckit_sender_close(open_sender, NULL);
    ipckit_server_close(open_server);
    ipckit_client_close(open_client);
    exit(1);
}

static void check(ipckit_status status, ipckit_status wanted, const char* what) {
    if (status != wanted) {
        fail("%s: %s, wanted %s (%s)", what, ipckit_status_name(status), ipckit_status_name(wanted),
             ipckit_last_error());
    }
}

/* Starts `ipckit VERB ADDRESS ARGS...` in a process group of its own (so a kill reaches what it
 * runs); with output, its stdout goes to a pipe read there. */
static pid_t start_tool(const char* const* args, int* output) {
    const char* argv[16] = {tool};
    size_t n = 1;
    while (args[n - 1] != NULL && n < 15) {
        argv[n] = args[n - 1];
        n++;
    }
    argv[n] = NULL;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    int fds[2] = {-1, -1};
    if (output != NULL) {
        if (pipe(fds) != 0) fail("pipe failed");
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
        posix_spawn_file_actions_addclose(&actions, fds[0]);
        posix_spawn_file_actions_addclose(&actions, fds[1]);
    }
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setpgroup(&attributes, 0);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
    pid_t pid = 0;
    if (posix_spawn(&pid, tool, &actions, &attributes, (char* const*)argv, environ) != 0)
        fail("cannot start %s", tool);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (output != NULL) {
        close(fds[1]);
        *output = fds[0];
    }
    return pid;
}

static void expect_exit_zero(pid_t pid, const char* what) {
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fail("%s: the tool did not exit 0 (wait status %d)", what, status);
    }
}

/* All the tool printed, until it closed its stdout. */
static void read_all(int fd, char* text, size_t capacity) {
    size_t used = 0;
    ssize_t got = 0;
    while (used + 1 < capacity && (got = read(fd, text + used, capacity - 1 - used)) > 0)
        used += (size_t)got;
    text[used] = '\0';
    close(fd);
}

static void expect_message(const char* got, size_t size, const char* wanted, const char* what) {
    if (size != strlen(wanted) || memcmp(got, wanted, size) != 0) {
        fail("%s: got \"%.*s\", wanted \"%s\"", what, (int)size, got, wanted);
    }
}

/* The tool sends two messages; this receiver takes one by copy, the other in place (rings) or
 * by copy (topics have no zero-copy channel calls), then the end of the stream. */
static void tool_to_c(const char* address, int zero_copy) {
    check(ipckit_receiver_create(address, &open_receiver), IPCKIT_OK, "ipckit_receiver_create");
    const char* const args[] = {"send", address, "hello", "world", NULL};
    const pid_t pid = start_tool(args, NULL);

    /* A poll set wakes when the first message is there. */
    ipckit_poll_set* set = NULL;
    check(ipckit_poll_set_new(&set), IPCKIT_OK, "ipckit_poll_set_new");
    check(ipckit_poll_set_add(set, open_receiver, NULL), IPCKIT_OK, "ipckit_poll_set_add");
    size_t ready[2] = {99, 99};
    size_t count = 0;
    const ipckit_status polled = ipckit_poll_set_wait(set, IPCKIT_SECONDS(20), ready, 2, &count);
    ipckit_poll_set_free(set);
    check(polled, IPCKIT_OK, "ipckit_poll_set_wait");
    if (count != 1 || ready[0] != 0)
        fail("%s: the poll set gave %zu ready, the first %zu", address, count, ready[0]);

    char buffer[64];
    size_t size = 0;
    check(ipckit_receiver_recv(open_receiver, buffer, sizeof buffer, &size, IPCKIT_SECONDS(20)), IPCKIT_OK,
          "recv the first message");
    expect_message(buffer, size, "hello", address);

    if (zero_copy) {
        const void* data = NULL;
        check(ipckit_receiver_read(open_receiver, &data, &size, IPCKIT_SECONDS(20)), IPCKIT_OK,
              "read the second message in place");
        expect_message(data, size, "world", address);
        check(ipckit_receiver_release(open_receiver), IPCKIT_OK, "release");
    } else {
        check(ipckit_receiver_recv(open_receiver, buffer, sizeof buffer, &size, IPCKIT_SECONDS(20)),
              IPCKIT_OK, "recv the second message");
        expect_message(buffer, size, "world", address);
    }

    check(ipckit_receiver_recv(open_receiver, buffer, sizeof buffer, &size, IPCKIT_SECONDS(20)),
          IPCKIT_CLOSED, "recv after the tool's sender exited");
    expect_exit_zero(pid, address);
    ipckit_receiver_close(open_receiver);
    open_receiver = NULL;
    printf("roundtrip: ipckit send %s -> C receiver: ok\n", address);
}

/* The tool receives two messages; this sender sends one by copy, the other through a loan
 * (rings) or by copy (topics). */
static void c_to_tool(const char* address, int zero_copy) {
    int output = -1;
    const char* const args[] = {"recv", address, "--count", "2", "--timeout", "20", NULL};
    const pid_t pid = start_tool(args, &output);

    check(ipckit_sender_open(address, IPCKIT_SECONDS(20), &open_sender), IPCKIT_OK, "ipckit_sender_open");
    check(ipckit_sender_send(open_sender, "one", 3, IPCKIT_SECONDS(20)), IPCKIT_OK, "send");
    if (zero_copy) {
        void* loan = NULL;
        check(ipckit_sender_loan(open_sender, 16, IPCKIT_SECONDS(20), &loan), IPCKIT_OK, "loan");
        memcpy(loan, "two", 3);
        check(ipckit_sender_commit(open_sender, 3), IPCKIT_OK, "commit");
    } else {
        check(ipckit_sender_send(open_sender, "two", 3, IPCKIT_SECONDS(20)), IPCKIT_OK, "send");
    }
    ipckit_sender_close_info info;
    check(ipckit_sender_close(open_sender, &info), IPCKIT_OK, "ipckit_sender_close");
    open_sender = NULL;
    if (info.undelivered) fail("%s: the sender reports undelivered records", address);

    char printed[256];
    read_all(output, printed, sizeof printed);
    if (strcmp(printed, "one\ntwo\n") != 0) fail("%s: the tool printed \"%s\"", address, printed);
    expect_exit_zero(pid, address);
    printf("roundtrip: C sender -> ipckit recv %s: ok\n", address);
}

/* The object at `address` in `list`; fails the test when it is not there. */
static const ipckit_object* listed(const ipckit_object_list* list, const char* address) {
    for (size_t i = 0; i < ipckit_object_list_size(list); i++) {
        const ipckit_object* o = ipckit_object_list_get(list, i);
        if (strcmp(o->address, address) == 0) return o;
    }
    fail("ipckit_objects does not list %s", address);
    return NULL;
}

/* ipckit_objects lists what `ipckit ls` lists: here a live receiver's region. */
static void objects_list(const char* address) {
    check(ipckit_receiver_create(address, &open_receiver), IPCKIT_OK, "ipckit_receiver_create");
    ipckit_object_list* list = NULL;
    check(ipckit_objects(&list), IPCKIT_OK, "ipckit_objects");
    const ipckit_object* found = listed(list, address);
    if (strcmp(found->kind, "shm") != 0 || found->creator_pid != getpid() || !found->creator_alive ||
        found->mode != 0600 || found->stale) {
        fail("ipckit_objects: %s is kind %s, creator %d (alive %d), mode %o, stale %d", address, found->kind,
             (int)found->creator_pid, found->creator_alive, (unsigned)found->mode, found->stale);
    }
    ipckit_object_list_free(list);
    ipckit_receiver_close(open_receiver);
    open_receiver = NULL;
    printf("roundtrip: ipckit_objects lists %s: ok\n", address);
}

/* A C client of `ipckit serve ADDRESS -- tr a-z A-Z`: one call, then two in flight waited for
 * in reverse order; then a call with no server times out. */
static void c_client_of_tool(const char* address) {
    const char* const args[] = {"serve", address, "--", "tr", "a-z", "A-Z", NULL};
    const pid_t pid = start_tool(args, NULL);
    check(ipckit_client_open(address, &open_client), IPCKIT_OK, "ipckit_client_open");
    const void* response = NULL;
    size_t size = 0;
    /* The server may not be up yet: the call waits for it. */
    check(ipckit_client_call(open_client, "hello", 5, &response, &size, IPCKIT_SECONDS(30)), IPCKIT_OK,
          "ipckit_client_call");
    expect_message(response, size, "HELLO", address);
    uint64_t first = 0, second = 0;
    check(ipckit_client_start(open_client, "one", 3, IPCKIT_SECONDS(20), &first), IPCKIT_OK, "start one");
    check(ipckit_client_start(open_client, "two", 3, IPCKIT_SECONDS(20), &second), IPCKIT_OK, "start two");
    check(ipckit_client_wait(open_client, second, &response, &size, IPCKIT_SECONDS(20)), IPCKIT_OK,
          "wait two");
    expect_message(response, size, "TWO", address);
    check(ipckit_client_wait(open_client, first, &response, &size, IPCKIT_SECONDS(20)), IPCKIT_OK,
          "wait one");
    expect_message(response, size, "ONE", address);
    kill(pid, SIGTERM);
    expect_exit_zero(pid, "ipckit serve after SIGTERM");
    check(ipckit_client_call(open_client, "anyone", 6, &response, &size, IPCKIT_MILLISECONDS(300)),
          IPCKIT_TIMED_OUT, "a call with no server");
    ipckit_client_close(open_client);
    open_client = NULL;
    printf("roundtrip: C client -> ipckit serve %s: ok\n", address);
}

/* A C server answering `ipckit call ADDRESS hello`; a second reply to the same request is
 * refused, and the counts say what happened. */
static void tool_client_of_c(const char* address) {
    check(ipckit_server_create(address, &open_server), IPCKIT_OK, "ipckit_server_create");
    int output = -1;
    const char* const args[] = {"call", address, "hello", "--timeout", "20", NULL};
    const pid_t pid = start_tool(args, &output);
    const void* request = NULL;
    size_t size = 0;
    ipckit_reply_handle handle;
    check(ipckit_server_recv(open_server, &request, &size, &handle, IPCKIT_SECONDS(20)), IPCKIT_OK,
          "ipckit_server_recv");
    expect_message(request, size, "hello", address);
    check(ipckit_server_reply(open_server, &handle, "olleh", 5), IPCKIT_OK, "ipckit_server_reply");
    if (ipckit_server_reply(open_server, &handle, "again", 5) != IPCKIT_ERROR ||
        ipckit_last_error_code() != EINVAL ||
        strstr(ipckit_last_error(), "stale or unknown request id") == NULL) {
        fail("a second reply to one request: \"%s\"", ipckit_last_error());
    }
    char printed[256];
    read_all(output, printed, sizeof printed);
    if (strcmp(printed, "olleh\n") != 0) fail("%s: ipckit call printed \"%s\"", address, printed);
    expect_exit_zero(pid, address);
    ipckit_server_counts counts;
    check(ipckit_server_counts_get(open_server, &counts), IPCKIT_OK, "ipckit_server_counts_get");
    if (counts.calls != 1 || counts.replies != 1) {
        fail("%s: counts %llu calls, %llu replies", address, (unsigned long long)counts.calls,
             (unsigned long long)counts.replies);
    }
    /* ipckit_objects shows the service as `ipckit ls` does: this process serves it, one call
     * answered, the tool's client gone. */
    ipckit_object_list* list = NULL;
    check(ipckit_objects(&list), IPCKIT_OK, "ipckit_objects");
    const ipckit_object* found = listed(list, address);
    if (strcmp(found->kind, "service") != 0 || found->service_clients == 0 || found->service_clients_attached != 0 ||
        !found->service_server_alive || found->service_server_pid != getpid() || found->service_calls != 1 ||
        found->service_replies != 1 || found->service_replies_dropped != 0 || found->service_takeovers != 0) {
        fail("ipckit_objects: %s is kind %s, %u client slots (%u attached), server %d (alive %d), %llu calls, "
             "%llu replies, %llu dropped, %llu takeovers",
             address, found->kind, found->service_clients, found->service_clients_attached,
             (int)found->service_server_pid, found->service_server_alive,
             (unsigned long long)found->service_calls, (unsigned long long)found->service_replies,
             (unsigned long long)found->service_replies_dropped, (unsigned long long)found->service_takeovers);
    }
    ipckit_object_list_free(list);
    ipckit_server_close(open_server);
    open_server = NULL;
    printf("roundtrip: ipckit call %s -> C server: ok\n", address);
}

/* `ipckit serve` killed while the C client's call is in flight: the call ends IPCKIT_CLOSED
 * (the region stays for the next server; `ipckit rm` removes it). */
static void server_killed_mid_call(const char* address) {
    const char* const args[] = {"serve", address, "--", "sleep", "60", NULL};
    const pid_t pid = start_tool(args, NULL);
    check(ipckit_client_open(address, &open_client), IPCKIT_OK, "ipckit_client_open");
    uint64_t call = 0;
    check(ipckit_client_start(open_client, "x", 1, IPCKIT_SECONDS(30), &call), IPCKIT_OK, "start");
    /* The server has the request once `sleep` runs in its process group. */
    for (int i = 0; i < 3000; i++) {
        char command[96];
        snprintf(command, sizeof command, "pgrep -g %d -x sleep >/dev/null", (int)pid);
        if (system(command) == 0) break;
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
    const void* response = NULL;
    size_t size = 0;
    check(ipckit_client_wait(open_client, call, &response, &size, IPCKIT_SECONDS(60)), IPCKIT_CLOSED,
          "a call whose server was killed");
    ipckit_client_close(open_client);
    open_client = NULL;
    const char* const rm[] = {"rm", address, NULL};
    expect_exit_zero(start_tool(rm, NULL), "ipckit rm after the killed server");
    printf("roundtrip: ipckit serve %s killed mid-call -> IPCKIT_CLOSED: ok\n", address);
}

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: roundtrip IPCKIT_TOOL\n");
        return 2;
    }
    tool = argv[1];
    char address[96];
    const int pid = (int)getpid();

    snprintf(address, sizeof address, "shm:/ipckit-capi-%d-a", pid);
    tool_to_c(address, 1);
    snprintf(address, sizeof address, "shm:/ipckit-capi-%d-b", pid);
    c_to_tool(address, 1);
    snprintf(address, sizeof address, "topic:/ipckit-capi-%d-c", pid);
    tool_to_c(address, 0);
    snprintf(address, sizeof address, "topic:/ipckit-capi-%d-d", pid);
    c_to_tool(address, 0);
    snprintf(address, sizeof address, "shm:/ipckit-capi-%d-e", pid);
    objects_list(address);
    snprintf(address, sizeof address, "service:/ipckit-capi-%d-f", pid);
    c_client_of_tool(address);
    snprintf(address, sizeof address, "service:/ipckit-capi-%d-g", pid);
    tool_client_of_c(address);
    snprintf(address, sizeof address, "service:/ipckit-capi-%d-h", pid);
    server_killed_mid_call(address);
    return 0;
}
