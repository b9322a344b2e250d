/* libFuzzer target: the record reader (structure scanner, UTF-8 checks, zstd,
 * libjq's parser) on arbitrary bytes, with and without replacement. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "gr_io.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    char path[] = "/tmp/gr-fuzz-reader-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return 0;
    if (write(fd, data, size) != (ssize_t)size) { close(fd); unlink(path); return 0; }
    close(fd);
    for (int replace = 0; replace < 2; replace++) {
        gr_reader_opts o = {.replace_invalid_utf8 = replace};
        gr_err err;
        gr_reader *r = gr_reader_open(path, &o, &err);
        if (!r) continue;
        jv rec;
        while (gr_reader_next(r, &rec, &err) > 0) jv_free(rec);
        gr_reader_close(r);
    }
    unlink(path);
    return 0;
}
