/* The shared data-parallel code (lib/dp.h) with a recording transport: the
 * bucket grid, the order buckets start in, each float summed exactly once, and
 * the buckets started during the backward pass of an SFT step (the overlap).
 * The real transports: tests/cli/sft_mpi.sh and dpo_mpi.sh (MPI, two processes). */
#include "test.h"
#include "dp.h"
#include "train_sft.h"
#include "train_run.h"
#include <stdlib.h>
#include <string.h>

typedef struct rec {
    float *base;
    int64_t lo[4096], n[4096];
    int calls, waits, started_before_finish;
    int in_finish;
} rec;

static int rec_isum(gr_dp_transport *t, float *x, int64_t n, gr_err *err) {
    (void)err;
    rec *r = t->impl;
    if (r->calls < 4096) {
        r->lo[r->calls] = x - r->base;
        r->n[r->calls] = n;
    }
    r->calls++;
    if (!r->in_finish) r->started_before_finish++;
    for (int64_t i = 0; i < n; i++) x[i] *= 2; /* the sum over two equal processes */
    return 0;
}
static int rec_wait(gr_dp_transport *t, gr_err *err) {
    (void)err;
    ((rec *)t->impl)->waits++;
    return 0;
}
static int rec_sum_f64(gr_dp_transport *t, double *x, int64_t n, gr_err *err) {
    (void)t; (void)err;
    for (int64_t i = 0; i < n; i++) x[i] *= 2;
    return 0;
}

static gr_dp_transport make(rec *r, int rank) {
    gr_dp_transport t = {.name = "rec", .rank = rank, .world = 2, .isum_f32 = rec_isum,
                         .wait = rec_wait, .sum_f64 = rec_sum_f64, .impl = r};
    return t;
}

TEST(buckets_from_the_top) {
    static rec r;
    memset(&r, 0, sizeof r);
    gr_dp_transport t = make(&r, 0);
    gr_dp d;
    gr_dp_init(&d, &t, &t, 3 * sizeof(float)); /* 3 floats a bucket */
    float x[10];
    for (int i = 0; i < 10; i++) x[i] = (float)i;
    r.base = x;
    gr_dp_begin(&d, x, 10);
    gr_dp_ready(&d, 8);          /* [8, 10) final: no whole bucket yet */
    CHECK(r.calls == 0);
    gr_dp_ready(&d, 4);          /* buckets [7,10) and [4,7) */
    CHECK(r.calls == 2 && r.lo[0] == 7 && r.n[0] == 3 && r.lo[1] == 4 && r.n[1] == 3);
    gr_dp_ready(&d, 5);          /* a mark that goes back up starts nothing */
    CHECK(r.calls == 2);
    r.in_finish = 1;
    gr_err err;
    CHECK(gr_dp_finish(&d, &err) == 0);
    CHECK(r.calls == 4 && r.lo[2] == 1 && r.n[2] == 3 && r.lo[3] == 0 && r.n[3] == 1);
    CHECK(r.waits == 1);
    for (int i = 0; i < 10; i++) CHECK(x[i] == 2.0f * (float)i); /* each summed once */
    CHECK(gr_dp_finish(&d, &err) != 0); /* finish without begin */
}

TEST(one_process_does_nothing) {
    static rec r;
    memset(&r, 0, sizeof r);
    gr_dp_transport t = make(&r, 0);
    t.world = 1;
    gr_dp d;
    gr_dp_init(&d, &t, &t, 8);
    float x[4] = {1, 2, 3, 4};
    gr_dp_begin(&d, x, 4);
    gr_dp_ready(&d, 0);
    gr_err err;
    CHECK(gr_dp_finish(&d, &err) == 0);
    double y[2] = {1, 2};
    CHECK(gr_dp_sum_f64(&d, y, 2, &err) == 0);
    CHECK(r.calls == 0 && x[3] == 4 && y[1] == 2);
}

/* An SFT step with world 2 (rank 0 of a fake pair): every bucket starts during
 * the last micro-batch's backward pass, top down, the last one at float 0. */
