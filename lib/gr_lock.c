/* Advisory locks on lock files: see gr_lock.h. */
#include "gr_lock.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

char *gr_lock_path_for(const char *path, int is_folder) {
    size_t n = strlen(path);
    while (is_folder && n > 1 && path[n - 1] == '/') n--;
    char *s = gr_xmalloc(n + 8);
    memcpy(s, path, n);
    strcpy(s + n, is_folder ? "/.lock" : ".lock");
    return s;
}

/* The pid recorded by the holder, or 0. */
static long holder_pid(int fd) {
    char buf[32];
    ssize_t k = pread(fd, buf, sizeof buf - 1, 0);
    if (k <= 0) return 0;
    buf[k] = 0;
    return strtol(buf, NULL, 10);
}

static int busy(int fd, const char *what, const char *lock_path, gr_err *err) {
    long pid = holder_pid(fd);
    if (pid > 0)
        gr_errf(err, "%s: another run (pid %ld) is writing it (lock %s held)", what, pid, lock_path);
    else
        gr_errf(err, "%s: another run is writing it (lock %s held)", what, lock_path);
    return GR_LOCK_BUSY;
}

/* flock with EINTR reported (a signal must be able to end a --wait). */
static int lock_fd(int fd, int wait) { return flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)); }

static void set_path(gr_lock *lk, const char *path, int unlink_on_release) {
    free(lk->path);
    lk->path = gr_xstrdup(path);
    lk->unlink_on_release = unlink_on_release;
}

int gr_lock_take(gr_lock *lk, const char *lock_path, const char *what, int wait, gr_err *err) {
    lk->fd = -1;
    lk->path = NULL;
    for (;;) {
        int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0) return gr_errf(err, "%s: cannot create the lock %s: %s", what, lock_path, strerror(errno));
        if (lock_fd(fd, wait) != 0) {
            int e = errno;
            int rc = e == EWOULDBLOCK ? busy(fd, what, lock_path, err)
                                      : gr_errf(err, "%s: cannot lock %s: %s", what, lock_path,
                                                e == EINTR ? "interrupted" : strerror(e));
            close(fd);
            return rc;
        }
        /* A releasing run removes the file after we opened it: the inode we hold
         * is then no longer the lock, so take the one under the name now. */
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(lock_path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            char pid[32];
            int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
            if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) < 0) { /* informational only */ }
            lk->fd = fd;
            set_path(lk, lock_path, 1);
            return 0;
        }
        close(fd);
    }
}

int gr_lock_output(gr_lock *lk, const char *path, int is_folder, int wait, gr_err *err) {
    char *lp = gr_lock_path_for(path, is_folder);
    int rc = gr_lock_take(lk, lp, path, wait, err);
    free(lp);
    return rc;
}

int gr_lock_file(gr_lock *lk, const char *path, int create, int wait, gr_err *err) {
    lk->fd = -1;
    lk->path = NULL;
    int fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | (create ? O_CREAT : 0), 0666);
    if (fd < 0) return gr_errf(err, "%s: %s", path, strerror(errno));
    if (lock_fd(fd, wait) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK) return gr_errf(err, "%s: another run is writing it", path), GR_LOCK_BUSY;
        return gr_errf(err, "%s: cannot lock: %s", path, e == EINTR ? "interrupted" : strerror(e));
    }
    lk->fd = fd;
    set_path(lk, path, 0);
    return 0;
}

void gr_lock_release(gr_lock *lk) {
    if (lk->fd >= 0) {
        /* unlink while still holding the lock: a run that opened the old file
         * finds it gone from the name and retries (gr_lock_take) */
        if (lk->unlink_on_release && lk->path) unlink(lk->path);
        close(lk->fd);
    }
    lk->fd = -1;
    free(lk->path);
    lk->path = NULL;
}
