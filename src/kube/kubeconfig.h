/* SPDX-License-Identifier: Apache-2.0 */
/* Where the Kubernetes API server is and how to authenticate to it: from the pod's service account
 * (in-cluster) or from a kubeconfig file's current context. Pure parsing; no connection is made here. */
#pragma once

#include <stdint.h>

#include "base/macro.h"

#define KUBE_SERVICE_ACCOUNT_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
/* Files we read (kubeconfig, CA, certificates, keys, tokens) are at most this large. */
#define KUBE_MAX_CONFIG_FILE (1024u * 1024)

struct kube_config {
        char *source; /* "in-cluster service account" or the kubeconfig path: for error messages */
        char *server; /* "https://host:port" as given (normalised: no trailing slash) */
        char *host;   /* host name or IP literal (IPv6 without brackets) */
        uint16_t port;
        char *tls_server_name; /* name the certificate must carry, when not host (kubeconfig tls-server-name)
                                */
        char *ca_pem;          /* trusted CA certificates (PEM) */
        char *client_cert_pem, *client_key_pem; /* both or neither */
        char *token;                            /* bearer token given inline */
        char *token_file;                       /* or a file holding it (re-read as it rotates) */
        char *namespace; /* the context's or service account's namespace; "default" when none */
};

struct kube_config *kube_config_free(struct kube_config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kube_config *, kube_config_free);

/* In-cluster: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT from the environment, token, ca.crt and
 * namespace from sa_dir (KUBE_SERVICE_ACCOUNT_DIR when NULL). -ENOENT when the environment variables are not
 * set (not in a pod). Errors come with a sentence in *ret_error naming the variable or file. */
int kube_config_in_cluster(const char *sa_dir, struct kube_config **ret, char **ret_error);

/* The current context of a kubeconfig file: server, certificate-authority(-data),
 * client-certificate(-data), client-key(-data), token, tokenFile, namespace, tls-server-name. Relative
 * file paths are relative to the kubeconfig's directory. Refused (with a sentence naming the file and
 * key): insecure-skip-tls-verify, a server that is not https, exec and auth-provider plugins, a missing
 * current-context or a context, cluster or user it names that is not there. */
int kube_config_from_file(const char *path, struct kube_config **ret, char **ret_error);

/* Splits "https://host[:port][/]" into host and port (443 by default; [v6]:port). -EINVAL otherwise. */
int kube_parse_server_url(const char *url, char **ret_host, uint16_t *ret_port);