TEST(sft_step_overlaps_the_backward) {
    gr_err err;
    gr_model *gm = gr_model_load("testdata/models/tiny-gqa-tied", &err);
    CHECK_MSG(gm, "%s", err.msg);
    gr_backend *be = gr_backend_cpu(1);
    gr_train_model *m = gr_train_model_new(gm, be, &err);
    CHECK_MSG(m, "%s", err.msg);
    gr_tdata td;
    CHECK_MSG(gr_tdata_load("testdata/train/synth.jsonl", gm->cfg.vocab_size, 2048, &td, &err) == 0,
              "%s", err.msg);
    static rec r;
    memset(&r, 0, sizeof r);
    r.base = m->grads;
    gr_dp_transport t = make(&r, 0);
    gr_dp d;
    int64_t bucket = m->n_params / 16 + 1; /* about 16 buckets */
    gr_dp_init(&d, &t, &t, bucket * (int64_t)sizeof(float));
    gr_sft_opts o;
    gr_sft_opts_default(&o);
    o.micro_batch = 4;
    o.grad_accum = 2;
    o.max_grad_norm = 0;
    o.dp = &d;
    gr_sft s;
    CHECK(gr_sft_init(&s, m, &td, &o, &err) == 0);
    gr_sft_info in;
    CHECK_MSG(gr_sft_step(&s, &in, &err) == 0, "%s", err.msg);
    int nb = (int)((m->n_params + bucket - 1) / bucket);
    CHECK_MSG(r.calls == nb, "%d buckets started, want %d", r.calls, nb);
    CHECK_MSG(r.started_before_finish == nb, "%d of %d started during the backward pass",
              r.started_before_finish, nb);
    for (int i = 1; i < r.calls; i++) CHECK(r.lo[i] < r.lo[i - 1]);
    CHECK(r.lo[r.calls - 1] == 0 && r.waits == 1);
    CHECK(m->grad_ready == NULL); /* the hook is set for the last micro-batch only */
    gr_sft_free(&s);
    gr_tdata_free(&td);
    gr_train_model_free(m);
    gr_backend_free(be);
    gr_model_free(gm);
}

/* A GPU run of several processes keeps fp32 gradients (the transports sum fp32
 * blocks) unless the user chose a storage: the switch is set before the device
 * opens, so it holds whether or not a GPU is found (none here). */
TEST(gpu_data_parallel_keeps_fp32_gradients) {
    gr_err err;
    unsetenv("GR_CUDA_TRAIN_STORE");
    gr_backend *b = gr_train_backend_open("cuda", 1, 1, &err);
    if (b) gr_backend_free(b);
    CHECK(getenv("GR_CUDA_TRAIN_STORE") == NULL); /* one process: bf16 gradients */
    b = gr_train_backend_open("cpu", 1, 2, &err);
    CHECK(b != NULL);
    if (b) gr_backend_free(b);
    CHECK(getenv("GR_CUDA_TRAIN_STORE") == NULL); /* the CPU has no such storage */
    b = gr_train_backend_open("cuda", 1, 2, &err);
    if (b) gr_backend_free(b);
    const char *v = getenv("GR_CUDA_TRAIN_STORE");
    CHECK(v && strcmp(v, "f32") == 0);
    setenv("GR_CUDA_TRAIN_STORE", "bf16", 1); /* an explicit choice is kept (and refused at the step) */
    b = gr_train_backend_open("cuda", 1, 2, &err);
    if (b) gr_backend_free(b);
    v = getenv("GR_CUDA_TRAIN_STORE");
    CHECK(v && strcmp(v, "bf16") == 0);
    unsetenv("GR_CUDA_TRAIN_STORE");
}

int main(void) {
    RUN(gpu_data_parallel_keeps_fp32_gradients);
    RUN(buckets_from_the_top);
    RUN(one_process_does_nothing);
    RUN(sft_step_overlaps_the_backward);
    return TEST_EXIT();
}
