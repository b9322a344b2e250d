/* Loading libgr-cuda.so on demand (lib/cuda_dl.h says where from and why). */
#include "cuda_dl.h"
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GR_CUDA_LIB_NAME "libgr-cuda.so"
static const char *const rel_paths[] = {
    "../build/" GR_CUDA_LIB_NAME,
    "../" GR_CUDA_LIB_NAME,
    "../lib/guardreasoner-c/" GR_CUDA_LIB_NAME,
};
#define N_CANDIDATES (1 + sizeof rel_paths / sizeof rel_paths[0])

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void *handle;
static char loaded_path[PATH_MAX];
static char load_error[1024];

/* Candidate i (0 <= i < N_CANDIDATES) into buf; 0 when there is none. */
static int candidate(size_t i, char *buf, size_t cap) {
    const char *env = getenv("GR_CUDA_LIB");
    if (env && *env) {
        if (i) return 0;
        return snprintf(buf, cap, "%s", env) < (int)cap;
    }
    if (i == 0) return 0;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return 0;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return 0;
    *slash = 0;
    char path[2 * PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", exe, rel_paths[i - 1]);
    /* the folder names without "bin/..": what a user would type */
    if (realpath(path, buf)) return 1;
    return snprintf(buf, cap, "%s", path) < (int)cap;
}

static void load(void) {
    size_t used = 0;
    load_error[0] = 0;
    for (size_t i = 0; i < N_CANDIDATES; i++) {
        char path[PATH_MAX];
        if (!candidate(i, path, sizeof path)) continue;
        struct stat st;
        const char *why;
        if (stat(path, &st) != 0) {
            why = "not found";
        } else if ((handle = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
            snprintf(loaded_path, sizeof loaded_path, "%s", path);
            return;
        } else {
            why = dlerror();
            /* glibc's message starts with the path again */
            size_t pl = strlen(path);
            if (why && strncmp(why, path, pl) == 0 && why[pl] == ':') why += pl + 1 + (why[pl + 1] == ' ');
        }
        int w = snprintf(load_error + used, sizeof load_error - used, "%s%s: %s", used ? "; " : "", path,
                         why ? why : "cannot be loaded");
        if (w > 0) used += (size_t)w < sizeof load_error - used ? (size_t)w : sizeof load_error - used - 1;
    }
}

void *gr_cuda_symbol(const char *name, gr_err *err) {
    pthread_once(&once, load);
    if (!handle) {
        gr_errf(err, "the CUDA backend library %s could not be loaded (%s); set GR_CUDA_LIB to its path",
                GR_CUDA_LIB_NAME, load_error[0] ? load_error : "no candidate path");
        return NULL;
    }
    dlerror();
    void *p = dlsym(handle, name);
    if (!p) gr_errf(err, "%s: no symbol %s (a libgr-cuda.so of another version?)", loaded_path, name);
    return p;
}

const char *gr_cuda_lib_path(void) {
    static char found[PATH_MAX];
    if (handle) return loaded_path;
    for (size_t i = 0; i < N_CANDIDATES; i++) {
        struct stat st;
        if (candidate(i, found, sizeof found) && stat(found, &st) == 0) return found;
    }
    return NULL;
}
