#include "train_run.h"
#include "gr_io.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int gr_mkdir_p(const char *dir, gr_err *err) {
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) return gr_errf(err, "%s: path too long", dir);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST) return gr_errf(err, "%s: %s", p, strerror(errno));
            *s = '/';
        }
    if (mkdir(p, 0777) != 0 && errno != EEXIST) return gr_errf(err, "%s: %s", p, strerror(errno));
    return 0;
}

int gr_train_log_cut(const char *path, uint64_t step, double *elapsed, gr_err *err) {
    *elapsed = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    gr_buf keep = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n') break; /* torn tail */
        jv v = jv_parse_sized(line, (int)n);
        if (jv_get_kind(v) == JV_KIND_OBJECT) {
            jv s = jv_object_get(jv_copy(v), jv_string("step"));
            if (jv_get_kind(s) == JV_KIND_NUMBER && jv_number_value(s) <= (double)step) {
                gr_buf_append(&keep, line, (size_t)n);
                jv e = jv_object_get(jv_copy(v), jv_string("elapsed_s"));
                if (jv_get_kind(e) == JV_KIND_NUMBER) *elapsed = jv_number_value(e);
                jv_free(e);
            }
            jv_free(s);
        }
        jv_free(v);
    }
    free(line);
    fclose(f);
    int rc = gr_write_file_atomic(path, keep.data ? keep.data : "", keep.len, err);
    gr_buf_free(&keep);
    return rc;
}
