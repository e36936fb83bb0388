/* SPDX-License-Identifier: Apache-2.0 */
#include "net/http-server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "base/error.h"
#include "base/parse.h"

/* After the answer, the peer gets this long to close its side before we close ours (a close with
 * unread input would send a reset, which can destroy the answer in flight). */
#define LINGER_MAX_NS (2ULL * NSEC_PER_SEC)
/* Connections taken per wakeup of the listener; after EMFILE/ENFILE it pauses this long instead of
 * spinning on a level-triggered fd. */
#define ACCEPTS_PER_WAKE  64
#define ACCEPT_BACKOFF_NS (100 * NSEC_PER_MSEC)

/* Where a connection comes from: its IP address (IPv4-mapped IPv6 counted as IPv4). */
struct peer {
        uint8_t addr[16];
        bool v6;
};

enum conn_state { CONN_READING, CONN_WRITING, CONN_LINGERING };

typedef struct conn conn;
struct conn {
        http_server *server;
        conn *prev, *next;
        int fd;
        struct peer peer;
        uint64_t seq; /* accept order: lower is older */
        enum conn_state state;
        loop_source *io;
        loop_source *timer;
        size_t n_in;
        char *out;
        size_t n_out, sent;
        char in[HTTP_HEAD_MAX];
};

struct http_server {
        loop *loop;
        const struct http_route *routes;
        size_t n_routes;
        uint64_t header_timeout, timeout;
        int fd;
        int port;
        loop_source *listener, *backoff;
        conn *conns;
        size_t n_conns;
        uint64_t seq, evicted, refused;
};

/* ---- listen address ---------------------------------------------------------------------------- */

static int address_error(char **ret_error, const char *address, const char *why)
{
        return error_set(
                ret_error, -EINVAL,
                "invalid listen address \"%s\": %s (expected [host]:port, e.g. :2112, 127.0.0.1:2112 "
                "or [::1]:2112)",
                address, why);
}

int http_address_parse(const char *address, struct sockaddr_storage *ret, socklen_t *ret_len,
                       char **ret_error)
{
        struct sockaddr_storage ss = {};
        socklen_t len;
        char host[INET6_ADDRSTRLEN + 1];
        const char *port;

        if (isempty(address))
                return address_error(ret_error, strempty(address), "empty");
        if (address[0] == '[') {
                const char *end = strchr(address, ']');
                if (!end)
                        return address_error(ret_error, address, "missing ']'");
                if (end[1] != ':')
                        return address_error(ret_error, address, "missing port after ']'");
                size_t n = (size_t)(end - address - 1);
                if (n == 0 || n >= sizeof host)
                        return address_error(ret_error, address, "not an IPv6 address in brackets");
                memcpy(host, address + 1, n);
                host[n] = '\0';
                port = end + 2;
                struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&ss;
                if (inet_pton(AF_INET6, host, &sa->sin6_addr) != 1)
                        return address_error(ret_error, address, "not an IPv6 address in brackets");
                sa->sin6_family = AF_INET6;
                len = sizeof *sa;
        } else {
                const char *colon = strrchr(address, ':');
                if (!colon)
                        return address_error(ret_error, address, "missing port");
                size_t n = (size_t)(colon - address);
                if (memchr(address, ':', n))
                        return address_error(ret_error, address, "an IPv6 host needs brackets");
                if (n >= sizeof host)
                        return address_error(ret_error, address, "host is not an IP address or localhost");
                memcpy(host, address, n);
                host[n] = '\0';
                port = colon + 1;
                if (n == 0) {
                        /* Every interface, as Go: IPv6 any, which also takes IPv4 (see listen). */
                        struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&ss;
                        sa->sin6_family = AF_INET6;
                        sa->sin6_addr = in6addr_any;
                        len = sizeof *sa;
                } else {
                        struct sockaddr_in *sa = (struct sockaddr_in *)&ss;
                        sa->sin_family = AF_INET;
                        len = sizeof *sa;
                        if (streq(host, "localhost"))
                                sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                        else if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
                                return address_error(ret_error, address,
                                                     "host is not an IP address or localhost");
                }
        }
        uint64_t p;
        if (isempty(port))
                return address_error(ret_error, address, "missing port");
        if (parse_uint64(port, &p) < 0 || p > 65535)
                return address_error(ret_error, address, "port is not a number from 0 to 65535");
        if (ss.ss_family == AF_INET6)
                ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)p);
        else
                ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)p);
        *ret = ss;
        *ret_len = len;
        return 0;
}

