/* Bad input on every entry point of the C API: each call returns IPCKIT_ERROR (or NULL) with a
 * last-error text naming the call, and no C++ exception crosses (the entry points are noexcept
 * to C++, so one that escaped would abort this program). A message refused for a too-small
 * buffer is not lost. Built by capi_test.sh with -std=c11 -Wall -Wextra -Werror. */
#define _POSIX_C_SOURCE 200809L
#include <ipckit/ipckit.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

/* The call failed as it should: status (IPCKIT_ERROR), the text names `call`, code is errno. */
static void expect_error(int failed, const char* call, int code, int line) {
    const char* text = ipckit_last_error();
    if (!failed) {
        fprintf(stderr, "bad_input:%d: %s did not fail\n", line, call);
        failures++;
    } else if (strstr(text, call) != text) {
        fprintf(stderr, "bad_input:%d: %s: the error text does not start with the call: \"%s\"\n", line, call,
                text);
        failures++;
    } else if (code != 0 && ipckit_last_error_code() != code) {
        fprintf(stderr, "bad_input:%d: %s: error code %d, wanted %d (%s)\n", line, call,
                ipckit_last_error_code(), code, text);
        failures++;
    } else {
        printf("bad_input: %s\n", text);
    }
}
#define EXPECT_ERROR(expression, call, code) expect_error((expression) == IPCKIT_ERROR, call, code, __LINE__)
#define EXPECT_NULL(expression, call, code) expect_error((expression) == NULL, call, code, __LINE__)

static void require(ipckit_status status, const char* what) {
    if (status != IPCKIT_OK) {
        fprintf(stderr, "bad_input: %s: %s (%s)\n", what, ipckit_status_name(status), ipckit_last_error());
        exit(1);
    }
}

