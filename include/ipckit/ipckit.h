/* ipckit C API: the channel layer for C and every language with a C foreign-function
 * interface (Rust, Go, C#, Zig, ...). C11; the same shared library as the C++ API.
 *
 *     #include <ipckit/ipckit.h>
 *
 *     ipckit_receiver* rx = NULL;
 *     if (ipckit_receiver_create("shm:/telemetry", &rx) != IPCKIT_OK) {
 *         fprintf(stderr, "%s\n", ipckit_last_error());   // names the call and the address
 *         return 1;
 *     }
 *     char buffer[256];
 *     size_t size = 0;
 *     ipckit_status s = ipckit_receiver_recv(rx, buffer, sizeof buffer, &size, IPCKIT_SECONDS(1));
 *     // s: IPCKIT_OK, IPCKIT_TIMED_OUT, IPCKIT_CLOSED (the sender closed or died), or IPCKIT_ERROR
 *     ipckit_receiver_close(rx);
 *
 * Contract:
 * - Every call that can fail returns an ipckit_status. Expected outcomes (would block, timed
 *   out, closed) are statuses, as in the C++ API; IPCKIT_ERROR is a failure, described by
 *   ipckit_last_error() (one line naming the call and the object) and ipckit_last_error_code()
 *   (an errno value). Both are per thread and keep the last failure of that thread.
 * - No C++ exception leaves this API; NULL handles and out-pointers are IPCKIT_ERROR (EINVAL).
 * - Timeouts are nanoseconds: IPCKIT_FOREVER (-1) waits as long as it takes, 0 does not wait.
 * - Thread safety: a handle is used by one thread at a time (as the C++ objects are); distinct
 *   handles are independent. Handles are freed by their close/free call, NULL allowed.
 * - Services (service:/NAME, service:@NAME, nats://HOST:PORT/SUBJECT): ipckit_server_* answers
 *   requests, ipckit_client_* makes calls; a request or response is handed out in place, valid
 *   until the next call on the same handle, so nothing is truncated or lost to a small buffer.
 * docs/c-api.md describes each call.
 */
#ifndef IPCKIT_IPCKIT_H
#define IPCKIT_IPCKIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define IPCKIT_API __attribute__((visibility("default")))
#else
#define IPCKIT_API
#endif

/* C++ callers see what the C API promises: no exception leaves it. */
#ifdef __cplusplus
#define IPCKIT_NOEXCEPT noexcept
#else
#define IPCKIT_NOEXCEPT
#endif

typedef enum ipckit_status {
    IPCKIT_OK = 0,
    IPCKIT_WOULD_BLOCK = 1, /* timeout 0: nothing could be done now */
    IPCKIT_TIMED_OUT = 2,   /* the timeout passed first */
    IPCKIT_CLOSED = 3,      /* the peer closed or died, or the object was removed */
    IPCKIT_ERROR = -1       /* a failure: see ipckit_last_error() */
} ipckit_status;

#define IPCKIT_FOREVER ((int64_t)-1)
#define IPCKIT_NO_WAIT ((int64_t)0)
#define IPCKIT_MILLISECONDS(n) ((int64_t)(n)*1000000)
#define IPCKIT_SECONDS(n) ((int64_t)(n)*1000000000)

typedef struct ipckit_sender ipckit_sender;
typedef struct ipckit_receiver ipckit_receiver;
typedef struct ipckit_poll_set ipckit_poll_set;
typedef struct ipckit_object_list ipckit_object_list;
typedef struct ipckit_server ipckit_server;
typedef struct ipckit_client ipckit_client;

/* ---- errors and versions ---- */

/* The last failure of the calling thread: "ipckit_sender_open(shm:/x): ...". "" if none. The
 * text stays valid until this thread's next failing call. */
IPCKIT_API const char* ipckit_last_error(void) IPCKIT_NOEXCEPT;
/* Its errno value (EINVAL for bad arguments), 0 if none. */
IPCKIT_API int ipckit_last_error_code(void) IPCKIT_NOEXCEPT;
/* "ok", "would_block", "timed_out", "closed", "error"; "unknown" for other values. */
IPCKIT_API const char* ipckit_status_name(ipckit_status status) IPCKIT_NOEXCEPT;
/* The library's version, e.g. "0.1.0". */
IPCKIT_API const char* ipckit_version(void) IPCKIT_NOEXCEPT;

