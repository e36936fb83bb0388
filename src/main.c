/* SPDX-License-Identifier: Apache-2.0 */
/* nvdp: one binary, several verbs. Invoked under upstream's binary names it is that program, with
 * upstream's flags, so upstream manifests and Helm values work unchanged. */
#include <stdio.h>

#include "base/macro.h"
#include "cmd/cmd.h"

static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
        const char *help;
} verbs[] = {
        { "plugin", cmd_plugin, "run the device plugin daemon (kubelet gRPC API)" },
        { "gfd", cmd_gfd, "write GPU feature discovery node labels" },
        { "mps-control-daemon", cmd_mps_control_daemon,
          "run one NVIDIA MPS control daemon per MPS-shared resource" },
        { "dra", cmd_dra, "run as the DRA driver gpu.nvidia.com (kubelet DRA API, ResourceSlices)" },
        { "doctor", cmd_doctor, "check this node's GPU setup and say what to fix" },
        { "info", cmd_info, "show the GPUs and the resources this node would advertise" },
        { "cdi", cmd_cdi, "generate or list CDI specs (nvidia-ctk cdi generate/list)" },
        { "cdi-hook", cmd_cdi_hook, "the OCI hooks CDI specs name (nvidia-cdi-hook's arguments)" },
        { "healthz", cmd_healthz, "ask the device plugin's /healthz (an exec probe)" },
        { "version", cmd_version, "print the version" },
};

static void usage(FILE *f)
{
        fprintf(f, "Usage: nvdp COMMAND [OPTIONS]\n\nCommands:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                fprintf(f, "  %-8s %s\n", verbs[i].name, verbs[i].help);
        fprintf(f, "\nRun 'nvdp COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
        const char *self = strrchr(argv[0], '/');
        self = self ? self + 1 : argv[0];
        if (streq(self, "nvidia-device-plugin"))
                return cmd_plugin(argc, argv);
        if (streq(self, "gpu-feature-discovery"))
                return cmd_gfd(argc, argv);
        /* The hook's own name (what the chart installs on the host; usually the static build of
         * main-cdi-hook.c): the hook name comes first, as for nvidia-cdi-hook. */
        if (streq(self, "nvdp-cdi-hook"))
                return cmd_cdi_hook(argc, argv);
        if (streq(self, "mps-control-daemon"))
                return cmd_mps_control_daemon(argc, argv);

        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        if (streq(argv[1], "--help") || streq(argv[1], "-h") || streq(argv[1], "help")) {
                usage(stdout);
                return 0;
        }
        if (streq(argv[1], "--version"))
                return cmd_version(argc - 1, argv + 1);
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(argv[1], verbs[i].name))
                        return verbs[i].run(argc - 1, argv + 1);
        fprintf(stderr, "nvdp: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return 2;
}
