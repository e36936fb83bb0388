/* SPDX-License-Identifier: Apache-2.0 */
/* Whether a server listens on a unix socket: the MPS gate's readiness and the doctor's MPS check. */
#pragma once

#include "base/macro.h"

/* 0 when something listens on the unix socket at path (also when its backlog is full, or when its type
 * is not SOCK_STREAM), -ECONNREFUSED when nothing does (a socket file left by a dead server, or not a
 * socket), -ENOENT when there is no such file. Paths longer than sockaddr_un allows work (connected
 * through an O_PATH descriptor). One connection, closed at once: the server sees it. */
int unix_socket_probe(const char *path);
