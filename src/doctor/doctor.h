/* SPDX-License-Identifier: Apache-2.0 */
/* nvdp doctor: the GPU-on-k3s troubleshooting checklist as a library. The checks read a node
 * filesystem (below a root directory), take the result of an NVML probe done by the caller, and
 * optionally ask the cluster through a kubectl runner the caller provides. They produce a list of
 * results {id, verdict, evidence, fix}; nothing here prints or logs. */
#pragma once

#include <stdio.h>

#include "base/macro.h"

enum doctor_verdict {
        DOCTOR_OK,
        DOCTOR_WARN,
        DOCTOR_FAIL,
        DOCTOR_SKIP,
};

/* "ok", "warn", "fail", "skip" */
const char *doctor_verdict_to_string(enum doctor_verdict v);

struct doctor_result {
        char *id; /* "driver.module", "k3s.template", ... (stable, documented in docs/doctor.md) */
        enum doctor_verdict verdict;
        char *evidence; /* what was seen, one sentence */
        char *fix;      /* for warn/fail: a command to run (or NULL); NULL for ok/skip */
};

typedef struct doctor_report {
        struct doctor_result *results;
        size_t n_results;
        size_t n_alloc;
} doctor_report;

doctor_report *doctor_report_new(void);
doctor_report *doctor_report_free(doctor_report *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(doctor_report *, doctor_report_free);
/* Appends a result (strings copied; fix may be NULL). */
int doctor_report_add(doctor_report *r, const char *id, enum doctor_verdict v, const char *evidence,
                      const char *fix);
int doctor_report_addf(doctor_report *r, const char *id, enum doctor_verdict v, const char *fix,
                       const char *evidence_fmt, ...) _printf_(5, 6);
/* The first result with this id, or NULL. */
const struct doctor_result *doctor_report_find(const doctor_report *r, const char *id);
/* 0 when every result is ok or skip, 1 when the worst is warn, 2 when any is fail. */
int doctor_report_exit_code(const doctor_report *r);
/* Aligned text: one line per check "VERDICT  ID  EVIDENCE", for warn/fail a second line
 * "      fix: COMMAND", then a summary line. */
int doctor_report_print_text(const doctor_report *r, FILE *f);
/* One JSON object (format in docs/doctor.md), newline-terminated. */
int doctor_report_print_json(const doctor_report *r, FILE *f);

/* What the caller learnt from loading NVML (nvml_load + inventory_load), so checks need no GPU. */
struct doctor_nvml_probe {
        bool attempted;  /* false: the probe was not run (checks say skip) */
        bool loaded;     /* NVML loaded and initialised */
        char error[512]; /* when !loaded: why, one sentence */
        unsigned gpu_count;
        char driver_version[80]; /* "580.105.08" */
        int cuda_driver_version; /* 13000 = 13.0; 0 unknown */
};

/* Runs kubectl with args (not including "kubectl" itself), e.g. {"get", "nodes", "-o", "json", NULL}.
 * Returns <0 when kubectl could not be run at all (not installed, timed out); otherwise 0 with the
 * exit status in *ret_status and stdout in *ret_stdout (always set, NUL-terminated) and stderr in
 * *ret_stderr (may be set to NULL). Tests inject canned output through this. */
typedef int (*doctor_kubectl_fn)(void *userdata, char *const *args, int *ret_status, char **ret_stdout,
                                 char **ret_stderr);

struct doctor_options {
        const char *root;                     /* node filesystem; NULL or "/" = this host */
        const struct doctor_nvml_probe *nvml; /* NULL: not probed (skip) */
        doctor_kubectl_fn kubectl;            /* NULL: cluster checks skipped (--no-cluster) */
        void *kubectl_userdata;
        const char *node_name; /* for the cluster checks; NULL: from root/etc/hostname */
        bool cdi_expected;     /* a CDI device-list strategy is configured */
        const char *mps_root;  /* the MPS root on the node; NULL: /run/nvidia/mps (the chart's) */
};

/* Runs every check in order: driver, toolkit, containerd/k3s, kubelet, MPS, cluster. */
int doctor_run(const struct doctor_options *o, doctor_report **ret);

/* The groups, callable one by one (tests). Each appends its results to r. */
int doctor_check_driver(const struct doctor_options *o, doctor_report *r);
int doctor_check_toolkit(const struct doctor_options *o, doctor_report *r);
int doctor_check_containerd(const struct doctor_options *o, doctor_report *r);
int doctor_check_kubelet(const struct doctor_options *o, doctor_report *r);
int doctor_check_mps(const struct doctor_options *o, doctor_report *r);
int doctor_check_cluster(const struct doctor_options *o, doctor_report *r);

/* The real runner (a doctor_kubectl_fn; userdata is a struct doctor_kubectl_exec_config *, or NULL
 * for the defaults): fork/exec of kubectl, no shell, stdout and stderr captured up to 32 MiB each,
 * killed when it runs past the timeout (then -ETIMEDOUT). -ENOENT when kubectl is not found. */
struct doctor_kubectl_exec_config {
        const char *kubectl;    /* program path, or a name looked up in PATH; NULL = "kubectl" */
        const char *kubeconfig; /* passed as --kubeconfig; NULL = kubectl's own default */
        unsigned timeout_sec;   /* 0 = 10 */
};
int doctor_kubectl_exec(void *userdata, char *const *args, int *ret_status, char **ret_stdout,
                        char **ret_stderr);
