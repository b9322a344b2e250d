#include "synth_resume.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include "gr_io.h"
#include "gr_lock.h"

int synth_resume_lock(const char *path, int dry, int *fd, gr_err *err) {
    *fd = -1;
    if (dry && access(path, F_OK) != 0 && errno == ENOENT) return 0;
    gr_lock lk = GR_LOCK_INIT;
    int rc = gr_lock_file(&lk, path, !dry, 0, err);
    if (rc == GR_LOCK_BUSY) {
        gr_errf(err, "%s: another gr-synth run is writing it", path);
        return GR_LOCK_BUSY;
    }
    if (rc < 0) return -1;
    *fd = lk.fd; /* the lock lasts while fd is open */
    free(lk.path);
    return 0;
}

int synth_resume_load(const char *path, synth_idset *done, size_t *cut, gr_err *err) {
    *cut = 0;
    if (gr_jsonl_cut_torn_tail(path, cut, err) < 0) return -1;
    FILE *f = fopen(path, "rb");
    if (!f) return 0; /* nothing yet */
    fclose(f);
    gr_reader *rd = gr_reader_open(path, NULL, err);
    if (!rd) return -1;
    jv rec;
    int rc;
    while ((rc = gr_reader_next(rd, &rec, err)) == 1) {
        jv id = jv_object_get(jv_copy(rec), jv_string("id"));
        jv_kind k = jv_get_kind(id);
        if (k != JV_KIND_STRING && k != JV_KIND_NUMBER) {
            gr_errf(err, "%s:%ld: record without an id (not written by gr-synth?)", path,
                    gr_reader_line(rd));
            jv_free(id);
            jv_free(rec);
            rc = -1;
            break;
        }
        char *key = synth_id_key(id);
        synth_idset_add(done, key);
        free(key);
        jv_free(id);
        jv_free(rec);
    }
    gr_reader_close(rd);
    return rc < 0 ? -1 : 0;
}

char *synth_default_rejects(const char *output) {
    size_t n = strlen(output);
    if (n > 6 && strcmp(output + n - 6, ".jsonl") == 0) n -= 6;
    gr_buf b = {0};
    gr_buf_append(&b, output, n);
    gr_buf_printf(&b, ".rejects.jsonl");
    gr_buf_cstr(&b);
    return b.data;
}
