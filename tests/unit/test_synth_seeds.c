/* The jq programs in scripts/seeds/ map the paper's four seed sets to interaction records:
 * each hand-made sample in testdata/seeds/ maps (through the record reader's
 * --map, as gr-synth runs it) to its .expected.jsonl, record for record. */
#include <stdlib.h>
#include <jv.h>
#include "gr_io.h"
#include "synth_request.h"
#include "test.h"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    gr_buf b = {0};
    char chunk[4096];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) gr_buf_append(&b, chunk, k);
    fclose(f);
    gr_buf_cstr(&b);
    return b.data;
}

/* Maps testdata/seeds/NAME.jsonl with scripts/seeds/NAME.jq; 0 on a match. */
static int check_seed(const char *name, char *why, int cap) {
    const char *root = getenv("GR_ROOT");
    if (!root) root = ".";
    char jq[4096], in[4096], exp[4096];
    snprintf(jq, sizeof jq, "%s/scripts/seeds/%s.jq", root, name);
    snprintf(in, sizeof in, "%s/testdata/seeds/%s.jsonl", root, name);
    snprintf(exp, sizeof exp, "%s/testdata/seeds/%s.expected.jsonl", root, name);
    char *prog = slurp(jq);
    if (!prog) return snprintf(why, (size_t)cap, "cannot read %.2000s", jq), -1;
    gr_err err;
    gr_reader_opts o = {0};
    o.map = prog;
    gr_reader *a = gr_reader_open(in, &o, &err);
    gr_reader *b = gr_reader_open(exp, NULL, &err);
    int rc = 0, n = 0;
    if (!a || !b) {
        snprintf(why, (size_t)cap, "%s", err.msg);
        rc = -1;
    }
    while (rc == 0) {
        jv x, y;
        int ra = gr_reader_next(a, &x, &err), rb = gr_reader_next(b, &y, &err);
        if (ra < 0 || rb < 0) { snprintf(why, (size_t)cap, "%s", err.msg); rc = -1; break; }
        if (ra != rb) { snprintf(why, (size_t)cap, "%s: record counts differ after %d", name, n); rc = -1; }
        if (ra == 0 || rb == 0) {
            if (ra == 1) jv_free(x);
            if (rb == 1) jv_free(y);
            break;
        }
        n++;
        if (!jv_equal(jv_copy(x), jv_copy(y))) {
            jv s = jv_dump_string(jv_copy(x), 0);
            snprintf(why, (size_t)cap, "%s record %d: got %.300s", name, n, jv_string_value(s));
            jv_free(s);
            rc = -1;
        }
        /* every mapped record with some label is a valid gr-synth input */
        synth_labels l;
        gr_err e2;
        jv lab = jv_object_get(jv_copy(x), jv_string("label"));
        int any = 0;
        for (int t = 0; t < SYNTH_NTASKS; t++) {
            jv v = jv_object_get(jv_copy(lab), jv_string(synth_task_key[t]));
            any |= jv_get_kind(v) == JV_KIND_STRING;
            jv_free(v);
        }
        jv_free(lab);
        if (rc == 0 && any && synth_labels_get(x, &l, &e2) < 0) {
            snprintf(why, (size_t)cap, "%s record %d: %s", name, n, e2.msg);
            rc = -1;
        }
        jv_free(x);
        jv_free(y);
    }
    if (a) gr_reader_close(a);
    if (b) gr_reader_close(b);
    free(prog);
    if (rc == 0 && n < 3) snprintf(why, (size_t)cap, "%s: only %d records", name, n), rc = -1;
    return rc;
}

#define SEED_TEST(name) TEST(seed_##name) { char why[4096] = ""; CHECK_MSG(check_seed(#name, why, sizeof why) == 0, "%s", why); }
SEED_TEST(wildguardtrain)
SEED_TEST(aegistrain)
SEED_TEST(beavertailstrain)
SEED_TEST(toxicchattrain)

int main(void) {
    RUN(seed_wildguardtrain);
    RUN(seed_aegistrain);
    RUN(seed_beavertailstrain);
    RUN(seed_toxicchattrain);
    return TEST_EXIT();
}
