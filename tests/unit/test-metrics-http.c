/* SPDX-License-Identifier: Apache-2.0 */
/* The metrics HTTP responder: listen addresses, request parsing, and the server on the loop over
 * loopback TCP (status codes, limits, the header timeout). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>

#include "base/parse.h"
#include "net/http-server.h"

/* ---- addresses --------------------------------------------------------------------------------- */

static void assert_address(const char *address, int family, const char *host, int port)
{
        struct sockaddr_storage ss;
        socklen_t len;
        char buf[INET6_ADDRSTRLEN];
        assert_int_equal(http_address_parse(address, &ss, &len, NULL), 0);
        assert_int_equal(ss.ss_family, family);
        if (family == AF_INET) {
                const struct sockaddr_in *sa = (const struct sockaddr_in *)&ss;
                assert_int_equal(len, sizeof *sa);
                assert_non_null(inet_ntop(AF_INET, &sa->sin_addr, buf, sizeof buf));
                assert_int_equal(ntohs(sa->sin_port), port);
        } else {
                const struct sockaddr_in6 *sa = (const struct sockaddr_in6 *)&ss;
                assert_int_equal(len, sizeof *sa);
                assert_non_null(inet_ntop(AF_INET6, &sa->sin6_addr, buf, sizeof buf));
                assert_int_equal(ntohs(sa->sin6_port), port);
        }
        assert_string_equal(buf, host);
}

static void assert_bad_address(const char *address, const char *error)
{
        struct sockaddr_storage ss;
        socklen_t len;
        _cleanup_free_ char *e = NULL;
        assert_int_equal(http_address_parse(address, &ss, &len, &e), -EINVAL);
        assert_non_null(e);
        assert_string_equal(e, error);
}

static void test_address(void **state)
{
        assert_address(":2112", AF_INET6, "::", 2112);
        assert_address("0.0.0.0:2112", AF_INET, "0.0.0.0", 2112);
        assert_address("127.0.0.1:2112", AF_INET, "127.0.0.1", 2112);
        assert_address("localhost:9400", AF_INET, "127.0.0.1", 9400);
        assert_address("[::1]:2112", AF_INET6, "::1", 2112);
        assert_address("[::]:0", AF_INET6, "::", 0);
        assert_address("10.1.2.3:65535", AF_INET, "10.1.2.3", 65535);

        assert_bad_address("2112",
                           "invalid listen address \"2112\": missing port (expected [host]:port, e.g. "
                           ":2112, 127.0.0.1:2112 or [::1]:2112)");
        assert_bad_address("", "invalid listen address \"\": empty (expected [host]:port, e.g. :2112, "
                               "127.0.0.1:2112 or [::1]:2112)");
        assert_bad_address("::1:2112", "invalid listen address \"::1:2112\": an IPv6 host needs brackets "
                                       "(expected [host]:port, e.g. :2112, 127.0.0.1:2112 or [::1]:2112)");
        assert_bad_address(":65536",
                           "invalid listen address \":65536\": port is not a number from 0 to 65535 "
                           "(expected [host]:port, e.g. :2112, 127.0.0.1:2112 or [::1]:2112)");
        assert_bad_address("metrics.example:2112",
                           "invalid listen address \"metrics.example:2112\": host is not an IP address or "
                           "localhost (expected [host]:port, e.g. :2112, 127.0.0.1:2112 or [::1]:2112)");
        assert_bad_address("127.0.0.1:", "invalid listen address \"127.0.0.1:\": missing port (expected "
                                         "[host]:port, e.g. :2112, 127.0.0.1:2112 or [::1]:2112)");
        assert_bad_address("[::1]2112",
                           "invalid listen address \"[::1]2112\": missing port after ']' (expected "
                           "[host]:port, e.g. :2112, 127.0.0.1:2112 or [::1]:2112)");
        assert_bad_address("[::1:2112", "invalid listen address \"[::1:2112\": missing ']' (expected "
                                        "[host]:port, e.g. :2112, 127.0.0.1:2112 or [::1]:2112)");
        assert_bad_address("[1.2.3.4]:80", "invalid listen address \"[1.2.3.4]:80\": not an IPv6 address in "
                                           "brackets (expected [host]:port, e.g. :2112, 127.0.0.1:2112 or "
                                           "[::1]:2112)");
        assert_bad_address(":http", "invalid listen address \":http\": port is not a number from 0 to 65535 "
                                    "(expected [host]:port, e.g. :2112, 127.0.0.1:2112 or [::1]:2112)");
        assert_bad_address("1.2.3:80", "invalid listen address \"1.2.3:80\": host is not an IP address or "
                                       "localhost (expected [host]:port, e.g. :2112, 127.0.0.1:2112 or "
                                       "[::1]:2112)");
}

