/* SPDX-License-Identifier: Apache-2.0 */
/* What a pod sees of the GPUs, for the e2e checks: its NVIDIA_VISIBLE_DEVICES and NVDP_E2E_* variables
 * ("env NAME=value"; the latter are what a test CDI spec injects), one line per NVIDIA device node in
 * /dev ("dev /dev/nvidia0", or "dev none"), then the output and exit status of `nvidia-smi -L` found
 * through PATH ("nvidia-smi: exit 0", or "nvidia-smi: not found" when the runtime put none in the
 * container). Always exits 0: the test judges the lines. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int by_name(const struct dirent **a, const struct dirent **b)
{
        return strcmp((*a)->d_name, (*b)->d_name);
}

static int nvidia_node(const struct dirent *d)
{
        return strncmp(d->d_name, "nvidia", 6) == 0;
}

int main(void)
{
        struct dirent **list;
        int n, status;
        pid_t pid;

        setvbuf(stdout, NULL, _IOLBF, 0);
        for (char **e = environ; *e; e++)
                if (strncmp(*e, "NVIDIA_VISIBLE_DEVICES=", 23) == 0 || strncmp(*e, "NVDP_E2E_", 9) == 0)
                        printf("env %s\n", *e);
        n = scandir("/dev", &list, nvidia_node, by_name);
        if (n <= 0)
                printf("dev none\n");
        for (int i = 0; i < n; i++) {
                printf("dev /dev/%s\n", list[i]->d_name);
                free(list[i]);
        }
        if (n > 0)
                free(list);

        pid = fork();
        if (pid < 0) {
                printf("nvidia-smi: fork: %s\n", strerror(errno));
                return 0;
        }
        if (pid == 0) {
                execlp("nvidia-smi", "nvidia-smi", "-L", (char *)NULL);
                printf("nvidia-smi: %s\n", errno == ENOENT ? "not found" : strerror(errno));
                _exit(127);
        }
        if (waitpid(pid, &status, 0) < 0) {
                printf("nvidia-smi: waitpid: %s\n", strerror(errno));
                return 0;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) != 127)
                printf("nvidia-smi: exit %d\n", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
                printf("nvidia-smi: killed by signal %d\n", WTERMSIG(status));
        return 0;
}
