/* SPDX-License-Identifier: Apache-2.0 */
/* Drives src/kube/ from the command line for tests/integration/test_kube.py (against tests/kube/, a
 * kube-apiserver stand-in):
 *   kube-test-client [--kubeconfig F] [--sa-dir D] [--qps N] [--burst N] [--timeout-ms N] COMMAND ...
 *   get NODE...                   GET the nodes (concurrently, one connection): per node "status N", then
 *                                 "error: ..." or "body: ..."
 *   patch NODE KEY=VALUE... [-KEY] merge-patch labels (-KEY removes)
 *   event NODE TYPE REASON MESSAGE
 *   gets NODE N                   N GETs at once; prints "done I SECONDS" as each completes
 *   watch NODE N [BACKOFF_MS]     prints "labels k=v,..." (or "labels <none>") per delivery, "error: ..."
 *                                 for retried errors; exits after N deliveries
 * Exit status 0 when every request got a 2xx, 1 otherwise, 2 for usage or setup errors; 3 after 20 s. */
#include <getopt.h>
#include <time.h>

#include "base/loop.h"
#include "base/parse.h"
#include "base/strv.h"
#include "kube/kube.h"

static int exit_code = 0;
static unsigned pending = 0, watch_left = 0;
static uint64_t t0;
static loop *L;
static kube_node_watch *W;

static void print_result(int status, const char *body, size_t size, const char *error)
{
        printf("status %d\n", status);
        if (error)
                printf("error: %s\n", error);
        else
                printf("body: %s\n", body);
        fflush(stdout);
        if (status < 200 || status > 299)
                exit_code = 1;
}

static void on_done(int status, const char *body, size_t size, const char *error, void *userdata)
{
        print_result(status, body, size, error);
        if (--pending == 0)
                loop_exit(L, 0);
}

static void on_get_done(int status, const char *body, size_t size, const char *error, void *userdata)
{
        printf("done %u %.3f %d\n", (unsigned)(uintptr_t)userdata, (double)(now_nsec() - t0) / 1e9, status);
        fflush(stdout);
        if (status < 200 || status > 299)
                exit_code = 1;
        if (--pending == 0)
                loop_exit(L, 0);
}

static void on_labels(char *const *labels, void *userdata)
{
        _cleanup_free_ char *j = labels ? strv_join(labels, ",") : NULL;
        printf("labels %s\n", labels ? j : "<none>");
        fflush(stdout);
        if (--watch_left == 0) {
                /* Freed from inside its own callback (the API allows it; ASan runs check it). */
                W = kube_node_watch_free(W);
                loop_exit(L, 0);
        }
}

static void on_watch_error(const char *error, void *userdata)
{
        printf("error: %s\n", error);
        fflush(stdout);
}

static void on_deadline(loop_source *s, void *userdata)
{
        fprintf(stderr, "kube-test-client: gave up after 20 s\n");
        exit_code = 3;
        loop_exit(L, 0);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "kubeconfig", required_argument, NULL, 'k' }, { "sa-dir", required_argument, NULL, 's' },
                { "qps", required_argument, NULL, 'q' },        { "burst", required_argument, NULL, 'b' },
                { "timeout-ms", required_argument, NULL, 't' }, {},
        };
        const char *kubeconfig = NULL;
        uint64_t timeout = 5 * NSEC_PER_SEC;
        struct kube_client_options o = {};
        int c;
        while ((c = getopt_long(argc, argv, "+", opts, NULL)) >= 0)
                switch (c) {
                case 'k': kubeconfig = optarg; break;
                case 's': o.service_account_dir = optarg; break;
                case 'q': o.qps = (unsigned)atoi(optarg); break;
                case 'b': o.burst = (unsigned)atoi(optarg); break;
                case 't': timeout = (uint64_t)atoi(optarg) * NSEC_PER_MSEC; break;
                default: return 2;
                }
        if (argc - optind < 2) {
                fprintf(stderr, "usage: see the comment at the top of kube-test-client.c\n");
                return 2;
        }
        const char *cmd = argv[optind], *node = argv[optind + 1];
        char **args = argv + optind + 2;
        int nargs = argc - optind - 2;

        _cleanup_(loop_freep) loop *l = NULL;
        if (loop_new(&l) < 0)
                return 2;
        L = l;
        _cleanup_(kube_client_freep) kube_client *k = NULL;
        _cleanup_free_ char *error = NULL;
        int r = kube_client_new_from_env_with(l, kubeconfig, &o, &k, &error);
        if (r < 0) {
                printf("setup error: %s\n", error ? error : strerror(-r));
                return 2;
        }
        _cleanup_(loop_source_freep) loop_source *deadline = NULL;
        if (loop_add_timer(l, 20 * NSEC_PER_SEC, on_deadline, NULL, &deadline) < 0)
                return 2;
        _cleanup_strv_free_ char **set = NULL, **remove = NULL;
        t0 = now_nsec();
        if (streq(cmd, "get")) {
                pending = 1 + (unsigned)nargs;
                r = kube_get_node(k, node, timeout, on_done, NULL);
                for (int i = 0; i < nargs && r >= 0; i++)
                        r = kube_get_node(k, args[i], timeout, on_done, NULL);
        } else if (streq(cmd, "patch")) {
                for (int i = 0; i < nargs; i++)
                        if (args[i][0] == '-' ? strv_extend(&remove, args[i] + 1) < 0
                                              : strv_extend(&set, args[i]) < 0)
                                return 2;
                pending = 1;
                r = kube_patch_node(k, node, set, remove, NULL, timeout, on_done, NULL);
        } else if (streq(cmd, "event") && nargs == 3) {
                struct kube_event e = {
                        .node = node, .type = args[0], .reason = args[1], .message = args[2]
                };
                clock_gettime(CLOCK_REALTIME, &e.time);
                pending = 1;
                r = kube_create_event(k, &e, timeout, on_done, NULL, NULL);
        } else if (streq(cmd, "gets") && nargs == 1) {
                pending = (unsigned)atoi(args[0]);
                for (unsigned i = 0; i < pending && r >= 0; i++)
                        r = kube_get_node(k, node, 10 * NSEC_PER_SEC, on_get_done, (void *)(uintptr_t)i);
        } else if (streq(cmd, "watch") && nargs >= 1) {
                watch_left = (unsigned)atoi(args[0]);
                static const struct kube_node_watch_handler h = { .on_labels = on_labels,
                                                                  .on_error = on_watch_error };
                r = kube_node_watch_new(k, node, &h, NULL, &W);
                if (r >= 0 && nargs >= 2)
                        kube_node_watch_set_timing(W, (uint64_t)atoi(args[1]) * NSEC_PER_MSEC, 300);
        } else {
                fprintf(stderr, "unknown command or wrong arguments: %s\n", cmd);
                return 2;
        }
        if (r < 0) {
                printf("request error: %s\n", strerror(-r));
                return 2;
        }
        loop_run(l);
        W = kube_node_watch_free(W); /* when the deadline ended it */
        return exit_code;
}