/* ---- senders ---- */

/* Creates the object the address names (a receiver may open it later). */
IPCKIT_API ipckit_status ipckit_sender_create(const char* address, ipckit_sender** sender) IPCKIT_NOEXCEPT;
/* Opens an existing object, waiting up to timeout_ns for it (and, for streams, its peer). */
IPCKIT_API ipckit_status ipckit_sender_open(const char* address, int64_t timeout_ns,
                                            ipckit_sender** sender) IPCKIT_NOEXCEPT;
/* Sends one whole message of size bytes. */
IPCKIT_API ipckit_status ipckit_sender_send(ipckit_sender* sender, const void* data, size_t size,
                                            int64_t timeout_ns) IPCKIT_NOEXCEPT;
/* Zero copy (ring transports: shm:, sysvshm:): reserves size writable bytes in the ring
 * at *buffer; ipckit_sender_commit publishes the first n of them. Other transports: IPCKIT_ERROR. */
IPCKIT_API ipckit_status ipckit_sender_loan(ipckit_sender* sender, size_t size, int64_t timeout_ns,
                                            void** buffer) IPCKIT_NOEXCEPT;
IPCKIT_API ipckit_status ipckit_sender_commit(ipckit_sender* sender, size_t size) IPCKIT_NOEXCEPT;
/* The largest message this channel carries, in bytes. */
IPCKIT_API ipckit_status ipckit_sender_max_message_size(const ipckit_sender* sender,
                                                        size_t* size) IPCKIT_NOEXCEPT;
/* The address it was made with; NULL (and a last error) for a NULL sender. */
IPCKIT_API const char* ipckit_sender_address(const ipckit_sender* sender) IPCKIT_NOEXCEPT;

/* What closing a sender reports (may be NULL when not wanted). */
typedef struct ipckit_sender_close_info {
    size_t stored;   /* queues: messages left stored in the queue for a later receiver */
    int undelivered; /* rings: 1 if committed records were never taken (the reader left) */
} ipckit_sender_close_info;

/* Closes and frees the sender (a ring sender lingers until its records are taken, up to
 * 10 s). Returns IPCKIT_ERROR if closing failed; the handle is freed either way. */
IPCKIT_API ipckit_status ipckit_sender_close(ipckit_sender* sender,
                                             ipckit_sender_close_info* info) IPCKIT_NOEXCEPT;

/* ---- receivers ---- */

IPCKIT_API ipckit_status ipckit_receiver_create(const char* address,
                                                ipckit_receiver** receiver) IPCKIT_NOEXCEPT;
IPCKIT_API ipckit_status ipckit_receiver_open(const char* address, int64_t timeout_ns,
                                              ipckit_receiver** receiver) IPCKIT_NOEXCEPT;
/* Copies the next whole message into buffer; *size is its length. A message larger than
 * capacity is IPCKIT_ERROR (EMSGSIZE) and stays unread: size buffers by max_message_size. */
IPCKIT_API ipckit_status ipckit_receiver_recv(ipckit_receiver* receiver, void* buffer, size_t capacity,
                                              size_t* size, int64_t timeout_ns) IPCKIT_NOEXCEPT;
/* Zero copy (ring transports): *data and *size show the next message in place, valid until
 * ipckit_receiver_release consumes it. Other transports: IPCKIT_ERROR. */
IPCKIT_API ipckit_status ipckit_receiver_read(ipckit_receiver* receiver, const void** data, size_t* size,
                                              int64_t timeout_ns) IPCKIT_NOEXCEPT;
IPCKIT_API ipckit_status ipckit_receiver_release(ipckit_receiver* receiver) IPCKIT_NOEXCEPT;
IPCKIT_API ipckit_status ipckit_receiver_max_message_size(const ipckit_receiver* receiver,
                                                          size_t* size) IPCKIT_NOEXCEPT;
IPCKIT_API const char* ipckit_receiver_address(const ipckit_receiver* receiver) IPCKIT_NOEXCEPT;
/* A descriptor to poll(2) for readiness, or -1 (queues, rings: use a poll set). */
IPCKIT_API ipckit_status ipckit_receiver_native_handle(const ipckit_receiver* receiver,
                                                       int* fd) IPCKIT_NOEXCEPT;
