/* SPDX-License-Identifier: Apache-2.0 */
/* nvdp dra: the node's GPUs as DRA driver gpu.nvidia.com (docs/dra.md); flags as NVIDIA's DRA driver's. */
#include "base/log.h"
#include "base/strv.h"
#include "cmd/cmd.h"
#include "config/config.h"
#include "daemon/dra-daemon.h"

int cmd_dra(int argc, char **argv)
{
        config *c = NULL;
        _cleanup_free_ char *error = NULL;
        int r = config_from_args(PROGRAM_DRA, argc, argv, &c, &error);
        if (r > 0) /* --help, --version */
                return 0;
        if (r < 0) {
                /* A klog (or JSON) line like every other, in the format asked for. */
                log_set_format(config_log_format(argc, argv));
                log_error("nvdp dra: %s", error ? error : strerror(-r));
                return 2;
        }
        log_set_format(c->flags.log_format);
        log_info("nvdp %s starting as DRA driver gpu.nvidia.com for node %s", NVDP_VERSION,
                 c->flags.dra.node_name);
        STRV_FOREACH (w, c->warnings)
                log_warning("%s", *w);
        return dra_daemon_run(c);
}
