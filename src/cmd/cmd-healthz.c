/* SPDX-License-Identifier: Apache-2.0 */
/* nvdp healthz: asks the plugin's /healthz, for an exec probe (the chart's liveness and readiness
 * probes). Exit 0 and "ok" while the plugin is registered with the kubelet, 1 otherwise with why. */
#include <getopt.h>

#include "base/parse.h"
#include "cmd/cmd.h"
#include "net/http-client.h"

#define DEFAULT_TIMEOUT (5 * NSEC_PER_SEC)

static void help(FILE *f)
{
        fprintf(f, "Usage: nvdp healthz [--address HOST:PORT] [--timeout DURATION]\n\n"
                   "Asks the device plugin's /healthz (its --health-address) and exits 0 while every "
                   "resource is\n"
                   "registered with the kubelet, 1 when not or when the plugin does not answer.\n\n"
                   "  --address HOST:PORT   the plugin's --health-address (env HEALTH_ADDRESS)\n"
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
                                "plugin's --health-address)\n");
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