/* Topic subscribers under overflow=drop: messages missed so far. Others: 0. */
IPCKIT_API ipckit_status ipckit_receiver_missed(const ipckit_receiver* receiver,
                                                uint64_t* missed) IPCKIT_NOEXCEPT;
/* Messages already waiting when it was opened (an object left by a dead creator). */
IPCKIT_API ipckit_status ipckit_receiver_waiting_at_open(const ipckit_receiver* receiver,
                                                         size_t* waiting) IPCKIT_NOEXCEPT;
/* Closes and frees the receiver (NULL allowed). Remove it from every poll set first. */
IPCKIT_API void ipckit_receiver_close(ipckit_receiver* receiver) IPCKIT_NOEXCEPT;

/* ---- poll sets: wait on many receivers at once ---- */

IPCKIT_API ipckit_status ipckit_poll_set_new(ipckit_poll_set** set) IPCKIT_NOEXCEPT;
/* Adds a receiver (not owned: it must outlive the set); *index (may be NULL) is its index. */
IPCKIT_API ipckit_status ipckit_poll_set_add(ipckit_poll_set* set, ipckit_receiver* receiver,
                                             size_t* index) IPCKIT_NOEXCEPT;
/* Waits until a receiver has a message (or its end of stream). Writes up to capacity indices
 * of ready receivers into ready, their number into *count: IPCKIT_OK, or with *count 0
 * IPCKIT_TIMED_OUT (IPCKIT_WOULD_BLOCK for timeout 0). */
IPCKIT_API ipckit_status ipckit_poll_set_wait(ipckit_poll_set* set, int64_t timeout_ns, size_t* ready,
                                              size_t capacity, size_t* count) IPCKIT_NOEXCEPT;
IPCKIT_API void ipckit_poll_set_free(ipckit_poll_set* set) IPCKIT_NOEXCEPT;

/* ---- services: request/response (docs/services.md) ---- */

/* Where a reply goes, as ipckit_server_recv gives it: copy it to reply later or elsewhere. */
typedef struct ipckit_reply_handle {
    uint32_t slot;
    uint32_t epoch;
    uint64_t id;
} ipckit_reply_handle;

/* What a server counted. Fields may be added at the end in later versions. */
typedef struct ipckit_server_counts {
    uint64_t calls;           /* requests received */
    uint64_t replies;         /* replies written */
    uint64_t replies_dropped; /* replies to a client that closed, died or gave up */
    uint64_t takeovers;       /* times the service's server end was taken over */
} ipckit_server_counts;

/* Creates the service (or takes over the one a dead server left). A live server on the name:
 * IPCKIT_ERROR (EBUSY, naming its pid). */
IPCKIT_API ipckit_status ipckit_server_create(const char* address, ipckit_server** server) IPCKIT_NOEXCEPT;
/* The next request from any client: *request and *size show it in place, valid until the next
 * ipckit_server_recv on this server or its close; *handle says where its reply goes. */
IPCKIT_API ipckit_status ipckit_server_recv(ipckit_server* server, const void** request, size_t* size,
                                            ipckit_reply_handle* handle, int64_t timeout_ns) IPCKIT_NOEXCEPT;
/* Answers one request, once, from any thread: IPCKIT_OK, or IPCKIT_CLOSED (the client closed,
 * died or gave up: the reply is dropped and counted). A handle this server never gave out or
 * already answered: IPCKIT_ERROR (EINVAL, "stale or unknown request id"). */
IPCKIT_API ipckit_status ipckit_server_reply(ipckit_server* server, const ipckit_reply_handle* to,
                                             const void* data, size_t size) IPCKIT_NOEXCEPT;
IPCKIT_API ipckit_status ipckit_server_max_message_size(const ipckit_server* server,
                                                        size_t* size) IPCKIT_NOEXCEPT;
IPCKIT_API ipckit_status ipckit_server_counts_get(const ipckit_server* server,
                                                  ipckit_server_counts* counts) IPCKIT_NOEXCEPT;
IPCKIT_API const char* ipckit_server_address(const ipckit_server* server) IPCKIT_NOEXCEPT;
/* Ends the service (every call in flight ends IPCKIT_CLOSED) and frees it; NULL allowed. */
IPCKIT_API void ipckit_server_close(ipckit_server* server) IPCKIT_NOEXCEPT;

