/* SPDX-License-Identifier: Apache-2.0 */
/* The subcommands: each parses its arguments and calls the library. Each returns the exit code. */
#pragma once

int cmd_plugin(int argc, char **argv);             /* also argv[0] "nvidia-device-plugin" */
int cmd_gfd(int argc, char **argv);                /* also argv[0] "gpu-feature-discovery" */
int cmd_mps_control_daemon(int argc, char **argv); /* also argv[0] "mps-control-daemon" */
int cmd_dra(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_healthz(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_cdi(int argc, char **argv);
int cmd_cdi_hook(int argc, char **argv);
