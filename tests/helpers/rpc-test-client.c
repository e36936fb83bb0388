/* SPDX-License-Identifier: Apache-2.0 */
/* Calls /v1beta1.Registration/Register through rpc_client_call_start and prints the outcome, for the
 * interop tests (a grpcio server plays the kubelet).
 * Usage: rpc-test-client SOCKET RESOURCE TIMEOUT_MS [METHOD]
 * Prints "status=N message=TEXT size=N" and exits 0 when the callback ran, 1 otherwise. */
#include <stdio.h>

#include "base/parse.h"
#include "plugin/kubelet-wire.h"
#include "rpc/rpc.h"

static bool done;

static void on_done(int status, const char *message, const uint8_t *resp, size_t size, void *userdata)
{
        printf("status=%d message=%s size=%zu\n", status, message, size);
        done = true;
        loop_exit(userdata, 0);
}

int main(int argc, char **argv)
{
        if (argc < 4) {
                fprintf(stderr, "usage: %s SOCKET RESOURCE TIMEOUT_MS [METHOD]\n", argv[0]);
                return 2;
        }
        _cleanup_(loop_freep) loop *l = NULL;
        if (loop_new(&l) < 0)
                return 1;
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n;
        if (kubelet_wire_pack_register("nvidia-gpu.sock", argv[2], &buf, &n) < 0)
                return 1;
        rpc_client_call *call;
        int r = rpc_client_call_start(l, argv[1], argc > 4 ? argv[4] : DP_PATH_REGISTER, buf, n,
                                      strtoull(argv[3], NULL, 10) * NSEC_PER_MSEC, on_done, l, &call);
        if (r < 0) {
                fprintf(stderr, "Failed to start the call: %s\n", strerror(-r));
                return 1;
        }
        (void)loop_run(l);
        return done ? 0 : 1;
}
