#include "train_sft.h"
#include "dp.h"
#include "train_plan.h"
#include <stdlib.h>
#include <string.h>

void gr_sft_opts_default(gr_sft_opts *o) {
    *o = (gr_sft_opts){.lr = 5e-5, .epochs = 3, .micro_batch = 6, .grad_accum = 16,
                       .max_grad_norm = 1.0, .seed = 42};
}

static int by_len_desc(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x < y) - (x > y);
}

int gr_sft_init(gr_sft *s, gr_train_model *m, const gr_tdata *data, const gr_sft_opts *o,
                gr_err *err) {
    memset(s, 0, sizeof *s);
    if (data->n < 1) return gr_errf(err, "sft: no training examples");
    if (o->micro_batch < 1 || o->grad_accum < 1 || o->epochs < 1)
        return gr_errf(err, "sft: micro-batch, accumulation and epochs must be >= 1");
    if (gr_train_dp_check(m, o->dp ? o->dp->world : 1, err)) return -1;
    s->o = *o;
    s->m = m;
    s->data = data;
    gr_train_plan plan;
    gr_train_plan_init(&plan, data->n, o->micro_batch, o->grad_accum, o->epochs);
    s->M = plan.M;
    s->steps_per_epoch = plan.steps_per_epoch;
    s->T = plan.T;
    s->act = gr_tact_new(o->recompute);
    if (m->be->host_memory) { /* the largest micro-batch: the micro_batch longest sequences */
        int *len = gr_xmalloc(sizeof(int) * (size_t)data->n);
        memcpy(len, data->len, sizeof(int) * (size_t)data->n);
        qsort(len, (size_t)data->n, sizeof(int), by_len_desc);
        int64_t most = 0;
        for (int i = 0; i < data->n && i < o->micro_batch; i++) most += len[i];
        free(len);
        if (most <= (1 << 28)) gr_tact_reserve(s->act, m, (int)most, o->micro_batch);
    }
    gr_adamw_init_model(&s->opt, m);
    s->opt.weight_decay = (float)o->weight_decay;
    s->perm = gr_xmalloc(sizeof(int) * (size_t)data->n);
    s->perm_epoch = -1;
    return 0;
}

void gr_sft_free(gr_sft *s) {
    gr_tact_free(s->act);
    gr_adamw_free(&s->opt);
    free(s->perm);
    memset(s, 0, sizeof *s);
}

int64_t gr_sft_last_step(const gr_sft *s) {
    return s->o.max_steps > 0 && s->o.max_steps < s->T ? s->o.max_steps : s->T;
}

/* Micro-batch u (0..M-1) of the current epoch order. */
static gr_tbatch micro(const gr_sft *s, int64_t u, const int **ids, int *len, int *np) {
    const gr_tdata *d = s->data;
    gr_train_plan plan;
    gr_train_plan_init(&plan, d->n, s->o.micro_batch, s->o.grad_accum, s->o.epochs);
    int64_t a, b;
    gr_train_plan_micro(&plan, u, &a, &b);
    int k = 0;
    for (int64_t i = a; i < b; i++, k++) {
        int e = s->perm[i];
        ids[k] = d->ids[e];
        len[k] = d->len[e];
        np[k] = d->n_prompt[e];
    }
    return (gr_tbatch){k, ids, len, np};
}