/* ---- request parsing --------------------------------------------------------------------------- */

/* RFC 9110 tchar */
static bool tchar(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c && strchr("!#$%&'*+-.^_`|~", c));
}

static size_t token_length(const char *s, const char *end)
{
        size_t n = 0;
        while (s + n < end && tchar(s[n]))
                n++;
        return n;
}

/* End of the head (just past the blank line), or NULL. A bare LF ends a line too (RFC 9112 2.2). */
static const char *head_end(const char *buf, size_t size)
{
        for (size_t i = 0; i + 1 < size; i++) {
                if (buf[i] != '\n')
                        continue;
                if (buf[i + 1] == '\n')
                        return buf + i + 2;
                if (buf[i + 1] == '\r' && i + 2 < size && buf[i + 2] == '\n')
                        return buf + i + 3;
        }
        return NULL;
}

/* The line starting at s (without its CR LF); *next is the start of the following line. */
static size_t line_length(const char *s, const char *end, const char **next)
{
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        if (!nl)
                nl = end;
        *next = nl < end ? nl + 1 : end;
        return (size_t)((nl > s && nl[-1] == '\r') ? nl - 1 - s : nl - s);
}

static bool field_value_is(const char *v, size_t n, const char *want)
{
        while (n > 0 && (*v == ' ' || *v == '\t'))
                v++, n--;
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
                n--;
        return n == strlen(want) && strneq(v, want, n);
}

int http_request_parse(const char *buf, size_t size, char ret_path[static HTTP_PATH_MAX],
                       bool *ret_head_only)
{
        const char *end = head_end(buf, size);
        if (!end)
                return size >= HTTP_HEAD_MAX ? 431 : 0;
        if ((size_t)(end - buf) > HTTP_HEAD_MAX)
                return 431;
        if (memchr(buf, '\0', (size_t)(end - buf)))
                return 400;

        /* request-line = method SP request-target SP HTTP-version */
        const char *next;
        size_t n = line_length(buf, end, &next);
        const char *line_end = buf + n;
        size_t method_len = token_length(buf, line_end);
        if (method_len == 0 || buf + method_len >= line_end || buf[method_len] != ' ')
                return 400;
        const char *target = buf + method_len + 1;
        const char *sp = memchr(target, ' ', (size_t)(line_end - target));
        if (!sp || sp == target)
                return 400;
        for (const char *c = target; c < sp; c++)
                if ((unsigned char)*c <= ' ' || *c == 0x7f)
                        return 400;
        const char *version = sp + 1;
        size_t version_len = (size_t)(line_end - version);
        if (version_len != 8 || !strneq(version, "HTTP/", 5) || version[6] != '.' || version[5] < '0' ||
            version[5] > '9' || version[7] < '0' || version[7] > '9')
                return 400;
        if (version[5] != '1')
                return 505;
        bool http11 = version[7] != '0';

        /* field-line = field-name ":" OWS field-value OWS; no obsolete line folding. */
        unsigned hosts = 0;
        for (const char *l = next; l < end;) {
                n = line_length(l, end, &next);
                if (n == 0)
                        break; /* the blank line */
                if (l[0] == ' ' || l[0] == '\t')
                        return 400;
                size_t name_len = token_length(l, l + n);
                if (name_len == 0 || name_len >= n || l[name_len] != ':')
                        return 400;
                const char *v = l + name_len + 1;
                size_t vn = n - name_len - 1;
                for (size_t i = 0; i < vn; i++)
                        if ((unsigned char)v[i] < ' ' && v[i] != '\t')
                                return 400;
                if (name_len == 4 && strncasecmp(l, "Host", 4) == 0)
                        hosts++;
                /* We read no body: a request announcing one is refused rather than half-read. */
                if (name_len == 17 && strncasecmp(l, "Transfer-Encoding", 17) == 0)
                        return 400;
                if (name_len == 14 && strncasecmp(l, "Content-Length", 14) == 0 &&
                    !field_value_is(v, vn, "0"))
                        return 400;
                l = next;
        }
        if (hosts > 1 || (http11 && hosts == 0))
                return 400;

        bool head_only = method_len == 4 && strneq(buf, "HEAD", 4);
        if (!head_only && !(method_len == 3 && strneq(buf, "GET", 3)))
                return 405;

        /* origin-form "/path?query", or absolute-form "http://host/path?query" (RFC 9112 3.2.2). */
        const char *path = target, *path_end = sp;
        if (*path != '/') {
                const char *scheme_end = NULL;
                if ((size_t)(sp - path) > 7 && strncasecmp(path, "http://", 7) == 0)
                        scheme_end = path + 7;
                else if ((size_t)(sp - path) > 8 && strncasecmp(path, "https://", 8) == 0)
                        scheme_end = path + 8;
                if (!scheme_end)
                        return 400;
                path = memchr(scheme_end, '/', (size_t)(sp - scheme_end));
                if (!path) {
                        path = "/";
                        path_end = path + 1;
                }
        }
        size_t path_len = 0, avail = (size_t)(path_end - path);
        while (path_len < avail && path[path_len] != '?' && path[path_len] != '#')
                path_len++;
        if (path_len >= HTTP_PATH_MAX)
                return 414;
        memcpy(ret_path, path, path_len);
        ret_path[path_len] = '\0';
        *ret_head_only = head_only;
        return 200;
}

