/* SPDX-License-Identifier: Apache-2.0 */
/* The pod sandbox's process: holds the pod's namespaces open and does nothing else. PID 1 of the pod,
 * so it reaps zombies and exits on SIGTERM/SIGINT (the runtime stops sandboxes with SIGTERM). */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig)
{
        _exit(0);
}

static void on_child(int sig)
{
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
}

int main(void)
{
        struct sigaction term = { .sa_handler = on_term },
                         child = { .sa_handler = on_child, .sa_flags = SA_NOCLDSTOP };

        sigaction(SIGTERM, &term, NULL);
        sigaction(SIGINT, &term, NULL);
        sigaction(SIGCHLD, &child, NULL);
        for (;;)
                pause();
}
