/* SPDX-License-Identifier: Apache-2.0 */
#include "base/filewatch.h"

#include <sys/inotify.h>

#include "base/fileio.h"
#include "base/parse.h"

#define SETTLE_DELAY   (200 * NSEC_PER_MSEC)
#define MAX_WATCH_SIZE (4 * 1024 * 1024)

struct file_watch {
        char *path;
        int fd;
        loop_source *io;
        loop_source *timer;
        char *content; /* last seen; NULL when the file was missing or unreadable */
        size_t size;
        file_watch_handler cb;
        void *userdata;
};

static void read_content(const char *path, char **ret, size_t *ret_size)
{
        *ret = NULL;
        *ret_size = 0;
        (void)read_full_file(path, MAX_WATCH_SIZE, ret, ret_size);
}

static void settled(loop_source *s, void *userdata)
{
        file_watch *w = userdata;
        char *now;
        size_t size;
        read_content(w->path, &now, &size);
        bool same = (!now && !w->content) ||
                    (now && w->content && size == w->size && memcmp(now, w->content, size) == 0);
        free(w->content);
        w->content = now;
        w->size = size;
        if (!same)
                w->cb(w, w->userdata);
}

static void on_event(loop_source *s, int fd, uint32_t revents, void *userdata)
{
        file_watch *w = userdata;
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        while (read(fd, buf, sizeof buf) > 0)
                ; /* the content comparison decides; the events only say "look again" */
        if (!loop_timer_armed(w->timer))
                loop_timer_arm(w->timer, SETTLE_DELAY);
}

int file_watch_new(loop *l, const char *path, file_watch_handler cb, void *userdata, file_watch **ret)
{
        _cleanup_(file_watch_freep) file_watch *w = new0(file_watch, 1);
        if (!w)
                return -ENOMEM;
        w->fd = -EBADF;
        w->cb = cb;
        w->userdata = userdata;
        if (!(w->path = strdup(path)))
                return -ENOMEM;
        _cleanup_free_ char *dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        char *slash = strrchr(dir, '/');
        if (!slash)
                strcpy(dir, ".");
        else if (slash == dir)
                dir[1] = '\0';
        else
                *slash = '\0';

        w->fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (w->fd < 0)
                return negative_errno();
        if (inotify_add_watch(w->fd, dir,
                              IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM |
                                      IN_ONLYDIR) < 0)
                return negative_errno();
        int r = loop_add_io(l, w->fd, EPOLLIN, on_event, w, &w->io);
        if (r < 0)
                return r;
        r = loop_add_timer(l, 0, settled, w, &w->timer);
        if (r < 0)
                return r;
        loop_timer_disarm(w->timer);
        read_content(w->path, &w->content, &w->size);
        *ret = TAKE_PTR(w);
        return 0;
}

file_watch *file_watch_free(file_watch *w)
{
        if (!w)
                return NULL;
        loop_source_free(w->io);
        loop_source_free(w->timer);
        safe_close(w->fd);
        free(w->content);
        free(w->path);
        free(w);
        return NULL;
}