/* ---- connections ------------------------------------------------------------------------------- */

static const char *status_text(int status)
{
        switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 414: return "URI Too Long";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default: return "Unknown";
        }
}

static void conn_free(conn *c)
{
        http_server *s = c->server;
        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_conns--;
        loop_source_free(c->io);
        loop_source_free(c->timer);
        safe_close(c->fd);
        free(c->out);
        free(c);
}

static void conn_linger(conn *c)
{
        /* Our side is done; wait (briefly) for the peer's EOF, discarding what it still sends. */
        (void)shutdown(c->fd, SHUT_WR);
        c->state = CONN_LINGERING;
        if (loop_source_set_io_events(c->io, EPOLLIN) < 0) {
                conn_free(c);
                return;
        }
        loop_timer_arm(c->timer, MIN(c->server->timeout, LINGER_MAX_NS));
}

static void conn_flush(conn *c)
{
        while (c->sent < c->n_out) {
                ssize_t n = send(c->fd, c->out + c->sent, c->n_out - c->sent, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return; /* EPOLLOUT brings us back */
                if (n <= 0) {
                        conn_free(c);
                        return;
                }
                c->sent += (size_t)n;
        }
        conn_linger(c);
}

static void conn_respond(conn *c, int status, const char *path, bool head_only)
{
        http_server *s = c->server;
        struct http_reply reply = { .status = status, .content_type = "text/plain; charset=utf-8" };
        if (status == 200) {
                const struct http_route *route = NULL;
                for (size_t i = 0; i < s->n_routes && !route; i++)
                        if (streq(s->routes[i].path, path))
                                route = &s->routes[i];
                if (!route)
                        reply.status = 404;
                else if (route->handler(&reply, route->userdata) < 0) {
                        reply.body = mfree(reply.body);
                        reply.size = 0;
                        reply.status = 500;
                        reply.content_type = "text/plain; charset=utf-8";
                }
        }
        if (!reply.body && reply.status != 200) {
                /* A short sentence for whoever runs curl by hand. */
                if (asprintf(&reply.body, "%d %s\n", reply.status, status_text(reply.status)) < 0) {
                        conn_free(c);
                        return;
                }
                reply.size = strlen(reply.body);
        }
        size_t body = head_only ? 0 : reply.size;
        char *head = NULL;
        int n = asprintf(
                &head,
                "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
                reply.status, status_text(reply.status), reply.content_type, reply.size,
                reply.status == 405 ? "Allow: GET, HEAD\r\n" : "");
        c->out = n < 0 ? NULL : malloc((size_t)n + body);
        if (c->out) {
                memcpy(c->out, head, (size_t)n);
                if (body)
                        memcpy(c->out + n, reply.body, body);
                c->n_out = (size_t)n + body;
        }
        free(head);
        free(reply.body);
        if (!c->out) {
                conn_free(c);
                return;
        }
        c->state = CONN_WRITING;
        c->sent = 0;
        loop_timer_arm(c->timer, s->timeout);
        if (loop_source_set_io_events(c->io, EPOLLOUT) < 0) {
                conn_free(c);
                return;
        }
        conn_flush(c);
}

static void conn_read(conn *c)
{
        bool eof = false;
        while (c->n_in < sizeof c->in) {
                ssize_t n = recv(c->fd, c->in + c->n_in, sizeof c->in - c->n_in, 0);
                if (n > 0) {
                        c->n_in += (size_t)n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        break;
                eof = true;
                break;
        }
        char path[HTTP_PATH_MAX];
        bool head_only = false;
        int status = http_request_parse(c->in, c->n_in, path, &head_only);
        if (status == 0) {
                if (eof)
                        conn_free(c); /* the peer left before finishing its request */
                return;
        }
        conn_respond(c, status, path, head_only);
}

static void conn_discard(conn *c)
{
        char buf[4096];
        for (;;) {
                ssize_t n = recv(c->fd, buf, sizeof buf, 0);
                if (n > 0)
                        continue;
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                conn_free(c); /* EOF or error: done */
                return;
        }
}

static void conn_io(loop_source *src, int fd, uint32_t revents, void *userdata)
{
        conn *c = userdata;
        switch (c->state) {
        case CONN_READING: conn_read(c); break;
        case CONN_WRITING:
                if (revents & (EPOLLERR | EPOLLHUP))
                        conn_free(c);
                else
                        conn_flush(c);
                break;
        case CONN_LINGERING: conn_discard(c); break;
        }
}

static void conn_timeout(loop_source *src, void *userdata)
{
        conn *c = userdata;
        if (c->state == CONN_READING)
                conn_respond(c, 408, "", false); /* slow or silent client */
        else
                conn_free(c);
}

static struct peer peer_of(const struct sockaddr_storage *ss)
{
        struct peer p = {};
        if (ss->ss_family == AF_INET6) {
                const struct sockaddr_in6 *sa = (const struct sockaddr_in6 *)ss;
                if (IN6_IS_ADDR_V4MAPPED(&sa->sin6_addr))
                        memcpy(p.addr, sa->sin6_addr.s6_addr + 12, 4);
                else {
                        memcpy(p.addr, sa->sin6_addr.s6_addr, 16);
                        p.v6 = true;
                }
        } else if (ss->ss_family == AF_INET)
                memcpy(p.addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
        return p;
}

static bool peer_equal(const struct peer *a, const struct peer *b)
{
        return a->v6 == b->v6 && memcmp(a->addr, b->addr, sizeof a->addr) == 0;
}

static size_t peer_connections(const http_server *s, const struct peer *p)
{
        size_t n = 0;
        for (const conn *c = s->conns; c; c = c->next)
                n += peer_equal(&c->peer, p);
        return n;
}

/* A connection that may go to make room: one still waiting for its request, or done and lingering. One
 * busy writing an answer keeps its slot. */
static bool evictable(const conn *c)
{
        return c->state != CONN_WRITING;
}

/* Whom to close for a new connection from p: the oldest evictable one of p itself when p is at its
 * bound; else, when the server is full, a lingering one, else the oldest evictable one of the peer
 * holding the most connections. NULL: room without closing anything, or nothing evictable. */
static conn *pick_victim(http_server *s, const struct peer *p, bool *ret_refuse)
{
        conn *best = NULL;
        size_t best_count = 0;
        *ret_refuse = false;
        if (peer_connections(s, p) >= HTTP_CONNECTIONS_PER_PEER) {
                for (conn *c = s->conns; c; c = c->next)
                        if (peer_equal(&c->peer, p) && evictable(c) && (!best || c->seq < best->seq))
                                best = c;
                *ret_refuse = !best;
                return best;
        }
        if (s->n_conns < HTTP_CONNECTIONS_MAX)
                return NULL;
        for (conn *c = s->conns; c; c = c->next) {
                if (!evictable(c))
                        continue;
                size_t count = c->state == CONN_LINGERING ? SIZE_MAX : peer_connections(s, &c->peer);
                if (!best || count > best_count || (count == best_count && c->seq < best->seq)) {
                        best = c;
                        best_count = count;
                }
        }
        *ret_refuse = !best;
        return best;
}

static int conn_add(http_server *s, int cfd, const struct peer *p)
{
        conn *c = malloc(sizeof(conn));
        if (!c)
                return -ENOMEM;
        *c = (conn){ .server = s, .fd = cfd, .peer = *p, .seq = ++s->seq, .state = CONN_READING };
        if (loop_add_io(s->loop, cfd, EPOLLIN, conn_io, c, &c->io) < 0 ||
            loop_add_timer(s->loop, s->header_timeout, conn_timeout, c, &c->timer) < 0) {
                loop_source_free(c->io);
                free(c);
                return -ENOMEM;
        }
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        return 0;
}

static void on_backoff(loop_source *src, void *userdata)
{
        http_server *s = userdata;
        if (s->listener)
                (void)loop_source_set_io_events(s->listener, EPOLLIN);
}

static void listener_io(loop_source *src, int fd, uint32_t revents, void *userdata)
{
        http_server *s = userdata;
        for (int i = 0; i < ACCEPTS_PER_WAKE; i++) {
                struct sockaddr_storage ss = {};
                socklen_t len = sizeof ss;
                int cfd = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                                (void)loop_source_set_io_events(s->listener, 0);
                                if (!s->backoff)
                                        (void)loop_add_timer(s->loop, ACCEPT_BACKOFF_NS, on_backoff, s,
                                                             &s->backoff);
                                else
                                        loop_timer_arm(s->backoff, ACCEPT_BACKOFF_NS);
                        }
                        return; /* EAGAIN, or a connection that died in the backlog */
                }
                struct peer p = peer_of(&ss);
                bool refuse;
                conn *victim = pick_victim(s, &p, &refuse);
                if (refuse) {
                        s->refused++;
                        safe_close(cfd);
                        continue;
                }
                if (victim) {
                        s->evicted++;
                        conn_free(victim);
                }
                if (conn_add(s, cfd, &p) < 0)
                        safe_close(cfd);
        }
}

/* ---- server ------------------------------------------------------------------------------------ */

int http_server_new(loop *l, const struct http_route *routes, size_t n_routes, http_server **ret)
{
        http_server *s = new0(http_server, 1);
        if (!s)
                return -ENOMEM;
        s->loop = l;
        s->routes = routes;
        s->n_routes = n_routes;
        s->header_timeout = HTTP_HEADER_TIMEOUT_DEFAULT_NS;
        s->timeout = HTTP_TIMEOUT_DEFAULT_NS;
        s->fd = -EBADF;
        *ret = s;
        return 0;
}

http_server *http_server_free(http_server *s)
{
        if (!s)
                return NULL;
        while (s->conns)
                conn_free(s->conns);
        loop_source_free(s->listener);
        loop_source_free(s->backoff);
        safe_close(s->fd);
        free(s);
        return NULL;
}

void http_server_set_timeout(http_server *s, uint64_t nsec)
{
        s->header_timeout = s->timeout = nsec;
}

uint64_t http_server_evicted(const http_server *s)
{
        return s->evicted;
}

uint64_t http_server_refused(const http_server *s)
{
        return s->refused;
}

int http_server_port(const http_server *s)
{
        return s->port;
}

size_t http_server_connections(const http_server *s)
{
        return s->n_conns;
}

static int listen_error(char **ret_error, const char *address, int r)
{
        return error_set(ret_error, r, "cannot listen on %s: %s", address, strerror(-r));
}

int http_server_listen(http_server *s, const char *address, char **ret_error)
{
        struct sockaddr_storage ss;
        socklen_t len;
        int r = http_address_parse(address, &ss, &len, ret_error);
        if (r < 0)
                return r;
        if (s->listener)
                return listen_error(ret_error, address, -EALREADY);

        _cleanup_close_ int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        const struct sockaddr_in6 *sa6 = (const struct sockaddr_in6 *)&ss;
        if (fd < 0 && errno == EAFNOSUPPORT && ss.ss_family == AF_INET6 &&
            IN6_IS_ADDR_UNSPECIFIED(&sa6->sin6_addr)) {
                /* A host without IPv6: every interface means every IPv4 one. */
                struct sockaddr_in sa4 = { .sin_family = AF_INET,
                                           .sin_port = sa6->sin6_port,
                                           .sin_addr.s_addr = htonl(INADDR_ANY) };
                memset(&ss, 0, sizeof ss);
                memcpy(&ss, &sa4, sizeof sa4);
                len = sizeof sa4;
                fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        }
        if (fd < 0)
                return listen_error(ret_error, address, negative_errno());
        int one = 1, zero = 0;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ss.ss_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&sa6->sin6_addr))
                (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0)
                return listen_error(ret_error, address, negative_errno());
        struct sockaddr_storage bound;
        socklen_t blen = sizeof bound;
        if (getsockname(fd, (struct sockaddr *)&bound, &blen) < 0)
                return listen_error(ret_error, address, negative_errno());
        s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
        r = loop_add_io(s->loop, fd, EPOLLIN, listener_io, s, &s->listener);
        if (r < 0)
                return listen_error(ret_error, address, r);
        s->fd = TAKE_FD(fd);
        return 0;
}
