/* The guard instruction constant equals the `instruction` of every record of
 * every benchmark file in ../shared/data/guardreasoner/benchmark/. */
#include <dirent.h>
#include <stdlib.h>
#include <jv.h>
#include "guard_prompt.h"
#include "test.h"

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 20, len = 0;
    char *p = malloc(cap);
    size_t got;
    while ((got = fread(p + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) p = realloc(p, cap *= 2);
    }
    fclose(f);
    *n = len;
    return p;
}

TEST(guard_instruction_length) {
    CHECK(GR_GUARD_INSTRUCTION_LEN == 490);
    CHECK(gr_guard_instruction[489] == '\n');
}

TEST(guard_instruction_matches_benchmarks) {
    const char *shared = test_shared_dir();
    if (!shared) { printf("# no ../shared: benchmark comparison skipped\n"); return; }
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/data/guardreasoner/benchmark", shared);
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "cannot open %s", dir);
    int files = 0;
    long records = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t nl = strlen(e->d_name);
        if (nl < 6 || strcmp(e->d_name + nl - 5, ".json") != 0) continue;
        char path[4600];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t n;
        char *text = slurp(path, &n);
        CHECK_MSG(text != NULL, "cannot read %s", path);
        jv arr = jv_parse_sized(text, (int)n);
        free(text);
        CHECK_MSG(jv_get_kind(arr) == JV_KIND_ARRAY, "%s is not a JSON array", path);
        int len = jv_array_length(jv_copy(arr));
        for (int i = 0; i < len; i++) {
            jv ins = jv_object_get(jv_array_get(jv_copy(arr), i), jv_string("instruction"));
            int same = jv_get_kind(ins) == JV_KIND_STRING &&
                       (size_t)jv_string_length_bytes(jv_copy(ins)) == GR_GUARD_INSTRUCTION_LEN &&
                       memcmp(jv_string_value(ins), gr_guard_instruction, GR_GUARD_INSTRUCTION_LEN) == 0;
            jv_free(ins);
            if (!same) { jv_free(arr); closedir(d); CHECK_MSG(0, "%s record %d differs", path, i); }
            records++;
        }
        jv_free(arr);
        files++;
    }
    closedir(d);
    CHECK_MSG(files >= 1 && records > 0, "no benchmark records found in %s", dir);
}

int main(void) {
    RUN(guard_instruction_length);
    RUN(guard_instruction_matches_benchmarks);
    return TEST_EXIT();
}
