/* SPDX-License-Identifier: Apache-2.0 */
/* nvdp healthz: asks a daemon's /healthz on its --health-address, for an exec probe (the chart's probes
 * of the plugin, the readiness probe of the MPS control daemon). Exit 0 and "ok" while it is healthy
 * (the plugin registered with the kubelet, every MPS daemon ready), 1 otherwise with why. */
#include <getopt.h>

#include "base/parse.h"
#include "cmd/cmd.h"
#include "net/http-client.h"

#define DEFAULT_TIMEOUT (5 * NSEC_PER_SEC)

static void help(FILE *f)
{
        fprintf(f, "Usage: nvdp healthz [--address HOST:PORT] [--timeout DURATION]\n\n"
                   "Asks the /healthz of the device plugin or the MPS control daemon (their "
                   "--health-address) and\n"
                   "exits 0 while it is healthy (the plugin: every resource registered with the "
                   "kubelet; the MPS\n"
                   "control daemon: every MPS daemon ready), 1 when not or when nothing answers.\n\n"
                   "  --address HOST:PORT   the daemon's --health-address (env HEALTH_ADDRESS)\n"
                   "  --timeout DURATION    connect and answer within this (default 5s)\n");
}

int cmd_healthz(int argc, char **argv)
{
        static const struct option options[] = {
                { "address", required_argument, NULL, 'a' },
                { "timeout", required_argument, NULL, 't' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *address = getenv("HEALTH_ADDRESS");
        uint64_t timeout = DEFAULT_TIMEOUT;
        int c;
        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'a': address = optarg; break;
                case 't':
                        if (parse_duration(optarg, &timeout) < 0 || timeout == 0) {
                                fprintf(stderr, "nvdp healthz: --timeout: \"%s\" is not a duration\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case 'h': help(stdout); return 0;
                default: help(stderr); return 2;
                }
        if (optind < argc) {
                fprintf(stderr, "nvdp healthz: unexpected argument \"%s\"\n", argv[optind]);
                return 2;
        }
        if (isempty(address)) {
                fprintf(stderr, "nvdp healthz: no address: pass --address or set HEALTH_ADDRESS (the "
                                "daemon's --health-address)\n");
                return 2;
        }
        _cleanup_free_ char *body = NULL, *error = NULL;
        int status = http_get(address, "/healthz", timeout, &body, &error);
        if (status < 0) {
                fprintf(stderr, "nvdp healthz: %s\n", error ? error : strerror(-status));
                return 1;
        }
        body[strcspn(body, "\n")] = '\0';
        if (status != 200) {
                fprintf(stderr, "nvdp healthz: %d from http://%s/healthz: %s\n", status, address, body);
                return 1;
        }
        printf("%s\n", body);
        return 0;
}