/* ---- request parsing --------------------------------------------------------------------------- */

static int parse(const char *req, char *path, bool *head)
{
        return http_request_parse(req, strlen(req), path, head);
}

static void test_parse(void **state)
{
        char path[HTTP_PATH_MAX];
        bool head = true;

        assert_int_equal(
                parse("GET /metrics HTTP/1.1\r\nHost: node:2112\r\nAccept: */*\r\n\r\n", path, &head), 200);
        assert_string_equal(path, "/metrics");
        assert_false(head);
        assert_int_equal(parse("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n", path, &head), 200);
        assert_string_equal(path, "/healthz");
        assert_true(head);
        /* Query and fragment are not part of the path; the absolute form names the path too. */
        assert_int_equal(parse("GET /metrics?x=1&y=2 HTTP/1.1\r\nHost: x\r\n\r\n", path, &head), 200);
        assert_string_equal(path, "/metrics");
        assert_int_equal(
                parse("GET http://node:2112/healthz?q HTTP/1.1\r\nHost: node:2112\r\n\r\n", path, &head),
                200);
        assert_string_equal(path, "/healthz");
        assert_int_equal(parse("GET http://node:2112 HTTP/1.1\r\nHost: node:2112\r\n\r\n", path, &head),
                         200);
        assert_string_equal(path, "/");
        /* HTTP/1.0 needs no Host; bare LF line ends are accepted. */
        assert_int_equal(parse("GET /metrics HTTP/1.0\n\n", path, &head), 200);
        assert_int_equal(parse("GET /metrics HTTP/1.1\r\nhost:x\r\nContent-Length: 0\r\n\r\n", path, &head),
                         200);

        /* Not complete yet. */
        assert_int_equal(parse("", path, &head), 0);
        assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n", path, &head), 0);
        assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n\r", path, &head), 0);

        /* Methods are case-sensitive tokens; only GET and HEAD are served. */
        assert_int_equal(parse("POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n", path, &head), 405);
        assert_int_equal(parse("DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n", path, &head), 405);
        assert_int_equal(parse("get /metrics HTTP/1.1\r\nHost: x\r\n\r\n", path, &head), 405);

        /* Malformed. */
        assert_int_equal(parse("GET /metrics HTTP/1.1\r\n\r\n", path, &head), 400); /* 1.1 without Host */
        assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", path, &head), 400);
        assert_int_equal(parse("GET  /metrics HTTP/1.1\r\nHost: x\r\n\r\n", path, &head), 400);
        assert_int_equal(parse("GET /metrics\r\nHost: x\r\n\r\n", path, &head), 400); /* HTTP/0.9 */
        assert_int_equal(parse("GET /metrics HTTP/1.1 \r\nHost: x\r\n\r\n", path, &head), 400);
        assert_int_equal(parse("GET /metrics HTTP/11\r\nHost: x\r\n\r\n", path, &head), 400);
        assert_int_equal(parse("GET metrics HTTP/1.1\r\nHost: x\r\n\r\n", path, &head), 400);
        assert_int_equal(parse("GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n", path, &head), 400);
        assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", path, &head), 400);
        assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", path, &head), 400);
        assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n", path, &head),
                         400);
        assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\nX-A: a\x02\r\n\r\n", path, &head), 400);
        /* A body is not read, so a request announcing one is refused. */
        assert_int_equal(
                parse("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", path, &head),
                400);
        assert_int_equal(
                parse("GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                      path, &head),
                400);
        const char nul[] = "GET /metrics HTTP/1.1\r\nHost: x\0y\r\n\r\n";
        assert_int_equal(http_request_parse(nul, sizeof nul - 1, path, &head), 400);

        /* Versions other than 1.x. */
        assert_int_equal(parse("GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n", path, &head), 505);
        assert_int_equal(parse("GET /metrics HTTP/0.9\r\nHost: x\r\n\r\n", path, &head), 505);

        /* Sizes: a path of HTTP_PATH_MAX bytes is refused; a head of more than 8 KiB too. */
        char big[HTTP_HEAD_MAX + 64];
        int n = snprintf(big, sizeof big, "GET /");
        memset(big + n, 'a', HTTP_PATH_MAX - 1);
        snprintf(big + n + HTTP_PATH_MAX - 1, sizeof big - n - HTTP_PATH_MAX + 1,
                 " HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_int_equal(parse(big, path, &head), 414);
        n = snprintf(big, sizeof big, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ");
        memset(big + n, 'p', HTTP_HEAD_MAX - n);
        assert_int_equal(http_request_parse(big, HTTP_HEAD_MAX, path, &head), 431); /* full, no end */
        assert_int_equal(http_request_parse(big, HTTP_HEAD_MAX - 1, path, &head), 0);
        memcpy(big + HTTP_HEAD_MAX - 4, "\r\n\r\n", 4); /* exactly 8 KiB with its blank line: fine */
        assert_int_equal(http_request_parse(big, HTTP_HEAD_MAX, path, &head), 200);
        memcpy(big + HTTP_HEAD_MAX - 4, "pp\r\n\r\n", 6); /* 8 KiB + 2 */
        assert_int_equal(http_request_parse(big, HTTP_HEAD_MAX + 2, path, &head), 431);
}

/* Mutations of a valid request (bytes flipped, inserted, cut) never crash the parser, never read past
 * the buffer (ASAN build), and give only the statuses it documents; the path it returns is a path. */
static void test_parse_mutations(void **state)
{
        static const char valid[] =
                "GET /metrics?x=1 HTTP/1.1\r\nHost: node:2112\r\nUser-Agent: Prometheus/2.53\r\n"
                "Accept: text/plain;version=0.0.4\r\n\r\n";
        static const char alphabet[] = "\r\n :/?#\t\x00\x7f\xffGETHOSTP0123456789.-";
        unsigned seed = 12345;
        unsigned counts[600] = { 0 };
        for (int round = 0; round < 20000; round++) {
                char buf[256];
                size_t n = sizeof valid - 1;
                memcpy(buf, valid, n);
                int edits = 1 + rand_r(&seed) % 4;
                for (int e = 0; e < edits; e++) {
                        size_t at = (size_t)rand_r(&seed) % n;
                        char c = alphabet[rand_r(&seed) % (sizeof alphabet - 1)];
                        switch (rand_r(&seed) % 3) {
                        case 0: buf[at] = c; break;
                        case 1:
                                if (n < sizeof buf) {
                                        memmove(buf + at + 1, buf + at, n - at);
                                        buf[at] = c;
                                        n++;
                                }
                                break;
                        default: memmove(buf + at, buf + at + 1, n - at - 1); n--;
                        }
                }
                /* An exact-size heap copy, so that ASAN sees any read past the end. */
                char *copy = malloc(n ? n : 1);
                assert_non_null(copy);
                memcpy(copy, buf, n);
                char path[HTTP_PATH_MAX];
                bool head = false;
                int status = http_request_parse(copy, n, path, &head);
                free(copy);
                assert_true(status == 0 || status == 200 || status == 400 || status == 405 ||
                            status == 414 || status == 431 || status == 505);
                if (status == 200) {
                        assert_true(path[0] == '/');
                        assert_null(strpbrk(path, "?# \r\n"));
                }
                counts[status]++;
        }
        /* The mutations reach the interesting answers, not just one. */
        assert_true(counts[200] > 100);
        assert_true(counts[400] > 100);
        assert_true(counts[0] > 100);
        assert_true(counts[405] > 10);
}

/* ---- the server -------------------------------------------------------------------------------- */

static int metrics_handler(struct http_reply *reply, void *userdata)
{
        reply->content_type = "text/plain; version=0.0.4; charset=utf-8";
        reply->body = strdup("up 1\n");
        if (!reply->body)
                return -ENOMEM;
        reply->size = 5;
        return 0;
}

static bool registered;
static int healthz_handler(struct http_reply *reply, void *userdata)
{
        reply->status = registered ? 200 : 503;
        reply->body = strdup(registered ? "ok\n" : "not registered with the kubelet\n");
        reply->size = strlen(reply->body);
        return 0;
}

static int failing_handler(struct http_reply *reply, void *userdata)
{
        return -EIO;
}

static const struct http_route routes[] = {
        { "/metrics", metrics_handler, NULL },
        { "/healthz", healthz_handler, NULL },
        { "/fail", failing_handler, NULL },
};

struct fixture {
        loop *loop;
        http_server *server;
};

static int setup(void **state)
{
        struct fixture *f = new0(struct fixture, 1);
        assert_int_equal(loop_new(&f->loop), 0);
        assert_int_equal(http_server_new(f->loop, routes, ELEMENTSOF(routes), &f->server), 0);
        _cleanup_free_ char *error = NULL;
        assert_int_equal(http_server_listen(f->server, "127.0.0.1:0", &error), 0);
        assert_true(http_server_port(f->server) > 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        http_server_free(f->server);
        loop_free(f->loop);
        free(f);
        return 0;
}

static int client_connect(struct fixture *f)
{
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        struct sockaddr_in sa = { .sin_family = AF_INET,
                                  .sin_port = htons(http_server_port(f->server)),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
        return fd;
}

static void client_send(int fd, const char *data, size_t size)
{
        assert_int_equal(send(fd, data, size, MSG_NOSIGNAL), (ssize_t)size);
}

/* Runs the loop until the server closes the connection (or limit passes); returns what arrived. */
static char *client_read_all(struct fixture *f, int fd, uint64_t limit)
{
        static char buf[65536];
        size_t n = 0;
        uint64_t end = now_nsec() + limit;
        while (now_nsec() < end) {
                assert_true(loop_run_once(f->loop, 5 * NSEC_PER_MSEC) >= 0);
                ssize_t k = recv(fd, buf + n, sizeof buf - 1 - n, 0);
                if (k == 0)
                        break;
                if (k > 0)
                        n += (size_t)k;
        }
        buf[n] = '\0';
        return buf;
}

static char *exchange(struct fixture *f, const char *request)
{
        _cleanup_close_ int fd = client_connect(f);
        client_send(fd, request, strlen(request));
        return client_read_all(f, fd, 2 * NSEC_PER_SEC);
}

static void test_server_routes(void **state)
{
        struct fixture *f = *state;
        assert_string_equal(exchange(f, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n"),
                            "HTTP/1.1 200 OK\r\n"
                            "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                            "Content-Length: 5\r\n"
                            "Connection: close\r\n"
                            "\r\n"
                            "up 1\n");
        /* HEAD: the same head, no body. */
        assert_string_equal(exchange(f, "HEAD /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n"),
                            "HTTP/1.1 200 OK\r\n"
                            "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                            "Content-Length: 5\r\n"
                            "Connection: close\r\n"
                            "\r\n");
        registered = false;
        assert_string_equal(exchange(f, "GET /healthz HTTP/1.0\r\n\r\n"),
                            "HTTP/1.1 503 Service Unavailable\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Length: 32\r\n"
                            "Connection: close\r\n"
                            "\r\n"
                            "not registered with the kubelet\n");
        registered = true;
        assert_string_equal(exchange(f, "GET /healthz HTTP/1.0\r\n\r\n"),
                            "HTTP/1.1 200 OK\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Length: 3\r\n"
                            "Connection: close\r\n"
                            "\r\n"
                            "ok\n");
        assert_string_equal(exchange(f, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"),
                            "HTTP/1.1 404 Not Found\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Length: 14\r\n"
                            "Connection: close\r\n"
                            "\r\n"
                            "404 Not Found\n");
        assert_string_equal(exchange(f, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
                            "HTTP/1.1 405 Method Not Allowed\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Length: 23\r\n"
                            "Allow: GET, HEAD\r\n"
                            "Connection: close\r\n"
                            "\r\n"
                            "405 Method Not Allowed\n");
        assert_string_equal(exchange(f, "GET /fail HTTP/1.1\r\nHost: x\r\n\r\n"),
                            "HTTP/1.1 500 Internal Server Error\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Length: 26\r\n"
                            "Connection: close\r\n"
                            "\r\n"
                            "500 Internal Server Error\n");
        assert_true(startswith(exchange(f, "GET /metrics HTTP/3.0\r\nHost: x\r\n\r\n"),
                               "HTTP/1.1 505 HTTP Version Not Supported\r\n"));
        assert_true(startswith(exchange(f, "\x16\x03\x01\x02\xfc\x03\x03\r\n\r\n"),
                               "HTTP/1.1 400 Bad Request\r\n"));
        /* One request per connection: a second one sent along is not answered. */
        assert_string_equal(
                exchange(f, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: "
                            "x\r\n\r\n"),
                "HTTP/1.1 200 OK\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Length: 3\r\n"
                "Connection: close\r\n"
                "\r\n"
                "ok\n");
        /* Each connection ends when the client closes its side after the answer. */
        for (int i = 0; i < 10; i++)
                assert_true(loop_run_once(f->loop, 5 * NSEC_PER_MSEC) >= 0);
        assert_int_equal(http_server_connections(f->server), 0);
}

static void test_server_oversize_head(void **state)
{
        struct fixture *f = *state;
        static char req[HTTP_HEAD_MAX + 1024];
        int n = snprintf(req, sizeof req, "GET /metrics HTTP/1.1\r\nHost: x\r\nCookie: ");
        memset(req + n, 'c', sizeof req - n - 1);
        req[sizeof req - 1] = '\0';
        assert_string_equal(exchange(f, req), "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                                              "Content-Type: text/plain; charset=utf-8\r\n"
                                              "Content-Length: 36\r\n"
                                              "Connection: close\r\n"
                                              "\r\n"
                                              "431 Request Header Fields Too Large\n");
}

static void test_server_slowloris(void **state)
{
        struct fixture *f = *state;
        http_server_set_timeout(f->server, 300 * NSEC_PER_MSEC);
        _cleanup_close_ int fd = client_connect(f);
        uint64_t start = now_nsec();
        client_send(fd, "GET /metrics HTTP/1.1\r\n", 23);
        /* A byte every 50 ms does not extend the deadline: the head has 300 ms in all. */
        char answer[512] = "";
        size_t n = 0;
        const char *trickle = "Host: slow\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        uint64_t next_byte = start;
        bool closed = false;
        while (!closed && now_nsec() - start < 2 * NSEC_PER_SEC) {
                if (now_nsec() >= next_byte && *trickle) {
                        (void)send(fd, trickle++, 1, MSG_NOSIGNAL);
                        next_byte += 50 * NSEC_PER_MSEC;
                }
                assert_true(loop_run_once(f->loop, 10 * NSEC_PER_MSEC) >= 0);
                ssize_t k = recv(fd, answer + n, sizeof answer - 1 - n, 0);
                if (k > 0)
                        n += (size_t)k;
                closed = k == 0 || (k < 0 && errno == ECONNRESET);
        }
        uint64_t took = now_nsec() - start;
        answer[n] = '\0';
        assert_true(closed);
        assert_true(startswith(answer, "HTTP/1.1 408 Request Timeout\r\n"));
        assert_true(took >= 300 * NSEC_PER_MSEC);
        assert_true(took < 1200 * NSEC_PER_MSEC);
        fd = safe_close(fd);
        for (int i = 0; i < 10; i++)
                assert_true(loop_run_once(f->loop, 5 * NSEC_PER_MSEC) >= 0);
        assert_int_equal(http_server_connections(f->server), 0);
}

/* A client socket bound to source (a loopback address: 127.0.0.x), connected to the server. */
static int client_connect_from(struct fixture *f, const char *source)
{
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        struct sockaddr_in src = { .sin_family = AF_INET };
        assert_int_equal(inet_pton(AF_INET, source, &src.sin_addr), 1);
        assert_int_equal(bind(fd, (struct sockaddr *)&src, sizeof src), 0);
        struct sockaddr_in sa = { .sin_family = AF_INET,
                                  .sin_port = htons(http_server_port(f->server)),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
        return fd;
}

static bool closed_by_server(int fd)
{
        char c;
        ssize_t k = recv(fd, &c, 1, MSG_PEEK);
        return k == 0 || (k < 0 && errno == ECONNRESET);
}

static void pump(struct fixture *f)
{
        for (int i = 0; i < 10; i++)
                assert_true(loop_run_once(f->loop, 5 * NSEC_PER_MSEC) >= 0);
}

/* One peer holds at most HTTP_CONNECTIONS_PER_PEER: its newer silent connections close its older ones. */
static void test_server_connections_per_peer(void **state)
{
        struct fixture *f = *state;
        int fds[HTTP_CONNECTIONS_PER_PEER + 2];
        for (size_t i = 0; i < ELEMENTSOF(fds); i++) {
                fds[i] = client_connect_from(f, "127.0.0.2");
                pump(f);
        }
        assert_int_equal(http_server_connections(f->server), HTTP_CONNECTIONS_PER_PEER);
        assert_int_equal(http_server_evicted(f->server), 2);
        assert_true(closed_by_server(fds[0]));
        assert_true(closed_by_server(fds[1]));
        assert_false(closed_by_server(fds[2]));
        const char *req = "GET /healthz HTTP/1.0\r\n\r\n";
        client_send(fds[ELEMENTSOF(fds) - 1], req, strlen(req));
        assert_true(startswith(client_read_all(f, fds[ELEMENTSOF(fds) - 1], 2 * NSEC_PER_SEC),
                               "HTTP/1.1 200 OK\r\n"));
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                safe_close(fds[i]);
        pump(f);
        assert_int_equal(http_server_connections(f->server), 0);
}

/* Every slot held by silent connections of other peers: a probe is still let in at once (the listener
 * never pauses), closing the oldest silent connection of the peer holding the most, and answered. */
static void test_server_connection_limit(void **state)
{
        struct fixture *f = *state;
        static const char *const pods[] = { "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5" };
        int fds[HTTP_CONNECTIONS_MAX + 2];
        size_t n = 0;
        for (size_t i = 0; i < HTTP_CONNECTIONS_PER_PEER; i++)
                for (size_t p = 0; p < ELEMENTSOF(pods); p++) {
                        fds[n++] = client_connect_from(f, pods[p]);
                        pump(f);
                }
        assert_int_equal(n, HTTP_CONNECTIONS_MAX);
        assert_int_equal(http_server_connections(f->server), HTTP_CONNECTIONS_MAX);
        assert_int_equal(http_server_evicted(f->server), 0);

        int probe = client_connect_from(f, "127.0.0.1");
        const char *req = "GET /healthz HTTP/1.1\r\nHost: node\r\n\r\n";
        client_send(probe, req, strlen(req));
        uint64_t start = now_nsec();
        assert_true(startswith(client_read_all(f, probe, 2 * NSEC_PER_SEC), "HTTP/1.1 200 OK\r\n"));
        assert_true(now_nsec() - start < 500 * NSEC_PER_MSEC);
        assert_int_equal(http_server_evicted(f->server), 1);
        assert_int_equal(http_server_refused(f->server), 0);
        /* The oldest silent one (127.0.0.2's first) made room; the others are still open. */
        assert_true(closed_by_server(fds[0]));
        for (size_t i = 1; i < n; i++)
                assert_false(closed_by_server(fds[i]));

        /* The probe's slot, once it is done, is free again; after that a new pod closes the oldest of the
         * pods holding 4 (not one of 127.0.0.2, which holds 3 now). */
        safe_close(probe);
        pump(f);
        fds[n++] = client_connect_from(f, "127.0.0.6");
        pump(f);
        assert_int_equal(http_server_evicted(f->server), 1);
        fds[n++] = client_connect_from(f, "127.0.0.7");
        pump(f);
        assert_int_equal(http_server_evicted(f->server), 2);
        assert_true(closed_by_server(fds[1]));  /* 127.0.0.3's first */
        assert_false(closed_by_server(fds[4])); /* 127.0.0.2's second */
        assert_int_equal(http_server_connections(f->server), HTTP_CONNECTIONS_MAX);
        for (size_t i = 0; i < n; i++)
                safe_close(fds[i]);
        pump(f);
        assert_int_equal(http_server_connections(f->server), 0);
}

static void test_server_listen_errors(void **state)
{
        struct fixture *f = *state;
        _cleanup_(http_server_freep) http_server *s = NULL;
        _cleanup_free_ char *e1 = NULL, *e2 = NULL;
        assert_int_equal(http_server_new(f->loop, routes, ELEMENTSOF(routes), &s), 0);
        assert_int_equal(http_server_listen(s, "nonsense", &e1), -EINVAL);
        assert_string_equal(e1,
                            "invalid listen address \"nonsense\": missing port (expected [host]:port, e.g. "
                            ":2112, 127.0.0.1:2112 or [::1]:2112)");
        /* The fixture's server holds this port. */
        char addr[64];
        snprintf(addr, sizeof addr, "127.0.0.1:%d", http_server_port(f->server));
        assert_int_equal(http_server_listen(s, addr, &e2), -EADDRINUSE);
        char want[128];
        snprintf(want, sizeof want, "cannot listen on %s: Address already in use", addr);
        assert_string_equal(e2, want);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_address),
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_parse_mutations),
                cmocka_unit_test_setup_teardown(test_server_routes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_server_oversize_head, setup, teardown),
                cmocka_unit_test_setup_teardown(test_server_slowloris, setup, teardown),
                cmocka_unit_test_setup_teardown(test_server_connections_per_peer, setup, teardown),
                cmocka_unit_test_setup_teardown(test_server_connection_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_server_listen_errors, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
