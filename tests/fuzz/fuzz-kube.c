/* SPDX-License-Identifier: Apache-2.0 */
/* What the API server sends back to the node-label watch. Byte 0, bit 0 picks the input: a watch stream
 * (newline-separated events) cut into chunks of 1 to 256 bytes (byte 1) and fed through the client's
 * line splitter (kube_lines_split) to kube_watch_event_parse, as kube-client.c and kube-watch.c do; or a
 * NodeList body for kube_node_list_parse and kube_status_message. Beyond "no crash, no leak": labels come
 * sorted, each "key=value"; a resourceVersion holds only URL-safe characters; an error says why. */
#include <string.h>

#include "base/strv.h"
#include "fuzz-common.h"
#include "kube/kube.h"

static const char rv_chars[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.";

static void check_labels(char **l)
{
        for (size_t i = 0; l && l[i]; i++) {
                if (!strchr(l[i], '='))
                        abort();
                if (i > 0 && strcmp(l[i - 1], l[i]) > 0)
                        abort();
        }
}

static void check_rv(const char *rv)
{
        if (rv && (!*rv || strspn(rv, rv_chars) != strlen(rv)))
                abort();
}

static int on_line(char *line, size_t size, void *userdata)
{
        struct kube_watch_event e;
        char *err = NULL;
        int r = kube_watch_event_parse(line, size, &e, &err);
        if (r < 0) {
                if ((r == -EPROTO && (!err || !*err)) || (r != -EPROTO && r != -ENOMEM))
                        abort();
                free(err);
                return 0; /* the watch would end here; keep going for coverage */
        }
        if (err)
                abort();
        check_rv(e.resource_version);
        check_labels(e.labels);
        if (e.labels && e.type != KUBE_WATCH_ADDED && e.type != KUBE_WATCH_MODIFIED)
                abort();
        if (e.message && e.type != KUBE_WATCH_ERROR)
                abort();
        kube_watch_event_done(&e);
        return 0;
}

static void watch_stream(const uint8_t *data, size_t size, size_t chunk)
{
        char *buf = malloc(size + 1);
        size_t len = 0;
        if (!buf)
                abort();
        for (size_t off = 0; off < size; off += chunk) {
                size_t k = size - off < chunk ? size - off : chunk;
                memcpy(buf + len, data + off, k);
                len += k;
                buf[len] = '\0';
                if (kube_lines_split(buf, &len, on_line, NULL) < 0)
                        abort();
                if (memchr(buf, '\n', len))
                        abort(); /* every complete line was handed out */
        }
        if (len > 0)
                (void)on_line(buf, len, NULL); /* a last line without its newline */
        free(buf);
}

static void node_list(const uint8_t *data, size_t size)
{
        char *rv = NULL, *err = NULL;
        char **labels = NULL;
        int r = kube_node_list_parse((const char *)data, size, "gpu-1", &rv, &labels, &err);
        if (r < 0) {
                if (rv || labels || (r == -EPROTO && !err))
                        abort();
        } else {
                check_rv(rv);
                check_labels(labels);
        }
        free(rv);
        free(err);
        strv_free(labels);
        free(kube_status_message((const char *)data, size));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 2)
                return 0;
        if (data[0] & 1)
                node_list(data + 2, size - 2);
        else
                watch_stream(data + 2, size - 2, (size_t)data[1] + 1);
        return 0;
}