int gr_sft_step(gr_sft *s, gr_sft_info *info, gr_err *err) {
    int64_t k = s->step;
    if (k >= s->T) return gr_errf(err, "sft: all %lld steps are done", (long long)s->T);
    gr_train_plan plan;
    gr_train_plan_init(&plan, s->data->n, s->o.micro_batch, s->o.grad_accum, s->o.epochs);
    int64_t epoch, u0, u1;
    gr_train_plan_step(&plan, k, &epoch, &u0, &u1);
    if (s->perm_epoch != epoch) {
        gr_tdata_shuffle(s->o.seed, epoch, s->data->n, s->perm);
        s->perm_epoch = epoch;
    }
    int B = s->o.micro_batch;
    const int **ids = gr_xmalloc(sizeof(int *) * (size_t)B);
    int *len = gr_xmalloc(sizeof(int) * (size_t)B), *np = gr_xmalloc(sizeof(int) * (size_t)B);
    int64_t Nstep = 0, tokens = 0;
    for (int64_t u = u0; u < u1; u++) {
        gr_tbatch b = micro(s, u, ids, len, np);
        Nstep += gr_tbatch_targets(&b);
        for (int i = 0; i < b.n_seq; i++) tokens += b.len[i];
    }
    gr_train_zero_grad(s->m);
    gr_dp *dp = s->o.dp && s->o.dp->world > 1 ? s->o.dp : NULL;
    int world = dp ? dp->world : 1, rank = dp ? dp->rank : 0;
    if (dp) gr_dp_begin(dp, s->m->grads, s->m->n_params);
    int nmb = (int)(u1 - u0);
    /* per micro-batch NLL sums (this process's share), then the step's total */
    double *nll_mb = gr_xcalloc((size_t)nmb + 1, sizeof(double));
    int64_t *nb_mb = gr_xcalloc((size_t)nmb, sizeof(int64_t));
    int rc = 0;
    for (int64_t u = u0; u < u1 && rc == 0; u++) {
        gr_tbatch b = micro(s, u, ids, len, np);
        int64_t nb = gr_tbatch_targets(&b), nt;
        nb_mb[u - u0] = nb;
        float scale;
        if (s->o.loss_micro)
            scale = nb ? (float)(1.0 / ((double)nb * (double)nmb)) : 0.0f;
        else
            scale = Nstep ? (float)(1.0 / (double)Nstep) : 0.0f;
        /* this process's share: sequences rank, rank + world, ... */
        int k = 0;
        for (int i = rank; i < b.n_seq; i += world, k++) {
            ids[k] = ids[i];
            len[k] = len[i];
            np[k] = np[i];
        }
        if (k == 0) continue;
        gr_tbatch mine = {k, ids, len, np};
        double nll;
        if (dp && u == u1 - 1) { /* the step's gradients complete during this backward */
            s->m->grad_ready = gr_dp_hook;
            s->m->grad_ready_ud = dp;
        }
        rc = gr_train_step_micro(s->m, s->act, &mine, 1, scale, &nll, &nt, err);
        s->m->grad_ready = NULL;
        nll_mb[u - u0] = nll;
    }
    free(ids);
    free(len);
    free(np);
    if (rc) {
        free(nll_mb);
        free(nb_mb);
        return rc;
    }
    if (dp && (gr_dp_finish(dp, err) || gr_dp_sum_f64(dp, nll_mb, nmb, err))) {
        free(nll_mb);
        free(nb_mb);
        return -1;
    }
    double nll_total = 0, mean_sum = 0;
    for (int i = 0; i < nmb; i++) {
        nll_total += nll_mb[i];
        if (nb_mb[i]) mean_sum += nll_mb[i] / (double)nb_mb[i];
    }
    free(nll_mb);
    free(nb_mb);
    double lr = gr_lr_cosine(s->o.lr, k, s->T, s->o.warmup_steps);
    double norm = gr_optim_step(&s->opt, s->m, (float)lr, (float)s->o.max_grad_norm, 1);
    s->step = k + 1;
    info->step = k + 1;
    info->epoch = (double)(k + 1) / (double)s->steps_per_epoch;
    info->loss = s->o.loss_micro ? mean_sum / (double)nmb
                                 : (Nstep ? nll_total / (double)Nstep : 0.0);
    info->lr = lr;
    info->grad_norm = norm;
    info->tokens = tokens;
    info->targets = Nstep;
    return 0;
}

int gr_train_eval(gr_train_model *m, gr_tact *act, const gr_tdata *d, int B, double *loss,
                  int64_t *n_targets, gr_err *err) {
    double nll_total = 0;
    int64_t n_total = 0;
    if (B < 1) B = 1;
    for (int a = 0; a < d->n; a += B) {
        int k = d->n - a < B ? d->n - a : B;
        gr_tbatch b = {k, (const int *const *)(d->ids + a), d->len + a, d->n_prompt + a};
        double nll;
        int64_t nt;
        if (gr_train_step_micro(m, act, &b, 0, 0.0f, &nll, &nt, err)) return -1;
        nll_total += nll;
        n_total += nt;
    }
    *loss = n_total ? nll_total / (double)n_total : 0.0;
    if (n_targets) *n_targets = n_total;
    return 0;
}

int gr_sft_eval(gr_sft *s, const gr_tdata *d, double *loss, gr_err *err) {
    return gr_train_eval(s->m, s->act, d, s->o.micro_batch, loss, NULL, err);
}