/* Names the service; no server need be there yet (a call waits for one up to its timeout). */
IPCKIT_API ipckit_status ipckit_client_open(const char* address, ipckit_client** client) IPCKIT_NOEXCEPT;
/* Sends a request and waits for its response: *response and *response_size show it in place,
 * valid until the next call, wait or close on this client. IPCKIT_TIMED_OUT: no answer in time
 * (no server came, or it did not answer; a late answer is dropped); IPCKIT_CLOSED: the server
 * died or closed during the call. */
IPCKIT_API ipckit_status ipckit_client_call(ipckit_client* client, const void* request, size_t size,
                                            const void** response, size_t* response_size,
                                            int64_t timeout_ns) IPCKIT_NOEXCEPT;
/* Several calls in flight: start sends a request and gives its id; wait waits for that call's
 * response (shown as by ipckit_client_call), whatever order responses come in. More calls in
 * flight than the address's inflight=: IPCKIT_ERROR (EAGAIN). */
IPCKIT_API ipckit_status ipckit_client_start(ipckit_client* client, const void* request, size_t size,
                                             int64_t timeout_ns, uint64_t* call) IPCKIT_NOEXCEPT;
IPCKIT_API ipckit_status ipckit_client_wait(ipckit_client* client, uint64_t call, const void** response,
                                            size_t* response_size, int64_t timeout_ns) IPCKIT_NOEXCEPT;
IPCKIT_API ipckit_status ipckit_client_max_message_size(const ipckit_client* client,
                                                        size_t* size) IPCKIT_NOEXCEPT;
IPCKIT_API const char* ipckit_client_address(const ipckit_client* client) IPCKIT_NOEXCEPT;
/* Closes and frees the client; NULL allowed. */
IPCKIT_API void ipckit_client_close(ipckit_client* client) IPCKIT_NOEXCEPT;

/* ---- objects: what `ipckit ls` lists ---- */

/* One IPC object. Strings belong to the list. Fields may be added at the end in later
 * versions; read them through ipckit_object_list_get. */
typedef struct ipckit_object {
    const char* kind;    /* "sysvmq", "sysvshm", "posixmq", "shm", "service", "fifo", "unix" */
    const char* address; /* as `ipckit send` and `ipckit rm` take it */
    const char* owner;   /* user name, or the uid in decimal */
    uint32_t owner_uid;
    uint32_t mode;              /* permission bits */
    int64_t size;               /* bytes held; -1 when unknown */
    int64_t messages;           /* queues: messages queued; -1 otherwise */
    int32_t sysv_id;            /* System V objects: the kernel's id; -1 otherwise */
    int32_t creator_pid;        /* 0 when unknown */
    const char* creator_source; /* "unknown", "kernel", "registry" */
    int creator_alive;
    int in_use;
    int32_t last_sender_pid;            /* System V queues: lspid; 0 otherwise */
    int32_t last_receiver_pid;          /* System V queues: lrpid; 0 otherwise */
    int stale;                          /* neither its creator nor any user is alive */
    int creator_in_other_pid_namespace; /* creator_pid is another PID namespace's (display only) */
    /* A service's region (kind "service"); zero for every other object. */
    uint32_t service_clients;          /* client slots */
    uint32_t service_clients_attached; /* slots held by a live client */
    int service_server_alive;
    int32_t service_server_pid; /* in the server's own PID namespace; 0: none */
    uint64_t service_calls;
    uint64_t service_replies;
    uint64_t service_replies_dropped; /* replies to clients that had gone */
    uint64_t service_takeovers;       /* servers that took over a dead one's end */
} ipckit_object;

IPCKIT_API ipckit_status ipckit_objects(ipckit_object_list** list) IPCKIT_NOEXCEPT;
IPCKIT_API size_t ipckit_object_list_size(const ipckit_object_list* list) IPCKIT_NOEXCEPT;
/* The index-th object; NULL (and a last error) when out of range. */
IPCKIT_API const ipckit_object* ipckit_object_list_get(const ipckit_object_list* list,
                                                       size_t index) IPCKIT_NOEXCEPT;
IPCKIT_API void ipckit_object_list_free(ipckit_object_list* list) IPCKIT_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* IPCKIT_IPCKIT_H */
