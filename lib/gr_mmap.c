#include "gr_mmap.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static char empty_file[1];

void *gr_mmap_file(const char *path, size_t *size, gr_err *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        gr_errf(err, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        gr_errf(err, "%s: not a regular file", path);
        return NULL;
    }
    *size = (size_t)st.st_size;
    void *map = empty_file;
    if (*size) {
        map = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            close(fd);
            gr_errf(err, "%s: mmap: %s", path, strerror(errno));
            return NULL;
        }
    }
    close(fd);
    return map;
}

void gr_munmap_file(void *map, size_t size) {
    if (map && size) munmap(map, size);
}
