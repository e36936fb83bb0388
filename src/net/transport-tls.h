/* SPDX-License-Identifier: Apache-2.0 */
/* TLS (OpenSSL) over a connected, non-blocking TCP socket, as an net_transport: what h2conn runs over to
 * reach the Kubernetes API server. The handshake is driven separately (net_transport_tls_handshake) before
 * the transport is handed to h2conn, so h2conn never sees a half-open TLS session. */
#pragma once

#include <openssl/ssl.h>

#include "net/transport.h"

/* Takes ownership of fd (also on failure); ctx is referenced. host is the name the certificate must match:
 * an IP literal is checked against the IP SANs, anything else against the DNS SANs (and sent as SNI).
 * ALPN offers "h2" only. Verification is always on (SSL_VERIFY_PEER with ctx's trust store). */
int net_transport_tls_new(int fd, SSL_CTX *ctx, const char *host, net_transport **ret);

/* Advances the handshake. 0 when done (the peer's certificate verified, ALPN "h2" agreed); -EAGAIN with
 * *ret_events set to what to poll for (EPOLLIN or EPOLLOUT); another -errno on failure, with a sentence
 * for a person in *ret_error (e.g. the verification error) when one can be given (caller frees). */
int net_transport_tls_handshake(net_transport *t, uint32_t *ret_events, char **ret_error);
