/* The SFT trainer end to end in-process: the step plan (transformers 4.46's
 * counts), a tiny model learning a synthetic task (reverse three tokens) and then
 * answering it through the inference forward pass (lib/forward.c, greedy) after a
 * bf16 save and reload; the training-state file's checks. */
#include "test.h"
#include "checkpoint.h"
#include "forward.h"
#include "generate.h"
#include "train_sft.h"
#include <unistd.h>

TEST(step_plan_counts) {
    /* n=10, micro 1, accumulation 4: M=10, 3 steps per epoch (4,4,2), T=3·⌊10/4⌋=6 */
    gr_err err;
    gr_model *gm = gr_model_load("testdata/models/tiny-gqa-tied", &err);
    CHECK_MSG(gm, "%s", err.msg);
    gr_backend *be = gr_backend_cpu(1);
    gr_train_model *m = gr_train_model_new(gm, be, &err);
    gr_tdata d;
    CHECK_MSG(gr_tdata_load("testdata/train/synth.jsonl", 300, 2048, &d, &err) == 0, "%s", err.msg);
    CHECK(d.n == 48);
    d.n = 10; /* the first ten records */
    gr_sft_opts o;
    gr_sft_opts_default(&o);
    o.micro_batch = 1;
    o.grad_accum = 4;
    gr_sft s;
    CHECK(gr_sft_init(&s, m, &d, &o, &err) == 0);
    CHECK(s.M == 10 && s.steps_per_epoch == 3 && s.T == 9 / 3 * 2);
    int64_t tok[6];
    for (int k = 0; k < 6; k++) {
        gr_sft_info in;
        CHECK(gr_sft_step(&s, &in, &err) == 0);
        tok[k] = in.targets;
    }
    CHECK(tok[0] == 16 && tok[1] == 16 && tok[2] == 8); /* 4 records of 4 targets, then 2 */
    gr_sft_info in;
    CHECK(gr_sft_step(&s, &in, &err) == -1); /* all T steps done */
    /* seeded shuffle: a permutation, equal for equal (seed, epoch), else different */
    int p1[10], p2[10], p3[10], seen[10] = {0};
    gr_tdata_shuffle(42, 0, 10, p1);
    gr_tdata_shuffle(42, 0, 10, p2);
    gr_tdata_shuffle(42, 1, 10, p3);
    for (int i = 0; i < 10; i++) seen[p1[i]]++;
    for (int i = 0; i < 10; i++) CHECK(seen[i] == 1);
    CHECK(memcmp(p1, p2, sizeof p1) == 0 && memcmp(p1, p3, sizeof p1) != 0);
    d.n = 48;
    gr_sft_free(&s);
    gr_tdata_free(&d);
    gr_train_model_free(m);
    gr_backend_free(be);
    gr_model_free(gm);
}

TEST(learns_and_answers_through_inference) {
    gr_err err;
    gr_model *gm = gr_model_load("testdata/models/tiny-gqa-tied", &err);
    CHECK_MSG(gm, "%s", err.msg);
    gr_backend *be = gr_backend_cpu(2);
    gr_train_model *m = gr_train_model_new(gm, be, &err);
    gr_tdata d;
    CHECK(gr_tdata_load("testdata/train/synth.jsonl", 300, 2048, &d, &err) == 0);
    gr_sft_opts o;
    gr_sft_opts_default(&o);
    o.lr = 1e-2;
    o.epochs = 30;
    o.micro_batch = 4;
    o.grad_accum = 2;
    gr_sft s;
    CHECK(gr_sft_init(&s, m, &d, &o, &err) == 0);
    gr_sft_info in = {0};
    while (s.step < s.T) CHECK_MSG(gr_sft_step(&s, &in, &err) == 0, "%s", err.msg);
    CHECK_MSG(in.loss < 0.05, "final loss %g", in.loss);
    char dir[] = "/tmp/gr-test-sft-XXXXXX";
    CHECK(mkdtemp(dir));
    CHECK_MSG(gr_hf_write(dir, m, "testdata/models/tiny-gqa-tied", 0, &err) == 0, "%s", err.msg);
    gr_model *tm = gr_model_load(dir, &err);
    CHECK_MSG(tm, "%s", err.msg);
    /* gr-classify's generation path: batched greedy decoding until the eos (2) */
    gr_ctx *c = gr_ctx_new(tm, be);
    gr_gen_req *reqs = calloc((size_t)d.n, sizeof *reqs);
    for (int e = 0; e < d.n; e++) {
        reqs[e].prompt = d.ids[e];
        reqs[e].n_prompt = d.n_prompt[e];
        reqs[e].stream = (uint64_t)e;
    }
    gr_gen_opts go = {.sampler = {.temperature = 0, .top_p = 1}, .max_tokens = 8, .max_batch = 8};
    CHECK_MSG(gr_generate(c, reqs, d.n, &go, NULL, NULL, &err) == 0, "%s", err.msg);
    int right = 0;
    for (int e = 0; e < d.n; e++) {
        const int *want = d.ids[e] + d.n_prompt[e]; /* three reversed tokens, then eos */
        right += reqs[e].stop == GR_STOP_EOS && reqs[e].n_out == 3 &&
                 !memcmp(reqs[e].out, want, 3 * sizeof(int));
        gr_gen_req_free(&reqs[e]);
    }
    free(reqs);
    CHECK_MSG(right >= d.n - 1, "%d of %d answered right", right, d.n);
    char p[256];
    const char *files[] = {"model.safetensors", "config.json", "generation_config.json"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
    gr_ctx_free(c);
    gr_model_free(tm);
    gr_sft_free(&s);
    gr_tdata_free(&d);
    gr_train_model_free(m);
    gr_backend_free(be);
    gr_model_free(gm);
}

TEST(state_file_checks) {
    gr_err err;
    float p[5] = {1, 2, 3, 4, 5}, m[5] = {.1f, .2f, .3f, .4f, .5f}, v[5] = {9, 8, 7, 6, 5};
    gr_train_state s = {7, 42, 48, 4, 2, 3, 18, 7, 1e-2, 5, p, m, v, 0}, r;
    char path[] = "/tmp/gr-test-state-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK(gr_state_write(path, &s, &err) == 0);
    CHECK_MSG(gr_state_read(path, &r, &err) == 0, "%s", err.msg);
    CHECK(r.step == 7 && r.seed == 42 && r.T == 18 && r.adam_t == 7 && r.lr == 1e-2 && r.n_params == 5);
    CHECK(!memcmp(r.params, p, sizeof p) && !memcmp(r.m, m, sizeof m) && !memcmp(r.v, v, sizeof v));
    gr_state_free(&r);
    /* a flipped byte fails the checksum; a truncated file fails the size */
    FILE *f = fopen(path, "r+b");
    fseek(f, 100, SEEK_SET);
    fputc(0x55, f);
    fclose(f);
    CHECK(gr_state_read(path, &r, &err) == -1);
    CHECK(strstr(err.msg, "corrupt"));
    CHECK(truncate(path, 50) == 0);
    CHECK(gr_state_read(path, &r, &err) == -1);
    CHECK(truncate(path, 3) == 0);
    CHECK(gr_state_read(path, &r, &err) == -1);
    CHECK(strstr(err.msg, "magic"));
    unlink(path);
}

int main(void) {
    RUN(step_plan_counts);
    RUN(learns_and_answers_through_inference);
    RUN(state_file_checks);
    return TEST_EXIT();
}
