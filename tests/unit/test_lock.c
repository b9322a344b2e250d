/* lib/gr_lock: one holder at a time, across processes; released on exit. */
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "gr_lock.h"
#include "test.h"

static char dir[] = "/tmp/gr-test-lock-XXXXXX";

/* A child holding the lock on path until it reads a byte from its pipe. */
static pid_t hold_in_child(const char *path, int is_folder, int *release_fd) {
    int ready[2], go[2];
    if (pipe(ready) || pipe(go)) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        gr_lock lk = GR_LOCK_INIT;
        gr_err err;
        char c = gr_lock_output(&lk, path, is_folder, 0, &err) == 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1) _exit(3);
        if (read(go[0], &c, 1) < 0) _exit(3);
        gr_lock_release(&lk);
        _exit(0);
    }
    char c = 0;
    if (read(ready[0], &c, 1) != 1 || c != 'y') return -1;
    close(ready[0]);
    close(ready[1]);
    close(go[0]);
    *release_fd = go[1];
    return pid;
}

TEST(test_lock_path) {
    char *a = gr_lock_path_for("out/v.jsonl", 0), *b = gr_lock_path_for("run/sft//", 1);
    CHECK_STR(a, "out/v.jsonl.lock");
    CHECK_STR(b, "run/sft/.lock");
    free(a);
    free(b);
}

TEST(test_lock_busy_then_free) {
    char out[256];
    snprintf(out, sizeof out, "%s/v.jsonl", dir);
    int go;
    pid_t pid = hold_in_child(out, 0, &go);
    CHECK(pid > 0);
    gr_lock lk = GR_LOCK_INIT;
    gr_err err;
    int rc = gr_lock_output(&lk, out, 0, 0, &err);
    CHECK_MSG(rc == GR_LOCK_BUSY, "rc %d", rc);
    CHECK_MSG(strstr(err.msg, "another run") && strstr(err.msg, "v.jsonl.lock"), "%s", err.msg);
    char pidtxt[32];
    snprintf(pidtxt, sizeof pidtxt, "pid %ld", (long)pid);
    CHECK_MSG(strstr(err.msg, pidtxt), "%s", err.msg);
    /* the holder releases: the lock file goes, and a new taker succeeds */
    CHECK(write(go, "x", 1) == 1);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char lp[300];
    snprintf(lp, sizeof lp, "%s.lock", out);
    CHECK(access(lp, F_OK) != 0);
    CHECK(gr_lock_output(&lk, out, 0, 0, &err) == 0);
    CHECK(access(lp, F_OK) == 0);
    gr_lock_release(&lk);
    CHECK(access(lp, F_OK) != 0);
    close(go);
}

TEST(test_lock_dropped_on_kill) {
    char out[256];
    snprintf(out, sizeof out, "%s/sft", dir);
    CHECK(mkdir(out, 0777) == 0);
    int go;
    pid_t pid = hold_in_child(out, 1, &go);
    CHECK(pid > 0);
    gr_lock lk = GR_LOCK_INIT;
    gr_err err;
    CHECK(gr_lock_output(&lk, out, 1, 0, &err) == GR_LOCK_BUSY);
    kill(pid, SIGKILL); /* the lock file stays behind, the lock does not */
    waitpid(pid, NULL, 0);
    CHECK_MSG(gr_lock_output(&lk, out, 1, 0, &err) == 0, "%s", err.msg);
    gr_lock_release(&lk);
    close(go);
}

TEST(test_lock_file_itself) {
    char out[256];
    snprintf(out, sizeof out, "%s/synth.jsonl", dir);
    gr_lock a = GR_LOCK_INIT, b = GR_LOCK_INIT;
    gr_err err;
    CHECK(gr_lock_file(&a, out, 0, 0, &err) == -1); /* missing, not created */
    CHECK(gr_lock_file(&a, out, 1, 0, &err) == 0);
    pid_t pid = fork();
    if (pid == 0) _exit(gr_lock_file(&b, out, 1, 0, &err) == GR_LOCK_BUSY ? 0 : 1);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    gr_lock_release(&a);
    CHECK(access(out, F_OK) == 0); /* the output itself is never removed */
    unlink(out);
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    RUN(test_lock_path);
    RUN(test_lock_busy_then_free);
    RUN(test_lock_dropped_on_kill);
    RUN(test_lock_file_itself);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) return 1;
    return TEST_EXIT();
}