int main(void) {
    ipckit_sender* tx = NULL;
    ipckit_receiver* rx = NULL;
    ipckit_poll_set* set = NULL;
    ipckit_object_list* list = NULL;
    char buffer[8];
    size_t size = 0;
    const void* data = NULL;
    void* loan = NULL;
    int fd = 0;
    uint64_t missed = 0;

    /* NULL handles and out-pointers: EINVAL, on every entry point that takes one. */
    EXPECT_ERROR(ipckit_sender_create(NULL, &tx), "ipckit_sender_create", EINVAL);
    EXPECT_ERROR(ipckit_sender_create("shm:/x", NULL), "ipckit_sender_create", EINVAL);
    EXPECT_ERROR(ipckit_sender_open(NULL, 0, &tx), "ipckit_sender_open", EINVAL);
    EXPECT_ERROR(ipckit_sender_open("shm:/x", 0, NULL), "ipckit_sender_open", EINVAL);
    EXPECT_ERROR(ipckit_sender_send(NULL, "x", 1, 0), "ipckit_sender_send", EINVAL);
    EXPECT_ERROR(ipckit_sender_loan(NULL, 1, 0, &loan), "ipckit_sender_loan", EINVAL);
    EXPECT_ERROR(ipckit_sender_commit(NULL, 1), "ipckit_sender_commit", EINVAL);
    EXPECT_ERROR(ipckit_sender_max_message_size(NULL, &size), "ipckit_sender_max_message_size", EINVAL);
    EXPECT_NULL(ipckit_sender_address(NULL), "ipckit_sender_address", EINVAL);
    EXPECT_ERROR(ipckit_receiver_create(NULL, &rx), "ipckit_receiver_create", EINVAL);
    EXPECT_ERROR(ipckit_receiver_create("shm:/x", NULL), "ipckit_receiver_create", EINVAL);
    EXPECT_ERROR(ipckit_receiver_open(NULL, 0, &rx), "ipckit_receiver_open", EINVAL);
    EXPECT_ERROR(ipckit_receiver_open("shm:/x", 0, NULL), "ipckit_receiver_open", EINVAL);
    EXPECT_ERROR(ipckit_receiver_recv(NULL, buffer, sizeof buffer, &size, 0), "ipckit_receiver_recv", EINVAL);
    EXPECT_ERROR(ipckit_receiver_read(NULL, &data, &size, 0), "ipckit_receiver_read", EINVAL);
    EXPECT_ERROR(ipckit_receiver_release(NULL), "ipckit_receiver_release", EINVAL);
    EXPECT_ERROR(ipckit_receiver_max_message_size(NULL, &size), "ipckit_receiver_max_message_size", EINVAL);
    EXPECT_NULL(ipckit_receiver_address(NULL), "ipckit_receiver_address", EINVAL);
    EXPECT_ERROR(ipckit_receiver_native_handle(NULL, &fd), "ipckit_receiver_native_handle", EINVAL);
    EXPECT_ERROR(ipckit_receiver_missed(NULL, &missed), "ipckit_receiver_missed", EINVAL);
    EXPECT_ERROR(ipckit_receiver_waiting_at_open(NULL, &size), "ipckit_receiver_waiting_at_open", EINVAL);
    EXPECT_ERROR(ipckit_poll_set_new(NULL), "ipckit_poll_set_new", EINVAL);
    EXPECT_ERROR(ipckit_poll_set_add(NULL, rx, NULL), "ipckit_poll_set_add", EINVAL);
    EXPECT_ERROR(ipckit_poll_set_wait(NULL, 0, NULL, 0, &size), "ipckit_poll_set_wait", EINVAL);
    EXPECT_ERROR(ipckit_objects(NULL), "ipckit_objects", EINVAL);
    EXPECT_NULL(ipckit_object_list_get(NULL, 0), "ipckit_object_list_get", EINVAL);
    ipckit_server* server = NULL;
    ipckit_client* client = NULL;
    ipckit_reply_handle handle = {0, 0, 0};
    ipckit_server_counts counts;
    uint64_t call = 0;
    EXPECT_ERROR(ipckit_server_create(NULL, &server), "ipckit_server_create", EINVAL);
    EXPECT_ERROR(ipckit_server_create("service:/x", NULL), "ipckit_server_create", EINVAL);
    EXPECT_ERROR(ipckit_server_recv(NULL, &data, &size, &handle, 0), "ipckit_server_recv", EINVAL);
    EXPECT_ERROR(ipckit_server_reply(NULL, &handle, "x", 1), "ipckit_server_reply", EINVAL);
    EXPECT_ERROR(ipckit_server_max_message_size(NULL, &size), "ipckit_server_max_message_size", EINVAL);
    EXPECT_ERROR(ipckit_server_counts_get(NULL, &counts), "ipckit_server_counts_get", EINVAL);
    EXPECT_NULL(ipckit_server_address(NULL), "ipckit_server_address", EINVAL);
    EXPECT_ERROR(ipckit_client_open(NULL, &client), "ipckit_client_open", EINVAL);
    EXPECT_ERROR(ipckit_client_open("service:/x", NULL), "ipckit_client_open", EINVAL);
    EXPECT_ERROR(ipckit_client_call(NULL, "x", 1, &data, &size, 0), "ipckit_client_call", EINVAL);
    EXPECT_ERROR(ipckit_client_start(NULL, "x", 1, 0, &call), "ipckit_client_start", EINVAL);
    EXPECT_ERROR(ipckit_client_wait(NULL, 1, &data, &size, 0), "ipckit_client_wait", EINVAL);
    EXPECT_ERROR(ipckit_client_max_message_size(NULL, &size), "ipckit_client_max_message_size", EINVAL);
    EXPECT_NULL(ipckit_client_address(NULL), "ipckit_client_address", EINVAL);
    ipckit_server_close(NULL);
    ipckit_client_close(NULL);
    /* Freeing NULL is allowed, as free(NULL) is. */
    ipckit_receiver_close(NULL);
    ipckit_poll_set_free(NULL);
    ipckit_object_list_free(NULL);
    if (ipckit_sender_close(NULL, NULL) != IPCKIT_OK || ipckit_object_list_size(NULL) != 0) {
        fprintf(stderr, "bad_input: closing or sizing NULL is not a no-op\n");
        failures++;
    }
    if (strcmp(ipckit_status_name((ipckit_status)42), "unknown") != 0) failures++;

    /* Bad addresses: the C++ Error, named by the call and the address. */
    EXPECT_ERROR(ipckit_receiver_create("nonsense:x", &rx), "ipckit_receiver_create(nonsense:x)", 0);
    EXPECT_ERROR(ipckit_sender_create("", &tx), "ipckit_sender_create", 0);
    EXPECT_ERROR(ipckit_receiver_create("shm:/ipckit-capi-bad?capacity=3", &rx),
                 "ipckit_receiver_create(shm:/ipckit-capi-bad?capacity=3)", EINVAL);
    char address[96];
    snprintf(address, sizeof address, "shm:/ipckit-capi-missing-%d", (int)getpid());
    const ipckit_status missing = ipckit_sender_open(address, IPCKIT_NO_WAIT, &tx);
    if (missing == IPCKIT_OK || tx != NULL) {
        fprintf(stderr, "bad_input: opening the missing %s gave %s\n", address, ipckit_status_name(missing));
        failures++;
    }

    /* Wrong calls on a live channel: loans and in-place reads on a queue, a commit without a
     * loan, a release without a read, a buffer too small. */
    snprintf(address, sizeof address, "posixmq:/ipckit-capi-%d", (int)getpid());
    require(ipckit_receiver_create(address, &rx), "create the queue");
    require(ipckit_sender_open(address, IPCKIT_SECONDS(5), &tx), "open the queue");
    EXPECT_ERROR(ipckit_sender_loan(tx, 4, 0, &loan), "ipckit_sender_loan", 0);
    EXPECT_ERROR(ipckit_sender_loan(tx, 4, 0, NULL), "ipckit_sender_loan", EINVAL);
    EXPECT_ERROR(ipckit_sender_commit(tx, 4), "ipckit_sender_commit", 0);
    EXPECT_ERROR(ipckit_sender_send(tx, NULL, 4, 0), "ipckit_sender_send", EINVAL);
    EXPECT_ERROR(ipckit_sender_max_message_size(tx, NULL), "ipckit_sender_max_message_size", EINVAL);
    EXPECT_ERROR(ipckit_receiver_read(rx, &data, &size, 0), "ipckit_receiver_read", 0);
    EXPECT_ERROR(ipckit_receiver_read(rx, NULL, &size, 0), "ipckit_receiver_read", EINVAL);
    EXPECT_ERROR(ipckit_receiver_release(rx), "ipckit_receiver_release", 0);
    EXPECT_ERROR(ipckit_receiver_recv(rx, NULL, 8, &size, 0), "ipckit_receiver_recv", EINVAL);
    EXPECT_ERROR(ipckit_receiver_recv(rx, buffer, sizeof buffer, NULL, 0), "ipckit_receiver_recv", EINVAL);
    EXPECT_ERROR(ipckit_receiver_native_handle(rx, NULL), "ipckit_receiver_native_handle", EINVAL);
    EXPECT_ERROR(ipckit_receiver_missed(rx, NULL), "ipckit_receiver_missed", EINVAL);
    EXPECT_ERROR(ipckit_receiver_waiting_at_open(rx, NULL), "ipckit_receiver_waiting_at_open", EINVAL);
    EXPECT_ERROR(ipckit_receiver_max_message_size(rx, NULL), "ipckit_receiver_max_message_size", EINVAL);

    const char* long_message = "a message longer than eight bytes";
    require(ipckit_sender_send(tx, long_message, strlen(long_message), IPCKIT_SECONDS(5)), "send");
    EXPECT_ERROR(ipckit_receiver_recv(rx, buffer, sizeof buffer, &size, IPCKIT_SECONDS(5)),
                 "ipckit_receiver_recv", EMSGSIZE);
    char whole[64];
    require(ipckit_receiver_recv(rx, whole, sizeof whole, &size, IPCKIT_SECONDS(5)), "recv after EMSGSIZE");
    if (size != strlen(long_message) || memcmp(whole, long_message, size) != 0) {
        fprintf(stderr, "bad_input: the refused message was lost or changed: \"%.*s\"\n", (int)size, whole);
        failures++;
    }

    require(ipckit_poll_set_new(&set), "ipckit_poll_set_new");
    EXPECT_ERROR(ipckit_poll_set_add(set, NULL, NULL), "ipckit_poll_set_add", EINVAL);
    require(ipckit_poll_set_add(set, rx, NULL), "ipckit_poll_set_add");
    EXPECT_ERROR(ipckit_poll_set_wait(set, 0, NULL, 4, &size), "ipckit_poll_set_wait", EINVAL);
    EXPECT_ERROR(ipckit_poll_set_wait(set, 0, NULL, 0, NULL), "ipckit_poll_set_wait", EINVAL);
    size_t ready[4];
    if (ipckit_poll_set_wait(set, IPCKIT_NO_WAIT, ready, 4, &size) != IPCKIT_WOULD_BLOCK || size != 0) {
        fprintf(stderr, "bad_input: an empty queue polled ready\n");
        failures++;
    }
    ipckit_poll_set_free(set);

    require(ipckit_objects(&list), "ipckit_objects");
    EXPECT_NULL(ipckit_object_list_get(list, ipckit_object_list_size(list)), "ipckit_object_list_get",
                EINVAL);
    ipckit_object_list_free(list);

    require(ipckit_sender_close(tx, NULL), "ipckit_sender_close");
    ipckit_receiver_close(rx);

    /* A service: a channel address is not one; a reply to a request never received, a wait for
     * a call never started, NULL out-pointers. */
    EXPECT_ERROR(ipckit_server_create("shm:/ipckit-capi-not-a-service", &server), "ipckit_server_create",
                 EINVAL);
    snprintf(address, sizeof address, "service:/ipckit-capi-%d", (int)getpid());
    require(ipckit_server_create(address, &server), "ipckit_server_create");
    require(ipckit_client_open(address, &client), "ipckit_client_open");
    handle.id = 42;
    EXPECT_ERROR(ipckit_server_reply(server, &handle, "x", 1), "ipckit_server_reply", EINVAL);
    EXPECT_ERROR(ipckit_server_reply(server, NULL, "x", 1), "ipckit_server_reply", EINVAL);
    EXPECT_ERROR(ipckit_server_recv(server, NULL, &size, &handle, 0), "ipckit_server_recv", EINVAL);
    EXPECT_ERROR(ipckit_server_counts_get(server, NULL), "ipckit_server_counts_get", EINVAL);
    EXPECT_ERROR(ipckit_client_wait(client, 42, &data, &size, 0), "ipckit_client_wait", 0);
    EXPECT_ERROR(ipckit_client_call(client, NULL, 4, &data, &size, 0), "ipckit_client_call", EINVAL);
    EXPECT_ERROR(ipckit_client_call(client, "x", 1, NULL, &size, 0), "ipckit_client_call", EINVAL);
    EXPECT_ERROR(ipckit_client_start(client, "x", 1, 0, NULL), "ipckit_client_start", EINVAL);
    ipckit_client_close(client);
    ipckit_server_close(server);

    if (failures > 0) {
        fprintf(stderr, "bad_input: %d failure(s)\n", failures);
        return 1;
    }
    printf("bad_input: every entry point refused bad input with a named error\n");
    return 0;
}
