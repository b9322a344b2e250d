#include "dpo.h"
#include "dp.h"
#include "gr_io.h"
#include "train_data.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gr_dpo_opts_default(gr_dpo_opts *o) {
    *o = (gr_dpo_opts){.lr = 5e-6, .epochs = 2, .micro_batch = 1, .grad_accum = 64,
                       .max_grad_norm = 1.0, .seed = 42, .beta = 0.01, .ftx = 2.0,
                       .use_weights = 1};
}

/* log(1 + e^x) without overflow */
static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

void gr_dpo_pair_terms(double beta, double ftx, double w, double pc, double pr, double ref_c,
                       double ref_r, int64_t len_c, gr_dpo_terms *t) {
    t->h = (pc - pr) - (ref_c - ref_r);
    double z = beta * t->h;
    double sig_neg = 1.0 / (1.0 + exp(z)); /* σ(−z) */
    t->dpo = w * softplus(-z);             /* w·(−log σ(z)) */
    t->sft = len_c > 0 ? -pc / (double)len_c : 0.0;
    t->loss = t->dpo + ftx * t->sft;
    t->reward_c = beta * (pc - ref_c);
    t->reward_r = beta * (pr - ref_r);
    t->dl_dpc = -w * beta * sig_neg - (len_c > 0 ? ftx / (double)len_c : 0.0);
    t->dl_dpr = w * beta * sig_neg;
}

int gr_dpo_init(gr_dpo *s, gr_train_model *m, const gr_pdata *data, const gr_dpo_opts *o,
                gr_err *err) {
    memset(s, 0, sizeof *s);
    if (data->n < 1) return gr_errf(err, "dpo: no training pairs");
    if (o->micro_batch < 1 || o->grad_accum < 1 || o->epochs < 1)
        return gr_errf(err, "dpo: micro-batch, accumulation and epochs must be >= 1");
    if (o->use_weights)
        for (int i = 0; i < data->n; i++)
            if (isnan(data->weight[i]))
                return gr_errf(err, "dpo: pair %d has a null (NaN) weight: the reference's "
                                    "all-weights-equal case; re-mine with gr-mine or train with "
                                    "--no-weights", i + 1);
    if (gr_train_dp_check(m, o->dp ? o->dp->world : 1, err)) return -1;
    s->o = *o;
    s->m = m;
    s->data = data;
    gr_train_plan_init(&s->plan, data->n, o->micro_batch, o->grad_accum, o->epochs);
    s->act = gr_tact_new(o->recompute);
    s->act_r = gr_tact_new(o->recompute);
    gr_adamw_init_model(&s->opt, m);
    s->opt.weight_decay = (float)o->weight_decay;
    s->perm = gr_xmalloc(sizeof(int) * (size_t)data->n);
    s->perm_epoch = -1;
    s->ref_c = gr_xcalloc((size_t)data->n, sizeof(double));
    s->ref_r = gr_xcalloc((size_t)data->n, sizeof(double));
    return 0;
}

void gr_dpo_free(gr_dpo *s) {
    gr_tact_free(s->act);
    gr_tact_free(s->act_r);
    gr_adamw_free(&s->opt);
    free(s->perm);
    free(s->ref_c);
    free(s->ref_r);
    memset(s, 0, sizeof *s);
}

int64_t gr_dpo_last_step(const gr_dpo *s) {
    return s->o.max_steps > 0 && s->o.max_steps < s->plan.T ? s->o.max_steps : s->plan.T;
}

/* One sequence of pair i (chosen or rejected) as a batch; ids/len/np hold it. */
static gr_tbatch seq_batch(const gr_dpo *s, int i, int rejected, const int **ids, int *len,
                           int *np) {
    const gr_pdata *d = s->data;
    ids[0] = rejected ? d->rejected[i] : d->chosen[i];
    *len = rejected ? d->len_r[i] : d->len_c[i];
    *np = d->n_prompt[i];
    return (gr_tbatch){1, ids, len, np};
}

/* The forward pass of one sequence into activations a (kept for
 * gr_train_backward_micro). *logp = Σ log p of the response, *len = its tokens. */
static int seq_forward(gr_dpo *s, gr_tact *a, int i, int rejected, double *logp, int64_t *len,
                       gr_err *err) {
    const int *ids[1];
    int n, np;
    gr_tbatch b = seq_batch(s, i, rejected, ids, &n, &np);
    double nll;
    if (gr_train_step_micro(s->m, a, &b, 0, 0.0f, &nll, len, err)) return -1;
    *logp = -nll;
    return 0;
}

/* scale·∂(Σ NLL)/∂θ of the sequence whose forward pass a holds. */
static int seq_backward(gr_dpo *s, gr_tact *a, int i, int rejected, float scale, gr_err *err) {
    const int *ids[1];
    int n, np;
    gr_tbatch b = seq_batch(s, i, rejected, ids, &n, &np);
    return gr_train_backward_micro(s->m, a, &b, scale, err);
}

/* The data-parallel share: (rank, world), or (0, 1) for one process. */
static gr_dp *dp_of(const gr_dpo *s, int *rank, int *world) {
    gr_dp *dp = s->o.dp && s->o.dp->world > 1 ? s->o.dp : NULL;
    *rank = dp ? dp->rank : 0;
    *world = dp ? dp->world : 1;
    return dp;
}

int gr_dpo_reference(gr_dpo *s, void (*progress)(int, int, void *), void *arg, gr_err *err) {
    int64_t len;
    int rank, world;
    gr_dp *dp = dp_of(s, &rank, &world);
    for (int i = 0; i < s->data->n; i++) {
        s->ref_c[i] = s->ref_r[i] = 0;
        if (i % world != rank) continue;
        if (seq_forward(s, s->act, i, 0, &s->ref_c[i], &len, err)) return -1;
        if (seq_forward(s, s->act, i, 1, &s->ref_r[i], &len, err)) return -1;
        if (progress) progress(i + 1, s->data->n, arg);
    }
    /* each pair was computed by one process, the others hold 0: the sum is exact */
    if (dp && (gr_dp_sum_f64(dp, s->ref_c, s->data->n, err) ||
               gr_dp_sum_f64(dp, s->ref_r, s->data->n, err)))
        return -1;
    s->have_ref = 1;
    return 0;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

uint64_t gr_dpo_model_checksum(const gr_train_model *m) {
    /* FNV-1a over 8-byte words (fast enough for 8B parameters), the weights
     * fetched from the ops' memory in pieces of 2^20 floats (whole words; only
     * the last piece may end in a 4-byte tail) */
    uint64_t h = 0xcbf29ce484222325ULL;
    enum { PIECE = 1 << 20 };
    float *buf = gr_xmalloc(sizeof(float) * PIECE);
    for (int64_t j = 0; j < m->n_params; j += PIECE) {
        int64_t k = m->n_params - j < PIECE ? m->n_params - j : PIECE;
        gr_train_params_get(m, buf, j, k);
        const unsigned char *p = (const unsigned char *)buf;
        size_t n = sizeof(float) * (size_t)k, i = 0;
        for (; i + 8 <= n; i += 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            h = (h ^ w) * 0x100000001b3ULL;
        }
        h = fnv(h, p + i, n - i);
    }
    free(buf);
    return h;
}

#define REF_HDR 40
int gr_dpo_ref_write(const gr_dpo *s, const char *path, uint64_t model_sum, gr_err *err) {
    if (!s->have_ref) return gr_errf(err, "dpo: no reference log-probabilities to write");
    uint64_t n = (uint64_t)s->data->n;
    size_t total = REF_HDR + 16 * (size_t)n + 8;
    unsigned char *b = gr_xmalloc(total);
    uint32_t ver = 1, zero = 0;
    uint64_t ps = gr_pdata_checksum(s->data);
    memcpy(b, "GRDPOREF", 8);
    memcpy(b + 8, &ver, 4);
    memcpy(b + 12, &zero, 4);
    memcpy(b + 16, &n, 8);
    memcpy(b + 24, &ps, 8);
    memcpy(b + 32, &model_sum, 8);
    memcpy(b + REF_HDR, s->ref_c, 8 * (size_t)n);
    memcpy(b + REF_HDR + 8 * (size_t)n, s->ref_r, 8 * (size_t)n);
    uint64_t h = fnv(0xcbf29ce484222325ULL, b, total - 8);
    memcpy(b + total - 8, &h, 8);
    int rc = gr_write_file_atomic(path, b, total, err);
    free(b);
    return rc;
}

int gr_dpo_ref_read(gr_dpo *s, const char *path, uint64_t model_sum, gr_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    uint64_t n = (uint64_t)s->data->n;
    size_t total = REF_HDR + 16 * (size_t)n + 8;
    unsigned char *b = gr_xmalloc(total + 1);
    size_t got = fread(b, 1, total + 1, f);
    fclose(f);
    int rc = 0;
    uint64_t fn, ps, ms, h, want;
    uint32_t ver;
    if (got < REF_HDR || memcmp(b, "GRDPOREF", 8) != 0) {
        rc = gr_errf(err, "%s: not a reference log-probability file", path);
        goto done;
    }
    memcpy(&ver, b + 8, 4);
    memcpy(&fn, b + 16, 8);
    memcpy(&ps, b + 24, 8);
    memcpy(&ms, b + 32, 8);
    if (ver != 1) {
        rc = gr_errf(err, "%s: version %u, this build reads 1", path, ver);
        goto done;
    }
    if (fn != n || ps != gr_pdata_checksum(s->data) || ms != model_sum) goto done; /* other run */
    if (got != total) {
        rc = gr_errf(err, "%s: %zu bytes, expected %zu (damaged)", path, got, total);
        goto done;
    }
    memcpy(&h, b + total - 8, 8);
    want = fnv(0xcbf29ce484222325ULL, b, total - 8);
    if (h != want) {
        rc = gr_errf(err, "%s: checksum mismatch (damaged)", path);
        goto done;
    }
    memcpy(s->ref_c, b + REF_HDR, 8 * (size_t)n);
    memcpy(s->ref_r, b + REF_HDR + 8 * (size_t)n, 8 * (size_t)n);
    s->have_ref = 1;
    rc = 1;
done:
    free(b);
    return rc;
}

static void info_add(gr_dpo_info *in, const gr_dpo_terms *t, double pc, double pr, int64_t tokens) {
    in->loss += t->loss;
    in->dpo_loss += t->dpo;
    in->sft_loss += t->sft;
    in->reward_c += t->reward_c;
    in->reward_r += t->reward_r;
    in->accuracy += t->reward_c > t->reward_r ? 1.0 : 0.0;
    in->margin += t->reward_c - t->reward_r;
    in->logp_c += pc;
    in->logp_r += pr;
    in->pairs++;
    in->tokens += tokens;
}

/* Sums the metric sums of the processes (before info_mean). */
static int info_sum(gr_dp *dp, gr_dpo_info *in, gr_err *err) {
    if (!dp) return 0;
    double v[11] = {in->loss, in->dpo_loss, in->sft_loss, in->reward_c, in->reward_r,
                    in->accuracy, in->margin, in->logp_c, in->logp_r, (double)in->pairs,
                    (double)in->tokens};
    if (gr_dp_sum_f64(dp, v, 11, err)) return -1;
    in->loss = v[0]; in->dpo_loss = v[1]; in->sft_loss = v[2]; in->reward_c = v[3];
    in->reward_r = v[4]; in->accuracy = v[5]; in->margin = v[6]; in->logp_c = v[7];
    in->logp_r = v[8]; in->pairs = (int64_t)v[9]; in->tokens = (int64_t)v[10];
    return 0;
}

static void info_mean(gr_dpo_info *in) {
    double k = in->pairs ? (double)in->pairs : 1.0;
    in->loss /= k; in->dpo_loss /= k; in->sft_loss /= k;
    in->reward_c /= k; in->reward_r /= k; in->accuracy /= k; in->margin /= k;
    in->logp_c /= k; in->logp_r /= k;
}

static double weight_of(const gr_dpo *s, int i) { return s->o.use_weights ? s->data->weight[i] : 1.0; }

int gr_dpo_step(gr_dpo *s, gr_dpo_info *info, gr_err *err) {
    int64_t k = s->step;
    if (!s->have_ref) return gr_errf(err, "dpo: the reference log-probabilities are not computed");
    if (k >= s->plan.T) return gr_errf(err, "dpo: all %lld steps are done", (long long)s->plan.T);
    int64_t epoch, u0, u1, a, b;
    gr_train_plan_step(&s->plan, k, &epoch, &u0, &u1);
    if (s->perm_epoch != epoch) {
        gr_tdata_shuffle(s->o.seed, epoch, s->data->n, s->perm);
        s->perm_epoch = epoch;
    }
    int64_t P = 0;
    for (int64_t u = u0; u < u1; u++) {
        gr_train_plan_micro(&s->plan, u, &a, &b);
        P += b - a;
    }
    memset(info, 0, sizeof *info);
    gr_train_zero_grad(s->m);
    const gr_pdata *d = s->data;
    int rank, world;
    gr_dp *dp = dp_of(s, &rank, &world);
    /* j: the pair's place in the step; this process's last pair completes the
     * gradients (its rejected sequence's backward pass) */
    int64_t j = 0, last_j = rank < P ? rank + (P - 1 - rank) / world * world : -1;
    if (dp) gr_dp_begin(dp, s->m->grads, s->m->n_params);
    for (int64_t u = u0; u < u1; u++) {
        gr_train_plan_micro(&s->plan, u, &a, &b);
        for (int64_t e = a; e < b; e++, j++) {
            if (j % world != rank) continue;
            int i = s->perm[e];
            double pc, pr;
            int64_t nc, nr;
            /* both forward passes kept (two activation sets), then both backward
             * passes with the scales the loss gives: no forward is repeated */
            if (seq_forward(s, s->act, i, 0, &pc, &nc, err)) return -1;
            if (seq_forward(s, s->act_r, i, 1, &pr, &nr, err)) return -1;
            gr_dpo_terms t;
            gr_dpo_pair_terms(s->o.beta, s->o.ftx, weight_of(s, i), pc, pr, s->ref_c[i],
                              s->ref_r[i], nc, &t);
            /* ∂ℓ/∂θ = −∂ℓ/∂πc·∂NLLc/∂θ − ∂ℓ/∂πr·∂NLLr/∂θ, over the step's mean */
            if (seq_backward(s, s->act, i, 0, (float)(-t.dl_dpc / (double)P), err)) return -1;
            if (dp && j == last_j) {
                s->m->grad_ready = gr_dp_hook;
                s->m->grad_ready_ud = dp;
            }
            int rc = seq_backward(s, s->act_r, i, 1, (float)(-t.dl_dpr / (double)P), err);
            s->m->grad_ready = NULL;
            if (rc) return -1;
            info_add(info, &t, pc, pr, d->len_c[i] + d->len_r[i]);
        }
    }
    if (dp && (gr_dp_finish(dp, err) || info_sum(dp, info, err))) return -1;
    double lr = gr_lr_cosine(s->o.lr, k, s->plan.T, s->o.warmup_steps);
    double norm = gr_optim_step(&s->opt, s->m, (float)lr, (float)s->o.max_grad_norm, 1);
    s->step = k + 1;
    info_mean(info);
    info->step = k + 1;
    info->epoch = (double)(k + 1) / (double)s->plan.steps_per_epoch;
    info->lr = lr;
    info->grad_norm = norm;
    return 0;
}

int gr_dpo_eval(gr_dpo *s, gr_dpo_info *info, gr_err *err) {
    if (!s->have_ref) return gr_errf(err, "dpo: the reference log-probabilities are not computed");
    memset(info, 0, sizeof *info);
    const gr_pdata *d = s->data;
    int rank, world;
    gr_dp *dp = dp_of(s, &rank, &world);
    for (int i = rank; i < d->n; i += world) {
        double pc, pr;
        int64_t nc, nr;
        if (seq_forward(s, s->act, i, 0, &pc, &nc, err)) return -1;
        if (seq_forward(s, s->act, i, 1, &pr, &nr, err)) return -1;
        gr_dpo_terms t;
        gr_dpo_pair_terms(s->o.beta, s->o.ftx, weight_of(s, i), pc, pr, s->ref_c[i], s->ref_r[i],
                          nc, &t);
        info_add(info, &t, pc, pr, d->len_c[i] + d->len_r[i]);
    }
    if (info_sum(dp, info, err)) return -1;
    info_mean(info);
    info->step = s->step;
    return 0;
}
